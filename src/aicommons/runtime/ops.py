"""The op registry: every op of the integer semantics, registered once under its manifest `op`.

An op lives in four places that share its stem (docs/integer-semantics.md `### <stem>`,
`reference.<stem>`, `kernels.<stem>_kernel`, and the on-chain one-step verifier
`int_ops.vy:<stem>_step`); its `OpSpec` ties them together with its arity, tensor roles,
attributes and shape check. Graph validation, the reference executor and the kernel compiler look
ops up here and never branch on op names. Checks only: nothing here computes a result itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aicommons.runtime import kernels
from aicommons.runtime import reference as ref
from aicommons.runtime.layer import Layer, layer_error
from aicommons.runtime.schema import Int, ListOf, Node, Obj, Text

Shape = tuple[int, ...]
Tensors = Mapping[str, np.ndarray]
ShapeRule = Callable[[Layer, Sequence[Shape], Tensors, bool], Shape]
"""(layer, per-sample input shapes, tensors, is a graph output) -> per-sample output shape;
raises PackageError naming the layer and the rule it breaks."""
ReferenceRule = Callable[[Layer, Sequence[np.ndarray], Tensors], np.ndarray]
"""(layer, batched inputs, tensors) -> the reference's batched output (int64)."""
KernelFactory = Callable[[Layer, Tensors, Sequence[int], str], kernels.Kernel]
"""(layer, tensors, first input's per-sample shape, matmul path) -> the fast kernel."""
OUTPUT_DTYPES = ("int8", "int32")
REQUANT_ROLES = ("weight", "bias", "multiplier", "shift")

MAX_DIM = 1 << 24
"""Largest extent of any axis, and of any window attribute."""
MAX_RANK = 4
"""Most axes of a per-sample shape."""
MAX_SAMPLE_VALUES = 1 << 24
"""Most values one sample of any graph value may hold: bounds what loading and running allocate."""

SHAPE = ListOf(Int(1, MAX_DIM), 1, MAX_RANK)
BOUNDS = {"lo": Int(ref.INT32_MIN, ref.INT32_MAX), "hi": Int(ref.INT32_MIN, ref.INT32_MAX)}
"""Clamp bounds; the output dtype narrows them (int8 unless an int32 graph output)."""
WINDOW = {
    "kernel": ListOf(Int(1, MAX_DIM), 2, 2),
    "strides": ListOf(Int(1, MAX_DIM), 2, 2),
    "pads": ListOf(Int(0, MAX_DIM), 4, 4),
    "dilations": ListOf(Int(1, MAX_DIM), 2, 2),
}
"""A 2-D window: kernel [kh, kw], strides, pads [top, left, bottom, right], dilations."""
CHANNELS = Int(1, MAX_DIM)


@dataclass(frozen=True)
class OpSpec:
    """One op of the semantics. `name` is the manifest `op` and the stem of its four places."""

    name: str
    arity: int
    tensor_roles: tuple[str, ...]
    attrs: Mapping[str, Node]
    """Every attribute of the op and its type and range (the manifest schema uses these)."""
    wide: bool
    """May produce an int32 graph output (requantising ops only)."""
    out_shape: ShapeRule
    reference: ReferenceRule
    kernel: KernelFactory
    weighted: bool = False
    """Has a `weight` tensor whose every entry is one multiply-accumulate per output position."""

    @property
    def attrs_schema(self) -> Obj:
        return Obj(self.attrs)

    @property
    def tensors_schema(self) -> Obj:
        return Obj({role: Text() for role in self.tensor_roles})

    @property
    def step_name(self) -> str:
        """The on-chain one-step verifier of this op in chain/contracts/int_ops.vy."""
        return f"{self.name}_step"


# -- checks shared by several ops ---------------------------------------------------------------


def _require_tensor(
    layer: Layer, tensors: Tensors, role: str, dtype: str, shape: Shape
) -> np.ndarray:
    name = layer.tensors.get(role)
    if name is None or name not in tensors:
        raise layer_error(layer, f"missing {role} tensor")
    value = tensors[name]
    if value.dtype != np.dtype(dtype) or tuple(value.shape) != shape:
        raise layer_error(layer, f"{role} tensor {name!r} must be {dtype}{list(shape)}")
    return value


