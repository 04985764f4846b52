"""The integer semantics in code: a slow, obviously correct pure-int reference of every op.

This is the spec and the test oracle (docs/integer-semantics.md). It works on Python ints one
element at a time, never on floats or numpy arithmetic, so nothing here can overflow or round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
WEIGHT_MIN, WEIGHT_MAX = -127, 127
MULTIPLIER_MIN, MULTIPLIER_MAX = 1, 2**31 - 1
SHIFT_MIN, SHIFT_MAX = 0, 62


def rshift_round(value: int, shift: int) -> int:
    """Round half up: (v + 2^(s-1)) >> s with >> an arithmetic (floor) shift; v when s = 0."""
    if shift == 0:
        return value
    return (value + (1 << (shift - 1))) >> shift


def div_round(total: int, count: int) -> int:
    """Round-half-up integer division: floor((2*total + count) / (2*count)), count > 0."""
    return (2 * total + count) // (2 * count)


def clamp_value(value: int, lo: int, hi: int) -> int:
    """One integer clamped to [lo, hi]."""
    return max(lo, min(hi, value))


def requantize(acc: int, multiplier: int, shift: int, lo: int, hi: int) -> int:
    """y = clamp(rshift_round(acc * M, S), lo, hi): the fixed-point rescale of every layer."""
    return clamp_value(rshift_round(acc * multiplier, shift), lo, hi)


def argmax(values: Sequence[int]) -> int:
    """Index of the largest value; the lowest index wins ties."""
    best = 0
    for index in range(1, len(values)):
        if int(values[index]) > int(values[best]):
            best = index
    return best


def dense(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    lo: int,
    hi: int,
) -> np.ndarray:
    """x [N, K] int8, weight [C, K]: y[n, c] = requantize(bias[c] + sum_k x[n,k]*W[c,k])."""
    batch, fan_in = x.shape
    channels = weight.shape[0]
    out = np.zeros((batch, channels), dtype=np.int64)
    for n in range(batch):
        for c in range(channels):
            acc = int(bias[c])
            for k in range(fan_in):
                acc += int(x[n, k]) * int(weight[c, k])
            out[n, c] = requantize(acc, int(multiplier[c]), int(shift[c]), lo, hi)
    return out


def conv_output_size(
    size: int, kernel: int, stride: int, pad_begin: int, pad_end: int, dilation: int
) -> int:
    """Output length of one spatial axis (floor mode, as ONNX with ceil_mode=0)."""
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    groups: int,
    lo: int,
    hi: int,
) -> np.ndarray:
    """x [N, Cin, H, W] int8, weight [Cout, Cin/groups, kh, kw]; pads = [top, left, bottom, right].

    Padding positions contribute nothing (zero point is 0, so a padded zero is exact).
    """
    batch, in_channels, height, width = x.shape
    out_channels, group_in, kernel_h, kernel_w = weight.shape
    group_out = out_channels // groups
    out_h = conv_output_size(height, kernel_h, strides[0], pads[0], pads[2], dilations[0])
    out_w = conv_output_size(width, kernel_w, strides[1], pads[1], pads[3], dilations[1])
    out = np.zeros((batch, out_channels, out_h, out_w), dtype=np.int64)
    for n in range(batch):
        for c in range(out_channels):
            first_in = (c // group_out) * group_in
            for oy in range(out_h):
                for ox in range(out_w):
                    acc = int(bias[c])
                    for ci in range(group_in):
                        for ky in range(kernel_h):
                            iy = oy * strides[0] - pads[0] + ky * dilations[0]
                            if not 0 <= iy < height:
                                continue
                            for kx in range(kernel_w):
                                ix = ox * strides[1] - pads[1] + kx * dilations[1]
                                if not 0 <= ix < width:
                                    continue
                                pixel = int(x[n, first_in + ci, iy, ix])
                                acc += pixel * int(weight[c, ci, ky, kx])
                    out[n, c, oy, ox] = requantize(acc, int(multiplier[c]), int(shift[c]), lo, hi)
    return out


def _pool_windows(
    height: int,
    width: int,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
) -> list[list[tuple[int, list[tuple[int, int]]]]]:
    """For each output row: (output column, in-bounds input positions of its window)."""
    out_h = conv_output_size(height, kernel[0], strides[0], pads[0], pads[2], dilations[0])
    out_w = conv_output_size(width, kernel[1], strides[1], pads[1], pads[3], dilations[1])
    rows = []
    for oy in range(out_h):
        row = []
        for ox in range(out_w):
            positions = []
            for ky in range(kernel[0]):
                iy = oy * strides[0] - pads[0] + ky * dilations[0]
                for kx in range(kernel[1]):
                    ix = ox * strides[1] - pads[1] + kx * dilations[1]
                    if 0 <= iy < height and 0 <= ix < width:
                        positions.append((iy, ix))
            row.append((ox, positions))
        rows.append(row)
    return rows


def maxpool(
    x: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
) -> np.ndarray:
    """Max over the in-bounds positions of each window (padding is ignored)."""
    batch, channels, height, width = x.shape
    windows = _pool_windows(height, width, kernel, strides, pads, dilations)
    out = np.zeros((batch, channels, len(windows), len(windows[0])), dtype=np.int64)
    for n in range(batch):
        for c in range(channels):
            for oy, row in enumerate(windows):
                for ox, positions in row:
                    out[n, c, oy, ox] = max(int(x[n, c, iy, ix]) for iy, ix in positions)
    return out


def avgpool(
    x: np.ndarray,
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    count_include_pad: int,
) -> np.ndarray:
    """div_round(window sum, count); count is the kernel area or the in-bounds positions only.

    The output keeps the input's scale, and a rounded mean of int8 values is itself int8.
    """
    batch, channels, height, width = x.shape
    windows = _pool_windows(height, width, kernel, strides, pads, (1, 1))
    out = np.zeros((batch, channels, len(windows), len(windows[0])), dtype=np.int64)
    area = kernel[0] * kernel[1]
    for n in range(batch):
        for c in range(channels):
            for oy, row in enumerate(windows):
                for ox, positions in row:
                    total = sum(int(x[n, c, iy, ix]) for iy, ix in positions)
                    count = area if count_include_pad else len(positions)
                    out[n, c, oy, ox] = div_round(total, count)
    return out


def add(
    a: np.ndarray,
    b: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    lo: int,
    hi: int,
) -> np.ndarray:
    """Residual add of two same-shape tensors: clamp(rshift_round(a*Ma + b*Mb, S), lo, hi)."""
    multiplier_a, multiplier_b, shift_value = int(multiplier[0]), int(multiplier[1]), int(shift[0])
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    out = np.zeros(flat_a.shape, dtype=np.int64)
    for i in range(flat_a.size):
        total = int(flat_a[i]) * multiplier_a + int(flat_b[i]) * multiplier_b
        out[i] = clamp_value(rshift_round(total, shift_value), lo, hi)
    return out.reshape(a.shape)


def clamp(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Standalone ReLU / Clip on a quantised tensor: same scale, values clamped to [lo, hi]."""
    flat = x.reshape(-1)
    out = np.zeros(flat.shape, dtype=np.int64)
    for i in range(flat.size):
        out[i] = clamp_value(int(flat[i]), lo, hi)
    return out.reshape(x.shape)


