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
Dtypes = Sequence[str]
ShapeRule = Callable[[Layer, Sequence[Shape], Sequence[str], Tensors, bool], Shape]
"""(layer, per-sample input shapes, input dtypes, tensors, is a graph output) -> per-sample
output shape; raises PackageError naming the layer and the rule it breaks."""
ReferenceRule = Callable[[Layer, Sequence[np.ndarray], Tensors], np.ndarray]
"""(layer, batched inputs, tensors) -> the reference's batched output (int64)."""
KernelFactory = Callable[..., kernels.Kernel]
"""(layer, tensors, first input's per-sample shape, matmul path, *, in_dtypes) -> the fast
kernel; `in_dtypes` are the dtypes of the layer's inputs."""
DomainRule = Callable[[Layer, Tensors, np.ndarray], str | None]
"""(layer, tensors, the batched graph input it reads) -> why that input is invalid, or None."""
OUTPUT_DTYPES = ("int8", "int16", "int32")
ACTIVATIONS = ("int8", "int16")
"""The dtypes of values that feed layers (int16 from semantics version 2 on)."""
INPUT_BOUND = ref.INPUT_BOUND
DTYPE_RANGE = {
    "int8": (ref.INT8_MIN, ref.INT8_MAX),
    "int16": (ref.INT16_MIN, ref.INT16_MAX),
    "int32": (ref.INT32_MIN, ref.INT32_MAX),
}
WIDE_ACC_BOUND = 2**47
"""Version 2: |acc| of a product with an int16 operand stays below this (float64-exact)..."""
WIDE_PRODUCT_BOUND = 2**62
"""...and |acc * M| below this (int64)."""
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
    version: int = 1
    """The semantics version that introduced the op (`aicommons-int/<version>`)."""
    in_dtypes: tuple[tuple[str, ...], ...] | None = None
    """Allowed dtypes of each input; None: an activation (int8, or int16 from version 2)."""
    out_dtypes: tuple[str, ...] | None = None
    """Allowed output dtypes besides an int32 graph output of a wide op; None: the first
    input's dtype."""

    v1_input_rank: int | None = None
    """The per-sample rank version 1 allows for the first input (dense: 1), if it is fixed."""
    channel_axis: int = 0
    """Of a weighted op's per-sample output: the axis of its channels (MACs per position)."""
    input_domain: DomainRule | None = None
    """Refuses graph inputs the op cannot read (token ids beyond the embedding table)."""

    def input_dtypes(self, index: int) -> tuple[str, ...]:
        return ACTIVATIONS if self.in_dtypes is None else self.in_dtypes[index]

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
    layer: Layer,
    tensors: Tensors,
    channels: int,
    fan_in: int,
    weight_shape: Shape,
    in_dtype: str = "int8",
) -> None:
    weight = _require_tensor(layer, tensors, "weight", "int8", weight_shape)
    bias = _require_tensor(layer, tensors, "bias", "int32", (channels,))
    multiplier = _require_tensor(layer, tensors, "multiplier", "int32", (channels,))
    shift = _require_tensor(layer, tensors, "shift", "int32", (channels,))
    _check_range(layer, "weights", weight, ref.WEIGHT_MIN, ref.WEIGHT_MAX)
    _check_range(layer, "multipliers", multiplier, ref.MULTIPLIER_MIN, ref.MULTIPLIER_MAX)
    _check_range(layer, "shifts", shift, ref.SHIFT_MIN, ref.SHIFT_MAX)
    terms = fan_in * INPUT_BOUND[in_dtype] * ref.WEIGHT_MAX
    if in_dtype == "int8":
        # The fan-in bound: |acc| <= |bias| + K*128*127 <= 2^31-1, so acc*M stays below 2^62.
        worst = int(np.abs(bias.astype(np.int64)).max(initial=0)) + terms
        if worst > ref.INT32_MAX:
            raise layer_error(
                layer, f"fan-in {fan_in} with bias {worst - terms} can overflow int32"
            )
        return
    accs = np.abs(bias.astype(object)) + terms
    _check_wide_bound(layer, accs, multiplier)


