"""Compiled loops (numba) of the fast kernels: requantisation, pool-then-requantise, int32 dot
products of small batches and band copies, each one pass where numpy needs several.

Each loop performs exactly the integer or float64 operations docs/integer-semantics.md proves
exact, in that order; nothing here may approximate or reassociate (no fastmath).
"""

from __future__ import annotations

import math

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
def _requantize_int_rows(
    values: np.ndarray,
    multiplier: np.ndarray,
    offset: np.ndarray,
    shift: np.ndarray,
    lo: int,
    hi: int,
    out: np.ndarray,
) -> None:
    rows, width = values.shape
    for r in range(rows):
        for c in range(width):
            v = (np.int64(values[r, c]) * multiplier[c] + offset[c]) >> shift[c]
            v = v if v > lo else lo
            out[r, c] = v if v < hi else hi


def requantize_int_rows(
    values: np.ndarray,
    multiplier: np.ndarray,
    offset: np.ndarray,
    shift: np.ndarray,
    lo: int,
    hi: int,
    out: np.ndarray,
) -> np.ndarray:
    """out[r, c] = clamp((values[r, c] * M[c] + offset[c]) >> S[c], lo, hi) in int64, one pass:
    the int64 requantisation (offset = bias*M + 2^(S-1)); values are exact integers in any
    dtype, and the layer's bound keeps |(dot + bias) * M| below 2^62. Returns `out`."""
    rows, width = values.shape
    if out.shape != (rows, width) or multiplier.shape != (width,):
        raise ValueError(f"requantize_int_rows: shapes {values.shape} -> {out.shape} do not fit")
    if width == 1:  # one multiplier for the tensor (matmul): a flat loop, 7x faster here
        _requantize_int_flat(
            values.reshape(-1), int(multiplier[0]), int(offset[0]), int(shift[0]), lo, hi,
            out.reshape(-1),
        )  # fmt: skip
        return out
    _requantize_int_rows(values, multiplier, offset, shift, lo, hi, out)
    return out


@_compiled
def _requantize_int_flat(
    values: np.ndarray, multiplier: int, offset: int, shift: int, lo: int, hi: int,
    out: np.ndarray,
) -> None:  # fmt: skip
    for i in range(values.shape[0]):
        v = (np.int64(values[i]) * multiplier + offset) >> shift
        v = v if v > lo else lo
        out[i] = v if v < hi else hi


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


# -- version 2: row loops of the transformer ops (integer arithmetic in int64 only) ------------


@_compiled
def _isqrt(value: int) -> int:
    """floor(sqrt(value)) for 0 <= value < 2^62, exact: the float64 square root is within one
    of it (relative error about 2^-52 on a root below 2^31), and one correction each way fixes
    it; (r + 1)^2 < 2^63 never wraps."""
    root = np.int64(math.sqrt(np.float64(value)))
    if root * root > value:
        root -= 1
    if (root + 1) * (root + 1) <= value:
        root += 1
    return root


@_compiled
def _floor_div(numerator: int, denominator: int, inverse: float) -> int:
    """floor(numerator / denominator) for 0 < denominator < 2^62, |numerator| < 2^62 and a
    quotient below 2^31 in magnitude, without an integer division: with `inverse` =
    1.0 / denominator, the float64 product has relative error below 2^-51 (three roundings), so
    it is within 2^31 * 2^-51 < 1 of the true quotient and its floor is off by at most one; one
    exact int64 check each way corrects it (|(q + 1) * denominator| <= |numerator| +
    2 * denominator < 2^63)."""
    q = np.int64(math.floor(np.float64(numerator) * inverse))
    if q * denominator > numerator:
        q -= 1
    elif (q + 1) * denominator <= numerator:
        q += 1
    return q


@_compiled
def _div_round(total: int, count: int) -> int:
    """floor((2 total + count) / (2 count)) for count > 0 (numba's // floors like Python's)."""
    return (2 * total + count) // (2 * count)


@_compiled
def _softmax_rows(x: np.ndarray, mask: np.ndarray, exp_table: np.ndarray, out: np.ndarray) -> None:
    batch, rows, length = x.shape
    exps = np.empty(length, dtype=np.int64)
    limit = exp_table.shape[0]
    for n in range(batch):
        for i in range(rows):
            top = np.int64(0)
            seen = False
            for j in range(length):
                if mask[n, j] != 0:
                    v = np.int64(x[n, i, j])
                    if not seen or v > top:
                        top = v
                        seen = True
            total = np.int64(0)
            for j in range(length):
                e = np.int64(0)
                if mask[n, j] != 0:
                    d = top - np.int64(x[n, i, j])
                    e = exp_table[d] if d < limit else np.int64(0)
                exps[j] = e
                total += e
            # div_round(e << 15, total) = floor((2 (e << 15) + total) / (2 total)); 2 total
            # < 2^56 and the numerators < 2^57, quotients <= 2^15.
            doubled = 2 * total
            inverse = 1.0 / np.float64(doubled) if doubled > 0 else 0.0
            for j in range(length):
                if mask[n, j] != 0:
                    y = _floor_div((exps[j] << 16) + total, doubled, inverse)
                    out[n, i, j] = y if y < 32767 else 32767
                else:
                    out[n, i, j] = 0


def softmax_rows(x: np.ndarray, mask: np.ndarray, exp_table: np.ndarray) -> np.ndarray:
    """The masked softmax of every row of x [N, R, L] (exact integers in any dtype), mask [N, L]:
    `reference.softmax_row` with e_j = exp_table[m - x_j] (the table holds exp_neg_q30(d) for
    every d below its length and the formula gives 0 beyond it). int16 [N, R, L]."""
    if x.ndim != 3 or mask.shape != (x.shape[0], x.shape[2]):
        raise ValueError(f"softmax_rows: shapes {x.shape} and mask {mask.shape} do not fit")
    out = np.empty(x.shape, dtype=np.int16)
    _softmax_rows(np.ascontiguousarray(x), np.ascontiguousarray(mask), exp_table, out)
    return out


