"""The integer graph: layers in execution order, their checks, and the reference executor.

`validate_graph` enforces every bound of docs/integer-semantics.md (each op's own checks come
from the op registry, `ops.py`), so a package that loads can never overflow. Never uses floats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from aicommons.runtime.errors import PackageError
from aicommons.runtime.layer import Layer, layer_error
from aicommons.runtime.ops import MAX_SAMPLE_VALUES, infer_out_shape, op_spec

SEMANTICS_PREFIX = "aicommons-int/"
"""A manifest's `semantics` is this prefix and the version number."""

__all__ = ["Layer", "infer_out_shape", "run_reference", "run_reference_layer", "validate_graph"]


def validate_graph(
    input_name: str,
    input_shape: tuple[int, ...],
    layers: Sequence[Layer],
    output_names: Sequence[str],
    tensors: Mapping[str, np.ndarray],
    *,
    input_dtype: str = "int8",
    version: int = 1,
) -> None:
    """Check the whole graph: known values only, shapes and dtypes consistent, every bound held,
    and nothing newer than semantics `version` (1: int8 values and the /1 ops only)."""
    if math.prod(input_shape) > MAX_SAMPLE_VALUES:
        raise PackageError(
            f"input shape {list(input_shape)} holds more than {MAX_SAMPLE_VALUES} values a sample"
        )
    if version == 1 and input_dtype != "int8":
        raise PackageError(f"input dtype {input_dtype} needs semantics {SEMANTICS_PREFIX}2")
    shapes: dict[str, tuple[int, ...]] = {input_name: tuple(input_shape)}
    dtypes: dict[str, str] = {input_name: input_dtype}
    consumed = {name for layer in layers for name in layer.inputs}
    for layer in layers:
        spec = op_spec(layer)
        if spec.version > version:
            raise layer_error(layer, f"op needs semantics {SEMANTICS_PREFIX}{spec.version}")
        if version == 1 and layer.out_dtype == "int16":
            raise layer_error(layer, f"int16 values need semantics {SEMANTICS_PREFIX}2")
        first = shapes.get(layer.inputs[0]) if layer.inputs else None
        if version == 1 and spec.v1_input_rank and first and len(first) != spec.v1_input_rank:
            raise layer_error(
                layer, f"a rank-{len(first)} input needs semantics {SEMANTICS_PREFIX}2"
            )
        for name in layer.inputs:
            if name not in shapes:
                raise layer_error(layer, f"input {name!r} is not produced by an earlier layer")
            if dtypes[name] == "int32" and name != input_name:
                raise layer_error(
                    layer, f"input {name!r} is int32; only int8 (and int16) values feed layers"
                )
        if layer.output in shapes:
            raise layer_error(layer, f"output {layer.output!r} is produced twice")
        is_output = layer.output in output_names and layer.output not in consumed
        out_shape = infer_out_shape(
            layer,
            [shapes[n] for n in layer.inputs],
            tensors,
            is_output,
            [dtypes[n] for n in layer.inputs],
        )
        if out_shape != tuple(layer.out_shape):
            raise layer_error(
                layer, f"declared output shape {list(layer.out_shape)} != {list(out_shape)}"
            )
        shapes[layer.output] = out_shape
        dtypes[layer.output] = layer.out_dtype
    for name in output_names:
        if name not in shapes:
            raise PackageError(f"graph output {name!r} is not produced by any layer")


def run_reference_layer(
    layer: Layer, inputs: Sequence[np.ndarray], tensors: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Run one layer with the pure-int reference ops (slow; the oracle for the fast kernels)."""
    return op_spec(layer).reference(layer, inputs, tensors)


def run_reference(
    input_name: str,
    layers: Sequence[Layer],
    tensors: Mapping[str, np.ndarray],
    x: np.ndarray,
) -> dict[str, np.ndarray]:
    """Every value of the graph (input included) computed by the reference, keyed by name."""
    values: dict[str, np.ndarray] = {input_name: np.asarray(x, dtype=np.int64)}
    for layer in layers:
        out = run_reference_layer(layer, [values[n] for n in layer.inputs], tensors)
        values[layer.output] = out.astype(np.dtype(layer.out_dtype))
    return values