def _check_wide_bound(layer: Layer, accs: np.ndarray, multiplier: np.ndarray) -> None:
    """Version 2, a product with an int16 operand: every |acc| < 2^47, |acc * M| < 2^62."""
    worst_acc = max((int(v) for v in accs), default=0)
    if worst_acc >= WIDE_ACC_BOUND:
        raise layer_error(layer, f"accumulator bound {worst_acc} reaches 2^47")
    products = [int(a) * int(m) for a, m in zip(accs, multiplier.astype(object), strict=True)]
    if products and max(products) >= WIDE_PRODUCT_BOUND:
        raise layer_error(layer, "accumulator times multiplier can reach 2^62")


def _check_clamp_bounds(layer: Layer, is_graph_output: bool) -> tuple[int, int]:
    lo, hi = layer.attrs["lo"], layer.attrs["hi"]
    if layer.out_dtype == "int32" and not is_graph_output:
        raise layer_error(layer, "only a graph output may be int32")
    low_limit, high_limit = DTYPE_RANGE[layer.out_dtype]
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


def _dense_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    shape = in_shapes[0]
    if len(shape) not in (1, 2):
        raise layer_error(layer, f"input must be [K] or [L, K] per sample, got {list(shape)}")
    channels = layer.attrs["channels"]
    _check_requant(layer, tensors, channels, shape[-1], (channels, shape[-1]), dtypes[0])
    _check_clamp_bounds(layer, out)
    return (*shape[:-1], channels)


def _dense_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    """Every row of the last axis (version 2 reads [L, K] per sample) through `ref.dense`."""
    t, a = {role: tensors[name] for role, name in layer.tensors.items()}, layer.attrs
    x = inputs[0]
    rows = x.reshape(-1, x.shape[-1])
    y = ref.dense(rows, t["weight"], t["bias"], t["multiplier"], t["shift"], a["lo"], a["hi"])
    return y.reshape((*x.shape[:-1], y.shape[-1]))


# -- conv2d -------------------------------------------------------------------------------------


def _conv2d_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    shape = in_shapes[0]
    _planes(layer, shape)
    channels, groups, kernel = layer.attrs["channels"], layer.attrs["groups"], layer.attrs["kernel"]
    if shape[0] % groups or channels % groups:
        raise layer_error(layer, f"groups={groups} must divide input and output channels")
    group_in = shape[0] // groups
    fan_in = group_in * kernel[0] * kernel[1]
    _check_requant(layer, tensors, channels, fan_in, (channels, group_in, *kernel), dtypes[0])
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


def _maxpool_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    return _pool_shape(layer, in_shapes[0])


def _avgpool_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
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


def _add_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
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


def _clamp_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    _check_clamp_bounds(layer, False)
    return in_shapes[0]


def _clamp_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    return ref.clamp(inputs[0], layer.attrs["lo"], layer.attrs["hi"])


def _reshape_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    shape = in_shapes[0]
    target = tuple(layer.attrs["shape"])
    if math.prod(target) != math.prod(shape):
        raise layer_error(layer, f"cannot reshape {list(shape)} to {list(target)}")
    return target


def _reshape_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    return ref.reshape(inputs[0], layer.attrs["shape"])


# -- version 2: the transformer ops -------------------------------------------------------------


def _require_table(layer: Layer, tensors: Tensors, role: str, ndim: int) -> np.ndarray:
    """An int8/int16 tensor of `ndim` axes (an embedding or lookup table)."""
    name = layer.tensors.get(role)
    if name is None or name not in tensors:
        raise layer_error(layer, f"missing {role} tensor")
    value = tensors[name]
    if value.dtype.name not in ACTIVATIONS or value.ndim != ndim:
        raise layer_error(layer, f"{role} tensor {name!r} must be int8 or int16 with {ndim} axes")
    return value


def _require_scalar_requant(layer: Layer, tensors: Tensors, multipliers: int) -> np.ndarray:
    """`multiplier` int32 [multipliers] and `shift` int32 [1] in their ranges; the multipliers."""
    multiplier = _require_tensor(layer, tensors, "multiplier", "int32", (multipliers,))
    shift = _require_tensor(layer, tensors, "shift", "int32", (1,))
    low = ref.MULTIPLIER_MIN if multipliers == 1 else 0
    _check_range(layer, "multipliers", multiplier, low, ref.MULTIPLIER_MAX)
    _check_range(layer, "shift", shift, ref.SHIFT_MIN, ref.SHIFT_MAX)
    return multiplier