@_compiled
def _layernorm_rows(
    x: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    rounding: np.ndarray,
    bias: np.ndarray,
    lo: int,
    hi: int,
    frac: int,
    out: np.ndarray,
) -> None:
    rows, width = x.shape
    centred = np.empty(width, dtype=np.int64)
    for i in range(rows):
        total = np.int64(0)
        for k in range(width):
            total += np.int64(x[i, k])
        squares = np.int64(0)
        for k in range(width):
            d = width * np.int64(x[i, k]) - total
            centred[k] = d
            squares += d * d
        root = _isqrt(squares // width)
        doubled = 2 * root
        inverse = 1.0 / np.float64(doubled) if root > 0 else 0.0
        for k in range(width):
            # div_round(d << frac, r) = floor((2 (d << frac) + r) / (2 r)): |numerator| < 2^44.
            n = _floor_div((centred[k] << (frac + 1)) + root, doubled, inverse) if root > 0 else 0
            y = ((n * multiplier[k] + rounding[k]) >> shift[k]) + bias[k]
            y = y if y > lo else lo
            out[i, k] = y if y < hi else hi


def layernorm_rows(
    x: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    bias: np.ndarray,
    lo: int,
    hi: int,
    frac: int,
    out: np.ndarray,
) -> np.ndarray:
    """`reference.layernorm_row` for every row of x [R, D] (exact integers in any dtype), in
    int64: the semantics' bounds (D <= 1024, |x| <= 2^15) keep every step below 2^62.
    multiplier, shift, bias: int64 [D]. Returns `out` [R, D]."""
    rows, width = x.shape
    if out.shape != (rows, width) or multiplier.shape != (width,):
        raise ValueError(f"layernorm_rows: shapes {x.shape} -> {out.shape} do not fit")
    rounding = np.where(shift > 0, np.left_shift(1, np.maximum(shift - 1, 0)), 0).astype(np.int64)
    _layernorm_rows(np.ascontiguousarray(x), multiplier, shift, rounding, bias, lo, hi, frac, out)
    return out


@_compiled
def _l2norm_rows(x: np.ndarray, frac: int, lo: int, hi: int, out: np.ndarray) -> None:
    rows, width = x.shape
    for i in range(rows):
        squares = np.int64(0)
        for k in range(width):
            v = np.int64(x[i, k])
            squares += v * v
        root = _isqrt(squares)
        doubled = 2 * root
        inverse = 1.0 / np.float64(doubled) if root > 0 else 0.0
        for k in range(width):
            # floor((2 (x << frac) + r) / (2 r)): |numerator| < 2^47, |quotient| <= 2^31.
            numerator = (np.int64(x[i, k]) << (frac + 1)) + root
            y = _floor_div(numerator, doubled, inverse) if root > 0 else np.int64(0)
            y = y if y > lo else lo
            out[i, k] = y if y < hi else hi


def l2norm_rows(x: np.ndarray, frac: int, lo: int, hi: int, out: np.ndarray) -> np.ndarray:
    """`reference.l2norm_row` for every row of x [R, D] (int16 values in any dtype), int64:
    sum x^2 <= D * 2^30 < 2^62. Returns `out`."""
    if x.ndim != 2 or out.shape != x.shape:
        raise ValueError(f"l2norm_rows: shapes {x.shape} -> {out.shape} do not fit")
    _l2norm_rows(np.ascontiguousarray(x), frac, lo, hi, out)
    return out


@_compiled
def _lookup_values(x: np.ndarray, table: np.ndarray, offset: int, out: np.ndarray) -> None:
    for i in range(x.shape[0]):
        out[i] = table[np.int64(x[i]) + offset]


def lookup_values(x: np.ndarray, table: np.ndarray, offset: int) -> np.ndarray:
    """table[x + offset] element-wise for exact integers x in [-offset, offset) (any dtype),
    in one pass; same shape as x, dtype of the table."""
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(flat.shape, dtype=table.dtype)
    _lookup_values(flat, table, offset, out)
    return out.reshape(x.shape)


@_compiled
def _add_scaled(
    a: np.ndarray, b: np.ndarray, ma: int, mb: int, rounding: int, shift: int, lo: int, hi: int,
    out: np.ndarray,
) -> None:  # fmt: skip
    for i in range(a.shape[0]):
        y = (np.int64(a[i]) * ma + np.int64(b[i]) * mb + rounding) >> shift
        y = y if y > lo else lo
        out[i] = y if y < hi else hi


def add_scaled(
    a: np.ndarray, b: np.ndarray, multipliers: tuple[int, int], shift: int, lo: int, hi: int,
    out_dtype: np.dtype,
) -> np.ndarray:  # fmt: skip
    """clamp(rshift_round(a * Ma + b * Mb, S), lo, hi) element-wise in int64 (|a Ma + b Mb| <
    2^47 for int16 operands) in one pass; a, b: exact integers of the same shape, any dtype."""
    if a.shape != b.shape:
        raise ValueError(f"add_scaled: shapes {a.shape} and {b.shape} differ")
    rounding = (1 << (shift - 1)) if shift > 0 else 0
    out = np.empty(a.size, dtype=out_dtype)
    flat_a = np.ascontiguousarray(a).reshape(-1)
    flat_b = np.ascontiguousarray(b).reshape(-1)
    _add_scaled(flat_a, flat_b, multipliers[0], multipliers[1], rounding, shift, lo, hi, out)
    return out.reshape(a.shape)