def _check_range(layer: Layer, what: str, values: np.ndarray, lo: int, hi: int) -> None:
    if values.size and (int(values.min()) < lo or int(values.max()) > hi):
        raise layer_error(layer, f"{what} outside [{lo}, {hi}]")


def _check_requant(
    layer: Layer, tensors: Tensors, channels: int, fan_in: int, weight_shape: Shape
) -> None:
    weight = _require_tensor(layer, tensors, "weight", "int8", weight_shape)
    bias = _require_tensor(layer, tensors, "bias", "int32", (channels,))
    multiplier = _require_tensor(layer, tensors, "multiplier", "int32", (channels,))
    shift = _require_tensor(layer, tensors, "shift", "int32", (channels,))
    _check_range(layer, "weights", weight, ref.WEIGHT_MIN, ref.WEIGHT_MAX)
    _check_range(layer, "multipliers", multiplier, ref.MULTIPLIER_MIN, ref.MULTIPLIER_MAX)
    _check_range(layer, "shifts", shift, ref.SHIFT_MIN, ref.SHIFT_MAX)
    # The fan-in bound: |acc| <= |bias| + K*128*127 <= 2^31-1, so acc*M stays below 2^62.
    worst = int(np.abs(bias.astype(np.int64)).max(initial=0)) + fan_in * 128 * 127
    if worst > ref.INT32_MAX:
        raise layer_error(
            layer, f"fan-in {fan_in} with bias {worst - fan_in * 16256} can overflow int32"
        )


def _check_clamp_bounds(layer: Layer, is_graph_output: bool) -> tuple[int, int]:
    lo, hi = layer.attrs["lo"], layer.attrs["hi"]
    wide = layer.out_dtype == "int32"
    if wide and not is_graph_output:
        raise layer_error(layer, "only a graph output may be int32")
    low_limit, high_limit = (ref.INT32_MIN, ref.INT32_MAX) if wide else (ref.INT8_MIN, ref.INT8_MAX)
    if not low_limit <= lo <= hi <= high_limit:
        raise layer_error(layer, f"clamp bounds [{lo}, {hi}] outside [{low_limit}, {high_limit}]")
    return lo, hi


def _planes(layer: Layer, shape: Shape) -> None:
    if len(shape) != 3:
        raise layer_error(layer, f"input must be [C, H, W] per sample, got {list(shape)}")


def window_output_shape(layer: Layer, in_shape: Shape) -> tuple[int, int]:
    """Spatial output of a conv/pool layer; raises if the window never fits."""
    a = layer.attrs
    kernel, strides, pads, dilations = a["kernel"], a["strides"], a["pads"], a["dilations"]
    out_h = ref.conv_output_size(in_shape[1], kernel[0], strides[0], pads[0], pads[2], dilations[0])
    out_w = ref.conv_output_size(in_shape[2], kernel[1], strides[1], pads[1], pads[3], dilations[1])
    if out_h < 1 or out_w < 1:
        raise layer_error(layer, "window larger than the padded input")
    return out_h, out_w


# -- dense --------------------------------------------------------------------------------------


def _dense_shape(layer: Layer, in_shapes: Sequence[Shape], tensors: Tensors, out: bool) -> Shape:
    shape = in_shapes[0]
    if len(shape) != 1:
        raise layer_error(layer, f"input must be 1-D per sample, got {list(shape)}")
    channels = layer.attrs["channels"]
    _check_requant(layer, tensors, channels, shape[0], (channels, shape[0]))
    _check_clamp_bounds(layer, out)
    return (channels,)


def _dense_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    t, a = {role: tensors[name] for role, name in layer.tensors.items()}, layer.attrs
    return ref.dense(
        inputs[0], t["weight"], t["bias"], t["multiplier"], t["shift"], a["lo"], a["hi"]
    )


# -- conv2d -------------------------------------------------------------------------------------


