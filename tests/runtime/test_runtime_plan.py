"""The fused execution plan (conv2d+maxpool, flatten+dense, banded convs) equals the reference.

Random small conv -> maxpool -> flatten -> dense graphs, run through `ModelPackage.run` (the
fused plan) and `trace` (per-layer kernels), on both matmul paths and every product mode.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_runtime_kernels import int8_array, requant_params

from aicommons.runtime import kernels
from aicommons.runtime import reference as ref
from aicommons.runtime.kernels import FLOAT32_MAX_FAN_IN, LinearRequant, Requantizer
from aicommons.runtime.layer import Layer
from aicommons.runtime.package import ModelPackage

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODES = [  # (INT_DOT_MAX_ROWS, BANDED_MAX_BLOWUP): int dots/banded, float products/im2col, ...
    (10**9, 10**9),
    (0, 0),
    (0, 10**9),
    (10**9, 0),
]


def weighted(
    name: str, op: str, params: dict, weight: np.ndarray, attrs: dict, inputs: str, out_shape
) -> tuple[Layer, dict]:
    tensors = {
        f"{name}.w": weight,
        f"{name}.b": params["bias"],
        f"{name}.m": params["multiplier"],
        f"{name}.s": params["shift"],
    }
    layer = Layer(
        name,
        op,
        (inputs,),
        name,
        out_shape,
        out_dtype="int32" if params["lo"] < -128 or params["hi"] > 127 else "int8",
        tensors={role: f"{name}.{role[0]}" for role in ("weight", "bias", "multiplier", "shift")},
        attrs={"channels": weight.shape[0], "lo": params["lo"], "hi": params["hi"], **attrs},
    )
    return layer, tensors


@st.composite
def conv_pool_dense(draw: st.DrawFn) -> tuple[ModelPackage, np.ndarray]:
    in_channels = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([g for g in (1, 2, 3) if in_channels % g == 0]))
    channels = groups * draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    strides = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    dilations = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    pads = [draw(st.integers(0, 1)) for _ in range(4)]
    extent = [(kernel[i] - 1) * dilations[i] + 1 for i in range(2)]
    height, width = draw(st.integers(max(4, extent[0]), 9)), draw(st.integers(max(4, extent[1]), 9))
    out_h = ref.conv_output_size(height, kernel[0], strides[0], pads[0], pads[2], dilations[0])
    out_w = ref.conv_output_size(width, kernel[1], strides[1], pads[1], pads[3], dilations[1])
    fan_in = in_channels // groups * kernel[0] * kernel[1]
    conv_params = draw(requant_params(channels, fan_in))
    if draw(st.booleans()):
        # Realistic scales (as `aic model quantize` makes): outputs spread over the int8 range
        # instead of saturating, so a wrong pool or requantisation shows.
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        real = 1 / (fan_in * 127 * rng.uniform(0.02, 0.5, channels))
        conv_params["shift"] = np.full(channels, 30, np.int32)
        conv_params["multiplier"] = np.maximum(1, np.round(real * 2**30)).astype(np.int32)
        conv_params["bias"] = rng.integers(-2000, 2001, channels).astype(np.int32)
    conv_params["hi"] = min(conv_params["hi"], 127)
    conv_params["lo"] = max(conv_params["lo"], -128)
    conv_weight = int8_array(draw, (channels, in_channels // groups, *kernel), low=-127)
    conv_attrs = {
        "kernel": kernel,
        "strides": strides,
        "pads": pads,
        "dilations": dilations,
        "groups": groups,
    }
    conv, tensors = weighted(
        "conv", "conv2d", conv_params, conv_weight, conv_attrs, "x", (channels, out_h, out_w)
    )
    # A tiling 2x2/stride-2 pool when it fits (the phase-ordered fast path), else any pool.
    if out_h % 2 == 0 and out_w % 2 == 0 and draw(st.booleans()):
        pool_kernel, pool_strides, pool_pads, pool_dil = [2, 2], [2, 2], [0, 0, 0, 0], [1, 1]
    else:
        pool_kernel = [draw(st.integers(1, min(2, out_h))), draw(st.integers(1, min(2, out_w)))]
        pool_strides = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
        pool_dil = [1, 1]
        pool_pads = [draw(st.integers(0, pool_kernel[i % 2] - 1)) for i in range(4)]
    pool_h = ref.conv_output_size(
        out_h, pool_kernel[0], pool_strides[0], pool_pads[0], pool_pads[2], 1
    )
    pool_w = ref.conv_output_size(
        out_w, pool_kernel[1], pool_strides[1], pool_pads[1], pool_pads[3], 1
    )
    pool = Layer(
        "pool",
        "maxpool",
        ("conv",),
        "pool",
        (channels, pool_h, pool_w),
        attrs={
            "kernel": pool_kernel,
            "strides": pool_strides,
            "pads": pool_pads,
            "dilations": pool_dil,
        },
    )
    flat_size = channels * pool_h * pool_w
    flatten = Layer(
        "flat", "reshape", ("pool",), "flat", (flat_size,), attrs={"shape": [flat_size]}
    )
    dense_channels = draw(st.integers(1, 4))
    wide = draw(st.booleans())
    dense_params = draw(requant_params(dense_channels, flat_size, wide))
    dense_weight = int8_array(draw, (dense_channels, flat_size), low=-127)
    dense, dense_tensors = weighted(
        "fc", "dense", dense_params, dense_weight, {}, "flat", (dense_channels,)
    )
    tensors.update(dense_tensors)
    output_dtype = dense.out_dtype
    package = ModelPackage.build(
        {"name": "x", "shape": [in_channels, height, width], "scale": "1"},
        [conv, pool, flatten, dense],
        [{"name": "fc", "scale": "1", "dtype": output_dtype}],
        tensors,
    )
    x = int8_array(draw, (draw(st.integers(1, 5)), in_channels, height, width))
    return package, x


@SETTINGS
@given(case=conv_pool_dense())
def test_fused_plan_matches_reference(case: tuple[ModelPackage, np.ndarray]) -> None:
    package, x = case
    expected = package.run_reference(x)
    trace_expected = None
    saved = kernels.INT_DOT_MAX_ROWS, kernels.BANDED_MAX_BLOWUP
    try:
        for path in ("float32", "float64"):
            for int_dot, banded in MODES:
                kernels.INT_DOT_MAX_ROWS, kernels.BANDED_MAX_BLOWUP = int_dot, banded
                fresh = ModelPackage(package.manifest, package.tensors, matmul_path=path)
                message = f"path {path}, int dot {int_dot}, banded {banded}"
                np.testing.assert_array_equal(fresh.run(x), expected, err_msg=message)
                trace = fresh.trace(x)
                if trace_expected is None:
                    trace_expected = trace.roots
                assert trace.roots == trace_expected, message
                np.testing.assert_array_equal(trace.values[-1], expected, err_msg=message)
    finally:
        kernels.INT_DOT_MAX_ROWS, kernels.BANDED_MAX_BLOWUP = saved


@SETTINGS
@given(data=st.data())
def test_requant_finishes_agree_with_reference_at_the_bounds(data: st.DataObject) -> None:
    """Float32, float64 and int32 dot products, then requantisation, at +-max accumulator."""
    fan_in = data.draw(st.integers(1, FLOAT32_MAX_FAN_IN))
    params = data.draw(requant_params(3, fan_in))
    requantize = Requantizer(
        params["bias"],
        params["multiplier"],
        params["shift"],
        params["lo"],
        params["hi"],
        "int8",
        fan_in,
    )
    assume(requantize.float_path)
    worst = fan_in * 128 * 127
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    # Weight rows of +-127 with inputs of -128/127 reach the extreme dot products exactly.
    weight = rng.choice([-127, 127], size=(3, fan_in)).astype(np.int8)
    x = np.stack(
        [np.where(weight[0] > 0, 127, -128), np.where(weight[0] > 0, -128, 127)]
        + [rng.integers(-128, 128, fan_in) for _ in range(4)]
    ).astype(np.int8)
    expected = [
        [
            ref.requantize(
                int(np.dot(row.astype(np.int64), weight[c].astype(np.int64)))
                + int(params["bias"][c]),
                int(params["multiplier"][c]),
                int(params["shift"][c]),
                params["lo"],
                params["hi"],
            )
            for c in range(3)
        ]
        for row in x
    ]
    assert abs(int(np.dot(x[0].astype(np.int64), weight[0].astype(np.int64)))) <= worst
    saved = kernels.INT_DOT_MAX_ROWS
    try:
        for limit, path in ((10**9, "float32"), (0, "float32"), (0, "float64")):
            kernels.INT_DOT_MAX_ROWS = limit
            got = LinearRequant(weight, requantize, path)(x)
            assert got.tolist() == expected, (limit, path)
    finally:
        kernels.INT_DOT_MAX_ROWS = saved


@SETTINGS
@given(data=st.data())
def test_large_biases_enter_with_the_offset_exactly(data: st.DataObject) -> None:
    """|bias| >= 2^24: float32 computes the dot, the bias joins in the float64 offset."""
    fan_in = data.draw(st.integers(1, FLOAT32_MAX_FAN_IN))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    bias = rng.choice([-1, 1], 3) * rng.integers(2**24, 2**26, 3)
    worst = np.abs(bias) + fan_in * 128 * 127
    multiplier = np.array([rng.integers(1, min(2**31 - 1, (2**52 - 1) // w) + 1) for w in worst])
    shift = rng.integers(0, 45, 3)
    lo, hi = data.draw(st.sampled_from([(-128, 127), (0, 127), (0, 6)]))
    requantize = Requantizer(bias, multiplier, shift, lo, hi, "int8", fan_in)
    weight = rng.integers(-127, 128, (3, fan_in)).astype(np.int8)
    weight[0] = 127
    x = rng.integers(-128, 128, (5, fan_in)).astype(np.int8)
    x[0], x[1] = 127, -128
    saved = kernels.INT_DOT_MAX_ROWS
    kernels.INT_DOT_MAX_ROWS = 0
    try:
        linear = LinearRequant(weight, requantize, "float32")
        assert requantize.float_path and linear.input_dtype == np.float32
        got = linear(x)
    finally:
        kernels.INT_DOT_MAX_ROWS = saved
    expected = [
        [
            ref.requantize(
                int(np.dot(row.astype(np.int64), weight[c].astype(np.int64))) + int(bias[c]),
                int(multiplier[c]),
                int(shift[c]),
                lo,
                hi,
            )
            for c in range(3)
        ]
        for row in x
    ]
    assert got.tolist() == expected


def test_products_are_chosen_as_documented(monkeypatch) -> None:
    """Few dense rows: the int32 dot; more rows: the float product of the matmul path; the
    requantisation path follows the parameters."""
    weight = np.ones((2, 8), np.int8)
    small = Requantizer(
        np.array([5, -5]), np.array([2**20, 3]), np.array([30, 2]), 0, 127, "int8", 8
    )
    calls: list[str] = []
    real_int_dot = kernels.int_dot_rows
    monkeypatch.setattr(kernels, "int_dot_rows", lambda *a: calls.append("int") or real_int_dot(*a))
    linear = LinearRequant(weight, small, "float32")
    linear(np.ones((kernels.INT_DOT_MAX_ROWS, 8), np.int8))
    assert calls == ["int"]
    linear(np.ones((kernels.INT_DOT_MAX_ROWS + 1, 8), np.int8))
    assert calls == ["int"] and linear.input_dtype == np.float32
    assert LinearRequant(weight, small, "float64").input_dtype == np.float64
    assert len(LinearRequant(np.ones((2, 1100), np.int8), small, "float32").matmul.blocks) == 2
    grouped = LinearRequant(np.ones((2, 1, 8), np.int8), small, "float32")
    assert grouped.int_weight is None and small.float_path
    wide = Requantizer(
        np.array([0, 0]), np.array([2**31 - 1] * 2), np.array([62] * 2), 0, 127, "int8", 8
    )
    assert not wide.float_path


@pytest.mark.parametrize("path", ["float32", "float64"])
def test_digits_cnn_plan_fuses_and_matches_reference(path: str) -> None:
    from aicommons.demo import DIGITS_CNN, DIGITS_DATA
    from aicommons.runtime.quantize import quantize_onnx

    data = np.load(DIGITS_DATA)
    package = quantize_onnx(DIGITS_CNN, data["x_calib"])
    package = ModelPackage(package.manifest, package.tensors, matmul_path=path)
    outputs = [output for _, output, _ in package._plan]
    # conv1+pool1 and flatten+fc are fused: three steps for five layers.
    assert len(package._plan) == 3 and outputs[-1] == package.output_names[0]
    x = package.quantize_input(data["x_test"][:40])
    np.testing.assert_array_equal(package.run(x), package.run_reference(x))
    np.testing.assert_array_equal(package.trace(x).values[-1], package.run_reference(x))


@pytest.mark.parametrize("rows", [1, 6, 40, 96, 256, 300])
@pytest.mark.parametrize("channels", [1, 10, 64, 300])
def test_requantisation_matches_for_any_batch_and_width(rows: int, channels: int) -> None:
    """The compiled requantisation loop over [rows, channels] equals the reference everywhere."""
    rng = np.random.default_rng(rows * 1000 + channels)
    weight = rng.integers(-127, 128, (channels, 20)).astype(np.int8)
    bias = rng.integers(-5000, 5000, channels)
    multiplier = rng.integers(2**20, 2**22, channels)
    shift = rng.integers(28, 32, channels)
    requantize = Requantizer(bias, multiplier, shift, -128, 127, "int8", 20)
    x = rng.integers(-128, 128, (rows, 20)).astype(np.int8)
    expected = ref.dense(x.astype(np.int64), weight, bias, multiplier, shift, -128, 127)
    np.testing.assert_array_equal(LinearRequant(weight, requantize, "float32")(x), expected)
