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
from aicommons.runtime.kernels import FLOAT_REQUANT_MAX_SHIFT, FLOAT_REQUANT_PRODUCT_BOUND
from aicommons.runtime.layer import Layer
from aicommons.runtime.onnx_import import FloatGraph, FloatLayer, import_onnx, load_onnx
from aicommons.runtime.package import ModelPackage, as_samples, scale_text, shape_mismatch

WIDE_OUTPUT_STEPS = 2**16
"""An int32 graph output gives its calibrated absolute maximum this many steps (int8 gives 127)."""


def quantize_multiplier(
    real: float, max_multiplier: int = ref.MULTIPLIER_MAX, max_shift: int = ref.SHIFT_MAX
) -> tuple[int, int]:
    """(M, S) with M * 2^-S ~ real: the largest S <= max_shift with M = round(real * 2^S) fitting.

    M is at least 1; a real multiplier too small for max_shift becomes 1 * 2^-max_shift.
    """
    if not math.isfinite(real) or real <= 0:
        raise OnnxImportError(f"cannot represent requantisation multiplier {real!r}")
    if round(real) > max_multiplier:
        raise OnnxImportError(f"requantisation multiplier {real!r} exceeds {max_multiplier}")
    # real = mantissa * 2^exponent with mantissa in [0.5, 1): M ~ 2^(exponent + S).
    _, exponent = math.frexp(real)
    shift = max(0, min(max_shift, max_multiplier.bit_length() - exponent))
    while shift > 0 and round(real * 2**shift) > max_multiplier:
        shift -= 1
    return max(1, round(real * 2**shift)), shift


def layer_multiplier(real: float, worst_abs_acc: int) -> tuple[int, int]:
    """Prefer (M, S) inside the fast kernels' float requantisation bounds, else any valid pair.

    Float path: |acc| * M < 2^52 and S <= 44 (see runtime/kernels.py); still >= 20 bits of M.
    """
    fast_limit = min(ref.MULTIPLIER_MAX, (FLOAT_REQUANT_PRODUCT_BOUND - 1) // max(worst_abs_acc, 1))
    if real * 2**FLOAT_REQUANT_MAX_SHIFT >= 2**10 and round(real) <= fast_limit:
        return quantize_multiplier(real, fast_limit, FLOAT_REQUANT_MAX_SHIFT)
    return quantize_multiplier(real)


def check_calibration(calibration: np.ndarray | None, input_shape: tuple[int, ...]) -> np.ndarray:
    if calibration is None:
        raise CalibrationError("calibration data is required (--calib X.npy): scales come from it")
    data = np.asarray(calibration)
    if data.dtype.kind not in "fiu":
        raise CalibrationError(f"calibration data must be numeric, got dtype {data.dtype}")
    batch = as_samples(data.astype(np.float64), input_shape)
    if batch is None:
        raise CalibrationError(shape_mismatch("calibration data", data, input_shape))
    data = batch
    if data.shape[0] == 0:
        raise CalibrationError("calibration data is empty")
    if not np.all(np.isfinite(data)):
        raise CalibrationError("calibration data contains NaN or infinity")
    return data


def _activation_scale(values: np.ndarray, steps: int) -> float:
    peak = float(np.max(np.abs(values))) if values.size else 0.0
    # A value that is always zero on the calibration data still needs a positive scale.
    return peak / steps if peak > 0 else 1.0 / steps


def weight_scales(weight: np.ndarray) -> np.ndarray:
    """Per-output-channel int8 weight scales max|W[c]| / 127 (1 for an all-zero row)."""
    peaks = np.abs(weight.reshape(weight.shape[0], -1)).max(axis=1)
    return np.where(peaks > 0, peaks / ref.WEIGHT_MAX, 1.0)


CALIBRATED_SCALE_STEPS = 50
"""Candidate weight scales per row when the data chooses them: max|W| / 127 times 1 ... 0.02."""


def _calibrated_weight_scales(weight: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """Per-row weight scales minimising the squared output error on the calibration inputs.

    For a row w and a scale s, the rounding error d = w - s * clip(round(w / s), -127, 127)
    changes the output by d . x, so the mean squared error over the data is d^T G d with
    G = mean(x x^T). Rows whose columns differ widely in magnitude (a folded Scaler multiplies
    a rarely active feature by up to 1/std) gain from clipping those weights rather than
    spending the int8 range on them; with even columns the search keeps max|W| / 127.
    """
    rows = weight.reshape(weight.shape[0], -1)
    gram = inputs.T @ inputs / max(len(inputs), 1)
    peaks = np.abs(rows).max(axis=1)
    scales = np.where(peaks > 0, peaks / ref.WEIGHT_MAX, 1.0)
    for c, peak in enumerate(peaks):
        if peak == 0:
            continue
        candidates = peak * np.linspace(1.0, 0.02, CALIBRATED_SCALE_STEPS) / ref.WEIGHT_MAX
        quantised = np.clip(np.rint(rows[c] / candidates[:, None]), -127, 127)
        errors = rows[c] - quantised * candidates[:, None]
        costs = np.einsum("ik,kl,il->i", errors, gram, errors)
        scales[c] = candidates[int(np.argmin(costs))]  # the first (largest) on ties
    return scales


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
        if layer.folded_preprocessing:
            scales = _calibrated_weight_scales(weight, self.values[layer.inputs[0]])
        else:
            scales = weight_scales(weight)
        # Raise a channel's weight scale where its bias would not fit next to the worst-case sum.
        needed = np.abs(bias) / (in_scale * max(bias_limit, 1)) * (1 + 1e-9)
        scales = np.maximum(scales, needed)
        shape = (channels, *([1] * (weight.ndim - 1)))
        weight_q = np.clip(np.rint(weight / scales.reshape(shape)), ref.WEIGHT_MIN, ref.WEIGHT_MAX)
        bias_q = np.clip(np.rint(bias / (in_scale * scales)), -bias_limit, bias_limit)
        worst = np.abs(bias_q) + fan_in * 128 * 127
        pairs = [
            layer_multiplier(in_scale * s / out_scale, int(w))
            for s, w in zip(scales, worst, strict=True)
        ]
        names = {role: f"{layer.name}.{role}" for role in ("weight", "bias", "multiplier", "shift")}
        self.tensors[names["weight"]] = weight_q.astype(np.int8)
        self.tensors[names["bias"]] = bias_q.astype(np.int32)
        self.tensors[names["multiplier"]] = np.array([m for m, _ in pairs], dtype=np.int32)
        self.tensors[names["shift"]] = np.array([s for _, s in pairs], dtype=np.int32)
        return names

    def quantize_add(self, layer: FloatLayer, out_scale: float) -> dict[str, str]:
        ratios = [self.scales[name] / out_scale for name in layer.inputs]
        multipliers, shift = add_multipliers(ratios)
        names = {role: f"{layer.name}.{role}" for role in ("multiplier", "shift")}
        self.tensors[names["multiplier"]] = np.array(multipliers, dtype=np.int32)
        self.tensors[names["shift"]] = np.array([shift], dtype=np.int32)
        return names


def add_multipliers(ratios: list[float]) -> tuple[list[int], int]:
    """The `add` op's multipliers and shared shift for input-to-output scale ratios: the largest
    shift that keeps the largest multiplier within MULTIPLIER_MAX."""
    largest = max(ratios)
    shift = int(min(ref.SHIFT_MAX, max(0, math.floor(math.log2(ref.MULTIPLIER_MAX / largest)))))
    return [min(ref.MULTIPLIER_MAX, round(r * 2**shift)) for r in ratios], shift


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
