"""The integer graph: layers in execution order, their checks, and the reference executor.

A layer names its input values, output value and tensors; `validate_graph` enforces every bound
of docs/integer-semantics.md so a package that loads can never overflow. Never uses floats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aicommons.runtime import reference as ref
from aicommons.runtime.errors import PackageError

OPS = ("dense", "conv2d", "maxpool", "avgpool", "add", "clamp", "reshape")
WEIGHTED_OPS = ("dense", "conv2d")
OUTPUT_DTYPES = ("int8", "int32")


@dataclass(frozen=True)
class Layer:
    """One integer op. `attrs` hold ints / int lists; `tensors` map a role to a tensor name."""

    name: str
    op: str
    inputs: tuple[str, ...]
    output: str
    out_shape: tuple[int, ...]
    out_dtype: str = "int8"
    out_scale: str = "1"
    tensors: Mapping[str, str] = field(default_factory=dict)
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "inputs": list(self.inputs),
            "output": self.output,
            "out_shape": list(self.out_shape),
            "out_dtype": self.out_dtype,
            "out_scale": self.out_scale,
            "tensors": dict(self.tensors),
            "attrs": {key: list(v) if isinstance(v, tuple) else v for key, v in self.attrs.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Layer:
        try:
            return cls(
                name=str(data["name"]),
                op=str(data["op"]),
                inputs=tuple(str(v) for v in data["inputs"]),
                output=str(data["output"]),
                out_shape=tuple(int(v) for v in data["out_shape"]),
                out_dtype=str(data["out_dtype"]),
                out_scale=str(data["out_scale"]),
                tensors={str(k): str(v) for k, v in dict(data["tensors"]).items()},
                attrs=dict(data["attrs"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PackageError(f"malformed layer entry in manifest: {exc!r}") from None

    def attr(self, key: str) -> Any:
        if key not in self.attrs:
            raise PackageError(f"layer {self.name!r} ({self.op}) lacks attribute {key!r}")
        return self.attrs[key]


def _fail(layer: Layer, message: str) -> PackageError:
    return PackageError(f"layer {layer.name!r} ({layer.op}): {message}")


def _require_tensor(
    layer: Layer, tensors: Mapping[str, np.ndarray], role: str, dtype: str, shape: tuple[int, ...]
) -> np.ndarray:
    name = layer.tensors.get(role)
    if name is None or name not in tensors:
        raise _fail(layer, f"missing {role} tensor")
    value = tensors[name]
    if value.dtype != np.dtype(dtype) or tuple(value.shape) != shape:
        raise _fail(layer, f"{role} tensor {name!r} must be {dtype}{list(shape)}")
    return value


def _check_range(layer: Layer, what: str, values: np.ndarray, lo: int, hi: int) -> None:
    if values.size and (int(values.min()) < lo or int(values.max()) > hi):
        raise _fail(layer, f"{what} outside [{lo}, {hi}]")


def _check_requant(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    channels: int,
    fan_in: int,
    weight_shape: tuple[int, ...],
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
        raise _fail(layer, f"fan-in {fan_in} with bias {worst - fan_in * 16256} can overflow int32")


def _check_clamp_bounds(layer: Layer, is_graph_output: bool) -> tuple[int, int]:
    lo, hi = int(layer.attr("lo")), int(layer.attr("hi"))
    wide = layer.out_dtype == "int32"
    if wide and not is_graph_output:
        raise _fail(layer, "only a graph output may be int32")
    low_limit, high_limit = (ref.INT32_MIN, ref.INT32_MAX) if wide else (ref.INT8_MIN, ref.INT8_MAX)
    if not low_limit <= lo <= hi <= high_limit:
        raise _fail(layer, f"clamp bounds [{lo}, {hi}] outside [{low_limit}, {high_limit}]")
    return lo, hi


def _ints(layer: Layer, key: str, length: int, minimum: int) -> list[int]:
    values = layer.attr(key)
    if not isinstance(values, list | tuple) or len(values) != length:
        raise _fail(layer, f"attribute {key!r} must be {length} ints")
    result = [int(v) for v in values]
    if any(v < minimum for v in result):
        raise _fail(layer, f"attribute {key!r} must be >= {minimum}")
    return result


def window_output_shape(
    layer: Layer, in_shape: tuple[int, ...], kernel: Sequence[int]
) -> tuple[int, int]:
    """Spatial output of a conv/pool layer; raises if the window never fits."""
    strides = _ints(layer, "strides", 2, 1)
    pads = _ints(layer, "pads", 4, 0)
    dilations = _ints(layer, "dilations", 2, 1)
    out_h = ref.conv_output_size(in_shape[1], kernel[0], strides[0], pads[0], pads[2], dilations[0])
    out_w = ref.conv_output_size(in_shape[2], kernel[1], strides[1], pads[1], pads[3], dilations[1])
    if out_h < 1 or out_w < 1:
        raise _fail(layer, "window larger than the padded input")
    return out_h, out_w


def infer_out_shape(
    layer: Layer,
    in_shapes: Sequence[tuple[int, ...]],
    tensors: Mapping[str, np.ndarray],
    is_output: bool,
) -> tuple[int, ...]:
    """Check the layer against its input shapes and tensors; return its per-sample output shape."""
    if layer.out_dtype not in OUTPUT_DTYPES:
        raise _fail(layer, f"unknown output dtype {layer.out_dtype!r}")
    if layer.out_dtype == "int32" and layer.op not in ("dense", "conv2d", "add"):
        raise _fail(layer, "only dense, conv2d and add may produce int32")
    arity = 2 if layer.op == "add" else 1
    if len(in_shapes) != arity:
        raise _fail(layer, f"expects {arity} input(s)")
    shape = in_shapes[0]
    if layer.op == "dense":
        if len(shape) != 1:
            raise _fail(layer, f"input must be 1-D per sample, got {list(shape)}")
        channels = int(layer.attr("channels"))
        _check_requant(layer, tensors, channels, shape[0], (channels, shape[0]))
        _check_clamp_bounds(layer, is_output)
        return (channels,)
    if layer.op == "conv2d":
        if len(shape) != 3:
            raise _fail(layer, f"input must be [C, H, W] per sample, got {list(shape)}")
        channels, groups = int(layer.attr("channels")), int(layer.attr("groups"))
        kernel = _ints(layer, "kernel", 2, 1)
        if groups < 1 or shape[0] % groups or channels % groups:
            raise _fail(layer, f"groups={groups} must divide input and output channels")
        group_in = shape[0] // groups
        fan_in = group_in * kernel[0] * kernel[1]
        _check_requant(layer, tensors, channels, fan_in, (channels, group_in, *kernel))
        _check_clamp_bounds(layer, is_output)
        return (channels, *window_output_shape(layer, shape, kernel))
    if layer.op in ("maxpool", "avgpool"):
        if len(shape) != 3:
            raise _fail(layer, f"input must be [C, H, W] per sample, got {list(shape)}")
        kernel = _ints(layer, "kernel", 2, 1)
        if layer.op == "avgpool" and int(layer.attr("count_include_pad")) not in (0, 1):
            raise _fail(layer, "count_include_pad must be 0 or 1")
        if layer.op == "avgpool" and _ints(layer, "dilations", 2, 1) != [1, 1]:
            raise _fail(layer, "avgpool has no dilation")
        dilations = _ints(layer, "dilations", 2, 1)
        pads = _ints(layer, "pads", 4, 0)
        # A window made only of padding would have no max and no mean.
        if any(pads[i] > (kernel[i % 2] - 1) * dilations[i % 2] for i in range(4)):
            raise _fail(
                layer, "a padding exceeds the window extent, so a window can be all padding"
            )
        return (shape[0], *window_output_shape(layer, shape, kernel))
    if layer.op == "add":
        if in_shapes[0] != in_shapes[1]:
            raise _fail(layer, f"input shapes differ: {list(in_shapes[0])} vs {list(in_shapes[1])}")
        multiplier = _require_tensor(layer, tensors, "multiplier", "int32", (2,))
        shift = _require_tensor(layer, tensors, "shift", "int32", (1,))
        _check_range(layer, "multipliers", multiplier, 0, ref.MULTIPLIER_MAX)
        _check_range(layer, "shift", shift, ref.SHIFT_MIN, ref.SHIFT_MAX)
        _check_clamp_bounds(layer, is_output)
        return shape
    if layer.op == "clamp":
        _check_clamp_bounds(layer, False)
        return shape
    if layer.op == "reshape":
        target = tuple(int(v) for v in layer.attr("shape"))
        if any(v < 1 for v in target) or int(np.prod(target)) != int(np.prod(shape)):
            raise _fail(layer, f"cannot reshape {list(shape)} to {list(target)}")
        return target
    raise _fail(layer, f"unknown op; supported ops are {', '.join(OPS)}")


def validate_graph(
    input_name: str,
    input_shape: tuple[int, ...],
    layers: Sequence[Layer],
    output_names: Sequence[str],
    tensors: Mapping[str, np.ndarray],
) -> None:
    """Check the whole graph: known values only, shapes and dtypes consistent, every bound held."""
    shapes: dict[str, tuple[int, ...]] = {input_name: tuple(input_shape)}
    dtypes: dict[str, str] = {input_name: "int8"}
    consumed = {name for layer in layers for name in layer.inputs}
    for layer in layers:
        for name in layer.inputs:
            if name not in shapes:
                raise _fail(layer, f"input {name!r} is not produced by an earlier layer")
            if dtypes[name] != "int8":
                raise _fail(layer, f"input {name!r} is int32; only int8 values feed layers")
        if layer.output in shapes:
            raise _fail(layer, f"output {layer.output!r} is produced twice")
        is_output = layer.output in output_names and layer.output not in consumed
        out_shape = infer_out_shape(layer, [shapes[n] for n in layer.inputs], tensors, is_output)
        if out_shape != tuple(layer.out_shape):
            raise _fail(
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
    t = {role: tensors[name] for role, name in layer.tensors.items()}
    a = layer.attrs
    x = inputs[0]
    if layer.op == "dense":
        return ref.dense(x, t["weight"], t["bias"], t["multiplier"], t["shift"], a["lo"], a["hi"])
    if layer.op == "conv2d":
        return ref.conv2d(
            x,
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
    if layer.op == "maxpool":
        return ref.maxpool(x, a["kernel"], a["strides"], a["pads"], a["dilations"])
    if layer.op == "avgpool":
        return ref.avgpool(x, a["kernel"], a["strides"], a["pads"], a["count_include_pad"])
    if layer.op == "add":
        return ref.add(x, inputs[1], t["multiplier"], t["shift"], a["lo"], a["hi"])
    if layer.op == "clamp":
        return ref.clamp_op(x, a["lo"], a["hi"])
    if layer.op == "reshape":
        return ref.reshape(x, a["shape"])
    raise _fail(layer, "unknown op")


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
