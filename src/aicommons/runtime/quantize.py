"""Post-training quantisation: a float layer graph plus calibration data becomes a model package.

Scales come from the calibration data only (no silent defaults); every multiplier, shift and bias
is chosen so the package passes the integer-semantics bounds checked at load.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from aicommons.commit import keccak256
from aicommons.runtime import reference as ref
from aicommons.runtime.errors import CalibrationError, OnnxImportError
from aicommons.runtime.graph import Layer
from aicommons.runtime.onnx_import import FloatGraph, FloatLayer, import_onnx, load_onnx
from aicommons.runtime.package import ModelPackage, scale_text

WIDE_OUTPUT_STEPS = 2**16
"""An int32 graph output gives its calibrated absolute maximum this many steps (int8 gives 127)."""


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(M, S) with M * 2^-S ~ real, M in [1, 2^31 - 1] (normalised to >= 2^30 where possible)."""
    if not math.isfinite(real) or real <= 0:
        raise OnnxImportError(f"cannot represent requantisation multiplier {real!r}")
    mantissa, exponent = math.frexp(real)  # real = mantissa * 2^exponent, mantissa in [0.5, 1)
    multiplier = round(mantissa * 2**31)
    shift = 31 - exponent
    if multiplier == 2**31:
        multiplier //= 2
        shift -= 1
    if shift < 0:
        multiplier <<= -shift
        shift = 0
        if multiplier > ref.MULTIPLIER_MAX:
            raise OnnxImportError(f"requantisation multiplier {real!r} exceeds 2^31 - 1")
    if shift > ref.SHIFT_MAX:
        multiplier = max(1, round(multiplier / 2 ** (shift - ref.SHIFT_MAX)))
        shift = ref.SHIFT_MAX
    return multiplier, shift


def check_calibration(calibration: np.ndarray | None, input_shape: tuple[int, ...]) -> np.ndarray:
    if calibration is None:
        raise CalibrationError("calibration data is required (--calib X.npy): scales come from it")
    data = np.asarray(calibration)
    if data.dtype.kind not in "fiu":
        raise CalibrationError(f"calibration data must be numeric, got dtype {data.dtype}")
    data = data.astype(np.float64)
    if data.shape == input_shape:
        data = data[None]
    if data.shape[1:] != input_shape:
        raise CalibrationError(
            f"calibration data shape {list(data.shape)} does not match the model input "
            f"[N, {', '.join(map(str, input_shape))}]"
        )
    if data.shape[0] == 0:
        raise CalibrationError("calibration data is empty")
    if not np.all(np.isfinite(data)):
        raise CalibrationError("calibration data contains NaN or infinity")
    return data


def _activation_scale(values: np.ndarray, steps: int) -> float:
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    # A value that is always zero on the calibration data still needs a positive scale.
    return peak / steps if peak > 0 else 1.0 / steps


def _weight_scales(weight: np.ndarray) -> np.ndarray:
    peaks = np.abs(weight.reshape(weight.shape[0], -1)).max(axis=1)
    return np.where(peaks > 0, peaks / ref.WEIGHT_MAX, 1.0)


def _bounds(
    lo_real: float, hi_real: float, scale: float, limits: tuple[int, int]
) -> tuple[int, int]:
    lo = (
        limits[0]
        if lo_real == -math.inf
        else max(limits[0], min(limits[1], round(lo_real / scale)))
    )
    hi = (
        limits[1] if hi_real == math.inf else max(limits[0], min(limits[1], round(hi_real / scale)))
    )
    return lo, max(lo, hi)


