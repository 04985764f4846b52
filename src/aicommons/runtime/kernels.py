"""Fast exact kernels: the same results as `reference`, computed with float BLAS and int64 numpy.

Products of int8 values and their sums are exact in float32 while every partial sum stays below
2^24 and in float64 below 2^53, in any summation order, so BLAS threading cannot change a result.
Nothing here may round: a float only ever holds an integer it can represent exactly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from aicommons.runtime import reference as ref
from aicommons.runtime.graph import Layer

FLOAT32_MAX_FAN_IN = (1 << 24) // (128 * 127)
"""1032: int8 dot products of this length keep every float32 partial sum below 2^24."""

MATMUL_PATHS = ("float32", "float64")
MATMUL_PATH_ENV = "AICOMMONS_MATMUL_PATH"

Kernel = Callable[..., np.ndarray]


def default_matmul_path() -> str:
    """float32 (blocked fan-in) unless AICOMMONS_MATMUL_PATH selects float64; both are exact."""
    path = os.environ.get(MATMUL_PATH_ENV, "float32")
    if path not in MATMUL_PATHS:
        raise ValueError(
            f"{MATMUL_PATH_ENV} must be one of {', '.join(MATMUL_PATHS)}, got {path!r}"
        )
    return path


class ExactMatmul:
    """x [..., R, K] (int8 values) @ W^T for a fixed int8 W [..., C, K], returned exactly as int64.

    The float copies of W are made once at load so a call costs one conversion and BLAS.
    """

    def __init__(self, weight: np.ndarray, path: str) -> None:
        fan_in = weight.shape[-1]
        transposed = np.swapaxes(weight, -1, -2)
        if path == "float64":
            self.dtype: type = np.float64
            block = max(fan_in, 1)
        else:
            self.dtype = np.float32
            block = FLOAT32_MAX_FAN_IN
        self.blocks = []
        for start in range(0, max(fan_in, 1), block):
            stop = min(start + block, fan_in)
            weight_block = np.ascontiguousarray(transposed[..., start:stop, :], dtype=self.dtype)
            self.blocks.append((start, stop, weight_block))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x_float = x.astype(self.dtype)
        if len(self.blocks) == 1:
            return np.matmul(x_float, self.blocks[0][2]).astype(np.int64)
        acc = None
        for start, stop, weight_block in self.blocks:
            # Each block's sum is exact on its own; the blocks are then added in int64.
            part = np.matmul(x_float[..., start:stop], weight_block).astype(np.int64)
            acc = part if acc is None else acc + part
        return acc


class Requantizer:
    """y = clamp(rshift_round(acc*M + ...), lo, hi) per channel (channel on the last axis).

    `(acc + bias)*M + 2^(S-1)` is computed as `acc*M + (bias*M + 2^(S-1))` with the second term
    precomputed: every partial value is bounded by the fan-in bound, so int64 never overflows.
    """

    def __init__(
        self,
        bias: np.ndarray,
        multiplier: np.ndarray,
        shift: np.ndarray,
        lo: int,
        hi: int,
        out_dtype: str,
    ) -> None:
        multiplier64 = multiplier.astype(np.int64)
        shift64 = shift.astype(np.int64)
        rounding = np.where(shift64 > 0, np.left_shift(1, np.maximum(shift64 - 1, 0)), 0)
        self.multiplier = multiplier64
        self.offset = bias.astype(np.int64) * multiplier64 + rounding
        self.shift = shift64
        self.lo, self.hi = lo, hi
        self.out_dtype = np.dtype(out_dtype)

    def __call__(self, acc: np.ndarray) -> np.ndarray:
        np.multiply(acc, self.multiplier, out=acc)
        np.add(acc, self.offset, out=acc)
        np.right_shift(acc, self.shift, out=acc)
        np.clip(acc, self.lo, self.hi, out=acc)
        return acc.astype(self.out_dtype)


def dense_kernel(layer: Layer, tensors: Mapping[str, np.ndarray], path: str) -> Kernel:
    matmul = ExactMatmul(tensors[layer.tensors["weight"]], path)
    requantize = _requantizer(layer, tensors)

    def run(x: np.ndarray) -> np.ndarray:
        return requantize(matmul(x))

    return run


def _requantizer(layer: Layer, tensors: Mapping[str, np.ndarray]) -> Requantizer:
    return Requantizer(
        tensors[layer.tensors["bias"]],
        tensors[layer.tensors["multiplier"]],
        tensors[layer.tensors["shift"]],
        int(layer.attrs["lo"]),
        int(layer.attrs["hi"]),
        layer.out_dtype,
    )


def window_indices(
    in_shape: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Gather indices [P, kh*kw] into a flattened H*W plane plus one pad slot (index H*W).

    Returns the indices, the in-bounds count of each window, and the output (H, W).
    """
    height, width = in_shape[-2], in_shape[-1]
    out_h = ref.conv_output_size(height, kernel[0], strides[0], pads[0], pads[2], dilations[0])
    out_w = ref.conv_output_size(width, kernel[1], strides[1], pads[1], pads[3], dilations[1])
    rows = (
        np.arange(out_h)[:, None] * strides[0]
        - pads[0]
        + np.arange(kernel[0])[None, :] * dilations[0]
    )
    cols = (
        np.arange(out_w)[:, None] * strides[1]
        - pads[1]
        + np.arange(kernel[1])[None, :] * dilations[1]
    )
    iy = rows[:, None, :, None]  # [oh, 1, kh, 1]
    ix = cols[None, :, None, :]  # [1, ow, 1, kw]
    inside = (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
    flat = np.where(inside, iy * width + ix, height * width)
    indices = flat.reshape(out_h * out_w, kernel[0] * kernel[1])
    counts = inside.reshape(out_h * out_w, -1).sum(axis=1)
    return indices.astype(np.intp), counts.astype(np.int64), (out_h, out_w)


def conv2d_kernel(
    layer: Layer, tensors: Mapping[str, np.ndarray], in_shape: Sequence[int], path: str
) -> Kernel:
    a = layer.attrs
    weight = tensors[layer.tensors["weight"]]
    channels, group_in, kernel_h, kernel_w = weight.shape
    groups = int(a["groups"])
    group_out = channels // groups
    in_channels, height, width = in_shape
    plane_idx, _, (out_h, out_w) = window_indices(
        in_shape, (kernel_h, kernel_w), a["strides"], a["pads"], a["dilations"]
    )
    positions = out_h * out_w
    plane = height * width + 1
    # Index into x flattened as [C * (H*W + 1)]: channel c's plane starts at c * plane; the
    # slot at the end of each plane is the zero pad.
    channel_offsets = (np.arange(in_channels) * plane).reshape(groups, group_in)
    # [G, P, group_in * kh * kw], in the same (ci, ky, kx) order as the weight rows.
    gather = (channel_offsets[:, None, :, None] + plane_idx[None, :, None, :]).reshape(
        groups, positions, -1
    )
    matmul = ExactMatmul(weight.reshape(groups, group_out, -1), path)
    requantize = _requantizer(layer, tensors)

    def run(x: np.ndarray) -> np.ndarray:
        batch = x.shape[0]
        padded = np.zeros((batch, in_channels, plane), dtype=np.int8)
        padded[:, :, :-1] = x.reshape(batch, in_channels, height * width)
        columns = padded.reshape(batch, -1)[:, gather]  # [N, G, P, Kg]
        columns = columns.transpose(1, 0, 2, 3).reshape(groups, batch * positions, -1)
        acc = matmul(columns)  # [G, N*P, Cg]
        acc = acc.transpose(1, 0, 2).reshape(batch * positions, channels)
        out = requantize(np.ascontiguousarray(acc))
        return np.ascontiguousarray(
            out.reshape(batch, out_h, out_w, channels).transpose(0, 3, 1, 2)
        )

    return run


def pool_kernel(layer: Layer, in_shape: Sequence[int]) -> Kernel:
    a = layer.attrs
    channels, height, width = in_shape
    is_max = layer.op == "maxpool"
    dilations = a["dilations"] if is_max else (1, 1)
    indices, counts, (out_h, out_w) = window_indices(
        in_shape, a["kernel"], a["strides"], a["pads"], dilations
    )
    # maxpool ignores padding: the pad slot holds -128, which never beats a real int8 value.
    pad_value = ref.INT8_MIN if is_max else 0
    if not is_max and int(a["count_include_pad"]):
        counts = np.full_like(counts, int(a["kernel"][0]) * int(a["kernel"][1]))
    doubled_counts = 2 * counts

    def run(x: np.ndarray) -> np.ndarray:
        batch = x.shape[0]
        padded = np.full((batch, channels, height * width + 1), pad_value, dtype=np.int8)
        padded[:, :, :-1] = x.reshape(batch, channels, height * width)
        windows = padded[:, :, indices]  # [N, C, P, kk]
        if is_max:
            out = windows.max(axis=-1)
        else:
            totals = windows.sum(axis=-1, dtype=np.int64)
            out = np.floor_divide(2 * totals + counts, doubled_counts).astype(np.int8)
        return out.reshape(batch, channels, out_h, out_w)

    return run


def add_kernel(layer: Layer, tensors: Mapping[str, np.ndarray]) -> Kernel:
    multiplier = tensors[layer.tensors["multiplier"]].astype(np.int64)
    shift = int(tensors[layer.tensors["shift"]][0])
    rounding = (1 << (shift - 1)) if shift > 0 else 0
    lo, hi = int(layer.attrs["lo"]), int(layer.attrs["hi"])
    out_dtype = np.dtype(layer.out_dtype)

    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        total = a.astype(np.int64) * multiplier[0]
        total += b.astype(np.int64) * multiplier[1]
        total += rounding
        total >>= shift
        return np.clip(total, lo, hi, out=total).astype(out_dtype)

    return run


def clamp_kernel(layer: Layer) -> Kernel:
    lo, hi = int(layer.attrs["lo"]), int(layer.attrs["hi"])
    return lambda x: np.clip(x, lo, hi)


def reshape_kernel(layer: Layer) -> Kernel:
    shape = tuple(int(v) for v in layer.attrs["shape"])
    return lambda x: x.reshape((x.shape[0], *shape))


def compile_layer(
    layer: Layer, tensors: Mapping[str, np.ndarray], in_shape: Sequence[int], path: str
) -> Kernel:
    """The fast kernel of one validated layer; `in_shape` is its first input's per-sample shape."""
    if path not in MATMUL_PATHS:
        raise ValueError(f"matmul path must be one of {', '.join(MATMUL_PATHS)}, got {path!r}")
    if layer.op == "dense":
        return dense_kernel(layer, tensors, path)
    if layer.op == "conv2d":
        return conv2d_kernel(layer, tensors, in_shape, path)
    if layer.op in ("maxpool", "avgpool"):
        return pool_kernel(layer, in_shape)
    if layer.op == "add":
        return add_kernel(layer, tensors)
    if layer.op == "clamp":
        return clamp_kernel(layer)
    if layer.op == "reshape":
        return reshape_kernel(layer)
    raise ValueError(f"no kernel for op {layer.op!r}")