def reshape(x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Row-major (C order) reinterpretation of each sample; `shape` excludes the batch axis."""
    return x.reshape((x.shape[0], *shape))


# -- aicommons-int/2: the transformer ops ----------------------------------------------------
# Row helpers (`*_row`, `exp2_neg_q30`, `isqrt`) take and return Python ints / lists so that a
# one-step verifier can port them line by line; the op functions apply them to batched arrays.

INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1
INPUT_BOUND = {"int8": 128, "int16": 32768}
"""X(t): the largest magnitude of an activation of dtype t."""
SIGNED_MULTIPLIER_MIN = -(2**31 - 1)
"""layernorm multipliers carry the sign of gamma: [-(2^31 - 1), 2^31 - 1]."""

LOG2E_Q30 = 1549082005
"""round(log2(e) * 2^30): turns a natural-log exponent into a base-2 one."""
EXP2_NEG_Q30 = (1073741824, -744171344, 257114733, -57148401, 7335701)
"""c0..c4 of p(r) ~ 2^30 * 2^(-r / 2^30) for r in [0, 2^30) (Horner in Q30, c0 = 2^30 exactly;
relative error below 3e-6 over the whole interval)."""
SOFTMAX_OUT_BITS = 15
"""softmax outputs are probabilities in units of 2^-15, in [0, 2^15 - 1]."""
LAYERNORM_FRAC = 16
"""layernorm normalises to n = (x - mean) / std in units of 2^-16 before its affine step."""
LAYERNORM_MAX_WIDTH = 1024
"""Most values a layernorm row may hold: keeps sum((D x - sum x)^2) below 2^62."""


def isqrt(value: int) -> int:
    """floor(sqrt(value)) for value >= 0, exact (Python math.isqrt; Vyper isqrt)."""
    return math.isqrt(value)


def exp2_neg_q30(r: int) -> int:
    """2^30 * 2^(-r / 2^30) for 0 <= r < 2^30, by the fixed degree-4 polynomial EXP2_NEG_Q30:
    p = c4; then four times p = ((p * r) >> 30) + c_k for k = 3, 2, 1, 0 (>> floors).
    |p| < 2^31 and r < 2^30 keep every product below 2^61."""
    p = EXP2_NEG_Q30[4]
    for k in (3, 2, 1, 0):
        p = ((p * r) >> 30) + EXP2_NEG_Q30[k]
    return p


def exp_neg_q30(d: int, in_frac: int) -> int:
    """2^30 * e^(-d / 2^in_frac) for d >= 0, in integers:
    u = d * LOG2E_Q30 (the base-2 exponent in units of 2^-(30 + in_frac)),
    k = u >> (30 + in_frac) (its integer part), r = (u >> in_frac) mod 2^30 (its fraction, Q30),
    result = exp2_neg_q30(r) >> k, which is 0 once k > 30."""
    u = d * LOG2E_Q30
    k = u >> (30 + in_frac)
    r = (u >> in_frac) & ((1 << 30) - 1)
    if k > 30:
        return 0
    return exp2_neg_q30(r) >> k


def softmax_row(values: Sequence[int], mask: Sequence[int], in_frac: int) -> list[int]:
    """Masked softmax of one row: scores real = values * 2^-in_frac; mask[j] = 0 drops j.

    m = max over kept j; e_j = exp_neg_q30(m - values[j]) (so the max gives exactly 2^30);
    total = sum of kept e_j; y_j = min(div_round(e_j * 2^15, total), 2^15 - 1) for kept j,
    0 for dropped j (and every j when all are dropped)."""
    kept = [j for j in range(len(values)) if int(mask[j]) != 0]
    out = [0] * len(values)
    if not kept:
        return out
    top = max(int(values[j]) for j in kept)
    exps = {j: exp_neg_q30(top - int(values[j]), in_frac) for j in kept}
    total = sum(exps.values())
    for j in kept:
        out[j] = min(div_round(exps[j] << SOFTMAX_OUT_BITS, total), 2**SOFTMAX_OUT_BITS - 1)
    return out


def softmax(x: np.ndarray, mask: np.ndarray, in_frac: int) -> np.ndarray:
    """softmax_row along the last axis of x [N, ..., L]; mask [N, L] is per sample (the
    attention mask over keys, shared by every row of the sample)."""
    out = np.zeros(x.shape, dtype=np.int64)
    for n in range(x.shape[0]):
        rows = x[n].reshape(-1, x.shape[-1])
        flat = out[n].reshape(-1, x.shape[-1])
        for i in range(rows.shape[0]):
            flat[i] = softmax_row([int(v) for v in rows[i]], [int(v) for v in mask[n]], in_frac)
    return out


def layernorm_row(
    values: Sequence[int],
    multiplier: Sequence[int],
    shift: Sequence[int],
    bias: Sequence[int],
    lo: int,
    hi: int,
) -> list[int]:
    """Layer norm of one row of D values, then its per-channel affine step:
    s = sum x; d_i = D*x_i - s; q = sum d_i^2; r = isqrt(q // D);
    n_i = div_round(d_i * 2^16, r) (0 for every i when r = 0: a constant row);
    y_i = clamp(rshift_round(n_i * M_i, S_i) + bias_i, lo, hi).
    n_i ~ 2^16 (x_i - mean) / std, since std = sqrt(q / D) / D."""
    width = len(values)
    total = sum(int(v) for v in values)
    centred = [width * int(v) - total for v in values]
    root = isqrt(sum(d * d for d in centred) // width)
    out = []
    for i, d in enumerate(centred):
        n = div_round(d << LAYERNORM_FRAC, root) if root else 0
        y = rshift_round(n * int(multiplier[i]), int(shift[i])) + int(bias[i])
        out.append(clamp_value(y, lo, hi))
    return out


def layernorm(
    x: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    bias: np.ndarray,
    lo: int,
    hi: int,
) -> np.ndarray:
    """layernorm_row along the last axis of x [N, ..., D] (gamma in M, S; beta in bias)."""
    rows = x.reshape(-1, x.shape[-1])
    out = np.zeros(rows.shape, dtype=np.int64)
    m, s, b = ([int(v) for v in t] for t in (multiplier, shift, bias))
    for i in range(rows.shape[0]):
        out[i] = layernorm_row([int(v) for v in rows[i]], m, s, b, lo, hi)
    return out.reshape(x.shape)


def matmul(
    a: np.ndarray, b: np.ndarray, multiplier: np.ndarray, shift: np.ndarray, lo: int, hi: int
) -> np.ndarray:
    """Activation x activation product a [N, ..., R, K] @ b [N, ..., K, C] (same leading axes):
    y[..., r, c] = requantize(sum_k a[..., r, k] * b[..., k, c], M, S, lo, hi), one M and S."""
    m, s = int(multiplier[0]), int(shift[0])
    lead = a.shape[:-2]
    rows, fan_in, cols = a.shape[-2], a.shape[-1], b.shape[-1]
    flat_a = a.reshape(-1, rows, fan_in)
    flat_b = b.reshape(-1, fan_in, cols)
    out = np.zeros((flat_a.shape[0], rows, cols), dtype=np.int64)
    for g in range(flat_a.shape[0]):
        for r in range(rows):
            for c in range(cols):
                acc = 0
                for k in range(fan_in):
                    acc += int(flat_a[g, r, k]) * int(flat_b[g, k, c])
                out[g, r, c] = requantize(acc, m, s, lo, hi)
    return out.reshape((*lead, rows, cols))


def embed(
    ids: np.ndarray,
    table: np.ndarray,
    position: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    lo: int,
    hi: int,
) -> np.ndarray:
    """ids [N, L] (0 <= id < V), table [V, D], position [P, D] with P >= L:
    y[n, l, d] = clamp(rshift_round(table[ids[n,l], d] * M0 + position[l, d] * M1, S), lo, hi).
    An id outside the table is an invalid input (ValueError), never clamped."""
    batch, length = ids.shape
    vocab, width = table.shape
    m0, m1, s = int(multiplier[0]), int(multiplier[1]), int(shift[0])
    out = np.zeros((batch, length, width), dtype=np.int64)
    for n in range(batch):
        for pos in range(length):
            token = int(ids[n, pos])
            if not 0 <= token < vocab:
                raise ValueError(f"token id {token} outside the embedding table [0, {vocab})")
            for d in range(width):
                total = int(table[token, d]) * m0 + int(position[pos, d]) * m1
                out[n, pos, d] = clamp_value(rshift_round(total, s), lo, hi)
    return out


def pad_mask(ids: np.ndarray, pad_id: int) -> np.ndarray:
    """The attention mask of token ids: 0 where id == pad_id, else 1."""
    flat = ids.reshape(-1)
    out = np.zeros(flat.shape, dtype=np.int64)
    for i in range(flat.size):
        out[i] = 0 if int(flat[i]) == pad_id else 1
    return out.reshape(ids.shape)


def lookup(x: np.ndarray, table: np.ndarray, offset: int) -> np.ndarray:
    """Element-wise function by a committed table (GELU and other activations):
    y = table[x + offset], offset = 128 for int8 inputs and 32768 for int16 ones."""
    flat = x.reshape(-1)
    out = np.zeros(flat.shape, dtype=np.int64)
    for i in range(flat.size):
        out[i] = int(table[int(flat[i]) + offset])
    return out.reshape(x.shape)


def transpose(x: np.ndarray, perm: Sequence[int]) -> np.ndarray:
    """Permute the per-sample axes (the batch axis stays first); no arithmetic."""
    return x.transpose((0, *(p + 1 for p in perm)))


def mean_pool_row(row: Sequence[int], mask: Sequence[int]) -> int:
    """div_round(sum of the kept values, their count); 0 when none is kept."""
    kept = [int(v) for v, m in zip(row, mask, strict=True) if int(m) != 0]
    return div_round(sum(kept), len(kept)) if kept else 0


def mean_pool(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked mean over the tokens, the last axis: x [N, D, L] (features by tokens, a
    transposed [L, D] sequence), mask [N, L] -> y [N, D]."""
    batch, width, length = x.shape
    out = np.zeros((batch, width), dtype=np.int64)
    for n in range(batch):
        keep = [int(v) for v in mask[n]]
        for d in range(width):
            out[n, d] = mean_pool_row([int(v) for v in x[n, d]], keep)
    return out


def l2norm_row(values: Sequence[int], out_frac: int, lo: int, hi: int) -> list[int]:
    """x / ||x|| in units of 2^-out_frac: r = isqrt(sum x_i^2);
    y_i = clamp(div_round(x_i * 2^out_frac, r), lo, hi), 0 for every i when r = 0."""
    root = isqrt(sum(int(v) * int(v) for v in values))
    if root == 0:
        return [0] * len(values)
    return [clamp_value(div_round(int(v) << out_frac, root), lo, hi) for v in values]


def l2norm(x: np.ndarray, out_frac: int, lo: int, hi: int) -> np.ndarray:
    """l2norm_row along the last axis of x [N, ..., D]."""
    rows = x.reshape(-1, x.shape[-1])
    out = np.zeros(rows.shape, dtype=np.int64)
    for i in range(rows.shape[0]):
        out[i] = l2norm_row([int(v) for v in rows[i]], out_frac, lo, hi)
    return out.reshape(x.shape)
