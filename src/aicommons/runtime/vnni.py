"""Int8 dot products on the CPU's VNNI instructions (vpdpbusd), compiled by numba: exact int32
sums of int8 products at several times the float32 BLAS throughput of a core.

Nothing here is compiled unless `available()` says the CPU and numba's target have AVX-512 VNNI
or AVX-VNNI; elsewhere the runtime keeps its float BLAS products. Integer instructions only:
no rounding, no saturation, and no partial sum ever leaves int32 (`Int8Product`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import config as numba_config
from numba.extending import intrinsic


def fits_int32(weight: np.ndarray) -> bool:
    """K * 128 * max|W| < 2^31: then every dot product with int8 x, and the 128 * sum(W)
    correction, is an int32. The semantics' fan-in bound (|W| <= 127) implies it."""
    largest = int(np.abs(weight.astype(np.int64)).max(initial=0))
    return weight.shape[-1] * 128 * largest <= 2**31 - 1


VNNI_ENV = "AICOMMONS_VNNI"
"""`0` turns the VNNI products off (the float BLAS products are used, as on a CPU without)."""


@dataclass(frozen=True)
class Isa:
    """One vpdpbusd width: its LLVM intrinsic, int32 lanes per vector, and the register tile
    (rows x vectors of accumulators) that fits its register file."""

    name: str
    intrinsic: str
    lanes: int
    tile_rows: int
    tile_vectors: int

    @property
    def block(self) -> int:
        """Output channels per tile column block."""
        return self.lanes * self.tile_vectors


# 32 zmm registers: 8 x 2 accumulators, 2 weight vectors, 1 broadcast. 16 ymm: 4 x 2, 2, 1.
AVX512_VNNI = Isa("avx512vnni", "llvm.x86.avx512.vpdpbusd.512", 16, 8, 2)
AVX_VNNI = Isa("avxvnni", "llvm.x86.avx512.vpdpbusd.256", 8, 4, 2)
ISAS = (AVX512_VNNI, AVX_VNNI)


def host_isa() -> Isa | None:
    """The widest VNNI this process may compile for, or None (then nothing here is used).

    Needs the instruction on the host (as LLVM sees it, which includes the OS saving the
    registers) and numba targeting the host: NUMBA_CPU_NAME/NUMBA_CPU_FEATURES (portable
    caches) could name a CPU without it, and compiling the instruction there would abort."""
    if os.environ.get(VNNI_ENV, "1") == "0":
        return None
    if numba_config.CPU_NAME or numba_config.CPU_FEATURES:
        return None
    features = _host_features()
    for isa in ISAS:
        if features.get(isa.name):
            return isa
    return None


@functools.cache
def _host_features() -> dict[str, bool]:
    import llvmlite.binding as llvm

    return dict(llvm.get_host_cpu_features())


def available() -> bool:
    return host_isa() is not None


