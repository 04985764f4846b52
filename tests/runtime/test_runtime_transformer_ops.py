"""The transformer ops of aicommons-int/2: every fast kernel equals the pure-int reference.

Random shapes and values (hypothesis), int8 and int16 operands, values handed over as the
integer dtype or as exact float32 (what a float-requantising layer passes on), extremes at the
documented bounds, masks with nothing kept. Then a small BERT-shaped graph of all the ops: the
package equals the reference, round-trips, and gives the same bytes alone or in a batch.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from aicommons.runtime import madd16
from aicommons.runtime import reference as ref
from aicommons.runtime.errors import InputError, ManifestError, PackageError
from aicommons.runtime.graph import run_reference_layer
from aicommons.runtime.kernels import (
    LinearRequant,
    Requantizer,
    exp_table,
    to_external,
    to_internal,
)
from aicommons.runtime.layer import Layer
from aicommons.runtime.ops import infer_out_shape
from aicommons.runtime.package import ModelPackage, package_from_bytes
from aicommons.runtime.plan import compile_layer

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RANGE = {"int8": (-128, 127), "int16": (-32768, 32767), "int32": (-(2**31), 2**31 - 1)}
ACTIVATION = st.sampled_from(["int8", "int16"])


def values(draw: st.DrawFn, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Random values of `dtype`, sometimes all at an extreme or a mix of both extremes."""
    low, high = RANGE[dtype]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mode = draw(st.sampled_from(["random", "extreme", "mixed", "small"]))
    if mode == "extreme":
        return np.full(shape, draw(st.sampled_from([low, high])), dtype=dtype)
    if mode == "small":
        return rng.integers(-3, 4, size=shape).astype(dtype)
    out = rng.integers(low, high + 1, size=shape)
    if mode == "mixed":
        out = np.where(rng.random(shape) < 0.5, rng.choice([low, high], size=shape), out)
    return out.astype(dtype)


def mask_values(draw: st.DrawFn, batch: int, length: int) -> np.ndarray:
    mode = draw(st.sampled_from(["random", "none", "all"]))
    if mode == "none":
        return np.zeros((batch, length), dtype=np.int8)
    if mode == "all":
        return np.ones((batch, length), dtype=np.int8)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.random((batch, length)) < 0.7).astype(np.int8)


def bounds(draw: st.DrawFn, dtype: str) -> tuple[int, int]:
    low, high = RANGE[dtype]
    lo = draw(st.sampled_from([low, 0, -5]))
    hi = draw(st.sampled_from([high, 6, 1000]))
    return lo, max(lo, min(hi, high))


def check_equal(
    layer: Layer,
    tensors: dict,
    inputs: list[np.ndarray],
    in_dtypes: tuple[str, ...],
    is_output: bool = False,
) -> np.ndarray:
    """infer_out_shape agrees, then the kernel (float32 and float64 matmul paths; inputs as
    their dtype and as exact float32) equals the reference bit for bit."""
    shapes = [tuple(x.shape[1:]) for x in inputs]
    assert infer_out_shape(layer, shapes, tensors, is_output, in_dtypes) == layer.out_shape
    expected = run_reference_layer(layer, inputs, tensors).astype(np.int64)
    for path in ("float32", "float64"):
        for as_float in (False, True):
            kernel = compile_layer(layer, tensors, shapes[0], path, in_dtypes)
            fed = [
                to_internal(x.astype(np.float32 if as_float and d != "int32" else d))
                for x, d in zip(inputs, in_dtypes, strict=True)
            ]
            raw = np.asarray(kernel(*fed))
            low, high = RANGE[layer.out_dtype]
            assert np.all(raw == np.round(raw)) and raw.min() >= low and raw.max() <= high
            got = to_external(raw, layer.out_dtype).astype(np.int64)
            message = f"path {path}, float inputs {as_float}"
            np.testing.assert_array_equal(got, expected, err_msg=message)
    return expected


