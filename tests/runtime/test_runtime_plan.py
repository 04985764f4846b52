"""The fused execution plan (conv2d+maxpool, flatten+dense, banded convs) equals the reference.

Random small conv -> maxpool -> flatten -> dense graphs, run through `ModelPackage.run` (the
fused plan) and `trace` (per-layer kernels), on every matmul path and product mode; and the
dispatch: a CPU without VNNI gets the AVX2 or float products and the same bytes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_runtime_kernels import (
    AVX2_PATHS,
    PATHS,
    VNNI_PATHS,
    build_with,
    int8_array,
    requant_params,
)

from aicommons.runtime import avx2, kernels, vnni
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
        for path in PATHS:
            for int_dot, banded in MODES:
                kernels.INT_DOT_MAX_ROWS, kernels.BANDED_MAX_BLOWUP = int_dot, banded
                context, runtime_path = build_with(path)
                with context:
                    fresh = ModelPackage(
                        package.manifest, package.tensors, matmul_path=runtime_path
                    )
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
    """Float32, float64, int32, AVX2 and VNNI dot products, then requantisation, at +-max
    accumulator."""
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
        cases = [(10**9, "float32"), (0, "float32"), (0, "float64")]
        for limit, path in cases + [(0, path) for path in (*AVX2_PATHS, *VNNI_PATHS)]:
            kernels.INT_DOT_MAX_ROWS = limit
            context, runtime_path = build_with(path)
            with context:
                linear = LinearRequant(weight, requantize, runtime_path)
            got = linear(x)
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
    """Few dense rows: the int32 dot; more rows: the float product of the matmul path; on the
    vnni path the VNNI product for any rows of an ungrouped weight; the requantisation path
    follows the parameters."""
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
    assert linear.int8_product is None
    for isa in VNNI_PATHS.values():
        monkeypatch.setattr(vnni, "host_isa", lambda isa=isa: isa)
        on_vnni = LinearRequant(weight, small, "vnni")
        assert on_vnni.int8_product.isa == isa and on_vnni.input_dtype == np.int8
        on_vnni(np.ones((1, 8), np.int8))
        assert calls == ["int"]  # no int32 loop on the vnni path, even for one row
        grouped = LinearRequant(np.ones((2, 1, 8), np.int8), small, "vnni")
        assert grouped.int8_product is None and grouped.matmul.dtype == np.float32
    wide = Requantizer(
        np.array([0, 0]), np.array([2**31 - 1] * 2), np.array([62] * 2), 0, 127, "int8", 8
    )
    assert not wide.float_path
    for _ in AVX2_PATHS:
        on_avx2 = LinearRequant(weight, small, "avx2")
        assert isinstance(on_avx2.int8_product, avx2.Avx2Product)
        assert on_avx2.input_dtype == np.int8
        on_avx2(np.ones((1, 8), np.int8))
        assert calls == ["int"]  # no int32 loop on the avx2 path either
        grouped = LinearRequant(np.ones((2, 1, 8), np.int8), small, "avx2")
        assert grouped.int8_product is None and grouped.matmul.dtype == np.float32
        # vpsignb cannot negate -128: such a weight (outside the semantics) gets float products.
        minimum = LinearRequant(np.full((2, 8), -128, np.int8), small, "avx2")
        assert minimum.int8_product is None and minimum.matmul.dtype == np.float32
        x = np.full((9, 8), -128, np.int8)
        expected = LinearRequant(np.full((2, 8), -128, np.int8), small, "float64")(x)
        np.testing.assert_array_equal(minimum(x), expected)


@pytest.mark.parametrize("path", kernels.available_matmul_paths())
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


def test_a_cpu_without_vnni_gets_the_avx2_or_float_products_and_the_same_bytes(
    monkeypatch,
) -> None:
    """LLVM reporting no VNNI (any CPU before Ice Lake / Zen 4): avx2 by default where it
    reports AVX2, float32 where it reports neither, an explicit vnni or avx2 refused with the
    reason, and every output byte the same as the reference's and as this machine's default
    path's."""
    from aicommons.demo import DIGITS_CNN, DIGITS_DATA
    from aicommons.runtime.quantize import quantize_onnx

    data = np.load(DIGITS_DATA)
    package = quantize_onnx(DIGITS_CNN, data["x_calib"])
    x = package.quantize_input(data["x_test"][:300])
    monkeypatch.delenv(kernels.MATMUL_PATH_ENV, raising=False)
    native = ModelPackage(package.manifest, package.tensors)
    assert native.matmul_path == kernels.available_matmul_paths()[0]
    small = Requantizer(np.zeros(2), np.ones(2), np.zeros(2), -128, 127, "int8", 8)
    if AVX2_PATHS:  # only a CPU with AVX2 may pretend to be one without VNNI but with AVX2
        monkeypatch.setattr(vnni, "_host_features", lambda: {"avx512f": True, "avx2": True})
        assert vnni.host_isa() is None
        assert kernels.available_matmul_paths() == ("avx2", "float32", "float64")
        on_avx2 = ModelPackage(package.manifest, package.tensors)
        assert on_avx2.matmul_path == "avx2"
        np.testing.assert_array_equal(on_avx2.run(x), native.run(x))
        np.testing.assert_array_equal(on_avx2.run(x[:40]), package.run_reference(x[:40]))
        with pytest.raises(ValueError, match="needs a CPU with AVX-512 VNNI or AVX-VNNI"):
            LinearRequant(np.ones((2, 8), np.int8), small, "vnni")
    monkeypatch.setattr(vnni, "_host_features", lambda: {"avx": True, "sse4.2": True})
    assert vnni.host_isa() is None and not avx2.available()
    assert kernels.available_matmul_paths() == ("float32", "float64")
    fallback = ModelPackage(package.manifest, package.tensors)
    assert fallback.matmul_path == "float32"
    np.testing.assert_array_equal(fallback.run(x), native.run(x))
    np.testing.assert_array_equal(fallback.run(x[:40]), package.run_reference(x[:40]))
    with pytest.raises(ValueError, match="needs a CPU with AVX-512 VNNI or AVX-VNNI"):
        LinearRequant(np.ones((2, 8), np.int8), small, "vnni")
    with pytest.raises(ValueError, match="matmul path 'avx2' needs a CPU with AVX2"):
        LinearRequant(np.ones((2, 8), np.int8), small, "avx2")
    monkeypatch.setenv(kernels.MATMUL_PATH_ENV, "vnni")
    with pytest.raises(ValueError, match="VNNI"):
        kernels.default_matmul_path()
    monkeypatch.setenv(kernels.MATMUL_PATH_ENV, "avx2")
    with pytest.raises(ValueError, match="AVX2"):
        kernels.default_matmul_path()