def _tile_intrinsic(isa: Isa, rows: int):  # noqa: ANN202 (a numba intrinsic)
    """C[rows, block] = init + A[rows, 4q] (uint8) @ B (int8, packed [q, block, 4]) in int32.

    Arguments (addresses and strides as int64): a, a row stride in bytes, b, quads q, init
    (int32[block], the starting accumulator), c, c row stride in int32 elements. One
    vpdpbusd per (row, vector, quad): c[r, j] += sum_{t<4} a[r, 4p+t] * b[p, j, t], modulo 2^32.
    """
    lanes, vectors = isa.lanes, isa.tile_vectors

    @intrinsic
    def tile(typingctx, a, a_stride, b, quads, init, c, c_stride):  # noqa: ANN001, ANN202
        signature = types.void(a, a_stride, b, quads, init, c, c_stride)

        def codegen(context, builder, sig, args):  # noqa: ANN001, ANN202
            a_addr, a_step, b_addr, quad_count, init_addr, c_addr, c_step = args
            i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
            vector = ir.VectorType(i32, lanes)
            module = builder.module
            dot = module.globals.get(isa.intrinsic) or ir.Function(
                module, ir.FunctionType(vector, [vector, vector, vector]), isa.intrinsic
            )
            a_ptr = builder.inttoptr(a_addr, i8.as_pointer())
            b_ptr = builder.inttoptr(b_addr, i8.as_pointer())
            init_ptr = builder.inttoptr(init_addr, i32.as_pointer())
            c_ptr = builder.inttoptr(c_addr, i32.as_pointer())

            def const(value: int) -> ir.Constant:
                return ir.Constant(i64, value)

            def vector_at(base: ir.Value, offset: ir.Value) -> ir.Value:
                return builder.bitcast(builder.gep(base, [offset]), vector.as_pointer())

            starts = [
                builder.load(vector_at(init_ptr, const(v * lanes)), align=1) for v in range(vectors)
            ]
            entry = builder.block
            loop = builder.append_basic_block("vnni.loop")
            done = builder.append_basic_block("vnni.done")
            builder.cbranch(builder.icmp_signed(">", quad_count, const(0)), loop, done)

            builder.position_at_end(loop)
            quad = builder.phi(i64)
            quad.add_incoming(const(0), entry)
            accs = [[builder.phi(vector) for _ in range(vectors)] for _ in range(rows)]
            for row in accs:
                for v, phi in enumerate(row):
                    phi.add_incoming(starts[v], entry)
            b_offset = builder.mul(quad, const(4 * lanes * vectors))
            weights = [
                builder.load(vector_at(b_ptr, builder.add(b_offset, const(4 * lanes * v))), align=1)
                for v in range(vectors)
            ]
            a_offset = builder.mul(quad, const(4))
            updated = []
            for r in range(rows):
                where = builder.add(a_offset, builder.mul(a_step, const(r)))
                four = builder.load(
                    builder.bitcast(builder.gep(a_ptr, [where]), i32.as_pointer()), align=1
                )
                lane0 = builder.insert_element(ir.Constant(vector, ir.Undefined), four, const(0))
                spread = builder.shuffle_vector(
                    lane0, ir.Constant(vector, ir.Undefined), ir.Constant(vector, [0] * lanes)
                )
                updated.append(
                    [builder.call(dot, [accs[r][v], spread, weights[v]]) for v in range(vectors)]
                )
            next_quad = builder.add(quad, const(1))
            body_end = builder.block
            quad.add_incoming(next_quad, body_end)
            for r in range(rows):
                for v in range(vectors):
                    accs[r][v].add_incoming(updated[r][v], body_end)
            builder.cbranch(builder.icmp_signed("<", next_quad, quad_count), loop, done)

            builder.position_at_end(done)
            finals = []
            for r in range(rows):
                for v in range(vectors):
                    final = builder.phi(vector)
                    final.add_incoming(starts[v], entry)
                    final.add_incoming(updated[r][v], body_end)
                    finals.append((r, v, final))
            for r, v, final in finals:
                offset = builder.add(builder.mul(c_step, const(r)), const(v * lanes))
                builder.store(final, vector_at(c_ptr, offset), align=1)
            return context.get_dummy_value()

        return signature, codegen

    return tile


_compiled = numba.njit(cache=True, nogil=True, boundscheck=False, error_model="numpy")


@_compiled
def _offset_bytes(x: np.ndarray, quads: int) -> np.ndarray:
    """uint8 rows [R, 4 * quads]: x + 128 (exact: x holds int8 values), zero padded."""
    rows, fan_in = x.shape
    out = np.zeros((rows, 4 * quads), dtype=np.uint8)
    for r in range(rows):
        for k in range(fan_in):
            out[r, k] = np.uint8(np.int64(x[r, k]) + 128)
    return out


_TILE_512 = _tile_intrinsic(AVX512_VNNI, AVX512_VNNI.tile_rows)
_ROW_512 = _tile_intrinsic(AVX512_VNNI, 1)
_TILE_256 = _tile_intrinsic(AVX_VNNI, AVX_VNNI.tile_rows)
_ROW_256 = _tile_intrinsic(AVX_VNNI, 1)