def scalar_requant(draw: st.DrawFn, worst_acc: int) -> tuple[np.ndarray, np.ndarray]:
    """M in [1, 2^31 - 1] with worst_acc * M < 2^62, and S in [0, 62]."""
    limit = min(2**31 - 1, (2**62 - 1) // max(worst_acc, 1))
    multiplier = draw(st.sampled_from([1, limit, 3]) | st.integers(1, limit))
    shift = draw(st.integers(0, 62))
    return np.array([multiplier], np.int32), np.array([shift], np.int32)


# -- the ops one by one -------------------------------------------------------------------------


@SETTINGS
@given(data=st.data())
def test_embed_matches_reference(data: st.DataObject) -> None:
    draw = data.draw
    vocab, width, length = (
        draw(st.integers(1, 30)),
        draw(st.integers(1, 12)),
        draw(st.integers(1, 9)),
    )
    batch = draw(st.integers(1, 3))
    table_dtype, out_dtype = draw(ACTIVATION), draw(ACTIVATION)
    table = values(draw, (vocab, width), table_dtype)
    position = values(draw, (length + draw(st.integers(0, 3)), width), draw(ACTIVATION))
    multiplier = np.array([draw(st.integers(0, 2**31 - 1)) for _ in range(2)], np.int32)
    shift = np.array([draw(st.integers(0, 62))], np.int32)
    lo, hi = bounds(draw, out_dtype)
    tensors = {"t": table, "p": position, "m": multiplier, "s": shift}
    layer = Layer(
        "e", "embed", ("ids",), "y", (length, width), out_dtype=out_dtype,
        tensors={"table": "t", "position": "p", "multiplier": "m", "shift": "s"},
        attrs={"lo": lo, "hi": hi},
    )  # fmt: skip
    ids = np.random.default_rng(draw(st.integers(0, 99))).integers(0, vocab, (batch, length))
    check_equal(layer, tensors, [ids.astype(np.int32)], ("int32",))


def test_embed_refuses_ids_outside_the_table() -> None:
    tensors = {
        "t": np.ones((4, 2), np.int16),
        "p": np.ones((3, 2), np.int16),
        "m": np.array([1, 1], np.int32),
        "s": np.array([0], np.int32),
    }
    layer = Layer(
        "e", "embed", ("ids",), "y", (3, 2), out_dtype="int16",
        tensors={"table": "t", "position": "p", "multiplier": "m", "shift": "s"},
        attrs={"lo": -32768, "hi": 32767},
    )  # fmt: skip
    kernel = compile_layer(layer, tensors, (3,), "float32", ("int32",))
    for bad in (-1, 4):
        ids = np.array([[0, bad, 1]], np.int32)
        with pytest.raises(InputError, match=f"token id {bad} is outside the embedding table"):
            kernel(ids)
        with pytest.raises(ValueError, match=f"token id {bad} outside the embedding table"):
            run_reference_layer(layer, [ids], tensors)


@SETTINGS
@given(data=st.data())
def test_pad_mask_matches_reference(data: st.DataObject) -> None:
    draw = data.draw
    length, pad_id = draw(st.integers(1, 10)), draw(st.integers(-(2**31), 2**31 - 1))
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    ids = np.where(rng.random((3, length)) < 0.4, pad_id, rng.integers(-5, 5, (3, length)))
    layer = Layer("m", "pad_mask", ("ids",), "mask", (length,), attrs={"pad_id": pad_id})
    out = check_equal(layer, {}, [ids.astype(np.int32)], ("int32",))
    assert set(np.unique(out)) <= {0, 1}


@SETTINGS
@given(data=st.data())
def test_matmul_matches_reference(data: st.DataObject) -> None:
    draw = data.draw
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    rows, fan_in, cols = draw(st.integers(1, 6)), draw(st.integers(1, 40)), draw(st.integers(1, 6))
    batch = draw(st.integers(1, 2))
    a_dtype, b_dtype, out_dtype = draw(ACTIVATION), draw(ACTIVATION), draw(ACTIVATION)
    a = values(draw, (batch, *lead, rows, fan_in), a_dtype)
    b = values(draw, (batch, *lead, fan_in, cols), b_dtype)
    worst = fan_in * ref.INPUT_BOUND[a_dtype] * ref.INPUT_BOUND[b_dtype]
    multiplier, shift = scalar_requant(draw, worst)
    lo, hi = bounds(draw, out_dtype)
    layer = Layer(
        "mm", "matmul", ("a", "b"), "y", (*lead, rows, cols), out_dtype=out_dtype,
        tensors={"multiplier": "m", "shift": "s"}, attrs={"lo": lo, "hi": hi},
    )  # fmt: skip
    check_equal(layer, {"m": multiplier, "s": shift}, [a, b], (a_dtype, b_dtype))


@SETTINGS
@given(data=st.data())
def test_transpose_matches_reference(data: st.DataObject) -> None:
    draw = data.draw
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    perm = draw(st.permutations(range(len(shape))))
    dtype = draw(ACTIVATION)
    x = values(draw, (2, *shape), dtype)
    out_shape = tuple(shape[p] for p in perm)
    layer = Layer(
        "t", "transpose", ("x",), "y", out_shape, out_dtype=dtype, attrs={"perm": list(perm)}
    )
    check_equal(layer, {}, [x], (dtype,))


@SETTINGS
@given(data=st.data())
def test_softmax_matches_reference(data: st.DataObject) -> None:
    draw = data.draw
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    length, batch = draw(st.integers(1, 12)), draw(st.integers(1, 2))
    dtype, in_frac = (
        draw(ACTIVATION),
        draw(st.sampled_from([0, 1, 8, 10, 12, 30]) | st.integers(0, 30)),
    )
    x = values(draw, (batch, *lead, length), dtype)
    mask = mask_values(draw, batch, length)
    layer = Layer(
        "sm", "softmax", ("x", "mask"), "p", (*lead, length), out_dtype="int16",
        attrs={"in_frac": in_frac},
    )  # fmt: skip
    out = check_equal(layer, {}, [x, mask], (dtype, "int8"))
    assert out.min() >= 0
    kept = np.broadcast_to(mask.reshape(batch, *(1,) * len(lead), length) != 0, out.shape)
    assert np.all(out[~kept] == 0)


def test_exp_table_is_the_reference_exp_and_close_to_e() -> None:
    for in_frac in (0, 5, 10, 16, 30):
        table = exp_table(in_frac, 4096)
        assert [int(v) for v in table[:300]] == [ref.exp_neg_q30(d, in_frac) for d in range(300)]
        d = np.arange(4096)
        exact = np.exp(-d / 2**in_frac) * 2**30
        # Relative error below 3e-6 of the value, plus the final floor (one unit of 2^-30).
        assert np.all(np.abs(table - exact) <= exact * 3e-6 + 1.5)
    assert ref.exp_neg_q30(0, 10) == 2**30


def test_softmax_is_close_to_the_float_softmax() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-8000, 8000, (64, 32))
    mask = (rng.random(32) < 0.8).astype(np.int64)
    mask[0] = 1
    got = np.array([ref.softmax_row(row.tolist(), mask.tolist(), 10) for row in x])
    kept = mask != 0
    scores = x[:, kept] / 1024
    exact = np.exp(scores - scores.max(axis=1, keepdims=True))
    exact /= exact.sum(axis=1, keepdims=True)
    assert np.abs(got[:, kept] / 2**15 - exact).max() < 2**-15
    assert np.all(got[:, ~kept] == 0)


