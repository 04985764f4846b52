"""The aicommons-int/2 steps of int_ops.vy equal the pure-int reference, value for value.

Each transformer `<op>_step` (and the row decoder every step reads through) on random rows at
the spec's extremes: int16 scores at any `in_frac`, masked and all-masked softmax rows,
constant and extreme layer-norm rows, zero vectors for l2norm, every transpose of rank <= 4.
The whole-layer check (verifier == runtime kernels == reference) is test_market_transformer.py.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import boa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicommons.chain.compile import compile_source_file, load_boa
from aicommons.runtime import reference as ref

HARNESS = Path(__file__).resolve().parent / "transformer_ops_harness.vy"
INT16 = st.integers(ref.INT16_MIN, ref.INT16_MAX)
INT32 = st.integers(ref.INT32_MIN, ref.INT32_MAX)


@pytest.fixture(scope="module")
def ops():
    with boa.env.anchor():
        yield load_boa(compile_source_file(HARNESS))


def _bounds(draw_lo: int, draw_hi: int) -> tuple[int, int]:
    return min(draw_lo, draw_hi), max(draw_lo, draw_hi)


@settings(max_examples=40, deadline=None)
@given(
    width=st.sampled_from([1, 2, 4]),
    data=st.data(),
)
def test_decode_reads_big_endian_twos_complement(ops, width: int, data) -> None:
    count_all = data.draw(st.integers(1, 40))
    dtype = {1: ">i1", 2: ">i2", 4: ">i4"}[width]
    info = np.iinfo(dtype)
    values = data.draw(
        st.lists(st.integers(int(info.min), int(info.max)), min_size=count_all, max_size=count_all)
    )
    blob = np.array(values, dtype=dtype).tobytes()
    stride = data.draw(st.integers(1, 3))
    start = data.draw(st.integers(0, count_all - 1))
    count = data.draw(st.integers(0, (count_all - 1 - start) // stride + 1))
    expected = values[start : start + stride * count : stride]
    assert ops.decode(blob, start, count, stride, width) == expected
    with boa.reverts("InvalidElement"):
        ops.decode(blob, count_all, 1, 1, width)


@settings(max_examples=30, deadline=None)
@given(
    token=INT16,
    position=INT16,
    mt=st.integers(0, 2**31 - 1),
    mp=st.integers(0, 2**31 - 1),
    shift=st.integers(0, 62),
    lo=INT16,
    hi=INT16,
)
def test_embed_step(ops, token, position, mt, mp, shift, lo, hi) -> None:
    lo, hi = _bounds(lo, hi)
    expected = ref.embed(
        np.array([[0]]),
        np.array([[token]]),
        np.array([[position]]),
        np.array([mt, mp]),
        np.array([shift]),
        lo,
        hi,
    )[0, 0, 0]
    assert ops.embed_step(token, position, mt, mp, shift, lo, hi) == int(expected)


@settings(max_examples=20, deadline=None)
@given(token=INT32, pad=INT32)
def test_pad_mask_step(ops, token: int, pad: int) -> None:
    for pad_id in (pad, token):
        expected = int(ref.pad_mask(np.array([token]), pad_id)[0])
        assert ops.pad_mask_step(token, pad_id) == expected


@settings(max_examples=30, deadline=None)
@given(data=st.data(), multiplier=st.integers(1, 2**31 - 1), shift=st.integers(0, 62))
def test_matmul_step(ops, data, multiplier: int, shift: int) -> None:
    fan_in = data.draw(st.integers(1, 160))
    a = data.draw(st.lists(INT16, min_size=fan_in, max_size=fan_in))
    b = data.draw(st.lists(INT16, min_size=fan_in, max_size=fan_in))
    lo, hi = _bounds(data.draw(INT16), data.draw(INT16))
    expected = ref.matmul(
        np.array([a]).reshape(1, 1, fan_in),
        np.array([b]).reshape(1, fan_in, 1),
        np.array([multiplier]),
        np.array([shift]),
        lo,
        hi,
    )[0, 0, 0]
    assert ops.matmul_step(a, b, multiplier, shift, lo, hi) == int(expected)


def test_transpose_step_every_permutation(ops) -> None:
    rng = np.random.default_rng(5)
    for rank in (1, 2, 3, 4):
        in_shape = tuple(int(v) for v in rng.integers(1, 5, rank))
        x = np.arange(int(np.prod(in_shape))).reshape(in_shape)
        for perm in itertools.permutations(range(rank)):
            y = x.transpose(perm)
            for flat in rng.integers(0, y.size, 5):
                got = ops.transpose_step(list(y.shape), list(perm), int(flat))
                assert got == int(y.reshape(-1)[flat]), (in_shape, perm, flat)


@settings(max_examples=40, deadline=None)
@given(d=st.integers(0, 2**16 - 1), in_frac=st.integers(0, 30))
def test_exp_neg_q30(ops, d: int, in_frac: int) -> None:
    assert ops.exp_neg_q30(d, in_frac) == ref.exp_neg_q30(d, in_frac)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), in_frac=st.integers(0, 30))
def test_softmax_step(ops, data, in_frac: int) -> None:
    length = data.draw(st.integers(1, 130))
    row = data.draw(st.lists(INT16, min_size=length, max_size=length))
    mask = data.draw(
        st.lists(st.sampled_from([0, 1, 1, 1, -3, 7]), min_size=length, max_size=length)
    )
    expected = ref.softmax_row(row, mask, in_frac)
    for j in {0, length - 1, data.draw(st.integers(0, length - 1))}:
        assert ops.softmax_step(row, mask, j, in_frac) == expected[j]


def test_softmax_step_all_masked_and_flat_rows(ops) -> None:
    assert ops.softmax_step([5, -7, 9], [0, 0, 0], 1, 4) == 0
    flat = [ref.INT16_MIN] * 128
    expected = ref.softmax_row(flat, [1] * 128, 0)
    assert ops.softmax_step(flat, [1] * 128, 77, 0) == expected[77]
    spread = [ref.INT16_MAX, ref.INT16_MIN]
    assert [ops.softmax_step(spread, [1, 1], j, 0) for j in (0, 1)] == ref.softmax_row(
        spread, [1, 1], 0
    )


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_layernorm_step(ops, data) -> None:
    width = data.draw(st.integers(2, 400))
    row = data.draw(st.lists(INT16, min_size=width, max_size=width))
    i = data.draw(st.integers(0, width - 1))
    multiplier = data.draw(st.integers(ref.SIGNED_MULTIPLIER_MIN, 2**31 - 1))
    shift = data.draw(st.integers(0, 62))
    bias = data.draw(INT32)
    lo, hi = _bounds(data.draw(INT16), data.draw(INT16))
    m, s, b = [0] * width, [0] * width, [0] * width
    m[i], s[i], b[i] = multiplier, shift, bias
    expected = ref.layernorm_row(row, m, s, b, lo, hi)[i]
    assert ops.layernorm_step(row, i, multiplier, shift, bias, lo, hi) == expected


def test_layernorm_step_extremes(ops) -> None:
    width = 1024
    for row in (
        [ref.INT16_MAX] * width,  # constant: r = 0
        [ref.INT16_MAX, ref.INT16_MIN] * (width // 2),
        [ref.INT16_MIN] + [ref.INT16_MAX] * (width - 1),
    ):
        for i in (0, 1, width - 1):
            m, s, b = [2**31 - 1] * width, [0] * width, [-5] * width
            expected = ref.layernorm_row(row, m, s, b, -(2**31), 2**31 - 1)[i]
            assert ops.layernorm_step(row, i, 2**31 - 1, 0, -5, -(2**31), 2**31 - 1) == expected


@settings(max_examples=20, deadline=None)
@given(x=INT16, entry=INT16)
def test_lookup_step(ops, x: int, entry: int) -> None:
    table = np.zeros(65536, dtype=np.int64)
    table[x + 32768] = entry
    assert ops.lookup_step(x, 32768, x + 32768, entry) == int(
        ref.lookup(np.array([x]), table, 32768)[0]
    )
    with boa.reverts("InvalidElement"):
        ops.lookup_step(x, 32768, (x + 32769) % 65536, entry)


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_mean_pool_step(ops, data) -> None:
    length = data.draw(st.integers(1, 130))
    row = data.draw(st.lists(INT16, min_size=length, max_size=length))
    mask = data.draw(st.lists(st.sampled_from([0, 1, 1]), min_size=length, max_size=length))
    assert ops.mean_pool_step(row, mask) == ref.mean_pool_row(row, mask)


@settings(max_examples=30, deadline=None)
@given(data=st.data(), out_frac=st.integers(0, 30))
def test_l2norm_step(ops, data, out_frac: int) -> None:
    width = data.draw(st.integers(1, 400))
    row = data.draw(st.lists(INT16, min_size=width, max_size=width))
    if data.draw(st.booleans()):
        row = [0] * width
    lo, hi = _bounds(data.draw(INT32), data.draw(INT32))
    i = data.draw(st.integers(0, width - 1))
    assert ops.l2norm_step(row, i, out_frac, lo, hi) == ref.l2norm_row(row, out_frac, lo, hi)[i]