def _conv2d_shape(layer: Layer, in_shapes: Sequence[Shape], tensors: Tensors, out: bool) -> Shape:
    shape = in_shapes[0]
    _planes(layer, shape)
    channels, groups, kernel = layer.attrs["channels"], layer.attrs["groups"], layer.attrs["kernel"]
    if shape[0] % groups or channels % groups:
        raise layer_error(layer, f"groups={groups} must divide input and output channels")
    group_in = shape[0] // groups
    fan_in = group_in * kernel[0] * kernel[1]
    _check_requant(layer, tensors, channels, fan_in, (channels, group_in, *kernel))
    _check_clamp_bounds(layer, out)
    return (channels, *window_output_shape(layer, shape))


def _conv2d_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    t, a = {role: tensors[name] for role, name in layer.tensors.items()}, layer.attrs
    return ref.conv2d(
        inputs[0],
        t["weight"],
        t["bias"],
        t["multiplier"],
        t["shift"],
        a["strides"],
        a["pads"],
        a["dilations"],
        a["groups"],
        a["lo"],
        a["hi"],
    )


# -- maxpool, avgpool ---------------------------------------------------------------------------


def _pool_shape(layer: Layer, shape: Shape) -> Shape:
    _planes(layer, shape)
    kernel, pads, dilations = layer.attrs["kernel"], layer.attrs["pads"], layer.attrs["dilations"]
    # A window made only of padding would have no max and no mean.
    if any(pads[i] > (kernel[i % 2] - 1) * dilations[i % 2] for i in range(4)):
        raise layer_error(
            layer, "a padding exceeds the window extent, so a window can be all padding"
        )
    return (shape[0], *window_output_shape(layer, shape))


def _maxpool_shape(layer: Layer, in_shapes: Sequence[Shape], tensors: Tensors, out: bool) -> Shape:
    return _pool_shape(layer, in_shapes[0])


def _avgpool_shape(layer: Layer, in_shapes: Sequence[Shape], tensors: Tensors, out: bool) -> Shape:
    if list(layer.attrs["dilations"]) != [1, 1]:
        raise layer_error(layer, "avgpool has no dilation")
    return _pool_shape(layer, in_shapes[0])


def _maxpool_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    a = layer.attrs
    return ref.maxpool(inputs[0], a["kernel"], a["strides"], a["pads"], a["dilations"])


def _avgpool_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    a = layer.attrs
    return ref.avgpool(inputs[0], a["kernel"], a["strides"], a["pads"], a["count_include_pad"])


# -- add, clamp, reshape ------------------------------------------------------------------------


def _add_shape(layer: Layer, in_shapes: Sequence[Shape], tensors: Tensors, out: bool) -> Shape:
    if in_shapes[0] != in_shapes[1]:
        raise layer_error(
            layer, f"input shapes differ: {list(in_shapes[0])} vs {list(in_shapes[1])}"
        )
    multiplier = _require_tensor(layer, tensors, "multiplier", "int32", (2,))
    shift = _require_tensor(layer, tensors, "shift", "int32", (1,))
    _check_range(layer, "multipliers", multiplier, 0, ref.MULTIPLIER_MAX)
    _check_range(layer, "shift", shift, ref.SHIFT_MIN, ref.SHIFT_MAX)
    _check_clamp_bounds(layer, out)
    return in_shapes[0]


def _add_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    t, a = {role: tensors[name] for role, name in layer.tensors.items()}, layer.attrs
    return ref.add(inputs[0], inputs[1], t["multiplier"], t["shift"], a["lo"], a["hi"])


def _clamp_shape(layer: Layer, in_shapes: Sequence[Shape], tensors: Tensors, out: bool) -> Shape:
    _check_clamp_bounds(layer, False)
    return in_shapes[0]


def _clamp_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    return ref.clamp(inputs[0], layer.attrs["lo"], layer.attrs["hi"])


def _reshape_shape(layer: Layer, in_shapes: Sequence[Shape], tensors: Tensors, out: bool) -> Shape:
    shape = in_shapes[0]
    target = tuple(layer.attrs["shape"])
    if math.prod(target) != math.prod(shape):
        raise layer_error(layer, f"cannot reshape {list(shape)} to {list(target)}")
    return target


def _reshape_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    return ref.reshape(inputs[0], layer.attrs["shape"])


