"""Compiled loops (numba) of the fast kernels: requantisation, pool-then-requantise, int32 dot
products of small batches and band copies, each one pass where numpy needs several.

Each loop performs exactly the integer or float64 operations docs/integer-semantics.md proves
exact, in that order; nothing here may approximate or reassociate (no fastmath).
"""

from __future__ import annotations

import numba
import numpy as np

# cache: compiled once per machine, not per process; nogil: callers on other threads (a server
# running several requests) are not held up.
_compiled = numba.njit(cache=True, nogil=True, boundscheck=False, error_model="numpy")


@_compiled
def requantized(value: float, scale: float, offset: float, lo: float, hi: float) -> float:
    """floor(clamp(value * scale + offset, lo, hi)) in float64 (inlined into the loops). The
    floor stays a float (an exact integer): the loops then vectorise (vroundpd), where an int
    result cost a scalar conversion each way."""
    t = np.float64(value) * scale + offset
    t = t if t > lo else lo
    t = t if t < hi else hi
    return np.floor(t)


@_compiled
def _requantize_max_rows(
    values: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    lo: float,
    hi: float,
    out: np.ndarray,
) -> None:
    rows, phases, width = values.shape
    best = np.empty(width, dtype=values.dtype)
    for r in range(rows):
        if phases == 1:  # no pool: requantise straight from the values
            for q in range(width):
                out[r, q] = requantized(values[r, 0, q], scale[q], offset[q], lo, hi)
            continue
        for q in range(width):
            best[q] = values[r, 0, q]
        for p in range(1, phases):
            for q in range(width):
                v = values[r, p, q]
                best[q] = v if v > best[q] else best[q]
        for q in range(width):
            out[r, q] = requantized(best[q], scale[q], offset[q], lo, hi)


def pool_requantize_rows(
    values: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    lo: float,
    hi: float,
    out: np.ndarray,
) -> np.ndarray:
    """out[r, q] = floor(clamp(max_p values[r, p, q] * scale[q] + offset[q], lo, hi)), in
    float64: a max pool whose windows are the `p` axis, then requantisation, in one pass.
    Equal to pooling after requantising because requantisation is non-decreasing (M >= 1;
    product, sum, clamp and floor are monotone). Exact whenever `values * scale + offset` is
    (the float requantisation bound); lo and hi are integers, so clamping before the floor
    equals clamping after it. Returns `out`."""
    rows, _, width = values.shape
    if out.shape != (rows, width) or scale.shape != (width,) or offset.shape != (width,):
        raise ValueError(f"pool_requantize_rows: shapes {values.shape} -> {out.shape} do not fit")
    _requantize_max_rows(values, scale, offset, float(lo), float(hi), out)
    return out


def requantize_rows(
    values: np.ndarray,
    scale: np.ndarray,
    offset: np.ndarray,
    lo: float,
    hi: float,
    out: np.ndarray,
) -> np.ndarray:
    """out[r, c] = floor(clamp(values[r, c] * scale[c] + offset[c], lo, hi)): the pool-free
    case of `pool_requantize_rows`. Returns `out`."""
    if values.ndim != 2:
        raise ValueError(f"requantize_rows: values must be [rows, channels], got {values.shape}")
    return pool_requantize_rows(values[:, None, :], scale, offset, lo, hi, out)


@_compiled
def _int_dot_rows(x: np.ndarray, weight: np.ndarray, out: np.ndarray) -> None:
    rows, fan_in = x.shape
    row = np.empty(fan_in, dtype=np.int16)
    for r in range(rows):
        for k in range(fan_in):
            row[k] = np.int16(x[r, k])
        for c in range(weight.shape[0]):
            acc = np.int32(0)
            for k in range(fan_in):
                acc += np.int32(row[k]) * np.int32(weight[c, k])
            out[r, c] = acc


def int_dot_rows(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x [R, K] (int8 values, any numeric dtype holding them exactly) times int8 weight [C, K]
    transposed, in int32: exact, because the fan-in bound keeps every partial sum of K products
    of int8 values below 2^31 in magnitude. For a few rows it reads 1 byte per weight where a
    float product reads 4 or 8 (small batches are bound by memory, not arithmetic)."""
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"int_dot_rows: shapes {x.shape} and {weight.shape} do not fit")
    if weight.dtype != np.int8:
        raise ValueError(f"int_dot_rows: weight must be int8, got {weight.dtype}")
    out = np.empty((x.shape[0], weight.shape[0]), dtype=np.int32)
    _int_dot_rows(np.ascontiguousarray(x), np.ascontiguousarray(weight), out)
    return out


@_compiled
def _band_rows(
    x: np.ndarray, kernel_h: int, stride: int, top: int, dilation: int, columns: np.ndarray
) -> None:
    batch, height, row = x.shape
    out_h = columns.shape[0] // batch
    for b in range(batch):
        for oy in range(out_h):
            band = columns[b * out_h + oy]
            for ky in range(kernel_h):
                iy = oy * stride - top + ky * dilation
                start = ky * row
                if 0 <= iy < height:
                    source = x[b, iy]
                    for j in range(row):
                        band[start + j] = source[j]
                else:
                    for j in range(row):
                        band[start + j] = 0


def band_rows(
    x: np.ndarray, kernel_h: int, stride: int, top: int, dilation: int, columns: np.ndarray
) -> np.ndarray:
    """Fill columns[b * out_h + oy, ky * row : (ky + 1) * row] with input row
    oy * stride - top + ky * dilation of sample b (x is [B, H, row]; zeros where that row is
    top/bottom padding), for every output row oy of a banded convolution. Copies only: every
    value stays exact."""
    batch, _, row = x.shape
    if columns.ndim != 2 or columns.shape[0] % max(batch, 1) or columns.shape[1] < kernel_h * row:
        raise ValueError(f"band_rows: {x.shape} does not fit columns {columns.shape}")
    _band_rows(np.ascontiguousarray(x), kernel_h, stride, top, dilation, columns)
    return columns