@SETTINGS
@given(data=st.data())
def test_layernorm_matches_reference(data: st.DataObject) -> None:
    draw = data.draw
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    width = draw(st.sampled_from([2, 3, 1024]) | st.integers(2, 40))
    in_dtype, out_dtype = draw(ACTIVATION), draw(ACTIVATION)
    x = values(draw, (1, *lead, width), in_dtype)
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    if draw(st.booleans()):
        multiplier = rng.integers(-(2**31) + 1, 2**31, width)
        shift = rng.integers(0, 63, width)
    else:
        multiplier = np.full(width, draw(st.sampled_from([-(2**31) + 1, 2**31 - 1, 1 << 16])))
        shift = np.full(width, draw(st.sampled_from([0, 16, 23, 62])))
    bias = rng.integers(-(2**31), 2**31, width) if draw(st.booleans()) else np.zeros(width)
    lo, hi = bounds(draw, out_dtype)
    tensors = {
        "m": multiplier.astype(np.int32),
        "s": shift.astype(np.int32),
        "b": bias.astype(np.int32),
    }
    layer = Layer(
        "ln", "layernorm", ("x",), "y", (*lead, width), out_dtype=out_dtype,
        tensors={"multiplier": "m", "shift": "s", "bias": "b"}, attrs={"lo": lo, "hi": hi},
    )  # fmt: skip
    check_equal(layer, tensors, [x], (in_dtype,))


def test_layernorm_at_its_bounds_and_close_to_the_float_one() -> None:
    # The widest row at full int16 swing: q = sum (D x - sum x)^2 is largest here (< 2^62).
    width = ref.LAYERNORM_MAX_WIDTH
    row = [32767 if i % 2 else -32768 for i in range(width)]
    centred = [width * v - sum(row) for v in row]
    assert sum(d * d for d in centred) < 2**62
    out = ref.layernorm_row(row, [1] * width, [16] * width, [0] * width, -32768, 32767)
    assert set(out) == {-1, 1}  # (x - mean) / std = -1, +1
    rng = np.random.default_rng(2)
    x = rng.normal(0, 3000, (20, 384)).round().clip(-32768, 32767)
    y = [ref.layernorm_row(r.astype(int).tolist(), [1 << 20] * 384, [23] * 384, [5] * 384,
                           -32768, 32767) for r in x]  # fmt: skip
    exact = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True) * 2**13 + 5
    assert np.abs(np.array(y) - exact).max() < 1.0
    assert ref.layernorm_row([7, 7, 7], [1, 1, 1], [0, 0, 0], [3, -2, 0], -9, 9) == [3, -2, 0]


@SETTINGS
@given(data=st.data())
def test_lookup_matches_reference(data: st.DataObject) -> None:
    draw = data.draw
    in_dtype, out_dtype = draw(ACTIVATION), draw(ACTIVATION)
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    x = values(draw, (2, *shape), in_dtype)
    table = values(draw, (2 * ref.INPUT_BOUND[in_dtype],), out_dtype)
    layer = Layer("g", "lookup", ("x",), "y", shape, out_dtype=out_dtype, tensors={"table": "t"})
    out = check_equal(layer, {"t": table}, [x], (in_dtype,))
    assert out.reshape(-1)[0] == table[int(x.reshape(-1)[0]) + ref.INPUT_BOUND[in_dtype]]