# One driver per width (an intrinsic is fixed when the driver is typed): tiles of rows, then
# single rows, over every column block; x is offset to uint8 in the same call.


@_compiled
def _product_512(x: np.ndarray, packed: np.ndarray, init: np.ndarray) -> np.ndarray:
    blocks, quads, block = packed.shape[0], packed.shape[1], packed.shape[2]
    a = _offset_bytes(x, quads)
    rows, step = a.shape
    out = np.empty((rows, blocks * block), dtype=np.int32)
    width = out.shape[1]
    full = rows - rows % 8
    for j in range(blocks):
        b, start = packed[j].ctypes.data, init[j].ctypes.data
        column = out.ctypes.data + 4 * j * block
        for i in range(0, full, 8):
            _TILE_512(
                a.ctypes.data + i * step, step, b, quads, start, column + 4 * i * width, width
            )
        for i in range(full, rows):
            _ROW_512(a.ctypes.data + i * step, step, b, quads, start, column + 4 * i * width, width)
    return out


@_compiled
def _product_256(x: np.ndarray, packed: np.ndarray, init: np.ndarray) -> np.ndarray:
    blocks, quads, block = packed.shape[0], packed.shape[1], packed.shape[2]
    a = _offset_bytes(x, quads)
    rows, step = a.shape
    out = np.empty((rows, blocks * block), dtype=np.int32)
    width = out.shape[1]
    full = rows - rows % 4
    for j in range(blocks):
        b, start = packed[j].ctypes.data, init[j].ctypes.data
        column = out.ctypes.data + 4 * j * block
        for i in range(0, full, 4):
            _TILE_256(
                a.ctypes.data + i * step, step, b, quads, start, column + 4 * i * width, width
            )
        for i in range(full, rows):
            _ROW_256(a.ctypes.data + i * step, step, b, quads, start, column + 4 * i * width, width)
    return out


_PRODUCTS = {AVX512_VNNI.name: _product_512, AVX_VNNI.name: _product_256}


class Int8Product:
    """x [R, K] (int8 values, any dtype) @ W^T for a fixed int8 W [C, K], exact, as int32 [R, C].

    vpdpbusd multiplies unsigned by signed bytes, so x enters as x + 128 in [0, 255] and each
    accumulator starts at -128 * sum_k W[c, k]: sum (x+128) w - 128 sum w = sum x w. Each
    product is exact (|(x+128) w| <= 255 * 127 fits the instruction's 16-bit product); after
    the terms of any subset T of the inputs the accumulator is sum_T x w - 128 sum_(not T) w,
    of magnitude at most K * 128 * max|W| < 2^31 (`fits_int32`): no int32 addition ever wraps,
    whatever the order, and the end value is the dot product itself.
    """

    def __init__(self, weight: np.ndarray, isa: Isa) -> None:
        channels, fan_in = weight.shape
        if weight.dtype != np.int8 or not fits_int32(weight):
            raise ValueError(f"VNNI product: weight {weight.shape} must be int8 with int32 sums")
        self.isa = isa
        self.channels = channels
        self.quads = max(1, -(-fan_in // 4))
        block = isa.block
        blocks = -(-channels // block)
        padded = np.zeros((blocks * block, 4 * self.quads), dtype=np.int8)
        padded[:channels, :fan_in] = weight
        # [blocks, quads, block, 4]: one tile column's weights for one quad are contiguous.
        self.packed = np.ascontiguousarray(
            padded.reshape(blocks, block, self.quads, 4).transpose(0, 2, 1, 3)
        )
        correction = -128 * padded.astype(np.int64).sum(axis=1)
        self.init = np.ascontiguousarray(correction.astype(np.int32).reshape(blocks, block))
        self._product = _PRODUCTS[isa.name]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x [R, K] -> int32 [R, C], C-contiguous."""
        out = self._product(np.ascontiguousarray(x), self.packed, self.init)
        if out.shape[1] != self.channels:  # channels padded to whole tile columns
            return np.ascontiguousarray(out[:, : self.channels])
        return out