def _mask_fits(layer: Layer, shape: Shape, mask: Shape) -> None:
    if mask != shape[-1:]:
        raise layer_error(layer, f"mask {list(mask)} must be [{shape[-1]}] for input {list(shape)}")


def _embed_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    shape = in_shapes[0]
    if len(shape) != 1:
        raise layer_error(layer, f"token ids must be 1-D [L] per sample, got {list(shape)}")
    table = _require_table(layer, tensors, "table", 2)
    position = _require_table(layer, tensors, "position", 2)
    if position.shape[1] != table.shape[1] or position.shape[0] < shape[0]:
        raise layer_error(
            layer, f"position {list(position.shape)} must be [>= {shape[0]}, {table.shape[1]}]"
        )
    _require_scalar_requant(layer, tensors, 2)
    _check_clamp_bounds(layer, out)
    return (shape[0], table.shape[1])


def _embed_domain(layer: Layer, tensors: Tensors, ids: np.ndarray) -> str | None:
    vocab = tensors[layer.tensors["table"]].shape[0]
    bad = (ids < 0) | (ids >= vocab)
    if not bad.any():
        return None
    index = np.unravel_index(int(np.argmax(bad)), ids.shape)
    return (
        f"token id {int(ids[index])} at index {[int(i) for i in index]} is outside the "
        f"embedding table [0, {vocab})"
    )


def _embed_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    t, a = {role: tensors[name] for role, name in layer.tensors.items()}, layer.attrs
    return ref.embed(
        inputs[0], t["table"], t["position"], t["multiplier"], t["shift"], a["lo"], a["hi"]
    )


def _pad_mask_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    if len(in_shapes[0]) != 1:
        raise layer_error(layer, f"token ids must be 1-D [L] per sample, got {list(in_shapes[0])}")
    return in_shapes[0]


def _pad_mask_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    return ref.pad_mask(inputs[0], layer.attrs["pad_id"])


def _matmul_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    a, b = in_shapes
    if not 2 <= len(a) == len(b) or a[:-2] != b[:-2] or a[-1] != b[-2]:
        raise layer_error(
            layer,
            f"cannot multiply {list(a)} by {list(b)} (want [..., R, K] "
            "and [..., K, C] with the same leading axes)",
        )
    multiplier = _require_scalar_requant(layer, tensors, 1)
    accs = np.array([a[-1] * INPUT_BOUND[dtypes[0]] * INPUT_BOUND[dtypes[1]]], dtype=object)
    _check_wide_bound(layer, accs, multiplier)
    _check_clamp_bounds(layer, out)
    return (*a[:-1], b[-1])


def _matmul_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    t, a = {role: tensors[name] for role, name in layer.tensors.items()}, layer.attrs
    return ref.matmul(inputs[0], inputs[1], t["multiplier"], t["shift"], a["lo"], a["hi"])


def _transpose_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    shape, perm = in_shapes[0], list(layer.attrs["perm"])
    if sorted(perm) != list(range(len(shape))):
        raise layer_error(layer, f"perm {perm} is not a permutation of the {len(shape)} axes")
    return tuple(shape[p] for p in perm)


def _transpose_reference(
    layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors
) -> np.ndarray:
    return ref.transpose(inputs[0], layer.attrs["perm"])


def _softmax_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    _mask_fits(layer, in_shapes[0], in_shapes[1])
    return in_shapes[0]


def _softmax_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    return ref.softmax(inputs[0], inputs[1], layer.attrs["in_frac"])


def _layernorm_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    shape = in_shapes[0]
    width = shape[-1]
    if not 2 <= width <= ref.LAYERNORM_MAX_WIDTH:
        raise layer_error(layer, f"row width {width} outside [2, {ref.LAYERNORM_MAX_WIDTH}]")
    multiplier = _require_tensor(layer, tensors, "multiplier", "int32", (width,))
    shift = _require_tensor(layer, tensors, "shift", "int32", (width,))
    _require_tensor(layer, tensors, "bias", "int32", (width,))
    _check_range(layer, "multipliers", multiplier, ref.SIGNED_MULTIPLIER_MIN, ref.MULTIPLIER_MAX)
    _check_range(layer, "shifts", shift, ref.SHIFT_MIN, ref.SHIFT_MAX)
    _check_clamp_bounds(layer, out)
    return shape


