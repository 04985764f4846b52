"""Int8 dot products on AVX2 (vpmaddubsw, vpmaddwd), compiled by numba and shared among the CPUs
this process may use: exact int32 sums of int8 products on CPUs without VNNI.

Nothing here is compiled unless `available()` says the CPU and numba's target have AVX2; elsewhere
the runtime keeps its other products. Integer instructions only: no product saturates, no partial
sum ever leaves int32, and which thread computes which rows never changes a byte (`Avx2Product`).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import queue
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import config as numba_config
from numba.extending import intrinsic

from aicommons.runtime import vnni
from aicommons.runtime.loops import requantized

AVX2_ENV = "AICOMMONS_AVX2"
"""`0` turns the AVX2 products off (the float BLAS products are used, as on a CPU without)."""
THREADS_ENV = "AICOMMONS_THREADS"
"""How many threads one product may use (default: every CPU this process may run on)."""

LANES = 8
"""int32 lanes per ymm vector."""
TILE_ROWS = 4
TILE_VECTORS = 2
BLOCK = LANES * TILE_VECTORS
"""Output channels per tile column block (16 ymm registers: 4 x 2 accumulators, 2 weight
vectors, the broadcast input, its absolute value, ones and temporaries)."""
CHUNK_MACS = 1 << 20
"""Rows are shared out in chunks of about this many multiply-accumulates (tens of
microseconds), whole row tiles, so a late thread costs at most one chunk."""
CACHED_BYTES = 1 << 14
"""The int32 scratch rows a thread alone computes before pooling and requantising them."""
SHARED_MIN_MACS = 1 << 23
"""Products of fewer multiply-accumulates (about 0.1 ms on one core) run on the calling thread
alone: waking a helper, and taking over the chunks it has not finished, cost more than it
saves (measured on 2 loaded CPUs: digits_cnn at batch 256 took 0.32-0.47 ms with helpers in
its 3M and 6M products, 0.28-0.34 ms without)."""


def available() -> bool:
    """AVX2 on the host as LLVM sees it (which includes the OS saving ymm registers), numba
    targeting the host (NUMBA_CPU_NAME/NUMBA_CPU_FEATURES could name a CPU without it) and
    AICOMMONS_AVX2 not 0."""
    if os.environ.get(AVX2_ENV, "1") == "0":
        return False
    if numba_config.CPU_NAME or numba_config.CPU_FEATURES:
        return False
    return bool(vnni._host_features().get("avx2"))


def fits(weight: np.ndarray) -> bool:
    """Every weight in [-127, 127] (vpsignb cannot negate -128) and the fan-in bound of
    `vnni.fits_int32`: then the product below is exact."""
    return (
        weight.dtype == np.int8 and int(weight.min(initial=0)) >= -127 and vnni.fits_int32(weight)
    )


@functools.cache
def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def thread_count() -> int:
    """AICOMMONS_THREADS if set (a positive integer), else the CPUs this process may run on."""
    value = os.environ.get(THREADS_ENV)
    if value is None:
        return _usable_cpus()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive integer, got {value!r}")
    return int(value)


def _tile_intrinsic(rows: int):  # noqa: ANN202 (a numba intrinsic)
    """C[rows, BLOCK] = A[rows, 4q] (int8) @ B (int8, packed [q, BLOCK, 4]) in int32.

    Arguments (addresses and strides as integers): a, a row stride in bytes, b, quads q, c,
    c row stride in int32 elements. Per (row, vector, quad): s = vpsignb(b, x) (b negated where
    x < 0, zero where x = 0), p = vpmaddubsw(|x|, s) (|x| as unsigned bytes, adjacent pairs
    summed into int16), vpmaddwd(p, 1) (adjacent int16 pairs into int32), added to the lane.
    """

    @intrinsic
    def tile(typingctx, a, a_stride, b, quads, c, c_stride):  # noqa: ANN001, ANN202
        signature = types.void(a, a_stride, b, quads, c, c_stride)

        def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
            a_addr, a_step, b_addr, quad_count, c_addr, c_step = args
            i1, i8, i16, i32, i64 = (ir.IntType(n) for n in (1, 8, 16, 32, 64))
            lanes = ir.VectorType(i32, LANES)
            bytes_ = ir.VectorType(i8, 4 * LANES)
            halves = ir.VectorType(i16, 2 * LANES)
            module = builder.module

            def declare(name: str, result: ir.Type, arguments: list[ir.Type]) -> ir.Function:
                found = module.globals.get(name)
                return found or ir.Function(module, ir.FunctionType(result, arguments), name)

            sign = declare("llvm.x86.avx2.psign.b", bytes_, [bytes_, bytes_])
            pairs = declare("llvm.x86.avx2.pmadd.ub.sw", halves, [bytes_, bytes_])
            widen = declare("llvm.x86.avx2.pmadd.wd", lanes, [halves, halves])
            absolute = declare("llvm.abs.v32i8", bytes_, [bytes_, i1])
            a_ptr = builder.inttoptr(a_addr, i8.as_pointer())
            b_ptr = builder.inttoptr(b_addr, i8.as_pointer())
            c_ptr = builder.inttoptr(c_addr, i32.as_pointer())
            a_step = builder.sext(a_step, i64) if a_step.type.width < 64 else a_step
            c_step = builder.sext(c_step, i64) if c_step.type.width < 64 else c_step
            ones = ir.Constant(halves, [1] * (2 * LANES))
            zero = ir.Constant(lanes, [0] * LANES)
            undefined = ir.Constant(lanes, ir.Undefined)

            def const(value: int) -> ir.Constant:
                return ir.Constant(i64, value)

            entry = builder.block
            loop = builder.append_basic_block("avx2.loop")
            done = builder.append_basic_block("avx2.done")
            builder.cbranch(builder.icmp_signed(">", quad_count, const(0)), loop, done)

            builder.position_at_end(loop)
            quad = builder.phi(i64)
            quad.add_incoming(const(0), entry)
            accs = [[builder.phi(lanes) for _ in range(TILE_VECTORS)] for _ in range(rows)]
            for row in accs:
                for phi in row:
                    phi.add_incoming(zero, entry)
            b_offset = builder.mul(quad, const(4 * BLOCK))
            weights = []
            for v in range(TILE_VECTORS):
                where = builder.gep(b_ptr, [builder.add(b_offset, const(4 * LANES * v))])
                weights.append(builder.load(builder.bitcast(where, bytes_.as_pointer()), align=1))
            a_offset = builder.mul(quad, const(4))
            updated = []
            for r in range(rows):
                where = builder.gep(a_ptr, [builder.add(a_offset, builder.mul(a_step, const(r)))])
                four = builder.load(builder.bitcast(where, i32.as_pointer()), align=1)
                lane0 = builder.insert_element(undefined, four, const(0))
                spread = builder.shuffle_vector(lane0, undefined, ir.Constant(lanes, [0] * LANES))
                x = builder.bitcast(spread, bytes_)
                magnitude = builder.call(absolute, [x, ir.Constant(i1, 0)])  # |-128| = 0x80
                row = []
                for v in range(TILE_VECTORS):
                    signed = builder.call(sign, [weights[v], x])
                    paired = builder.call(pairs, [magnitude, signed])
                    row.append(builder.add(accs[r][v], builder.call(widen, [paired, ones])))
                updated.append(row)
            next_quad = builder.add(quad, const(1))
            body_end = builder.block
            quad.add_incoming(next_quad, body_end)
            for r in range(rows):
                for v in range(TILE_VECTORS):
                    accs[r][v].add_incoming(updated[r][v], body_end)
            builder.cbranch(builder.icmp_signed("<", next_quad, quad_count), loop, done)

            builder.position_at_end(done)
            finals = []
            for r in range(rows):
                for v in range(TILE_VECTORS):
                    final = builder.phi(lanes)
                    final.add_incoming(zero, entry)
                    final.add_incoming(updated[r][v], body_end)
                    finals.append((r, v, final))
            for r, v, final in finals:
                offset = builder.add(builder.mul(c_step, const(r)), const(v * LANES))
                target = builder.bitcast(builder.gep(c_ptr, [offset]), lanes.as_pointer())
                builder.store(final, target, align=1)
            return context.get_dummy_value()

        return signature, codegen

    return tile


# Chunk states, one int64 each, changed only by atomic operations (sequentially consistent, so
# a thread that reads DONE also sees the rows written before it).
PENDING, COMMITTING, DONE, TAKEN = 0, 1, 2, 3


@intrinsic
def _fetch_add(typingctx, address, value):  # noqa: ANN001, ANN202
    """The int64 at `address`, then add `value` to it, atomically."""

    def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
        i64 = ir.IntType(64)
        pointer = builder.inttoptr(args[0], i64.as_pointer())
        return builder.atomic_rmw("add", pointer, builder.sext(args[1], i64), "seq_cst")

    return types.int64(address, types.int64), codegen


@intrinsic
def _compare_exchange(typingctx, address, expected, new):  # noqa: ANN001, ANN202
    """The int64 at `address`; it becomes `new` if it was `expected`, atomically."""

    def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
        i64 = ir.IntType(64)
        pointer = builder.inttoptr(args[0], i64.as_pointer())
        pair = builder.cmpxchg(pointer, args[1], args[2], "seq_cst", "seq_cst")
        return builder.extract_value(pair, 0)

    return types.int64(address, types.int64, types.int64), codegen


_compiled = numba.njit(cache=True, nogil=True, boundscheck=False, error_model="numpy")
_TILE = _tile_intrinsic(TILE_ROWS)
_ROW = _tile_intrinsic(1)


@_compiled
def _int8_rows(x: np.ndarray, quads: int) -> np.ndarray:
    """int8 rows [R, 4 * quads]: x (int8 values in any dtype), zero padded."""
    rows, fan_in = x.shape
    out = np.zeros((rows, 4 * quads), dtype=np.int8)
    for r in range(rows):
        for k in range(fan_in):
            out[r, k] = np.int8(x[r, k])
    return out


@_compiled
def _compute(
    a: np.ndarray, packed: np.ndarray, first: int, stop: int, c: np.ndarray, c_first: int
) -> None:
    """c[r - c_first, :blocks * BLOCK] = a[r] @ W^T for rows first <= r < stop."""
    blocks, quads, block = packed.shape[0], packed.shape[1], packed.shape[2]
    step, width = a.shape[1], c.shape[1]
    full = first + (stop - first) // TILE_ROWS * TILE_ROWS
    for j in range(blocks):
        b = packed[j].ctypes.data
        column = c.ctypes.data + 4 * j * block
        for i in range(first, full, TILE_ROWS):
            target = column + 4 * (i - c_first) * width
            _TILE(a.ctypes.data + i * step, step, b, quads, target, width)
        for i in range(full, stop):
            target = column + 4 * (i - c_first) * width
            _ROW(a.ctypes.data + i * step, step, b, quads, target, width)


@_compiled
def _emit(
    dots: np.ndarray,
    count: int,
    out: np.ndarray,
    first: int,
    scale: np.ndarray,
    offset: np.ndarray,
    lo: float,
    hi: float,
) -> None:
    """out[first + r] = the first `count` rows of dots, requantised when `scale` is given (the
    float requantisation of `loops.requantized`), else copied; out may have fewer columns."""
    channels = out.shape[1]
    if scale.shape[0] == 0:
        for r in range(count):
            for q in range(channels):
                out[first + r, q] = dots[r, q]
        return
    for r in range(count):
        for q in range(channels):
            out[first + r, q] = requantized(dots[r, q], scale[q], offset[q], lo, hi)


@_compiled
def _emit_pooled(
    dots: np.ndarray,
    count: int,
    out: np.ndarray,
    first: int,
    phase: int,
    scale: np.ndarray,
    offset: np.ndarray,
    lo: float,
    hi: float,
) -> None:
    """out[(first + r) / s, q] = requantized(the max of dots[r + i, j * width + q], i, j < s)
    for r = 0, s, 2s... < count (s = phase, width = out's columns): the s x s maxpool of a
    phase-ordered conv product (`ConvKernel`), then the float requantisation. Pooling first
    is exact: the requantisation is non-decreasing in the accumulator."""
    width = out.shape[1]
    best = np.empty(width, dtype=dots.dtype)
    for r in range(0, count, phase):
        for q in range(width):
            best[q] = dots[r, q]
        for i in range(phase):
            for j in range(phase):
                if i + j > 0:
                    for q in range(width):
                        v = dots[r + i, j * width + q]
                        best[q] = v if v > best[q] else best[q]
        row = (first + r) // phase
        for q in range(width):
            out[row, q] = requantized(best[q], scale[q], offset[q], lo, hi)


@_compiled
def _emit_any(
    dots: np.ndarray,
    count: int,
    out: np.ndarray,
    first: int,
    scale: np.ndarray,
    offset: np.ndarray,
    lo: float,
    hi: float,
    phase: int,
) -> None:
    """`_emit`, or `_emit_pooled` for a pool phase above 1 (chunks then start at multiples of
    the phase)."""
    if phase > 1:
        _emit_pooled(dots, count, out, first, phase, scale, offset, lo, hi)
    else:
        _emit(dots, count, out, first, scale, offset, lo, hi)


@_compiled
def _share(
    a: np.ndarray,
    packed: np.ndarray,
    out: np.ndarray,
    state: np.ndarray,
    chunk_rows: int,
    scale: np.ndarray,
    offset: np.ndarray,
    lo: float,
    hi: float,
    phase: int,
    helper: bool,
) -> None:
    """Claim chunks of rows (state[0] counts the claims) and compute them until none is left,
    each into this thread's scratch, then into `out` (`_emit`). The caller marks its chunks
    DONE; a helper emits a chunk only if it moves its state PENDING -> COMMITTING before the
    caller takes it over (PENDING -> TAKEN), so no helper writes into `out` once the caller
    has returned it."""
    rows, chunks = a.shape[0], state.shape[0] - 1
    scratch = np.empty((chunk_rows, packed.shape[0] * packed.shape[2]), dtype=np.int32)
    base = state.ctypes.data
    while True:
        i = _fetch_add(base, 1)
        if i >= chunks:
            return
        first = i * chunk_rows
        stop = min(rows, first + chunk_rows)
        flag = base + 8 * (1 + i)
        _compute(a, packed, first, stop, scratch, first)
        if not helper:
            _emit_any(scratch, stop - first, out, first, scale, offset, lo, hi, phase)
            _compare_exchange(flag, PENDING, DONE)
        elif _compare_exchange(flag, PENDING, COMMITTING) == PENDING:
            _emit_any(scratch, stop - first, out, first, scale, offset, lo, hi, phase)
            _compare_exchange(flag, COMMITTING, DONE)


@_compiled
def _take_over(
    a: np.ndarray,
    packed: np.ndarray,
    out: np.ndarray,
    state: np.ndarray,
    chunk_rows: int,
    scale: np.ndarray,
    offset: np.ndarray,
    lo: float,
    hi: float,
    phase: int,
) -> int:
    """After the caller's `_share` (every chunk claimed): compute every chunk a helper claimed
    but has not begun to emit, into `out` (the helper's commit will then fail). Returns a
    chunk a helper is still emitting (the caller yields and calls again), or -1 when every
    row is in."""
    rows, chunks = a.shape[0], state.shape[0] - 1
    scratch = np.empty((chunk_rows, packed.shape[0] * packed.shape[2]), dtype=np.int32)
    base = state.ctypes.data
    emitting = -1
    for i in range(chunks):
        seen = _compare_exchange(base + 8 * (1 + i), PENDING, TAKEN)
        if seen == PENDING:
            first = i * chunk_rows
            stop = min(rows, first + chunk_rows)
            _compute(a, packed, first, stop, scratch, first)
            _emit_any(scratch, stop - first, out, first, scale, offset, lo, hi, phase)
        elif seen == COMMITTING:
            emitting = i
    return emitting


@_compiled
def _alone(
    x: np.ndarray,
    packed: np.ndarray,
    out: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    lo: float,
    hi: float,
    phase: int,
    chunk_rows: int,
) -> None:
    """The whole product on the calling thread, in one call (small products); pooled, then
    `chunk_rows` rows at a time (a multiple of the phase) through a scratch that stays in
    cache."""
    a = _int8_rows(x, packed.shape[1])
    rows = a.shape[0]
    if phase == 1:  # unpooled: one pass each (chunking measured no faster here)
        whole = np.empty((rows, packed.shape[0] * packed.shape[2]), dtype=np.int32)
        _compute(a, packed, 0, rows, whole, 0)
        _emit(whole, rows, out, 0, scale, offset, lo, hi)
        return
    scratch = np.empty((min(rows, chunk_rows), packed.shape[0] * packed.shape[2]), np.int32)
    for first in range(0, rows, chunk_rows):
        stop = min(rows, first + chunk_rows)
        _compute(a, packed, first, stop, scratch, first)
        _emit_any(scratch, stop - first, out, first, scale, offset, lo, hi, phase)


class _Helpers:
    """Daemon threads that join products: each takes every job put to it and claims chunks of
    it with `_share`; a job whose chunks are all claimed costs it nothing. The caller never
    waits for a helper that has not started copying rows, so a helper that the OS does not run
    (a busy machine) delays nothing."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # One queue per helper, given a job only when empty: a starved helper (a busy
        # machine) keeps at most one job's arrays waiting.
        self.queues: list[queue.SimpleQueue] = []

    def get(self, count: int) -> list[queue.SimpleQueue]:
        with self.lock:
            while len(self.queues) < count:
                jobs: queue.SimpleQueue = queue.SimpleQueue()
                thread = threading.Thread(
                    target=_serve, args=(jobs,), name="aicommons-avx2", daemon=True
                )
                thread.start()
                self.queues.append(jobs)
            return self.queues[:count]

    def forget(self) -> None:
        """After fork: the child has none of the parent's threads."""
        self.lock = threading.Lock()
        self.queues = []


def _serve(jobs: queue.SimpleQueue) -> None:
    while True:
        job = jobs.get()
        # A failed helper costs nothing but time: the caller computes every row it does not.
        with contextlib.suppress(Exception):
            _share(*job, True)
        job = None  # the arrays are the caller's again while this helper waits


_HELPERS = _Helpers()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_HELPERS.forget)


class Avx2Product:
    """x [R, K] (int8 values, any dtype) @ W^T for a fixed int8 W [C, K], exact, as int32 [R, C].

    vpmaddubsw multiplies unsigned bytes by signed bytes and adds adjacent pairs into int16 with
    saturation. It gets |x| (vpabsb; |-128| = 128 as an unsigned byte) and w * sign(x)
    (vpsignb, needing w >= -127), whose products are x * w; each pair sum is at most
    2 * 128 * 127 = 32512 < 2^15 in magnitude, so it never saturates. vpmaddwd by ones adds
    adjacent pairs into int32 exactly, so each lane gains the sum of four products; after any
    subset of the terms a lane is at most K * 128 * 127 < 2^31 (`vnni.fits_int32`): no int32
    addition wraps. Zero padding (fan-in to quads, channels to blocks) adds zero terms.

    Rows are computed in chunks shared by the calling thread and up to `thread_count() - 1`
    helpers (`_share`); every element is one kernel's exact sum whichever thread computes it,
    so the bytes do not depend on the thread count or on which thread ran what.
    """

    def __init__(self, weight: np.ndarray) -> None:
        channels, fan_in = weight.shape
        if not fits(weight):
            raise ValueError(
                f"AVX2 product: weight {weight.shape} must be int8 in [-127, 127] with int32 sums"
            )
        self.channels = channels
        self.fan_in = fan_in
        self.quads = max(1, -(-fan_in // 4))
        blocks = -(-channels // BLOCK)
        padded = np.zeros((blocks * BLOCK, 4 * self.quads), dtype=np.int8)
        padded[:channels, :fan_in] = weight
        # [blocks, quads, BLOCK, 4]: one tile column's weights for one quad are contiguous.
        self.packed = np.ascontiguousarray(
            padded.reshape(blocks, BLOCK, self.quads, 4).transpose(0, 2, 1, 3)
        )
        row_macs = 4 * self.quads * blocks * BLOCK
        self.chunk_rows = max(TILE_ROWS, CHUNK_MACS // row_macs // TILE_ROWS * TILE_ROWS)
        self.shared_min_rows = -(-SHARED_MIN_MACS // row_macs)
        """Fewer rows than this (or than one chunk) run on the calling thread alone..."""
        self.cached_rows = max(1, CACHED_BYTES // (4 * blocks * BLOCK * TILE_ROWS)) * TILE_ROWS
        """...pooled ones this many at a time, so the int32 scratch stays in the L1 cache."""

    def __call__(self, x: np.ndarray, threads: int | None = None) -> np.ndarray:
        """x [R, K] -> int32 [R, C], C-contiguous, on up to `threads` threads (default
        `thread_count()`)."""
        out = np.empty((x.shape[0], self.channels), dtype=np.int32)
        return self._run(x, out, _NO_SCALE, _NO_SCALE, 0.0, 0.0, threads)

    def requantized(
        self,
        x: np.ndarray,
        scale: np.ndarray,
        offset: np.ndarray,
        lo: int,
        hi: int,
        dtype: type,
        threads: int | None = None,
    ) -> np.ndarray:
        """floor(clamp(dot * scale + offset, lo, hi)) per channel, in float64 (the float
        requantisation, `loops.requantized`, exact where its bound holds), as `dtype` [R, C]:
        each chunk of rows is requantised by the thread that computed it, while it is cached."""
        if scale.shape != (self.channels,) or offset.shape != (self.channels,):
            raise ValueError(f"AVX2 product: {self.channels} channels, scale {scale.shape}")
        out = np.empty((x.shape[0], self.channels), dtype=dtype)
        scale = np.ascontiguousarray(scale, dtype=np.float64)
        offset = np.ascontiguousarray(offset, dtype=np.float64)
        return self._run(x, out, scale, offset, float(lo), float(hi), threads)

    def pooled(
        self,
        x: np.ndarray,
        phase: int,
        scale: np.ndarray,
        offset: np.ndarray,
        lo: int,
        hi: int,
        dtype: type,
        threads: int | None = None,
    ) -> np.ndarray:
        """`requantized` of the s x s maxpool (s = `phase`) of the product, whose rows come in
        groups of s and whose columns are s blocks of C / s (`_emit_pooled`): [R / s, C / s],
        pooled and requantised by the thread that computed each chunk, while it is cached."""
        width = self.channels // phase
        if phase < 2 or x.shape[0] % phase or self.channels % phase:
            raise ValueError(f"AVX2 product: {x.shape[0]} x {self.channels} pooled by {phase}")
        if scale.shape != (width,) or offset.shape != (width,):
            raise ValueError(f"AVX2 product: {width} pooled channels, scale {scale.shape}")
        out = np.empty((x.shape[0] // phase, width), dtype=dtype)
        scale = np.ascontiguousarray(scale, dtype=np.float64)
        offset = np.ascontiguousarray(offset, dtype=np.float64)
        return self._run(x, out, scale, offset, float(lo), float(hi), threads, phase)

    def _run(
        self,
        x: np.ndarray,
        out: np.ndarray,
        scale: np.ndarray,
        offset: np.ndarray,
        lo: float,
        hi: float,
        threads: int | None,
        phase: int = 1,
    ) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.fan_in:
            raise ValueError(f"AVX2 product: input {x.shape} does not fit fan-in {self.fan_in}")
        rows = x.shape[0]
        x = np.ascontiguousarray(x)
        # Chunks of whole pool windows: a multiple of the phase (and of whole row tiles).
        step = TILE_ROWS if phase == 1 else TILE_ROWS * phase // math.gcd(TILE_ROWS, phase)
        if rows <= self.chunk_rows or rows < self.shared_min_rows:  # no helpers
            cached = self.cached_rows if phase == 1 else max(step, self.cached_rows // step * step)
            _alone(x, self.packed, out, scale, offset, lo, hi, phase, cached)
            return out
        a = x if x.dtype == np.int8 and self.fan_in == 4 * self.quads else None
        a = _int8_rows(x, self.quads) if a is None else a
        chunk_rows = max(step, self.chunk_rows // step * step)
        chunks = -(-rows // chunk_rows)
        state = np.zeros(chunks + 1, dtype=np.int64)
        helpers = min(chunks, threads or thread_count()) - 1
        job = (a, self.packed, out, state, chunk_rows, scale, offset, lo, hi, phase)
        for jobs in _HELPERS.get(helpers) if helpers > 0 else ():
            if jobs.empty():  # a helper still holding an earlier job is not running: skip it
                jobs.put(job)
        _share(*job, False)
        if helpers > 0:
            while _take_over(*job) >= 0:
                os.sched_yield()
        return out


_NO_SCALE = np.zeros(0, dtype=np.float64)
"""`_emit` copies dot products when given no requantisation scale."""
