"""The AVX2 int8 product equals the exact integer product: every tile, block and quad edge, the
fan-in bound, any thread count, and the chunk hand-over between the caller and its helpers
(a helper that never runs, one that finishes late, one caught copying rows).

Skipped as a whole on a CPU without AVX2 (nothing of it may be compiled there); the dispatch
to other paths on such a CPU is tested in test_runtime_plan.py.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_runtime_kernels import int8_array

from aicommons.runtime import avx2
from aicommons.runtime.kernels import LinearRequant, Requantizer

pytestmark = pytest.mark.skipif(not avx2.available(), reason="this CPU has no AVX2")


def exact(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return x.astype(np.int64) @ weight.T.astype(np.int64)


def float_requantizer(rng: np.random.Generator, channels: int, fan_in: int) -> Requantizer:
    bias = rng.integers(-(2**20), 2**20, channels)
    multiplier = rng.integers(1, 2**20, channels)
    shift = rng.integers(0, 40, channels)
    requantize = Requantizer(bias, multiplier, shift, -128, 127, "int8", fan_in)
    assert requantize.float_path
    return requantize


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_avx2_products_are_exact_at_every_edge(data: st.DataObject) -> None:
    """Rows around whole tiles and chunks, channels around whole blocks, fan-ins around whole
    quads (zero padded), any input dtype holding int8 values, 1-3 threads: the exact integer
    product, and its float requantisation equal to the Requantizer's."""
    chunk_rows = data.draw(st.sampled_from([avx2.TILE_ROWS, 2 * avx2.TILE_ROWS, None]))
    rows = data.draw(st.integers(0, 5 * avx2.TILE_ROWS + 3))
    fan_in = data.draw(st.integers(0, 70))
    channels = data.draw(st.integers(1, 2 * avx2.BLOCK + 3))
    weight = int8_array(data.draw, (channels, fan_in), low=-127)
    dtype = data.draw(st.sampled_from([np.int8, np.float32, np.float64, np.int32]))
    x = int8_array(data.draw, (rows, fan_in)).astype(dtype)
    threads = data.draw(st.integers(1, 3))
    product = avx2.Avx2Product(weight)
    if chunk_rows:  # small chunks, and helpers even for products this small
        product.chunk_rows, product.shared_min_rows = chunk_rows, 0
    got = product(x, threads)
    assert got.dtype == np.int32 and got.flags.c_contiguous and got.shape == (rows, channels)
    np.testing.assert_array_equal(got.astype(np.int64), exact(x, weight))
    requantize = float_requantizer(np.random.default_rng(rows * 100 + fan_in), channels, fan_in)
    r = requantize
    fused = product.requantized(x, r.scale, r.offset, r.lo, r.hi, r.float_dtype, threads)
    assert fused.dtype == r.float_dtype
    np.testing.assert_array_equal(fused, requantize(got))


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_pooled_products_equal_pooling_then_requantising(data: st.DataObject) -> None:
    """`pooled` (the s x s maxpool of rows in groups of s and columns in s blocks, requantised
    per chunk by whichever thread computed it) equals the requantisation of the pooled exact
    product, for phases 2 and 3, chunks of whole windows or not, alone or on 1-3 threads."""
    phase = data.draw(st.sampled_from([2, 3]))
    rows = phase * data.draw(st.integers(1, 12))
    width = data.draw(st.integers(1, 20))
    fan_in = data.draw(st.integers(1, 40))
    weight = int8_array(data.draw, (phase * width, fan_in), low=-127)
    x = int8_array(data.draw, (rows, fan_in))
    product = avx2.Avx2Product(weight)
    if data.draw(st.booleans()):  # shared: small chunks (not always whole windows), helpers
        product.chunk_rows = data.draw(st.sampled_from([avx2.TILE_ROWS, 2 * avx2.TILE_ROWS]))
        product.shared_min_rows = 0
    product.cached_rows = data.draw(st.sampled_from([1, 4, 6, 1000]))
    dots = exact(x, weight).reshape(rows // phase, phase, phase, width)
    pooled = dots.max(axis=(1, 2))
    r = float_requantizer(np.random.default_rng(rows + 7 * width), width, fan_in)
    threads = data.draw(st.integers(1, 3))
    got = product.pooled(x, phase, r.scale, r.offset, r.lo, r.hi, r.float_dtype, threads)
    assert got.dtype == r.float_dtype and got.shape == (rows // phase, width)
    np.testing.assert_array_equal(got, r(pooled))


def test_pooled_products_refuse_shapes_that_do_not_pool() -> None:
    product = avx2.Avx2Product(np.ones((6, 4), np.int8))
    scale = np.ones(3)
    with pytest.raises(ValueError, match=r"AVX2 product: 5 x 6 pooled by 2"):
        product.pooled(np.ones((5, 4), np.int8), 2, scale, scale, 0, 127, np.float32)
    with pytest.raises(ValueError, match=r"3 pooled channels, scale \(2,\)"):
        product.pooled(np.ones((4, 4), np.int8), 2, scale[:2], scale[:2], 0, 127, np.float32)


def test_avx2_tiles_reach_the_fan_in_bound_exactly() -> None:
    """Full row tiles, single rows and two threads at K = floor((2^31-1) / (128*127)): dots of
    +-(2^31-1024) from x = -128 (|x| = 128, the one magnitude int8 cannot negate) and 127
    against weights of +-127, whose pair sums 2 * 128 * 127 are the largest vpmaddubsw sees."""
    fan_in = (2**31 - 1) // (128 * 127)
    rng = np.random.default_rng(11)
    weight = np.stack(
        [np.full(fan_in, 127), np.full(fan_in, -127), rng.integers(-127, 128, fan_in)]
        + [np.where(np.arange(fan_in) < fan_in // 2, 127, -127)] * 30
    ).astype(np.int8)
    rows = [np.full(fan_in, v) for v in (-128, 127, -128, 127)]
    rows += [rng.integers(-128, 128, fan_in) for _ in range(5)]
    x = np.stack(rows).astype(np.int8)
    product = avx2.Avx2Product(weight)
    product.chunk_rows, product.shared_min_rows = avx2.TILE_ROWS, 0
    expected = exact(x, weight)
    for threads in (1, 2):
        np.testing.assert_array_equal(product(x, threads).astype(np.int64), expected)
    assert np.abs(expected).max() == fan_in * 128 * 127


def test_weights_outside_the_semantics_are_refused() -> None:
    """-128 (vpsignb would leave it negative where x < 0) and fan-ins past the int32 bound."""
    assert not avx2.fits(np.full((1, 4), -128, np.int8))
    assert not avx2.fits(np.full((1, (2**31 - 1) // (128 * 127) + 1), 127, np.int8))
    assert not avx2.fits(np.ones((1, 4), np.int16))
    with pytest.raises(ValueError, match=r"AVX2 product: weight \(1, 4\) must be int8"):
        avx2.Avx2Product(np.full((1, 4), -128, np.int8))
    product = avx2.Avx2Product(np.ones((2, 4), np.int8))
    with pytest.raises(ValueError, match=r"input \(3, 5\) does not fit fan-in 4"):
        product(np.ones((3, 5), np.int8))


def test_thread_count_follows_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(avx2.THREADS_ENV, "3")
    assert avx2.thread_count() == 3
    for bad in ("0", "two", "-1", ""):
        monkeypatch.setenv(avx2.THREADS_ENV, bad)
        with pytest.raises(ValueError, match="AICOMMONS_THREADS must be a positive integer"):
            avx2.thread_count()
    monkeypatch.delenv(avx2.THREADS_ENV)
    assert avx2.thread_count() == len(os.sched_getaffinity(0))


def chunked_job(rows: int = 22, chunk_rows: int = 4) -> tuple[tuple, np.ndarray]:
    """A product split into chunks, with its job tuple for `_share`/`_take_over` and the exact
    result (rows 22 = 5 whole chunks and a partial one)."""
    rng = np.random.default_rng(rows)
    weight = rng.integers(-127, 128, (21, 37)).astype(np.int8)
    x = rng.integers(-128, 128, (rows, 37)).astype(np.int8)
    product = avx2.Avx2Product(weight)
    a = avx2._int8_rows(x, product.quads)
    out = np.full((rows, 21), -7, dtype=np.int32)
    state = np.zeros(-(-rows // chunk_rows) + 1, dtype=np.int64)
    no_scale = avx2._NO_SCALE
    job = (a, product.packed, out, state, chunk_rows, no_scale, no_scale, 0.0, 0.0, 1)
    return job, exact(x, weight)


def test_the_caller_takes_over_a_chunk_a_helper_never_ran() -> None:
    """A helper claims chunk 0 and is never scheduled: the caller computes every other chunk,
    then chunk 0 itself (PENDING -> TAKEN), and never waits for the helper."""
    job, expected = chunked_job()
    out, state = job[2], job[3]
    state[0] = 1  # chunk 0 claimed by a helper that does nothing more
    avx2._share(*job, False)
    assert (state[2:] == avx2.DONE).all() and state[1] == avx2.PENDING
    assert avx2._take_over(*job) == -1
    assert state[1] == avx2.TAKEN
    np.testing.assert_array_equal(out, expected)


def test_a_late_helper_never_writes_rows_the_caller_took_over() -> None:
    """A helper that runs after the caller took chunk 0 over (and chunk 2 is DONE) computes
    them but writes neither; it emits only the chunks it moves from PENDING."""
    job, expected = chunked_job()
    out, state = job[2], job[3]
    state[1] = avx2.TAKEN
    state[3] = avx2.DONE
    avx2._share(*job, True)
    assert (out[:4] == -7).all() and (out[8:12] == -7).all()
    np.testing.assert_array_equal(out[4:8], expected[4:8])
    np.testing.assert_array_equal(out[12:], expected[12:])
    assert state[1] == avx2.TAKEN and (state[2:] == avx2.DONE).all()


def test_the_caller_waits_only_for_a_helper_copying_rows() -> None:
    """A chunk caught COMMITTING is reported (the caller yields and asks again) and left to the
    helper; nothing else is outstanding."""
    job, expected = chunked_job()
    out, state = job[2], job[3]
    state[0] = 2  # chunks 0 and 1 claimed by a helper
    avx2._share(*job, False)
    state[2] = avx2.COMMITTING  # the helper is copying chunk 1
    assert avx2._take_over(*job) == 1
    assert state[1] == avx2.TAKEN and (out[4:8] == -7).all()
    np.testing.assert_array_equal(out[:4], expected[:4])
    np.testing.assert_array_equal(out[8:], expected[8:])


def test_concurrent_callers_share_the_helpers_and_get_exact_bytes() -> None:
    """Four Python threads, each calling products on up to three threads: every result exact,
    whichever thread ran which chunk."""
    rng = np.random.default_rng(3)
    weight = rng.integers(-127, 128, (70, 300)).astype(np.int8)
    product = avx2.Avx2Product(weight)
    product.chunk_rows, product.shared_min_rows = avx2.TILE_ROWS, 0
    inputs = [rng.integers(-128, 128, (int(rng.integers(1, 90)), 300)) for _ in range(40)]
    failures: list[int] = []

    def work(offset: int) -> None:
        for i in range(offset, len(inputs), 4):
            x = inputs[i].astype(np.int8)
            if not np.array_equal(product(x, 1 + i % 3), exact(x, weight)):
                failures.append(i)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_dense_layers_at_bench_size_equal_the_float64_path() -> None:
    """784 -> 512 at batch 256 (64 chunks over two threads), the float requantisation fused
    into the product and the int64 one after it: the same bytes as the float64 path."""
    rng = np.random.default_rng(8)
    weight = rng.integers(-127, 128, (512, 784)).astype(np.int8)
    x = rng.integers(-128, 128, (256, 784)).astype(np.int8)
    fused = float_requantizer(rng, 512, 784)
    wide = Requantizer(
        rng.integers(-(2**30), 2**30, 512),
        np.full(512, 2**31 - 1),
        np.full(512, 62),
        -(2**31),
        2**31 - 1,
        "int32",
        784,
    )
    assert not wide.float_path
    for requantize in (fused, wide):
        on_avx2 = LinearRequant(weight, requantize, "avx2")
        assert on_avx2.int8_product.chunk_rows < 256
        assert on_avx2.int8_product.shared_min_rows < 256
        expected = LinearRequant(weight, requantize, "float64")(x)
        np.testing.assert_array_equal(on_avx2(x), expected)


def test_small_products_stay_on_the_calling_thread(monkeypatch) -> None:
    """Below SHARED_MIN_MACS (digits_cnn's 2048x24x64 and 1024x96x64 at batch 256) no helper
    is asked, even with many chunks and threads; at it, they are, with the same bytes."""
    rng = np.random.default_rng(5)
    weight = rng.integers(-127, 128, (64, 96)).astype(np.int8)
    product = avx2.Avx2Product(weight)
    x = rng.integers(-128, 128, (1024, 96)).astype(np.int8)
    assert avx2.SHARED_MIN_MACS > 1024 * 96 * 64 and product.chunk_rows < 1024
    asked: list[int] = []
    real_get = avx2._HELPERS.get
    monkeypatch.setattr(avx2._HELPERS, "get", lambda count: asked.append(count) or real_get(count))
    np.testing.assert_array_equal(product(x, 2).astype(np.int64), exact(x, weight))
    assert asked == []
    big = np.concatenate([x] * 2)
    assert big.shape[0] >= product.shared_min_rows
    np.testing.assert_array_equal(product(big, 2).astype(np.int64), exact(big, weight))
    assert asked == [1]


def test_products_work_in_a_forked_child() -> None:
    """The helpers are threads, which a fork does not copy: the child starts its own."""
    product = avx2.Avx2Product(np.ones((16, 8), np.int8))
    product.chunk_rows, product.shared_min_rows = avx2.TILE_ROWS, 0
    x = np.ones((40, 8), np.int8)
    product(x, 2)  # the parent has a helper now
    pid = os.fork()
    if pid == 0:  # the child: exit status 0 only for the right bytes, never back to pytest
        ok = False
        try:
            ok = all(np.array_equal(product(x, 2), np.full((40, 16), 8)) for _ in range(20))
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
