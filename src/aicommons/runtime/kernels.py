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


FLOAT_REQUANT_PRODUCT_BOUND = 2**52
"""The float requantisation path needs every |acc * M| below this (then each step is exact)."""
FLOAT_REQUANT_MAX_SHIFT = 44
"""...and S at most this, so acc*M + 2^(S-1) + 128*2^S stays below 2^53."""


BLAS_SINGLE_THREAD_MACS = 65536 * 4
"""OpenBLAS computes a product of at most m*n*k = 2^18 on the calling thread alone."""
SPLIT_MAX_MACS = 1 << 23
"""Mid-sized products (up to 8M MACs) are cut into single-thread row blocks: waking BLAS
threads costs more than it saves there, and on a busy machine a sleeping worker thread can
stall a call for a whole scheduler slice. Larger products keep BLAS threading."""


def blas_matmul(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x [R, K] @ weight [K, C] (or stacked [G, ...]); exact whenever its inputs allow it,
    since splitting rows never changes any output element's sum."""
    rows, fan_in = x.shape[-2], x.shape[-1]
    per_row = fan_in * weight.shape[-1]
    macs = rows * per_row * (x.shape[0] if x.ndim == 3 else 1)
    if x.ndim != 2 or macs <= BLAS_SINGLE_THREAD_MACS or macs > SPLIT_MAX_MACS:
        return np.matmul(x, weight)
    step = max(1, BLAS_SINGLE_THREAD_MACS // per_row)
    out = np.empty((rows, weight.shape[-1]), dtype=np.result_type(x, weight))
    for start in range(0, rows, step):
        np.matmul(x[start : start + step], weight, out=out[start : start + step])
    return out


class ExactMatmul:
    """x [..., R, K] (int8 values) @ W^T for a fixed int8 W [..., C, K], exact, as float.

    The float copies of W are made once at load so a call costs one conversion and BLAS. Each
    fan-in block's float32 sum is exact; blocks are added in float64 (exact below 2^53).
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
        x_float = x if x.dtype == self.dtype else x.astype(self.dtype)
        if len(self.blocks) == 1:
            return blas_matmul(x_float, self.blocks[0][2])
        total = None
        for start, stop, weight_block in self.blocks:
            part = blas_matmul(x_float[..., start:stop], weight_block)
            total = part.astype(np.float64) if total is None else np.add(total, part, out=total)
        return total


GATHER_MAX_ELEMENTS = 1 << 14
"""Conv inputs whose im2col matrix is at most this big are gathered with one fancy index."""

PRESCALED_MAX_MACS = 1 << 15
"""Products up to this many MACs run in float64 on W * (M / 2^S): exact, and fewer numpy calls."""


class Requantizer:
    """y = clamp(rshift_round((dot + bias) * M, S), lo, hi) per channel (channel = last axis).

    Two exact paths. Float, when every |acc * M| < 2^52 and S <= 44 (packages
    from `aic model quantize` are made so): t = dot * (M / 2^S) + (bias*M + 2^(S-1)) / 2^S holds
    (acc*M + 2^(S-1)) / 2^S exactly in float64 (an integer below 2^53 times a power of two),
    so clamping to [lo, hi] and flooring gives y, returned as float32 for int8 outputs (exact,
    and what the next matmul consumes) or float64 for int32 graph outputs. Int64:
    `acc*M + (bias*M + 2^(S-1))` then an arithmetic shift; the fan-in bound keeps it in int64.
    """

    def __init__(
        self,
        bias: np.ndarray,
        multiplier: np.ndarray,
        shift: np.ndarray,
        lo: int,
        hi: int,
        out_dtype: str,
        fan_in: int,
    ) -> None:
        bias_list = [int(v) for v in bias]
        multipliers = [int(v) for v in multiplier]
        shifts = [int(v) for v in shift]
        rounding = [(1 << (s - 1)) if s > 0 else 0 for s in shifts]
        self.lo, self.hi = lo, hi
        self.out_dtype = np.dtype(out_dtype)
        worst = [
            (abs(b) + fan_in * 128 * 127) * m for b, m in zip(bias_list, multipliers, strict=True)
        ]
        self.float_path = (
            max(worst, default=0) < FLOAT_REQUANT_PRODUCT_BOUND
            and max(shifts, default=0) <= FLOAT_REQUANT_MAX_SHIFT
        )
        triples = zip(multipliers, shifts, rounding, strict=True)
        # Exact: integers below 2^53 times a power of two.
        self.scale = np.array([m / 2**s for m, s in zip(multipliers, shifts, strict=True)])
        self.offset = np.array(
            [(b * m + r) / 2**s for b, (m, s, r) in zip(bias_list, triples, strict=True)]
        )
        self.float_lo, self.float_hi = float(lo), float(hi)
        self.multiplier = np.array(multipliers, dtype=np.int64)
        int_offsets = [b * m + r for b, m, r in zip(bias_list, multipliers, rounding, strict=True)]
        self.int_offset = np.array(int_offsets, dtype=np.int64)
        self.shift = np.array(shifts, dtype=np.int64)

    def finish_scaled(self, t: np.ndarray) -> np.ndarray:
        """t = dot * M / 2^S (float64, exact) -> y as float32; float path only."""
        t += self.offset
        if t.size > 2048:
            np.clip(t, self.float_lo, self.float_hi, out=t)
        else:
            np.maximum(t, self.float_lo, out=t)
            np.minimum(t, self.float_hi, out=t)
        if self.out_dtype != np.int8:
            return np.floor(t, out=t)  # int32 results stay exact float64 until the output cast
        out = np.empty(t.shape, dtype=np.float32)
        np.floor(t, out=out)
        return out

    def __call__(self, dot: np.ndarray) -> np.ndarray:
        if self.float_path:
            return self.finish_scaled(np.multiply(dot, self.scale))
        acc = dot.astype(np.int64)
        acc *= self.multiplier
        acc += self.int_offset
        acc >>= self.shift
        np.maximum(acc, self.lo, out=acc)
        np.minimum(acc, self.hi, out=acc)
        return acc.astype(self.out_dtype)


class LinearRequant:
    """Exact x @ W^T then requantisation, for dense and conv layers.

    `weight` is [C, K], or [G, C/G, K] for grouped convolution (then x is [G, R, K]); the result
    is always [R, C]. Small products on the float path multiply by W * (M / 2^S) in float64,
    exact because every partial sum is a multiple of 2^-S below 2^52 in magnitude; that saves
    numpy calls. Larger ones use the float32 product (half the BLAS work) and then scale.
    """

    def __init__(self, weight: np.ndarray, requantize: Requantizer, path: str) -> None:
        self.requantize = requantize
        self.grouped = weight.ndim == 3
        self.channels = weight.shape[0] * weight.shape[1] if self.grouped else weight.shape[0]
        self.macs_per_row = weight.shape[-1] * self.channels
        self.always_prescaled = requantize.float_path and path == "float64"
        if requantize.float_path:
            scale = requantize.scale.reshape(weight.shape[:-1])[..., None]
            self.scaled_weight = np.ascontiguousarray(np.swapaxes(weight * scale, -1, -2))
        self.matmul = ExactMatmul(weight, path)

    def prescaled(self, rows: int) -> bool:
        """Whether a call with `rows` rows multiplies by the prescaled float64 weights."""
        if self.always_prescaled:
            return True
        return self.requantize.float_path and rows * self.macs_per_row <= PRESCALED_MAX_MACS

    def input_dtype(self, rows: int) -> type:
        return np.float64 if self.prescaled(rows) else self.matmul.dtype

    def _merge_groups(self, out: np.ndarray) -> np.ndarray:
        return out.transpose(1, 0, 2).reshape(out.shape[1], self.channels) if self.grouped else out

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.prescaled(x.shape[-2]):
            x_float = x if x.dtype == np.float64 else x.astype(np.float64)
            scaled = self._merge_groups(blas_matmul(x_float, self.scaled_weight))
            return self.requantize.finish_scaled(np.ascontiguousarray(scaled))
        return self.requantize(np.ascontiguousarray(self._merge_groups(self.matmul(x))))


def _requantizer(layer: Layer, tensors: Mapping[str, np.ndarray], fan_in: int) -> Requantizer:
    return Requantizer(
        tensors[layer.tensors["bias"]],
        tensors[layer.tensors["multiplier"]],
        tensors[layer.tensors["shift"]],
        int(layer.attrs["lo"]),
        int(layer.attrs["hi"]),
        layer.out_dtype,
        fan_in,
    )


def window_indices(
    in_hw: Sequence[int],
    kernel: Sequence[int],
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Gather indices [P, kh*kw] into a flattened H*W plane plus one pad slot (index H*W).

    Returns the indices, the in-bounds count of each window, and the output (H, W).
    """
    height, width = in_hw[-2], in_hw[-1]
    out_h = ref.conv_output_size(height, kernel[0], strides[0], pads[0], pads[2], dilations[0])
    out_w = ref.conv_output_size(width, kernel[1], strides[1], pads[1], pads[3], dilations[1])
    rows = np.arange(out_h)[:, None] * strides[0] - pads[0] + np.arange(kernel[0]) * dilations[0]
    cols = np.arange(out_w)[:, None] * strides[1] - pads[1] + np.arange(kernel[1]) * dilations[1]
    iy = rows[:, None, :, None]  # [oh, 1, kh, 1]
    ix = cols[None, :, None, :]  # [1, ow, 1, kw]
    inside = (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
    flat = np.where(inside, iy * width + ix, height * width)
    indices = flat.reshape(out_h * out_w, kernel[0] * kernel[1])
    counts = inside.reshape(out_h * out_w, -1).sum(axis=1)
    return indices.astype(np.intp), counts.astype(np.int64), (out_h, out_w)


# Internal layout: per-sample [C, H, W] values are kept as NHWC arrays between kernels, so
# im2col slices and the conv matmul output need no transposes; `to_external` restores NCHW.


def to_internal(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def to_external(x: np.ndarray, dtype: str = "int8") -> np.ndarray:
    """NCHW and the declared integer dtype (kernels may hand over exact integers as float32)."""
    external = x.transpose(0, 3, 1, 2) if x.ndim == 4 else x
    return np.ascontiguousarray(external, dtype=np.dtype(dtype))


def dense_kernel(layer: Layer, tensors: Mapping[str, np.ndarray], path: str) -> Kernel:
    weight = tensors[layer.tensors["weight"]]
    return LinearRequant(weight, _requantizer(layer, tensors, weight.shape[1]), path)


def _window_slices(
    kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int], out_hw: tuple[int, int]
) -> list[tuple[slice, slice]]:
    """For each kernel offset (ky, kx) in row-major order: the rows/cols of the padded input."""
    return [
        (
            slice(
                ky * dilations[0], ky * dilations[0] + strides[0] * (out_hw[0] - 1) + 1, strides[0]
            ),
            slice(
                kx * dilations[1], kx * dilations[1] + strides[1] * (out_hw[1] - 1) + 1, strides[1]
            ),
        )
        for ky in range(kernel[0])
        for kx in range(kernel[1])
    ]


def _padder(
    in_shape: Sequence[int], pads: Sequence[int], fill: int
) -> Callable[[np.ndarray], np.ndarray]:
    """NHWC int8 input -> the zero/fill-padded copy (or the input itself when there is no pad)."""
    channels, height, width = in_shape
    top, left, bottom, right = pads
    if not any(pads):
        return lambda x: x

    def pad(x: np.ndarray) -> np.ndarray:
        padded = np.full(
            (x.shape[0], height + top + bottom, width + left + right, channels), fill, dtype=x.dtype
        )
        padded[:, top : top + height, left : left + width, :] = x
        return padded

    return pad


def conv2d_kernel(
    layer: Layer, tensors: Mapping[str, np.ndarray], in_shape: Sequence[int], path: str
) -> Kernel:
    a = layer.attrs
    weight = tensors[layer.tensors["weight"]]
    channels, group_in, kernel_h, kernel_w = weight.shape
    groups = int(a["groups"])
    group_out = channels // groups
    in_channels = in_shape[0]
    out_h, out_w = layer.out_shape[1], layer.out_shape[2]
    offsets = _window_slices((kernel_h, kernel_w), a["strides"], a["dilations"], (out_h, out_w))
    pad = _padder(in_shape, a["pads"], 0)
    fan_in = group_in * kernel_h * kernel_w
    # Column order (ky, kx, ci) to match NHWC slices; weights reordered once to the same order.
    grouped = weight.reshape(groups, group_out, group_in, kernel_h, kernel_w).transpose(
        0, 1, 3, 4, 2
    )
    grouped = grouped.reshape(groups, group_out, fan_in)
    linear = LinearRequant(
        grouped[0] if groups == 1 else grouped, _requantizer(layer, tensors, fan_in), path
    )

    # Small batches gather all columns with one precomputed index (fewer numpy calls); large
    # ones copy kh*kw strided slices (less work per element). Both are pure data movement.
    strides, pads, dilations = a["strides"], a["pads"], a["dilations"]
    plane_idx, _, _ = window_indices(in_shape[1:], (kernel_h, kernel_w), strides, pads, dilations)
    plane_size = in_shape[1] * in_shape[2]
    inside = (plane_idx < plane_size)[:, :, None]
    # NHWC flat index of (position, ky, kx, ci); the pad slot is the last element.
    channel = np.arange(in_channels)
    gather = np.where(
        inside, plane_idx[:, :, None] * in_channels + channel, plane_size * in_channels
    )
    gather = gather.reshape(out_h * out_w, fan_in * groups)
    gather_limit = GATHER_MAX_ELEMENTS // max(gather.size, 1)

    def build_columns(x: np.ndarray) -> np.ndarray:
        batch = x.shape[0]
        if batch <= gather_limit:
            flat = np.zeros(
                (batch, plane_size * in_channels + 1),
                dtype=linear.input_dtype(batch * out_h * out_w),
            )
            flat[:, :-1] = x.reshape(batch, -1)
            return flat[:, gather]
        padded = pad(x)
        columns = np.empty(
            (batch, out_h, out_w, kernel_h * kernel_w, in_channels),
            dtype=linear.input_dtype(batch * out_h * out_w),
        )
        for offset, (rows, cols) in enumerate(offsets):
            columns[:, :, :, offset, :] = padded[:, rows, cols, :]
        return columns

    def run(x: np.ndarray) -> np.ndarray:
        batch = x.shape[0]
        columns = build_columns(x)
        positions = batch * out_h * out_w
        if groups == 1:
            columns = columns.reshape(positions, fan_in)
        else:
            per_group = columns.reshape(positions, kernel_h * kernel_w, groups, group_in).transpose(
                2, 0, 1, 3
            )
            columns = per_group.reshape(groups, positions, fan_in)
        return linear(columns).reshape(batch, out_h, out_w, channels)

    return run


def pool_kernel(layer: Layer, in_shape: Sequence[int]) -> Kernel:
    a = layer.attrs
    is_max = layer.op == "maxpool"
    out_h, out_w = layer.out_shape[1], layer.out_shape[2]
    dilations = a["dilations"] if is_max else (1, 1)
    offsets = _window_slices(a["kernel"], a["strides"], dilations, (out_h, out_w))
    # maxpool ignores padding: a pad of -128 never beats a real int8 value.
    pad = _padder(in_shape, a["pads"], ref.INT8_MIN if is_max else 0)
    _, counts, _ = window_indices(in_shape[1:], a["kernel"], a["strides"], a["pads"], dilations)
    if not is_max and int(a["count_include_pad"]):
        counts = np.full_like(counts, int(a["kernel"][0]) * int(a["kernel"][1]))
    counts = counts.reshape(out_h, out_w, 1)
    doubled_counts = 2 * counts

    def run(x: np.ndarray) -> np.ndarray:
        # Sums are taken in integers; inputs may arrive as exact float32 from a float-path layer.
        padded = pad(x if is_max else x.astype(np.int32))
        if is_max:
            out = padded[:, offsets[0][0], offsets[0][1], :].copy()
            for rows, cols in offsets[1:]:
                np.maximum(out, padded[:, rows, cols, :], out=out)
            return out
        total = padded[:, offsets[0][0], offsets[0][1], :].astype(np.int64)
        for rows, cols in offsets[1:]:
            total += padded[:, rows, cols, :]
        total *= 2
        total += counts
        return np.floor_divide(total, doubled_counts).astype(np.int8)

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
        np.maximum(total, lo, out=total)
        np.minimum(total, hi, out=total)
        return total.astype(out_dtype)

    return run


def clamp_kernel(layer: Layer) -> Kernel:
    lo, hi = np.int8(layer.attrs["lo"]), np.int8(layer.attrs["hi"])
    return lambda x: np.minimum(np.maximum(x, lo), hi)


def reshape_kernel(layer: Layer) -> Kernel:
    """Reshape in NCHW (the semantics) order: leave the internal layout around it."""
    shape = tuple(int(v) for v in layer.attrs["shape"])

    def run(x: np.ndarray) -> np.ndarray:
        external = x.transpose(0, 3, 1, 2) if x.ndim == 4 else x
        out = external.reshape((x.shape[0], *shape))
        return to_internal(out)

    return run


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
