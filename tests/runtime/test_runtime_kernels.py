"""Every fast kernel equals the pure-int reference: random shapes, values, params, extremes, ties.

Every matmul path (float32 blocked, float64, avx2 and each VNNI width this CPU has) and both
requantisation paths (float, int64) are exercised; a kernel that rounds, overflows or
mis-indexes a window fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aicommons.runtime import avx2, kernels, vnni
from aicommons.runtime import reference as ref
from aicommons.runtime.graph import run_reference_layer
from aicommons.runtime.kernels import FLOAT32_MAX_FAN_IN, Requantizer, to_external, to_internal
from aicommons.runtime.layer import Layer
from aicommons.runtime.ops import infer_out_shape
from aicommons.runtime.plan import compile_layer

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def host_vnni_isas() -> list[vnni.Isa]:
    """Every VNNI width this CPU runs (an AVX-512 VNNI CPU with AVX-VNNI runs both)."""
    if not vnni.available():
        return []
    return [isa for isa in vnni.ISAS if vnni._host_features().get(isa.name)]


VNNI_PATHS = {f"vnni-{isa.name}": isa for isa in host_vnni_isas()}
"""Test path name -> the VNNI width forced for it (the runtime itself picks the widest)."""
AVX2_PATHS = ("avx2",) if avx2.available() else ()
"""The AVX2 int8 product, where this CPU has AVX2."""
PATHS = ("float32", "float64", *AVX2_PATHS, *VNNI_PATHS)


@contextmanager
def vnni_width(isa: vnni.Isa) -> Iterator[None]:
    """Kernels built inside use `isa` for the vnni matmul path."""
    saved = vnni.host_isa
    vnni.host_isa = lambda: isa
    try:
        yield
    finally:
        vnni.host_isa = saved


def build_with(path: str):  # noqa: ANN201 (a context manager and the runtime's path name)
    """(context, runtime matmul path) for a test path name ("int" builds float32 kernels)."""
    if path in VNNI_PATHS:
        return vnni_width(VNNI_PATHS[path]), "vnni"
    return nullcontext(), "float32" if path == "int" else path


int8_extremes = st.sampled_from([-128, -127, -1, 0, 1, 126, 127])
weight_extremes = st.sampled_from([-127, -1, 0, 1, 127])


def int8_array(draw: st.DrawFn, shape: tuple[int, ...], low: int = -128) -> np.ndarray:
    """Random int8 values, sometimes all at an extreme (worst-case accumulators)."""
    mode = draw(st.sampled_from(["random", "extreme", "mixed"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if mode == "extreme":
        return np.full(shape, draw(st.sampled_from([low, 127])), dtype=np.int8)
    values = rng.integers(low, 128, size=shape)
    if mode == "mixed":
        values = np.where(rng.random(shape) < 0.5, rng.choice([low, 127], size=shape), values)
    return values.astype(np.int8)


@st.composite
def requant_params(draw: st.DrawFn, channels: int, fan_in: int, wide: bool = False) -> dict:
    """Bias, M, S, lo, hi inside the semantics' bounds; sometimes small M/S so ties happen.

    Wide (int32) outputs also get a "near-bound" style: large |bias|, odd M putting the worst
    |acc * M| between 2^50 and 2^62 (around the float path's exactness bound, 2^52), and a
    shift that keeps every output inside int32, so a requantisation that rounds shows in the
    result instead of being clamped away."""
    bias_limit = ref.INT32_MAX - fan_in * 128 * 127
    styles = ["any", "ties", "float-friendly", *(["near-bound"] if wide else [])]
    style = draw(st.sampled_from(styles))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if style == "near-bound":
        bias = rng.integers(-bias_limit, bias_limit + 1, size=channels)
        worst_acc = np.abs(bias) + fan_in * 128 * 127
        product_bits = draw(st.integers(50, 61))
        multiplier = np.array(
            [min(2**31 - 1, (1 << product_bits) // int(w)) | 1 for w in worst_acc]
        )
        headroom = draw(st.integers(24, 30))
        shift = np.array(
            [
                max(1, int(w * m).bit_length() - headroom)
                for w, m in zip(worst_acc, multiplier, strict=True)
            ]
        )
        return {
            "bias": bias.astype(np.int32),
            "multiplier": multiplier.astype(np.int32),
            "shift": shift.astype(np.int32),
            "lo": ref.INT32_MIN,
            "hi": ref.INT32_MAX,
        }
    if style == "ties":
        multiplier = rng.choice([1, 2, 3, 2**30], size=channels)
        shift = rng.integers(0, 6, size=channels)
        bias = rng.integers(-1000, 1001, size=channels)
    elif style == "float-friendly":
        bias = rng.integers(-(2**20), 2**20, size=channels)
        worst = np.abs(bias) + fan_in * 128 * 127
        multiplier = np.array(
            [rng.integers(1, min(2**31 - 1, (2**52 - 1) // w) + 1) for w in worst]
        )
        shift = rng.integers(0, 45, size=channels)
    else:
        multiplier = rng.integers(1, 2**31, size=channels)
        shift = rng.integers(0, 63, size=channels)
        bias = rng.integers(-bias_limit, bias_limit + 1, size=channels)
        if draw(st.booleans()):
            bias[:] = draw(st.sampled_from([-bias_limit, bias_limit]))
            multiplier[:] = 2**31 - 1
    limits = (ref.INT32_MIN, ref.INT32_MAX) if wide else (ref.INT8_MIN, ref.INT8_MAX)
    lo = draw(st.sampled_from([limits[0], 0, -5]))
    hi = draw(st.sampled_from([limits[1], 6, 100]))
    return {
        "bias": bias.astype(np.int32),
        "multiplier": multiplier.astype(np.int32),
        "shift": shift.astype(np.int32),
        "lo": lo,
        "hi": max(lo, hi),
    }


def run_fast(
    layer: Layer, tensors: dict, inputs: list[np.ndarray], path: str, gather: bool, in_dtype: type
) -> np.ndarray:
    """The fast kernel's output, checked to be exact integers in range before the dtype cast."""
    saved = kernels.GATHER_MAX_ELEMENTS, kernels.BANDED_MAX_BLOWUP, kernels.INT_DOT_MAX_ROWS
    # Banded convs for float inputs, im2col for int8 ones (one gather, or strided slices, as
    # `gather` says); path "int" is the int32 dot product of small dense calls: every
    # combination is compared to the reference.
    kernels.GATHER_MAX_ELEMENTS = 10**9 if gather == (in_dtype is np.int8) else 0
    kernels.BANDED_MAX_BLOWUP = 10**9 if in_dtype is np.float32 else 0
    kernels.INT_DOT_MAX_ROWS = 10**9 if path == "int" else 0
    try:
        context, runtime_path = build_with(path)
        with context:
            kernel = compile_layer(layer, tensors, tuple(inputs[0].shape[1:]), runtime_path)
        # Kernels receive int8, or exact floats from a preceding float-requantisation layer.
        raw = kernel(*[to_internal(x.astype(in_dtype)) for x in inputs])
    finally:
        kernels.GATHER_MAX_ELEMENTS, kernels.BANDED_MAX_BLOWUP, kernels.INT_DOT_MAX_ROWS = saved
    info = np.iinfo(np.dtype(layer.out_dtype))
    assert np.all(raw == np.round(raw)) and raw.min() >= info.min and raw.max() <= info.max
    return to_external(raw, layer.out_dtype)


def weighted_layer(
    op: str, params: dict, weight: np.ndarray, attrs: dict, out_shape: tuple, wide: bool
) -> tuple[Layer, dict]:
    tensors = {
        "w": weight,
        "b": params["bias"],
        "m": params["multiplier"],
        "s": params["shift"],
    }
    layer = Layer(
        "l",
        op,
        ("x",),
        "y",
        out_shape,
        out_dtype="int32" if wide else "int8",
        tensors={"weight": "w", "bias": "b", "multiplier": "m", "shift": "s"},
        attrs={"channels": weight.shape[0], "lo": params["lo"], "hi": params["hi"], **attrs},
    )
    return layer, tensors


def check_equal(
    layer: Layer, tensors: dict, inputs: list[np.ndarray], is_output: bool = False
) -> None:
    out_shape = infer_out_shape(layer, [tuple(x.shape[1:]) for x in inputs], tensors, is_output)
    assert out_shape == layer.out_shape
    expected = run_reference_layer(layer, inputs, tensors).astype(np.int64)
    variants = [(p, s, d) for p in PATHS for s in (False, True) for d in (np.int8, np.float32)]
    if layer.op == "dense":
        variants += [("int", False, d) for d in (np.int8, np.float32)]
    for path, gather, in_dtype in variants:
        got = run_fast(layer, tensors, inputs, path, gather, in_dtype)
        message = f"path {path}, gather {gather}, input {in_dtype.__name__}"
        np.testing.assert_array_equal(got.astype(np.int64), expected, err_msg=message)


@SETTINGS
@given(data=st.data())
def test_dense_matches_reference(data: st.DataObject) -> None:
    batch = data.draw(st.integers(1, 3))
    fan_in = data.draw(st.integers(1, 40))
    channels = data.draw(st.integers(1, 6))
    wide = data.draw(st.booleans())
    params = data.draw(requant_params(channels, fan_in, wide))
    weight = int8_array(data.draw, (channels, fan_in), low=-127)
    x = int8_array(data.draw, (batch, fan_in))
    layer, tensors = weighted_layer("dense", params, weight, {}, (channels,), wide)
    check_equal(layer, tensors, [x], is_output=wide)


def test_dense_large_fan_in_uses_exact_float32_blocks() -> None:
    """Fan-in 2500 > 1032 needs three float32 blocks; all-extreme values make sums maximal."""
    fan_in = 2 * FLOAT32_MAX_FAN_IN + 436
    rng = np.random.default_rng(5)
    weight = np.full((3, fan_in), 127, dtype=np.int8)
    weight[1] = -127
    weight[2] = rng.integers(-127, 128, fan_in)
    x = np.full((2, fan_in), -128, dtype=np.int8)
    x[1] = rng.integers(-128, 128, fan_in)
    params = {
        "bias": np.array([7, -7, 0], np.int32),
        "multiplier": np.array([2**31 - 1, 12345, 1], np.int32),
        "shift": np.array([62, 40, 0], np.int32),
        "lo": ref.INT32_MIN,
        "hi": ref.INT32_MAX,
    }
    layer, tensors = weighted_layer("dense", params, weight, {}, (3,), True)
    check_equal(layer, tensors, [x], is_output=True)


def test_int_dot_reaches_the_fan_in_bound_without_overflow() -> None:
    """The int32 dots (small dense calls; VNNI single rows) at the largest fan-in the semantics
    allow: |dot| = K*128*127 = 2^31 - 1023, the bias taking the rest of int32."""
    fan_in = (2**31 - 1) // (128 * 127)
    weight = np.full((2, fan_in), 127, dtype=np.int8)
    weight[1] = -127
    x = np.stack([np.full(fan_in, -128), np.full(fan_in, 127)]).astype(np.int8)
    slack = ref.INT32_MAX - fan_in * 128 * 127
    params = {
        "bias": np.array([-slack, slack], np.int32),
        "multiplier": np.array([2**31 - 1, 3], np.int32),
        "shift": np.array([62, 1], np.int32),
        "lo": ref.INT32_MIN,
        "hi": ref.INT32_MAX,
    }
    layer, tensors = weighted_layer("dense", params, weight, {}, (2,), True)
    expected = run_reference_layer(layer, [x], tensors).astype(np.int64)
    for path in ("int", *AVX2_PATHS, *VNNI_PATHS):
        got = run_fast(layer, tensors, [x], path, False, np.int8)
        np.testing.assert_array_equal(got.astype(np.int64), expected, err_msg=path)
    assert abs(int(x[0].astype(np.int64) @ weight[0].astype(np.int64))) == fan_in * 128 * 127


@pytest.mark.parametrize("path", list(VNNI_PATHS))
def test_vnni_tiles_reach_the_fan_in_bound_exactly(path: str) -> None:
    """Full row tiles and single rows at K = floor((2^31-1) / (128*127)): dots of +-(2^31-1024),
    inputs at both byte extremes (x + 128 = 0 and 255), weights of both signs and a random row,
    so a product that saturated or wrapped would show."""
    fan_in = (2**31 - 1) // (128 * 127)
    rng = np.random.default_rng(11)
    weight = np.stack(
        [np.full(fan_in, 127), np.full(fan_in, -127), rng.integers(-127, 128, fan_in)]
        + [np.where(np.arange(fan_in) < fan_in // 2, 127, -127)] * 30
    ).astype(np.int8)
    rows = [np.full(fan_in, v) for v in (-128, 127, -128, 127)]
    rows += [rng.integers(-128, 128, fan_in) for _ in range(5)]
    x = np.stack(rows).astype(np.int8)
    product = vnni.Int8Product(weight, VNNI_PATHS[path])
    expected = x.astype(np.int64) @ weight.T.astype(np.int64)
    np.testing.assert_array_equal(product(x).astype(np.int64), expected)
    assert np.abs(expected).max() == fan_in * 128 * 127


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_vnni_products_are_exact_at_every_tile_edge(data: st.DataObject) -> None:
    """Rows around whole row tiles, channels around whole column blocks, fan-ins around whole
    quads (zero padded), any input dtype holding int8 values: the exact integer product."""
    assert VNNI_PATHS or not vnni.available()
    for isa in VNNI_PATHS.values():
        rows = data.draw(st.integers(0, 3 * isa.tile_rows + 1))
        fan_in = data.draw(st.integers(0, 70))
        channels = data.draw(st.integers(1, 2 * isa.block + 3))
        weight = int8_array(data.draw, (channels, fan_in), low=-127)
        x = int8_array(data.draw, (rows, fan_in)).astype(
            data.draw(st.sampled_from([np.int8, np.float32, np.float64, np.int32]))
        )
        got = vnni.Int8Product(weight, isa)(x)
        assert got.dtype == np.int32 and got.flags.c_contiguous
        expected = x.astype(np.int64) @ weight.T.astype(np.int64)
        np.testing.assert_array_equal(got.astype(np.int64), expected.reshape(rows, channels))


@SETTINGS
@given(data=st.data())
def test_dense_over_whole_vnni_tiles_matches_reference(data: st.DataObject) -> None:
    """Batches and widths past one VNNI tile (rows and column blocks), every path."""
    batch = data.draw(st.integers(7, 18))
    fan_in = data.draw(st.integers(1, 24))
    channels = data.draw(st.integers(14, 36))
    wide = data.draw(st.booleans())
    params = data.draw(requant_params(channels, fan_in, wide))
    weight = int8_array(data.draw, (channels, fan_in), low=-127)
    x = int8_array(data.draw, (batch, fan_in))
    layer, tensors = weighted_layer("dense", params, weight, {}, (channels,), wide)
    check_equal(layer, tensors, [x], is_output=wide)


def test_large_fan_in_float_requantisation_over_two_float32_blocks() -> None:
    """Fan-in 1100 > 1032 on the float32 path: two exact float32 blocks added in float64, then
    the float requantisation at its product bound (|acc * M| just below 2^52)."""
    fan_in = 1100
    rng = np.random.default_rng(9)
    weight = rng.integers(-127, 128, (4, fan_in)).astype(np.int8)
    weight[0] = 127
    x = rng.integers(-128, 128, (12, fan_in)).astype(np.int8)
    x[0] = 127
    worst = fan_in * 128 * 127 + 1000
    params = {
        "bias": np.array([1000, -1000, 0, 5], np.int32),
        "multiplier": np.array([(2**52 - 1) // worst, 1, 3, 2**20], np.int32),
        "shift": np.array([44, 1, 2, 30], np.int32),
        "lo": -128,
        "hi": 127,
    }
    layer, tensors = weighted_layer("dense", params, weight, {}, (4,), False)
    linear = compile_layer(layer, tensors, (fan_in,), "float32")
    assert linear.requantize.float_path and len(linear.matmul.blocks) == 2
    check_equal(layer, tensors, [x])


@st.composite
def conv_case(draw: st.DrawFn) -> tuple[Layer, dict, np.ndarray]:
    groups = draw(st.integers(1, 3))
    group_in = draw(st.integers(1, 2))
    group_out = draw(st.integers(1, 2))
    kernel = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    strides = [draw(st.integers(1, 3)), draw(st.integers(1, 2))]
    dilations = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    height = draw(st.integers(max(1, (kernel[0] - 1) * dilations[0] + 1 - pads[0] - pads[2]), 7))
    width = draw(st.integers(max(1, (kernel[1] - 1) * dilations[1] + 1 - pads[1] - pads[3]), 7))
    in_channels, channels = groups * group_in, groups * group_out
    fan_in = group_in * kernel[0] * kernel[1]
    params = draw(requant_params(channels, fan_in))
    weight = int8_array(draw, (channels, group_in, *kernel), low=-127)
    x = int8_array(draw, (draw(st.integers(1, 2)), in_channels, height, width))
    out_h = ref.conv_output_size(height, kernel[0], strides[0], pads[0], pads[2], dilations[0])
    out_w = ref.conv_output_size(width, kernel[1], strides[1], pads[1], pads[3], dilations[1])
    attrs = {
        "kernel": kernel,
        "strides": strides,
        "pads": pads,
        "dilations": dilations,
        "groups": groups,
    }
    layer, tensors = weighted_layer(
        "conv2d", params, weight, attrs, (channels, out_h, out_w), False
    )
    return layer, tensors, x


@SETTINGS
@given(case=conv_case())
def test_conv2d_matches_reference(case: tuple[Layer, dict, np.ndarray]) -> None:
    layer, tensors, x = case
    check_equal(layer, tensors, [x])


@st.composite
def pool_case(draw: st.DrawFn) -> tuple[Layer, np.ndarray]:
    op = draw(st.sampled_from(["maxpool", "avgpool"]))
    kernel = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    strides = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    dilations = [draw(st.integers(1, 2)), draw(st.integers(1, 2))] if op == "maxpool" else [1, 1]
    pads = [draw(st.integers(0, (kernel[i % 2] - 1) * dilations[i % 2])) for i in range(4)]
    height = draw(st.integers((kernel[0] - 1) * dilations[0] + 1, 7))
    width = draw(st.integers((kernel[1] - 1) * dilations[1] + 1, 7))
    x = int8_array(draw, (draw(st.integers(1, 2)), draw(st.integers(1, 3)), height, width))
    out_h = ref.conv_output_size(height, kernel[0], strides[0], pads[0], pads[2], dilations[0])
    out_w = ref.conv_output_size(width, kernel[1], strides[1], pads[1], pads[3], dilations[1])
    attrs = {"kernel": kernel, "strides": strides, "pads": pads, "dilations": dilations}
    if op == "avgpool":
        attrs["count_include_pad"] = draw(st.integers(0, 1))
    return Layer("p", op, ("x",), "y", (x.shape[1], out_h, out_w), attrs=attrs), x


@SETTINGS
@given(case=pool_case())
def test_pools_match_reference(case: tuple[Layer, np.ndarray]) -> None:
    layer, x = case
    check_equal(layer, {}, [x])


@SETTINGS
@given(data=st.data())
def test_add_matches_reference(data: st.DataObject) -> None:
    shape = data.draw(st.sampled_from([(5,), (2, 3, 3)]))
    batch = data.draw(st.integers(1, 3))
    a = int8_array(data.draw, (batch, *shape))
    b = int8_array(data.draw, (batch, *shape))
    wide = data.draw(st.booleans())
    multipliers = data.draw(
        st.lists(
            st.sampled_from([0, 1, 3, 2**30, 2**31 - 1]) | st.integers(0, 2**31 - 1),
            min_size=2,
            max_size=2,
        )
    )
    shift = data.draw(st.integers(0, 62) | st.sampled_from([0, 1, 2]))
    limits = (ref.INT32_MIN, ref.INT32_MAX) if wide else (ref.INT8_MIN, ref.INT8_MAX)
    lo = data.draw(st.sampled_from([limits[0], 0]))
    tensors = {"m": np.array(multipliers, np.int32), "s": np.array([shift], np.int32)}
    layer = Layer(
        "a",
        "add",
        ("x", "z"),
        "y",
        shape,
        out_dtype="int32" if wide else "int8",
        tensors={"multiplier": "m", "shift": "s"},
        attrs={"lo": lo, "hi": limits[1]},
    )
    check_equal(layer, tensors, [a, b], is_output=wide)


@SETTINGS
@given(data=st.data())
def test_clamp_and_reshape_match_reference(data: st.DataObject) -> None:
    x = int8_array(data.draw, (2, 2, 3, 2))
    lo = data.draw(st.integers(-128, 127))
    hi = data.draw(st.integers(lo, 127))
    check_equal(Layer("c", "clamp", ("x",), "y", (2, 3, 2), attrs={"lo": lo, "hi": hi}), {}, [x])
    target = data.draw(st.sampled_from([(12,), (3, 2, 2), (1, 6, 2)]))
    check_equal(Layer("r", "reshape", ("x",), "y", target, attrs={"shape": list(target)}), {}, [x])


def near_tie_accumulators(bias: int, multiplier: int, shift: int, fan_in: int) -> list[int]:
    """Accumulators in [-worst, worst] whose rescaled value lies just below or exactly on a
    rounding boundary (acc*M + 2^(S-1) = -1 or 0 mod 2^S), the largest in magnitude: where a
    float requantisation outside its exactness bound rounds to the wrong integer."""
    if shift < 2 or multiplier % 2 == 0:
        return []
    worst = abs(bias) + fan_in * 128 * 127
    modulus = 1 << shift
    found = []
    for residue in ((1 << (shift - 1)) - 1, 1 << (shift - 1)):
        base = residue * pow(multiplier, -1, modulus) % modulus
        top = base + (worst - base) // modulus * modulus
        bottom = base - (worst + base) // modulus * modulus
        found += [acc for acc in (top, bottom) if -worst <= acc <= worst]
    return found


@SETTINGS
@given(data=st.data())
def test_requantizer_paths_agree_with_reference_at_the_bounds(data: st.DataObject) -> None:
    """Accumulators at +-(|bias| + K*128*127), next to rounding boundaries and between, on both
    requantisation paths, with int8 and non-saturating int32 outputs."""
    fan_in = data.draw(st.integers(1, 2000))
    wide = data.draw(st.booleans())
    params = data.draw(requant_params(4, fan_in, wide))
    bias = params["bias"].astype(np.int64)
    worst = np.abs(bias) + fan_in * 128 * 127
    dots = [worst - bias, -worst - bias, np.zeros(4, np.int64)]
    triples = zip(
        bias.tolist(), params["multiplier"].tolist(), params["shift"].tolist(), strict=True
    )
    ties = [near_tie_accumulators(b, m, s, fan_in) for b, m, s in triples]
    for k in range(max(map(len, ties))):
        dots.append(
            np.array(
                [t[k] - b if k < len(t) else 0 for t, b in zip(ties, bias.tolist(), strict=True)]
            )
        )
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    dots = np.concatenate(
        [np.stack(dots), rng.integers(-fan_in * 16256, fan_in * 16256 + 1, (5, 4))]
    )
    requantize = Requantizer(
        params["bias"],
        params["multiplier"],
        params["shift"],
        params["lo"],
        params["hi"],
        "int32" if wide else "int8",
        fan_in,
    )
    got = requantize(dots.astype(np.float64))
    for row, dot_row in zip(got, dots, strict=True):
        expected = [
            ref.requantize(int(d) + int(b), int(m), int(s), params["lo"], params["hi"])
            for d, b, m, s in zip(
                dot_row, params["bias"], params["multiplier"], params["shift"], strict=True
            )
        ]
        assert row.tolist() == expected


def test_float_requantisation_is_not_used_beyond_its_exactness_bound() -> None:
    """|acc * M| ~ 2^58.4 > 2^52: (bias*M + 2^29) / 2^30 = 357913939.99999999907 is not a
    float64, it rounds up to 357913940. Only the int64 path gives the reference's 357913939."""
    bias, multiplier, shift = 715827883, 536870909, 30
    expected = ref.requantize(bias, multiplier, shift, ref.INT32_MIN, ref.INT32_MAX)
    assert expected == 357913939
    requantize = Requantizer(
        np.array([bias], np.int32),
        np.array([multiplier], np.int32),
        np.array([shift], np.int32),
        ref.INT32_MIN,
        ref.INT32_MAX,
        "int32",
        1,
    )
    assert requantize(np.zeros((1, 1))).tolist() == [[expected]]
    params = {
        "bias": np.array([bias], np.int32),
        "multiplier": np.array([multiplier], np.int32),
        "shift": np.array([shift], np.int32),
        "lo": ref.INT32_MIN,
        "hi": ref.INT32_MAX,
    }
    layer, tensors = weighted_layer("dense", params, np.zeros((1, 1), np.int8), {}, (1,), True)
    check_equal(layer, tensors, [np.zeros((2, 1), np.int8)], is_output=True)


def test_float_requant_path_is_taken_for_friendly_parameters() -> None:
    requantize = Requantizer(
        np.array([100], np.int32),
        np.array([2**20], np.int32),
        np.array([30], np.int32),
        -128,
        127,
        "int8",
        64,
    )
    assert requantize.float_path
    unfriendly = Requantizer(
        np.array([100], np.int32),
        np.array([2**31 - 1], np.int32),
        np.array([62], np.int32),
        -128,
        127,
        "int8",
        64,
    )
    assert not unfriendly.float_path


def test_rounding_is_half_up_and_ties_go_up() -> None:
    assert [ref.rshift_round(v, 1) for v in (-3, -2, -1, 1, 3)] == [-1, -1, 0, 1, 2]
    assert ref.rshift_round(-(2**61), 62) == 0
    assert ref.rshift_round(7, 0) == 7
    assert [ref.div_round(t, 4) for t in (-6, -2, 2, 6, 5)] == [-1, 0, 1, 2, 1]
    assert ref.argmax([3, 7, 7, 1]) == 1
    assert ref.requantize(1000, 2**31 - 1, 31, -128, 127) == 127


@pytest.mark.parametrize("path", kernels.available_matmul_paths())
def test_unknown_matmul_path_is_refused(path: str) -> None:
    layer = Layer("c", "clamp", ("x",), "y", (1,), attrs={"lo": 0, "hi": 1})
    compile_layer(layer, {}, (1,), path)
    with pytest.raises(ValueError, match="matmul path"):
        compile_layer(layer, {}, (1,), "float16")
