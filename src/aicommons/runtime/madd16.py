"""Int16 x int8 dot products on AVX2's vpmaddwd, compiled by numba: exact integer sums of the
products of int16 activations and int8 weights (semantics version 2's dense layers).

Nothing here is compiled unless `available()` says the CPU and numba's target have AVX2;
elsewhere the runtime keeps its float64 BLAS product. Integer instructions only: no rounding,
no saturation, and no partial sum ever leaves int32 inside a fan-in block or int64 across them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import config as numba_config
from numba.extending import intrinsic

INTRINSIC = "llvm.x86.avx2.pmadd.wd"
"""vpmaddwd ymm: 16 x int16 times 16 x int16, adjacent pairs of products summed to 8 x int32."""
LANES = 8
"""int32 lanes (output channels) per vector."""
TILE_ROWS, TILE_VECTORS = 4, 2
"""Register tile: 4 rows x 2 vectors of accumulators, 2 weight vectors, 1 broadcast (16 ymm)."""
BLOCK = LANES * TILE_VECTORS
"""Output channels per tile column block."""
MAX_BLOCK_PAIRS = 256
"""Pairs of fan-in terms per block: 512 terms of |x * w| <= 32768 * 127 sum to at most
2 130 706 432 < 2^31, so an int32 accumulator never wraps, in any order."""
MADD16_ENV = "AICOMMONS_MADD16"
"""`0` turns these products off (the float64 BLAS product is used, as on a CPU without AVX2)."""


@functools.cache
def _host_features() -> dict[str, bool]:
    import llvmlite.binding as llvm

    return dict(llvm.get_host_cpu_features())


def available() -> bool:
    """AVX2 on the host as LLVM sees it, numba targeting the host, and not turned off."""
    if os.environ.get(MADD16_ENV, "1") == "0":
        return False
    if numba_config.CPU_NAME or numba_config.CPU_FEATURES:
        return False
    return bool(_host_features().get("avx2"))


def _tile_intrinsic(rows: int):  # noqa: ANN202 (a numba intrinsic)
    """C[rows, BLOCK] = A[rows, 2p] (int16) @ B (int16, packed [p, BLOCK, 2]) in int32.

    Arguments (addresses and strides as int64): a, a row stride in bytes, b, pairs p, c, c row
    stride in int32 elements. One vpmaddwd and one vpaddd per (row, vector, pair):
    c[r, j] += a[r, 2q] * b[q, j, 0] + a[r, 2q + 1] * b[q, j, 1].
    """

    @intrinsic
    def tile(typingctx, a, a_stride, b, pairs, c, c_stride):  # noqa: ANN001, ANN202
        signature = types.void(a, a_stride, b, pairs, c, c_stride)

        def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
            a_addr, a_step, b_addr, pair_count, c_addr, c_step = args
            i8, i16, i32, i64 = ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)
            vector = ir.VectorType(i32, LANES)
            halves = ir.VectorType(i16, 2 * LANES)
            module = builder.module
            madd = module.globals.get(INTRINSIC) or ir.Function(
                module, ir.FunctionType(vector, [halves, halves]), INTRINSIC
            )
            a_ptr = builder.inttoptr(a_addr, i8.as_pointer())
            b_ptr = builder.inttoptr(b_addr, i8.as_pointer())
            c_ptr = builder.inttoptr(c_addr, i32.as_pointer())

            def const(value: int) -> ir.Constant:
                return ir.Constant(i64, value)

            zero = ir.Constant(vector, [0] * LANES)
            entry = builder.block
            loop = builder.append_basic_block("madd.loop")
            done = builder.append_basic_block("madd.done")
            builder.cbranch(builder.icmp_signed(">", pair_count, const(0)), loop, done)

            builder.position_at_end(loop)
            pair = builder.phi(i64)
            pair.add_incoming(const(0), entry)
            accs = [[builder.phi(vector) for _ in range(TILE_VECTORS)] for _ in range(rows)]
            for row in accs:
                for phi in row:
                    phi.add_incoming(zero, entry)
            # Packed weights: 4 bytes (2 x int16) per channel per pair, BLOCK channels a pair.
            b_offset = builder.mul(pair, const(4 * BLOCK))
            weights = []
            for v in range(TILE_VECTORS):
                where = builder.gep(b_ptr, [builder.add(b_offset, const(4 * LANES * v))])
                weights.append(builder.load(builder.bitcast(where, halves.as_pointer()), align=1))
            a_offset = builder.mul(pair, const(4))
            updated = []
            for r in range(rows):
                where = builder.add(a_offset, builder.mul(a_step, const(r)))
                two = builder.load(
                    builder.bitcast(builder.gep(a_ptr, [where]), i32.as_pointer()), align=1
                )
                lane0 = builder.insert_element(ir.Constant(vector, ir.Undefined), two, const(0))
                spread = builder.shuffle_vector(
                    lane0, ir.Constant(vector, ir.Undefined), ir.Constant(vector, [0] * LANES)
                )
                spread16 = builder.bitcast(spread, halves)
                updated.append(
                    [
                        builder.add(accs[r][v], builder.call(madd, [spread16, weights[v]]))
                        for v in range(TILE_VECTORS)
                    ]
                )
            next_pair = builder.add(pair, const(1))
            body_end = builder.block
            pair.add_incoming(next_pair, body_end)
            for r in range(rows):
                for v in range(TILE_VECTORS):
                    accs[r][v].add_incoming(updated[r][v], body_end)
            builder.cbranch(builder.icmp_signed("<", next_pair, pair_count), loop, done)

            builder.position_at_end(done)
            finals = []
            for r in range(rows):
                for v in range(TILE_VECTORS):
                    final = builder.phi(vector)
                    final.add_incoming(zero, entry)
                    final.add_incoming(updated[r][v], body_end)
                    finals.append((r, v, final))
            for r, v, final in finals:
                offset = builder.add(builder.mul(c_step, const(r)), const(v * LANES))
                target = builder.bitcast(builder.gep(c_ptr, [offset]), vector.as_pointer())
                builder.store(final, target, align=1)
            return context.get_dummy_value()

        return signature, codegen

    return tile


_compiled = numba.njit(cache=True, nogil=True, boundscheck=False, error_model="numpy")
_TILE = _tile_intrinsic(TILE_ROWS)
_ROW = _tile_intrinsic(1)


@_compiled
def _as_pairs(x: np.ndarray, pairs: int) -> np.ndarray:
    """int16 rows [R, 2 * pairs] holding x (exact int16 values in any dtype), zero padded."""
    rows, fan_in = x.shape
    out = np.zeros((rows, 2 * pairs), dtype=np.int16)
    for r in range(rows):
        for k in range(fan_in):
            out[r, k] = np.int16(x[r, k])
    return out


ROW_CHUNK = 32
ONE_BLOCK_ROWS = 128
"""Rows of x (at most 128 KB of int16) kept in cache while the weights stream past."""
"""Rows per pass over the fan-in blocks: their int32 partial tile stays in cache."""


@_compiled
def _product_one_block(x: np.ndarray, packed: np.ndarray, out: np.ndarray) -> None:
    """out (int32 [R, blocks * BLOCK]) = x @ W^T when the fan-in is one block (<= 512 terms)."""
    blocks, pairs = packed.shape[0], packed.shape[1]
    a = _as_pairs(x, pairs)
    rows = a.shape[0]
    step = a.shape[1] * 2
    width = blocks * BLOCK
    # Row chunks outside, column blocks inside: a chunk of x stays in cache while every
    # column block's weights stream past it.
    for first in range(0, rows, ONE_BLOCK_ROWS):
        last = min(rows, first + ONE_BLOCK_ROWS)
        full = last - (last - first) % TILE_ROWS
        for j in range(blocks):
            b = packed[j, 0].ctypes.data
            column = out.ctypes.data + 4 * j * BLOCK
            for i in range(first, full, TILE_ROWS):
                _TILE(a.ctypes.data + i * step, step, b, pairs, column + 4 * i * width, width)
            for i in range(full, last):
                _ROW(a.ctypes.data + i * step, step, b, pairs, column + 4 * i * width, width)


@_compiled
def _product(x: np.ndarray, packed: np.ndarray, block_pairs: int, total: np.ndarray) -> None:
    """total (int64 [R, blocks * BLOCK], zeros) += per fan-in block of `block_pairs` pairs an
    int32 tile sum, ROW_CHUNK rows at a time."""
    blocks, pairs = packed.shape[0], packed.shape[1]
    a = _as_pairs(x, pairs)
    rows = a.shape[0]
    step = a.shape[1] * 2
    width = blocks * BLOCK
    part = np.empty((ROW_CHUNK, width), dtype=np.int32)
    for first in range(0, rows, ROW_CHUNK):
        chunk = min(ROW_CHUNK, rows - first)
        full = chunk - chunk % TILE_ROWS
        row_base = a.ctypes.data + first * step
        for start in range(0, pairs, block_pairs):
            count = min(block_pairs, pairs - start)
            for j in range(blocks):
                b = packed[j, start].ctypes.data
                column = part.ctypes.data + 4 * j * BLOCK
                for i in range(0, full, TILE_ROWS):
                    _TILE(row_base + i * step + 4 * start, step, b, count,
                          column + 4 * i * width, width)  # fmt: skip
                for i in range(full, chunk):
                    _ROW(row_base + i * step + 4 * start, step, b, count,
                         column + 4 * i * width, width)  # fmt: skip
            for r in range(chunk):
                for c in range(width):
                    total[first + r, c] += part[r, c]


class Int16Product:
    """x [R, K] (int16 values, any dtype) @ W^T for a fixed int8 W [C, K], exact, as int32/int64.

    vpmaddwd multiplies signed int16 pairs and adds each adjacent pair of products to an int32
    lane: |x0 w0 + x1 w1| <= 2 * 32768 * 127 < 2^23 (never the instruction's one wrapping case,
    -32768 * -32768 twice, since |w| <= 127). Within a fan-in block of at most 512 terms the int32
    accumulator stays below 2^31 in any order (MAX_BLOCK_PAIRS); blocks are added in int64.
    Zero padding (the fan-in to pairs, the channels to whole tiles) adds nothing.
    """

    def __init__(self, weight: np.ndarray) -> None:
        channels, fan_in = weight.shape
        if weight.dtype != np.int8:
            raise ValueError(f"int16 product: weight must be int8, got {weight.dtype}")
        self.channels = channels
        pairs = max(1, -(-fan_in // 2))
        blocks = -(-channels // BLOCK)
        padded = np.zeros((blocks * BLOCK, 2 * pairs), dtype=np.int16)
        padded[:channels, :fan_in] = weight
        # [blocks, pairs, BLOCK, 2]: one tile column's weights for one pair are contiguous.
        self.pairs = pairs
        self.packed = np.ascontiguousarray(
            padded.reshape(blocks, BLOCK, pairs, 2).transpose(0, 2, 1, 3)
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x [R, K] -> [R, C], int32 for a fan-in of at most 512 terms, else int64. Large
        calls split their rows over `threads()` threads (rows are independent, so the bytes
        are the same)."""
        x = np.ascontiguousarray(x)
        rows, width = x.shape[0], self.packed.shape[0] * BLOCK
        if self.pairs <= MAX_BLOCK_PAIRS:
            out = np.empty((rows, width), dtype=np.int32)

            def part(lo: int, hi: int) -> None:
                _product_one_block(x[lo:hi], self.packed, out[lo:hi])
        else:
            out = np.zeros((rows, width), dtype=np.int64)

            def part(lo: int, hi: int) -> None:
                _product(x[lo:hi], self.packed, MAX_BLOCK_PAIRS, out[lo:hi])

        run_row_parts(part, rows)
        return out[:, : self.channels] if width != self.channels else out