class _Quantizer:
    def __init__(self, graph: FloatGraph, calibration: np.ndarray) -> None:
        self.graph = graph
        self.values = graph.run(calibration)
        self.scales: dict[str, float] = {
            graph.input_name: _activation_scale(calibration, ref.INT8_MAX)
        }
        self.tensors: dict[str, np.ndarray] = {}
        consumed = {name for layer in graph.layers for name in layer.inputs}
        self.wide_outputs = {name for name in graph.outputs if name not in consumed}

    def run(self) -> list[Layer]:
        return [self.quantize_layer(layer) for layer in self.graph.layers]

    def quantize_layer(self, layer: FloatLayer) -> Layer:
        in_scale = self.scales[layer.inputs[0]]
        wide = layer.output in self.wide_outputs and layer.op in ("dense", "conv2d", "add")
        out_dtype = "int32" if wide else "int8"
        limits = (ref.INT32_MIN, ref.INT32_MAX) if wide else (ref.INT8_MIN, ref.INT8_MAX)
        if layer.op in ("dense", "conv2d", "add"):
            steps = WIDE_OUTPUT_STEPS if wide else ref.INT8_MAX
            out_scale = _activation_scale(self.values[layer.output], steps)
        else:
            out_scale = in_scale  # pools, clamp and reshape keep their input's scale
        self.scales[layer.output] = out_scale
        attrs: dict[str, Any] = {}
        tensors: dict[str, str] = {}
        if layer.op in ("dense", "conv2d"):
            tensors = self.quantize_weighted(layer, in_scale, out_scale)
            attrs["channels"] = int(layer.weight.shape[0])
        if layer.op == "conv2d":
            attrs.update(
                {
                    key: layer.attrs[key]
                    for key in ("kernel", "strides", "pads", "dilations", "groups")
                }
            )
        if layer.op in ("maxpool", "avgpool"):
            attrs.update(
                {key: layer.attrs[key] for key in ("kernel", "strides", "pads", "dilations")}
            )
            if layer.op == "avgpool":
                attrs["count_include_pad"] = int(layer.attrs["count_include_pad"])
        if layer.op == "add":
            tensors = self.quantize_add(layer, out_scale)
        if layer.op in ("dense", "conv2d", "add", "clamp"):
            attrs["lo"], attrs["hi"] = _bounds(layer.act_lo, layer.act_hi, out_scale, limits)
        if layer.op == "reshape":
            attrs["shape"] = list(layer.out_shape)
        return Layer(
            name=layer.name,
            op=layer.op,
            inputs=tuple(layer.inputs),
            output=layer.output,
            out_shape=tuple(int(v) for v in layer.out_shape),
            out_dtype=out_dtype,
            out_scale=scale_text(out_scale),
            tensors=tensors,
            attrs={
                k: [int(x) for x in v] if isinstance(v, list | tuple) else int(v)
                for k, v in attrs.items()
            },
        )

    def quantize_weighted(
        self, layer: FloatLayer, in_scale: float, out_scale: float
    ) -> dict[str, str]:
        weight, bias = layer.weight, layer.bias
        channels = weight.shape[0]
        fan_in = int(np.prod(weight.shape[1:]))
        bias_limit = ref.INT32_MAX - fan_in * 128 * 127
        if bias_limit < 0:
            raise OnnxImportError(
                f"layer {layer.name!r}: fan-in {fan_in} exceeds the int32 accumulator bound"
            )
        weight_scales = _weight_scales(weight)
        # Raise a channel's weight scale where its bias would not fit next to the worst-case sum.
        needed = np.abs(bias) / (in_scale * max(bias_limit, 1)) * (1 + 1e-9)
        weight_scales = np.maximum(weight_scales, needed)
        shape = (channels, *([1] * (weight.ndim - 1)))
        weight_q = np.clip(
            np.rint(weight / weight_scales.reshape(shape)), ref.WEIGHT_MIN, ref.WEIGHT_MAX
        )
        bias_q = np.clip(np.rint(bias / (in_scale * weight_scales)), -bias_limit, bias_limit)
        pairs = [quantize_multiplier(in_scale * s / out_scale) for s in weight_scales]
        names = {role: f"{layer.name}.{role}" for role in ("weight", "bias", "multiplier", "shift")}
        self.tensors[names["weight"]] = weight_q.astype(np.int8)
        self.tensors[names["bias"]] = bias_q.astype(np.int32)
        self.tensors[names["multiplier"]] = np.array([m for m, _ in pairs], dtype=np.int32)
        self.tensors[names["shift"]] = np.array([s for _, s in pairs], dtype=np.int32)
        return names

    def quantize_add(self, layer: FloatLayer, out_scale: float) -> dict[str, str]:
        ratios = [self.scales[name] / out_scale for name in layer.inputs]
        largest = max(ratios)
        shift = int(min(ref.SHIFT_MAX, max(0, math.floor(math.log2(ref.MULTIPLIER_MAX / largest)))))
        multipliers = [min(ref.MULTIPLIER_MAX, round(r * 2**shift)) for r in ratios]
        names = {role: f"{layer.name}.{role}" for role in ("multiplier", "shift")}
        self.tensors[names["multiplier"]] = np.array(multipliers, dtype=np.int32)
        self.tensors[names["shift"]] = np.array([shift], dtype=np.int32)
        return names


def quantize_graph(
    graph: FloatGraph, calibration: np.ndarray | None, metadata: dict[str, Any] | None = None
) -> ModelPackage:
    """Quantise an imported float graph with calibration data into a verified package."""
    data = check_calibration(calibration, graph.input_shape)
    quantizer = _Quantizer(graph, data)
    layers = quantizer.run()
    input_spec = {
        "name": graph.input_name,
        "shape": list(graph.input_shape),
        "scale": scale_text(quantizer.scales[graph.input_name]),
    }
    by_output = {layer.output: layer for layer in layers}
    outputs = [
        {"name": name, "dtype": by_output[name].out_dtype, "scale": by_output[name].out_scale}
        for name in graph.outputs
    ]
    meta = {**graph.metadata, "calibration_samples": int(data.shape[0]), **(metadata or {})}
    return ModelPackage.build(input_spec, layers, outputs, quantizer.tensors, meta)


def quantize_onnx(
    model: str | Path | bytes | onnx.ModelProto, calibration: np.ndarray | None
) -> ModelPackage:
    """Import a float ONNX model and quantise it with `calibration` ([N, *input_shape] floats)."""
    proto = load_onnx(model)
    graph = import_onnx(proto)
    source = {"source_onnx_keccak256": "0x" + keccak256(proto.SerializeToString()).hex()}
    return quantize_graph(graph, calibration, source)