def test_avx2_follows_the_cpu_and_can_be_turned_off(monkeypatch) -> None:
    """AVX2 as LLVM reports it; none when AICOMMONS_AVX2=0 or when numba is told to compile
    for another CPU (NUMBA_CPU_NAME), where the instructions might not exist."""
    monkeypatch.delenv(avx2.AVX2_ENV, raising=False)
    monkeypatch.setattr(vnni, "_host_features", lambda: {"avx2": True})
    assert avx2.available()
    monkeypatch.setenv(avx2.AVX2_ENV, "0")
    assert not avx2.available() and "avx2" not in kernels.available_matmul_paths()
    monkeypatch.delenv(avx2.AVX2_ENV)
    monkeypatch.setattr(vnni.numba_config, "CPU_NAME", "generic")
    assert not avx2.available()


def test_vnni_width_follows_the_cpu_and_can_be_turned_off(monkeypatch) -> None:
    """The widest VNNI LLVM reports; none when AICOMMONS_VNNI=0 or when numba is told to
    compile for another CPU (NUMBA_CPU_NAME), where the instruction might not exist."""
    monkeypatch.delenv(vnni.VNNI_ENV, raising=False)
    monkeypatch.setattr(vnni, "_host_features", lambda: {"avx512vnni": True, "avxvnni": True})
    assert vnni.host_isa() == vnni.AVX512_VNNI
    monkeypatch.setattr(vnni, "_host_features", lambda: {"avx512vnni": False, "avxvnni": True})
    assert vnni.host_isa() == vnni.AVX_VNNI
    monkeypatch.setenv(vnni.VNNI_ENV, "0")
    assert vnni.host_isa() is None and not vnni.available()
    monkeypatch.delenv(vnni.VNNI_ENV)
    monkeypatch.setattr(vnni.numba_config, "CPU_NAME", "generic")
    assert vnni.host_isa() is None