def _layernorm_reference(
    layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors
) -> np.ndarray:
    t, a = {role: tensors[name] for role, name in layer.tensors.items()}, layer.attrs
    return ref.layernorm(inputs[0], t["multiplier"], t["shift"], t["bias"], a["lo"], a["hi"])


def _lookup_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    table = _require_table(layer, tensors, "table", 1)
    size = 2 * INPUT_BOUND[dtypes[0]]
    if table.shape[0] != size:
        raise layer_error(layer, f"table must have {size} entries for an {dtypes[0]} input")
    if table.dtype.name != layer.out_dtype:
        raise layer_error(layer, f"output dtype {layer.out_dtype} differs from the table's")
    return in_shapes[0]


def _lookup_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    table = tensors[layer.tensors["table"]]
    return ref.lookup(inputs[0], table, table.shape[0] // 2)


def _mean_pool_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    shape = in_shapes[0]
    if len(shape) != 2 or in_shapes[1] != shape[-1:]:
        raise layer_error(
            layer,
            f"input {list(shape)} and mask {list(in_shapes[1])} must be [D, L] and [L] "
            "(features by tokens: transpose an [L, D] sequence with perm [1, 0] first)",
        )
    return shape[:1]


def _mean_pool_reference(
    layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors
) -> np.ndarray:
    return ref.mean_pool(inputs[0], inputs[1])


def _l2norm_shape(
    layer: Layer, in_shapes: Sequence[Shape], dtypes: Dtypes, tensors: Tensors, out: bool
) -> Shape:
    _check_clamp_bounds(layer, out)
    return in_shapes[0]


def _l2norm_reference(layer: Layer, inputs: Sequence[np.ndarray], tensors: Tensors) -> np.ndarray:
    a = layer.attrs
    return ref.l2norm(inputs[0], a["out_frac"], a["lo"], a["hi"])


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
            out_dtypes=ACTIVATIONS,
            reference=_dense_reference,
            kernel=kernels.dense_kernel,
            weighted=True,
            v1_input_rank=1,
            channel_axis=-1,
        ),
        OpSpec(
            name="conv2d",
            arity=1,
            tensor_roles=REQUANT_ROLES,
            attrs={"channels": CHANNELS, **WINDOW, "groups": CHANNELS, **BOUNDS},
            wide=True,
            out_shape=_conv2d_shape,
            out_dtypes=ACTIVATIONS,
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
            out_dtypes=ACTIVATIONS,
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
        OpSpec(
            name="embed",
            arity=1,
            tensor_roles=("table", "position", "multiplier", "shift"),
            attrs=BOUNDS,
            wide=False,
            out_shape=_embed_shape,
            reference=_embed_reference,
            kernel=kernels.embed_kernel,
            version=2,
            input_domain=_embed_domain,
            in_dtypes=(("int32",),),
            out_dtypes=ACTIVATIONS,
        ),
        OpSpec(
            name="pad_mask",
            arity=1,
            tensor_roles=(),
            attrs={"pad_id": Int(ref.INT32_MIN, ref.INT32_MAX)},
            wide=False,
            out_shape=_pad_mask_shape,
            reference=_pad_mask_reference,
            kernel=kernels.pad_mask_kernel,
            version=2,
            in_dtypes=(("int32",),),
            out_dtypes=("int8",),
        ),
        OpSpec(
            name="matmul",
            arity=2,
            tensor_roles=("multiplier", "shift"),
            attrs=BOUNDS,
            wide=False,
            out_shape=_matmul_shape,
            reference=_matmul_reference,
            kernel=kernels.matmul_kernel,
            version=2,
            out_dtypes=ACTIVATIONS,
        ),
        OpSpec(
            name="transpose",
            arity=1,
            tensor_roles=(),
            attrs={"perm": ListOf(Int(0, MAX_RANK - 1), 1, MAX_RANK)},
            wide=False,
            out_shape=_transpose_shape,
            reference=_transpose_reference,
            kernel=kernels.transpose_kernel,
            version=2,
        ),
        OpSpec(
            name="softmax",
            arity=2,
            tensor_roles=(),
            attrs={"in_frac": Int(0, 30)},
            wide=False,
            out_shape=_softmax_shape,
            reference=_softmax_reference,
            kernel=kernels.softmax_kernel,
            version=2,
            out_dtypes=("int16",),
        ),
        OpSpec(
            name="layernorm",
            arity=1,
            tensor_roles=("multiplier", "shift", "bias"),
            attrs=BOUNDS,
            wide=False,
            out_shape=_layernorm_shape,
            reference=_layernorm_reference,
            kernel=kernels.layernorm_kernel,
            version=2,
            out_dtypes=ACTIVATIONS,
        ),
        OpSpec(
            name="lookup",
            arity=1,
            tensor_roles=("table",),
            attrs={},
            wide=False,
            out_shape=_lookup_shape,
            reference=_lookup_reference,
            kernel=kernels.lookup_kernel,
            version=2,
            out_dtypes=ACTIVATIONS,
        ),
        OpSpec(
            name="mean_pool",
            arity=2,
            tensor_roles=(),
            attrs={},
            wide=False,
            out_shape=_mean_pool_shape,
            reference=_mean_pool_reference,
            kernel=kernels.mean_pool_kernel,
            version=2,
        ),
        OpSpec(
            name="l2norm",
            arity=1,
            tensor_roles=(),
            attrs={"out_frac": Int(0, 30), **BOUNDS},
            wide=True,
            out_shape=_l2norm_shape,
            reference=_l2norm_reference,
            kernel=kernels.l2norm_kernel,
            version=2,
            out_dtypes=("int16",),
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
    layer: Layer,
    in_shapes: Sequence[Shape],
    tensors: Tensors,
    is_output: bool,
    in_dtypes: Sequence[str] | None = None,
) -> Shape:
    """Check the layer against its input shapes, dtypes (int8 when not given) and tensors;
    return its per-sample output shape. Which version may use what is `graph.validate_graph`'s."""
    spec = op_spec(layer)
    if layer.out_dtype not in OUTPUT_DTYPES:
        raise layer_error(layer, f"unknown output dtype {layer.out_dtype!r}")
    if len(in_shapes) != spec.arity:
        raise layer_error(layer, f"expects {spec.arity} input(s)")
    dtypes = tuple(in_dtypes) if in_dtypes is not None else ("int8",) * spec.arity
    for index, dtype in enumerate(dtypes):
        if dtype not in spec.input_dtypes(index):
            allowed = " or ".join(spec.input_dtypes(index))
            raise layer_error(layer, f"input {index} is {dtype}; this op reads {allowed}")
    if layer.out_dtype == "int32":
        if not spec.wide:
            wide_ops = ", ".join(name for name, other in OPS.items() if other.wide)
            raise layer_error(layer, f"only {wide_ops} may produce int32")
    elif layer.out_dtype not in (spec.out_dtypes or dtypes[:1]):
        allowed = " or ".join(spec.out_dtypes or dtypes[:1])
        raise layer_error(layer, f"output dtype {layer.out_dtype} must be {allowed}")
    where = f"layer {layer.name!r} ({layer.op})"
    spec.attrs_schema.check(dict(layer.attrs), f"{where} attrs")
    spec.tensors_schema.check(dict(layer.tensors), f"{where} tensors")
    out_shape = spec.out_shape(layer, in_shapes, dtypes, tensors, is_output)
    if math.prod(out_shape) > MAX_SAMPLE_VALUES:
        raise layer_error(
            layer, f"output {list(out_shape)} holds more than {MAX_SAMPLE_VALUES} values a sample"
        )
    return out_shape


def macs_per_sample(layers: Sequence[Layer], tensors: Tensors) -> int:
    """Multiply-accumulates of one sample: each weight entry once per output position."""
    total = 0
    for layer in layers:
        spec = op_spec(layer)
        if spec.weighted:
            positions = math.prod(layer.out_shape) // layer.out_shape[spec.channel_axis]
            total += tensors[layer.tensors["weight"]].size * positions
    return total