@SETTINGS
@given(data=st.data())
def test_mean_pool_matches_reference(data: st.DataObject) -> None:
    draw = data.draw
    length, width, batch = (
        draw(st.integers(1, 12)),
        draw(st.integers(1, 8)),
        draw(st.integers(1, 3)),
    )
    dtype = draw(ACTIVATION)
    x = values(draw, (batch, width, length), dtype)
    mask = mask_values(draw, batch, length)
    layer = Layer("mp", "mean_pool", ("x", "mask"), "y", (width,), out_dtype=dtype)
    out = check_equal(layer, {}, [x, mask], (dtype, "int8"))
    assert np.all(out[mask.sum(axis=1) == 0] == 0)


@SETTINGS
@given(data=st.data())
def test_l2norm_matches_reference(data: st.DataObject) -> None:
    draw = data.draw
    lead = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=1)))
    width, dtype = draw(st.integers(1, 40)), draw(ACTIVATION)
    out_dtype = draw(st.sampled_from(["int16", "int32"]))
    out_frac = draw(st.integers(0, 15 if out_dtype == "int16" else 30))
    x = values(draw, (2, *lead, width), dtype)
    lo, hi = bounds(draw, out_dtype)
    layer = Layer(
        "l2", "l2norm", ("x",), "y", (*lead, width), out_dtype=out_dtype,
        attrs={"out_frac": out_frac, "lo": lo, "hi": hi},
    )  # fmt: skip
    check_equal(layer, {}, [x], (dtype,), is_output=out_dtype == "int32")


def test_l2norm_rows_have_unit_length() -> None:
    rng = np.random.default_rng(3)
    for row in rng.integers(-32768, 32768, (20, 384)):
        y = np.array(ref.l2norm_row(row.tolist(), 15, -32768, 32767)) / 2**15
        assert abs(math.sqrt(float((y * y).sum())) - 1) < 1e-3
    assert ref.l2norm_row([0, 0], 15, -32768, 32767) == [0, 0]