THREADS_ENV = "AICOMMONS_THREADS"
"""Threads for the compiled products' row parts; default 1, the calling thread only, as the
VNNI product: on this shared 2-CPU machine (load average 8 from other work) 2 threads took
137 ms for [4096, 384] x [384, 1536] against 105 ms on 1 (a part waits for a descheduled
thread). On a machine of one's own, `AICOMMONS_THREADS=<CPUs>` splits large calls."""
MIN_PART_ROWS = 256
"""A call splits only into parts of at least this many rows (small calls stay on one thread)."""


def threads() -> int:
    """AICOMMONS_THREADS (a positive integer, at most 64), else 1."""
    configured = os.environ.get(THREADS_ENV, "1")
    if not configured.isdigit() or not 1 <= int(configured) <= 64:
        raise ValueError(f"{THREADS_ENV} must be an integer in [1, 64], got {configured!r}")
    return int(configured)


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="aicommons-rows")


def run_row_parts(part: Callable[[int, int], None], rows: int) -> None:
    """part(lo, hi) over contiguous row ranges covering [0, rows): on the calling thread for
    small calls, else split over `threads()` threads (the compiled parts release the GIL)."""
    count = min(threads(), rows // MIN_PART_ROWS)
    if count <= 1:
        part(0, rows)
        return
    bounds = [rows * i // count for i in range(count + 1)]
    futures = [
        _pool(count).submit(part, lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False)
    ]
    for future in futures:
        future.result()
