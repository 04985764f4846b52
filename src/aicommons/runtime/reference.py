"""The integer semantics in code: a slow, obviously correct pure-int reference of every op.

This is the spec and the test oracle (docs/integer-semantics.md). It works on Python ints one
element at a time, never on floats or numpy arithmetic, so nothing here can overflow or round.
"""

from __future__ import annotations

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