@SETTINGS
@given(data=st.data())
def test_dense_and_add_with_int16_operands_match_reference(data: st.DataObject) -> None:
    draw = data.draw
    rows, fan_in, channels = (
        draw(st.integers(1, 5)),
        draw(st.integers(1, 300)),
        draw(st.integers(1, 6)),
    )
    out_dtype = draw(ACTIVATION)
    x = values(draw, (2, rows, fan_in), "int16")
    weight = values(draw, (channels, fan_in), "int8").clip(-127, 127).astype(np.int8)
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    bias = rng.integers(-(2**31), 2**31, channels)
    if draw(st.booleans()):
        bias[:] = draw(st.sampled_from([-(2**31), 2**31 - 1]))
    worst = int(np.abs(bias).max()) + fan_in * 32768 * 127
    limit = min(2**31 - 1, (2**62 - 1) // worst)
    multiplier = np.full(channels, draw(st.sampled_from([1, limit]) | st.integers(1, limit)))
    shift = rng.integers(0, 63, channels)
    lo, hi = bounds(draw, out_dtype)
    tensors = {
        "w": weight,
        "b": bias.astype(np.int32),
        "m": multiplier.astype(np.int32),
        "s": shift.astype(np.int32),
    }
    dense = Layer(
        "fc", "dense", ("x",), "y", (rows, channels), out_dtype=out_dtype,
        tensors={"weight": "w", "bias": "b", "multiplier": "m", "shift": "s"},
        attrs={"channels": channels, "lo": lo, "hi": hi},
    )  # fmt: skip
    check_equal(dense, tensors, [x], ("int16",))
    other = values(draw, x.shape, draw(ACTIVATION))
    add = Layer(
        "add", "add", ("x", "o"), "z", (rows, fan_in), out_dtype=out_dtype,
        tensors={"multiplier": "am", "shift": "as"}, attrs={"lo": lo, "hi": hi},
    )  # fmt: skip
    add_tensors = {
        "am": np.array([draw(st.integers(0, 2**31 - 1)) for _ in range(2)], np.int32),
        "as": np.array([draw(st.integers(0, 62))], np.int32),
    }
    check_equal(add, add_tensors, [x, other], ("int16", str(other.dtype)))


def test_wide_bounds_are_enforced() -> None:
    worst = 16 * 32768 * 32768  # K * X(a) * X(b) for int16 operands
    multiplier = np.array([2**62 // worst], np.int32)  # acc * M reaches 2^62
    layer = Layer(
        "mm", "matmul", ("a", "b"), "y", (2, 2), out_dtype="int16",
        tensors={"multiplier": "m", "shift": "s"}, attrs={"lo": -32768, "hi": 32767},
    )  # fmt: skip
    tensors = {"m": multiplier, "s": np.array([0], np.int32)}
    with pytest.raises(PackageError, match="accumulator times multiplier can reach 2"):
        infer_out_shape(layer, [(2, 16), (16, 2)], tensors, False, ("int16", "int16"))
    tensors["m"] = multiplier - 1
    assert infer_out_shape(layer, [(2, 16), (16, 2)], tensors, False, ("int16", "int16"))
    ln = Layer(
        "ln", "layernorm", ("x",), "y", (1025,), out_dtype="int16",
        tensors={"multiplier": "m", "shift": "s", "bias": "b"}, attrs={"lo": 0, "hi": 1},
    )  # fmt: skip
    with pytest.raises(PackageError, match=r"row width 1025 outside \[2, 1024\]"):
        infer_out_shape(ln, [(1025,)], {}, False, ("int16",))
    sm = Layer("sm", "softmax", ("x", "m"), "y", (4,), out_dtype="int8", attrs={"in_frac": 3})
    with pytest.raises(PackageError, match="output dtype int8 must be int16"):
        infer_out_shape(sm, [(4,), (4,)], {}, False, ("int16", "int8"))
    with pytest.raises(PackageError, match="input 0 is int32; this op reads int8 or int16"):
        infer_out_shape(sm, [(4,), (4,)], {}, False, ("int32", "int8"))


# -- a small BERT-shaped graph of every op -----------------------------------------------------

LENGTH, WIDTH, HEADS, FFN, VOCAB = 8, 16, 2, 32, 40
HEAD = WIDTH // HEADS


def mini_bert(seed: int = 0) -> ModelPackage:
    """ids -> embed -> layernorm -> one attention + FFN block -> mean pool -> l2norm, with
    random int tensors inside the bounds (a wiring and exactness test, not a trained model).
    Multipliers are as small as a quantiser keeps them for the float requantisation
    (|acc| * M < 2^52 at MiniLM's shape), so the graph also times like a real one."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    layers: list[Layer] = []

    def tensor(name: str, value: np.ndarray) -> str:
        tensors[name] = value
        return name

    def ints(name: str, low: int, high: int, shape: tuple | int, dtype: type = np.int32) -> str:
        return tensor(name, rng.integers(low, high, shape).astype(dtype))

    def add_layer(name, op, inputs, out_shape, dtype="int16", roles=None, **attrs) -> str:  # noqa: ANN001, ANN003
        layers.append(
            Layer(name, op, tuple(inputs), name, tuple(out_shape), out_dtype=dtype,
                  tensors=roles or {}, attrs=attrs)
        )  # fmt: skip
        return name

    full = {"lo": -32768, "hi": 32767}

    def dense(name: str, x: str, fan_in: int, channels: int) -> str:
        roles = {
            "weight": ints(f"{name}.w", -127, 128, (channels, fan_in), np.int8),
            "bias": ints(f"{name}.b", -5000, 5000, channels),
            "multiplier": ints(f"{name}.m", 1 << 18, 1 << 19, channels),
            "shift": tensor(f"{name}.s", np.full(channels, 28, np.int32)),
        }
        return add_layer(
            name, "dense", [x], (LENGTH, channels), roles=roles, channels=channels, **full
        )

    def layernorm(name: str, x: str) -> str:
        roles = {
            "multiplier": ints(f"{name}.m", 1 << 14, 1 << 15, WIDTH),
            "shift": tensor(f"{name}.s", np.full(WIDTH, 17, np.int32)),
            "bias": ints(f"{name}.b", -500, 500, WIDTH),
        }
        return add_layer(name, "layernorm", [x], (LENGTH, WIDTH), roles=roles, **full)

    def residual(name: str, a: str, b: str) -> str:
        roles = {
            "multiplier": tensor(f"{name}.m", np.array([1 << 29, 1 << 29], np.int32)),
            "shift": tensor(f"{name}.s", np.array([30], np.int32)),
        }
        return add_layer(name, "add", [a, b], (LENGTH, WIDTH), roles=roles, **full)

    def scalar(name: str, multiplier: int, shift: int) -> dict:
        return {
            "multiplier": tensor(f"{name}.m", np.array([multiplier], np.int32)),
            "shift": tensor(f"{name}.s", np.array([shift], np.int32)),
        }

    mask = add_layer("mask", "pad_mask", ["ids"], (LENGTH,), "int8", pad_id=0)
    emb = add_layer(
        "emb", "embed", ["ids"], (LENGTH, WIDTH),
        roles={
            "table": ints("emb.table", -20000, 20000, (VOCAB, WIDTH), np.int16),
            "position": ints("emb.pos", -3000, 3000, (LENGTH, WIDTH), np.int16),
            "multiplier": tensor("emb.m", np.array([1 << 20, 1 << 20], np.int32)),
            "shift": tensor("emb.s", np.array([21], np.int32)),
        }, **full,
    )  # fmt: skip
    h = layernorm("ln0", emb)
    q, k, v = (dense(f"{n}", h, WIDTH, WIDTH) for n in ("q", "k", "v"))
    heads = (LENGTH, HEADS, HEAD)
    qh = add_layer("qh", "transpose", [add_layer("qr", "reshape", [q], heads, shape=list(heads))],
                   (HEADS, LENGTH, HEAD), perm=[1, 0, 2])  # fmt: skip
    kt = add_layer("kt", "transpose", [add_layer("kr", "reshape", [k], heads, shape=list(heads))],
                   (HEADS, HEAD, LENGTH), perm=[1, 2, 0])  # fmt: skip
    vh = add_layer("vh", "transpose", [add_layer("vr", "reshape", [v], heads, shape=list(heads))],
                   (HEADS, LENGTH, HEAD), perm=[1, 0, 2])  # fmt: skip
    scores = add_layer("scores", "matmul", [qh, kt], (HEADS, LENGTH, LENGTH),
                       roles=scalar("scores", 1 << 14, 32), **full)  # fmt: skip
    probs = add_layer("probs", "softmax", [scores, mask], (HEADS, LENGTH, LENGTH), in_frac=10)
    ctx = add_layer("ctx", "matmul", [probs, vh], (HEADS, LENGTH, HEAD),
                    roles=scalar("ctx", 1 << 14, 29), **full)  # fmt: skip
    merged = add_layer("merged", "reshape",
                       [add_layer("ctxt", "transpose", [ctx], heads, perm=[1, 0, 2])],
                       (LENGTH, WIDTH), shape=[LENGTH, WIDTH])  # fmt: skip
    h = layernorm("ln1", residual("res1", dense("o", merged, WIDTH, WIDTH), h))
    up = dense("up", h, WIDTH, FFN)
    gelu = np.arange(-32768, 32768) * 0.5 * (1 + np.tanh(np.arange(-32768, 32768) / 8192))
    act = add_layer("act", "lookup", [up], (LENGTH, FFN),
                    roles={"table": tensor("gelu", gelu.round().astype(np.int16))})  # fmt: skip
    h = layernorm("ln2", residual("res2", dense("down", act, FFN, WIDTH), h))
    by_feature = add_layer("h_t", "transpose", [h], (WIDTH, LENGTH), perm=[1, 0])
    pooled = add_layer("pooled", "mean_pool", [by_feature, mask], (WIDTH,))
    add_layer("emb_out", "l2norm", [pooled], (WIDTH,), "int32", out_frac=30,
              lo=-(2**31), hi=2**31 - 1)  # fmt: skip
    return ModelPackage.build(
        {"name": "ids", "shape": [LENGTH], "scale": "1", "dtype": "int32"},
        layers,
        [{"name": "emb_out", "dtype": "int32", "scale": "1"}],
        tensors,
    )


def token_batch(rng: np.random.Generator, batch: int) -> np.ndarray:
    ids = rng.integers(1, VOCAB, (batch, LENGTH))
    lengths = rng.integers(1, LENGTH + 1, batch)
    ids[np.arange(LENGTH)[None, :] >= lengths[:, None]] = 0
    return ids.astype(np.int32)


def test_mini_bert_fast_equals_reference_and_round_trips() -> None:
    package = mini_bert()
    assert package.manifest["semantics"] == "aicommons-int/2"
    assert package.manifest["input"]["dtype"] == "int32"
    ids = token_batch(np.random.default_rng(5), 6)
    fast = package.run(ids)
    np.testing.assert_array_equal(fast, package.run_reference(ids))
    trace = package.trace(ids)
    np.testing.assert_array_equal(trace.values[-1], fast)
    assert trace.values[0].dtype == np.int32 and len(trace.roots) == 6
    # Unit length up to isqrt's floor of the norm (relative 1 / ||pooled||).
    norms = np.sqrt((fast.astype(np.float64) ** 2).sum(axis=1)) / 2**30
    assert np.all(np.abs(norms - 1) < 1e-3)
    again = package_from_bytes(package.to_bytes())
    assert again.version_id == package.version_id
    np.testing.assert_array_equal(again.run(ids), fast)
    # Padding does not leak: each sentence gives the same bytes alone as in the batch.
    for i in range(len(ids)):
        np.testing.assert_array_equal(package.run(ids[i : i + 1])[0], fast[i])
        assert package.trace(ids[i : i + 1]).roots[0] == trace.roots[i]


def test_mini_bert_inputs_are_token_ids_inside_the_table() -> None:
    package = mini_bert()
    ids = token_batch(np.random.default_rng(6), 2)
    np.testing.assert_array_equal(package.prepare_input(ids.tolist()), ids)
    bad = ids.copy()
    bad[1, 0] = VOCAB
    with pytest.raises(InputError, match=rf"token id {VOCAB} at index \[1, 0\] is outside the"):
        package.run(bad)
    with pytest.raises(InputError, match="must be int32"):
        package.run(ids.astype(np.int8))
    with pytest.raises(InputError, match="token ids"):
        package.quantize_input(ids.astype(np.float32))
    with pytest.raises(InputError, match=r"outside int32"):
        package.prepare_input([[2**31] * LENGTH])


def test_version_1_manifests_refuse_version_2_features() -> None:
    package = mini_bert()
    manifest = dict(package.manifest)
    manifest["semantics"] = "aicommons-int/1"
    with pytest.raises(ManifestError, match=r"manifest.input.dtype is not a known field"):
        ModelPackage(manifest, package.tensors)
    manifest["input"] = {k: v for k, v in manifest["input"].items() if k != "dtype"}
    with pytest.raises(ManifestError, match="manifest.layers"):
        ModelPackage(manifest, package.tensors)
    manifest["semantics"] = "aicommons-int/3"
    with pytest.raises(ManifestError, match='manifest.semantics must be one of "aicommons-int/1"'):
        ModelPackage(manifest, package.tensors)


DETERMINISM_SCRIPT = """
import hashlib, sys
import numpy as np
from aicommons.runtime import load_package
package = load_package(sys.argv[1])
ids = np.load(sys.argv[2])
digest = hashlib.sha256(package.run(ids).tobytes())
for root in package.trace(ids[:3]).roots:
    digest.update(root)
print(package.matmul_path, digest.hexdigest())
"""


def test_mini_bert_identical_across_blas_threads_and_matmul_paths(tmp_path) -> None:
    package = mini_bert(seed=1)
    ids = token_batch(np.random.default_rng(7), 32)
    package.save(tmp_path / "bert.aicm")
    np.save(tmp_path / "ids.npy", ids)
    expected = hashlib.sha256(package.run(ids).tobytes())
    for root in package.trace(ids[:3]).roots:
        expected.update(root)
    results = set()
    for threads in ("1", "2"):
        for path in ("float32", "float64"):
            env = {
                **os.environ,
                "OPENBLAS_NUM_THREADS": threads,
                "OMP_NUM_THREADS": threads,
                "AICOMMONS_MATMUL_PATH": path,
            }
            completed = subprocess.run(
                [sys.executable, "-c", DETERMINISM_SCRIPT, str(tmp_path / "bert.aicm"),
                 str(tmp_path / "ids.npy")],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            used_path, digest = completed.stdout.split()
            assert used_path == path
            results.add(digest)
    assert results == {expected.hexdigest()}


@SETTINGS
@given(
    denominator=st.integers(1, 2**56),
    quotient=st.integers(-(2**31) + 1, 2**31 - 2),
    offset=st.sampled_from([-1, 0, 1, 2]),
)
def test_floor_division_by_reciprocal_is_exact(
    denominator: int, quotient: int, offset: int
) -> None:
    """The kernels' division without `//`: right at, just below and above every multiple."""
    from aicommons.runtime.loops import _floor_div

    numerator = quotient * denominator + offset * (denominator - 1 if offset == 2 else 1)
    assume(abs(numerator) < 2**62)
    got = _floor_div(numerator, denominator, 1.0 / float(denominator))
    assert got == numerator // denominator


def test_transformer_vectors_file_matches_the_reference() -> None:
    """docs/test-vectors/transformer-ops.json (scripts/make_transformer_vectors.py) is what the
    reference computes: the shared vectors other implementations check themselves against."""
    import importlib.util
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location(
        "make_transformer_vectors", root / "scripts" / "make_transformer_vectors.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = json.loads((root / "docs" / "test-vectors" / "transformer-ops.json").read_text())
    assert committed == json.loads(json.dumps(module.vectors()))
    ops = {entry["op"] for entry in committed["cases"]}
    assert ops == {"embed", "pad_mask", "matmul", "transpose", "softmax", "layernorm", "lookup",
                   "mean_pool", "l2norm"}  # fmt: skip
    for entry in committed["exp_neg_q30"]:
        assert ref.exp_neg_q30(entry["d"], entry["in_frac"]) == entry["value"]


@pytest.mark.skipif(not madd16.available(), reason="needs AVX2 (the float64 product runs instead)")
@SETTINGS
@given(
    rows=st.sampled_from([1, 3, 4, 5, 127, 128, 129]),
    fan_in=st.sampled_from([1, 2, 511, 512, 513, 1024, 1025, 1536]),
    channels=st.sampled_from([1, 15, 16, 17, 33]),
    mode=st.sampled_from(["random", "worst", "mixed"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_int16_vpmaddwd_product_is_exact_at_every_edge(
    rows: int, fan_in: int, channels: int, mode: str, seed: int
) -> None:
    """Tiles at every row, channel and fan-in-block edge; the worst accumulator (every term
    -32768 * -127, 512 of them in a block: 2 130 706 432 < 2^31)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-32768, 32768, (rows, fan_in))
    weight = rng.integers(-127, 128, (channels, fan_in))
    if mode == "worst":
        x[:] = -32768
        weight[:] = -127
    elif mode == "mixed":
        x = np.where(rng.random(x.shape) < 0.5, rng.choice([-32768, 32767], x.shape), x)
        weight = np.where(
            rng.random(weight.shape) < 0.5, rng.choice([-127, 127], weight.shape), weight
        )
    product = madd16.Int16Product(weight.astype(np.int8))
    expected = x @ weight.T  # int64, exact
    for fed in (x.astype(np.int16), x.astype(np.float32)):
        got = product(fed)
        assert got.dtype in (np.int32, np.int64)
        np.testing.assert_array_equal(got.astype(np.int64), expected)


def test_int16_dense_uses_vpmaddwd_unless_float64_or_turned_off(monkeypatch) -> None:
    weight = np.ones((4, 8), np.int8)
    requantize = Requantizer(
        np.zeros(4, np.int32), np.ones(4, np.int32), np.zeros(4, np.int32), -32768, 32767,
        "int16", 8, 32768 * 127,
    )  # fmt: skip
    on_float32 = LinearRequant(weight, requantize, "float32", "int16")
    on_float64 = LinearRequant(weight, requantize, "float64", "int16")
    assert on_float64.int_product is None and on_float64.matmul.dtype == np.float64
    assert (on_float32.int16_product is not None) == madd16.available()
    monkeypatch.setenv(madd16.MADD16_ENV, "0")
    off = LinearRequant(weight, requantize, "float32", "int16")
    assert off.int_product is None and off.matmul.dtype == np.float64
    x = np.full((3, 8), -32768, np.int16)
    for linear in (on_float32, on_float64, off):
        np.testing.assert_array_equal(linear(x), np.full((3, 4), -32768 * 8).clip(-32768))


@pytest.mark.skipif(not madd16.available(), reason="needs AVX2 (the float64 product runs instead)")
def test_int16_product_gives_the_same_bytes_on_several_threads(monkeypatch) -> None:
    rng = np.random.default_rng(8)
    x = rng.integers(-32768, 32768, (1000, 600)).astype(np.int16)  # two fan-in blocks
    weight = rng.integers(-127, 128, (40, 600)).astype(np.int8)
    product = madd16.Int16Product(weight)
    expected = x.astype(np.int64) @ weight.T.astype(np.int64)
    one_block = madd16.Int16Product(weight[:, :500])  # 500 terms: int32 sums, one block
    one_expected = x[:, :500].astype(np.int64) @ weight[:, :500].T.astype(np.int64)
    for count in ("1", "2", "3"):
        monkeypatch.setenv(madd16.THREADS_ENV, count)
        np.testing.assert_array_equal(product(x), expected)
        np.testing.assert_array_equal(one_block(x[:, :500]), one_expected)
    monkeypatch.setenv(madd16.THREADS_ENV, "zero")
    with pytest.raises(ValueError, match="AICOMMONS_THREADS must be an integer in"):
        product(x)


def test_version_1_graphs_refuse_int16_values_and_token_rows() -> None:
    from aicommons.runtime.graph import validate_graph

    tensors = {
        "w": np.ones((2, 3), np.int8),
        "b": np.zeros(2, np.int32),
        "m": np.ones(2, np.int32),
        "s": np.zeros(2, np.int32),
    }
    roles = {"weight": "w", "bias": "b", "multiplier": "m", "shift": "s"}

    def dense(out_shape: tuple, dtype: str = "int8") -> Layer:
        limits = RANGE[dtype]
        return Layer("fc", "dense", ("x",), "y", out_shape, out_dtype=dtype, tensors=roles,
                     attrs={"channels": 2, "lo": limits[0], "hi": limits[1]})  # fmt: skip

    validate_graph("x", (3,), [dense((2,))], ["y"], tensors)  # plain version 1
    with pytest.raises(PackageError, match="int16 values need semantics aicommons-int/2"):
        validate_graph("x", (3,), [dense((2,), "int16")], ["y"], tensors)
    with pytest.raises(PackageError, match="rank-2 input needs semantics aicommons-int/2"):
        validate_graph("x", (4, 3), [dense((4, 2))], ["y"], tensors)
    with pytest.raises(PackageError, match="input dtype int16 needs semantics aicommons-int/2"):
        validate_graph("x", (3,), [dense((2,))], ["y"], tensors, input_dtype="int16")
    # Version 2 takes all three.
    validate_graph("x", (4, 3), [dense((4, 2), "int16")], ["y"], tensors, input_dtype="int16",
                   version=2)  # fmt: skip
    mask = Layer("m", "pad_mask", ("x",), "y", (3,), attrs={"pad_id": 0})
    with pytest.raises(PackageError, match="op needs semantics aicommons-int/2"):
        validate_graph("x", (3,), [mask], ["y"], {})


def test_mean_pool_refuses_a_token_major_sequence_and_says_to_transpose() -> None:
    layer = Layer("pool", "mean_pool", ("h", "mask"), "y", (6,), out_dtype="int16")
    with pytest.raises(PackageError, match=r"transpose an \[L, D\] sequence with perm \[1, 0\]"):
        infer_out_shape(layer, [(4, 6), (4,)], {}, False, ("int16", "int8"))
    assert infer_out_shape(layer, [(6, 4), (4,)], {}, False, ("int16", "int8")) == (6,)
