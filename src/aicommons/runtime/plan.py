"""Execution plans: the fast kernel of each layer (from the op registry) and the fused plan.

A plan computes the graph outputs only and may fuse layers whose intermediate value nobody
observes (conv2d + maxpool, flatten + dense); each fusion is exact for the reason its docstring
gives. Traces use the per-layer kernels. Never changes a result, only how it is computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from aicommons.runtime.kernels import (
    ConvKernel,
    Kernel,
    LinearRequant,
    check_matmul_path,
    layer_requantizer,
    pool_kernel,
    tiling_pool_phase,
)
from aicommons.runtime.layer import Layer
from aicommons.runtime.ops import op_spec


def compile_layer(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    in_dtypes: Sequence[str] | None = None,
) -> Kernel:
    """The fast kernel of one validated layer; `in_shape` is its first input's per-sample shape,
    `in_dtypes` its inputs' dtypes (int8 when not given)."""
    check_matmul_path(path)
    spec = op_spec(layer)
    dtypes = tuple(in_dtypes) if in_dtypes is not None else ("int8",) * spec.arity
    return spec.kernel(layer, tensors, in_shape, path, in_dtypes=dtypes)


Step = tuple[tuple[str, ...], str, Kernel]
"""One step of an execution plan: input value names, output value name, kernel."""


def _flat_dense_kernel(
    layer: Layer, tensors: Mapping[str, np.ndarray], planes: Sequence[int], path: str
) -> Kernel:
    """A dense layer reading its [C, H, W] input straight from the NHWC layout: its weight
    columns are permuted once instead of transposing every batch (same terms, same sums)."""
    channels, height, width = planes
    order = np.arange(channels * height * width).reshape(channels, height, width)
    weight = tensors[layer.tensors["weight"]][:, order.transpose(1, 2, 0).reshape(-1)]
    linear = LinearRequant(weight, layer_requantizer(layer, tensors, weight.shape[1]), path)
    return lambda x: linear(x.reshape(x.shape[0], -1))


def _pooled_conv_kernel(conv: ConvKernel, pool: Kernel) -> Kernel:
    """maxpool(requantize(acc)) = requantize(maxpool(acc)): requantisation is non-decreasing in
    the accumulator (M >= 1, floor and clamp are monotone), so pool first, requantise less."""
    if conv.pool_phase > 1:
        return conv.pooled
    return lambda x: conv.finish(pool(conv.product(x)))


def compile_plan(
    input_name: str,
    input_shape: Sequence[int],
    layers: Sequence[Layer],
    output_names: Sequence[str],
    tensors: Mapping[str, np.ndarray],
    path: str,
    input_dtype: str = "int8",
) -> list[Step]:
    """Kernels for computing the graph outputs only, fusing where an intermediate value is
    never observed: conv2d into the maxpool that alone consumes it, and a flattening reshape
    of planes into the dense layer that alone consumes it. Per-layer kernels serve traces."""
    shapes: dict[str, tuple[int, ...]] = {input_name: tuple(input_shape)}
    dtypes: dict[str, str] = {input_name: input_dtype}
    for layer in layers:
        shapes[layer.output] = tuple(layer.out_shape)
        dtypes[layer.output] = layer.out_dtype
    users: dict[str, list[Layer]] = {}
    for layer in layers:
        for name in layer.inputs:
            users.setdefault(name, []).append(layer)

    def sole_user(name: str, op: str) -> Layer | None:
        found = users.get(name, [])
        if name in output_names or len(found) != 1 or found[0].op != op:
            return None
        return found[0]

    steps: list[Step] = []
    fused: set[str] = set()
    for layer in layers:
        if layer.name in fused:
            continue
        in_shape = shapes[layer.inputs[0]]
        in_dtypes = tuple(dtypes[name] for name in layer.inputs)
        if in_dtypes != ("int8",) * len(in_dtypes):
            # The fusions below are written for int8 inputs (their products' exact paths).
            steps.append(
                (
                    layer.inputs,
                    layer.output,
                    compile_layer(layer, tensors, in_shape, path, in_dtypes),
                )
            )
            continue
        if layer.op == "conv2d" and (pool := sole_user(layer.output, "maxpool")):
            phase = tiling_pool_phase(pool, layer.out_shape)
            conv = ConvKernel(layer, tensors, in_shape, path, pool_phase=phase)
            pooled = pool_kernel(pool, layer.out_shape, is_max=True, max_fill=-np.inf)
            steps.append((layer.inputs, pool.output, _pooled_conv_kernel(conv, pooled)))
            fused.add(pool.name)
            continue
        if (
            layer.op == "reshape"
            and len(in_shape) == 3
            and len(layer.out_shape) == 1
            and (dense := sole_user(layer.output, "dense"))
        ):
            steps.append(
                (layer.inputs, dense.output, _flat_dense_kernel(dense, tensors, in_shape, path))
            )
            fused.add(dense.name)
            continue
        steps.append((layer.inputs, layer.output, compile_layer(layer, tensors, in_shape, path)))
    return steps