# -- the registry -------------------------------------------------------------------------------

OPS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in (
        OpSpec(
            name="dense",
            arity=1,
            tensor_roles=REQUANT_ROLES,
            attrs={"channels": CHANNELS, **BOUNDS},
            wide=True,
            out_shape=_dense_shape,
            reference=_dense_reference,
            kernel=kernels.dense_kernel,
            weighted=True,
        ),
        OpSpec(
            name="conv2d",
            arity=1,
            tensor_roles=REQUANT_ROLES,
            attrs={"channels": CHANNELS, **WINDOW, "groups": CHANNELS, **BOUNDS},
            wide=True,
            out_shape=_conv2d_shape,
            reference=_conv2d_reference,
            kernel=kernels.conv2d_kernel,
            weighted=True,
        ),
        OpSpec(
            name="maxpool",
            arity=1,
            tensor_roles=(),
            attrs=WINDOW,
            wide=False,
            out_shape=_maxpool_shape,
            reference=_maxpool_reference,
            kernel=kernels.maxpool_kernel,
        ),
        OpSpec(
            name="avgpool",
            arity=1,
            tensor_roles=(),
            attrs={**WINDOW, "count_include_pad": Int(0, 1)},
            wide=False,
            out_shape=_avgpool_shape,
            reference=_avgpool_reference,
            kernel=kernels.avgpool_kernel,
        ),
        OpSpec(
            name="add",
            arity=2,
            tensor_roles=("multiplier", "shift"),
            attrs=BOUNDS,
            wide=True,
            out_shape=_add_shape,
            reference=_add_reference,
            kernel=kernels.add_kernel,
        ),
        OpSpec(
            name="clamp",
            arity=1,
            tensor_roles=(),
            attrs=BOUNDS,
            wide=False,
            out_shape=_clamp_shape,
            reference=_clamp_reference,
            kernel=kernels.clamp_kernel,
        ),
        OpSpec(
            name="reshape",
            arity=1,
            tensor_roles=(),
            attrs={"shape": SHAPE},
            wide=False,
            out_shape=_reshape_shape,
            reference=_reshape_reference,
            kernel=kernels.reshape_kernel,
        ),
    )
}


def op_spec(layer: Layer) -> OpSpec:
    """The registered spec of `layer.op`; an unknown op is refused by name."""
    spec = OPS.get(layer.op)
    if spec is None:
        raise layer_error(layer, f"unknown op; supported ops are {', '.join(OPS)}")
    return spec


def infer_out_shape(
    layer: Layer, in_shapes: Sequence[Shape], tensors: Tensors, is_output: bool
) -> Shape:
    """Check the layer against its input shapes and tensors; return its per-sample output shape."""
    spec = op_spec(layer)
    if layer.out_dtype not in OUTPUT_DTYPES:
        raise layer_error(layer, f"unknown output dtype {layer.out_dtype!r}")
    if layer.out_dtype == "int32" and not spec.wide:
        wide_ops = ", ".join(name for name, other in OPS.items() if other.wide)
        raise layer_error(layer, f"only {wide_ops} may produce int32")
    if len(in_shapes) != spec.arity:
        raise layer_error(layer, f"expects {spec.arity} input(s)")
    where = f"layer {layer.name!r} ({layer.op})"
    spec.attrs_schema.check(dict(layer.attrs), f"{where} attrs")
    spec.tensors_schema.check(dict(layer.tensors), f"{where} tensors")
    out_shape = spec.out_shape(layer, in_shapes, tensors, is_output)
    if math.prod(out_shape) > MAX_SAMPLE_VALUES:
        raise layer_error(
            layer, f"output {list(out_shape)} holds more than {MAX_SAMPLE_VALUES} values a sample"
        )
    return out_shape


def macs_per_sample(layers: Sequence[Layer], tensors: Tensors) -> int:
    """Multiply-accumulates of one sample: each weight entry once per output position."""
    total = 0
    for layer in layers:
        if op_spec(layer).weighted:
            positions = math.prod(layer.out_shape[1:])
            total += tensors[layer.tensors["weight"]].size * positions
    return total
