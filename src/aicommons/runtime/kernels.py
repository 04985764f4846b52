"""Fast exact kernels: the same results as `reference`, computed with int8 VNNI products where
the CPU has them, else float BLAS, int16 products on AVX2 (vpmaddwd), and int64 numpy/numba.

Products of int8 values and their sums are exact in int32 (VNNI), in float32 while every partial
sum stays below 2^24 and in float64 below 2^53, in any summation order, so neither the
instruction set nor BLAS threading can change a result. Nothing here may round: a float only
ever holds an integer it can represent exactly.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import numpy as np
from threadpoolctl import ThreadpoolController

from aicommons.runtime import avx2, madd16, vnni
from aicommons.runtime import reference as ref
from aicommons.runtime.errors import InputError
from aicommons.runtime.layer import Layer
from aicommons.runtime.loops import (
    add_scaled,
    band_rows,
    int_dot_rows,
    l2norm_rows,
    layernorm_rows,
    lookup_values,
    pool_requantize_rows,
    requantize_int_rows,
    requantize_rows,
    softmax_rows,
)

FLOAT32_MAX_FAN_IN = (1 << 24) // (128 * 127)
"""1032: int8 dot products of this length keep every float32 partial sum below 2^24."""

MATMUL_PATHS = ("vnni", "avx2", "float32", "float64")
MATMUL_PATH_ENV = "AICOMMONS_MATMUL_PATH"

Kernel = Callable[..., np.ndarray]
Dtypes = Sequence[str]
INT8 = ("int8",)
INPUT_BOUND = ref.INPUT_BOUND
TERM_BOUND = {"int8": 128 * 127, "int16": 32768 * 127}
"""Largest |x * W| of one product term of a dense/conv layer, by input dtype."""


_PATH_NEEDS = {"vnni": "AVX-512 VNNI or AVX-VNNI", "avx2": "AVX2"}


def available_matmul_paths() -> tuple[str, ...]:
    """The paths this machine can run, fastest first: vnni needs AVX-512 VNNI or AVX-VNNI
    (`vnni.host_isa`), avx2 needs AVX2 (`avx2.available`)."""
    runs = {"vnni": vnni.available(), "avx2": avx2.available()}
    return tuple(path for path in MATMUL_PATHS if runs.get(path, True))


def check_matmul_path(path: str) -> str:
    """`path` if it is a known path this machine can run, else a ValueError naming why."""
    if path not in MATMUL_PATHS:
        raise ValueError(f"matmul path must be one of {', '.join(MATMUL_PATHS)}, got {path!r}")
    if path not in available_matmul_paths():
        raise ValueError(f"matmul path {path!r} needs a CPU with {_PATH_NEEDS[path]}")
    return path


def default_matmul_path() -> str:
    """AICOMMONS_MATMUL_PATH if set, else vnni where the CPU has it, else avx2 where it has
    that, else float32 (blocked fan-in); float64 is the last. All are exact and give the same
    bytes."""
    path = os.environ.get(MATMUL_PATH_ENV)
    if path is None:
        return available_matmul_paths()[0]
    if path not in MATMUL_PATHS:
        raise ValueError(
            f"{MATMUL_PATH_ENV} must be one of {', '.join(MATMUL_PATHS)}, got {path!r}"
        )
    return check_matmul_path(path)


FLOAT_REQUANT_PRODUCT_BOUND = 2**52
"""The float requantisation path needs every |acc * M| below this (then each step is exact)."""
FLOAT_REQUANT_MAX_SHIFT = 44
"""...and S at most this, so acc*M + 2^(S-1) + 128*2^S stays below 2^53."""


class ExactMatmul:
    """x [..., R, K] (int8 values) @ W^T for a fixed int8 W [..., C, K], exact, as float.

    `path` float64 gives float64 products, any other path float32 ones. The float copies of W
    are made once at load so a call costs one conversion and BLAS. Each fan-in block's float32
    sum is exact; blocks are added in float64 (exact below 2^53).
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
            return np.matmul(x_float, self.blocks[0][2])
        total = None
        for start, stop, weight_block in self.blocks:
            part = np.matmul(x_float[..., start:stop], weight_block)
            total = part.astype(np.float64) if total is None else np.add(total, part, out=total)
        return total


GATHER_MAX_ELEMENTS = 1 << 14
"""Conv inputs whose im2col matrix is at most this big are gathered with one fancy index."""


class Requantizer:
    """y = clamp(rshift_round((dot + bias) * M, S), lo, hi) per channel (channel = last axis).

    Two exact paths. Float, when every |acc * M| < 2^52 and S <= 44 (packages
    from `aic model quantize` are made so): t = dot * (M / 2^S) + (bias*M + 2^(S-1)) / 2^S holds
    (acc*M + 2^(S-1)) / 2^S exactly in float64 (an integer below 2^53 times a power of two),
    so clamping to [lo, hi] and flooring gives y, returned as exact floats (float32 for int8
    bounds, float64 otherwise: what the next layer consumes; int32 graph outputs are cast at
    the end). Int64: `dot*M + (bias*M + 2^(S-1))` then an arithmetic shift and the clamp, one
    compiled pass (`loops.requantize_int_rows`) into the output dtype; the fan-in bound (int16
    inputs: the wide bound) keeps it in int64.
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
        term_bound: int = 128 * 127,
    ) -> None:
        """`term_bound` bounds |one product term| (int8 x int8 weights: 128 * 127)."""
        bias_list = [int(v) for v in bias]
        multipliers = [int(v) for v in multiplier]
        shifts = [int(v) for v in shift]
        rounding = [(1 << (s - 1)) if s > 0 else 0 for s in shifts]
        self.lo, self.hi = lo, hi
        self.out_dtype = np.dtype(out_dtype)
        # float32 holds every integer of [lo, hi] exactly when the bounds are int8-sized.
        self.float_dtype: type = np.float32 if max(abs(lo), abs(hi)) < 2**24 else np.float64
        self.fan_in = fan_in
        self.channels = len(bias_list)
        worst = [
            (abs(b) + fan_in * term_bound) * m for b, m in zip(bias_list, multipliers, strict=True)
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
        self.multiplier = np.array(multipliers, dtype=np.int64)
        int_offsets = [b * m + r for b, m, r in zip(bias_list, multipliers, rounding, strict=True)]
        self.int_offset = np.array(int_offsets, dtype=np.int64)
        self.shift = np.array(shifts, dtype=np.int64)

    def tiled(self, reps: int) -> Requantizer:
        """The same parameters repeated `reps` times along the channel axis (for a product whose
        columns are `reps` positions of every channel, such as a banded convolution)."""
        if reps == 1:
            return self
        wide = copy.copy(self)
        for name in ("scale", "offset", "multiplier", "int_offset", "shift"):
            setattr(wide, name, np.tile(getattr(self, name), reps))
        wide.channels = self.channels * reps
        return wide

    def __call__(self, dot: np.ndarray) -> np.ndarray:
        """y from the exact dot product (any dtype holding it; last axis a multiple of the
        channels, channel fastest). The float path is one compiled pass."""
        if self.float_path:
            rows = np.ascontiguousarray(dot).reshape(-1, self.channels)
            out = np.empty(rows.shape, dtype=self.float_dtype)
            requantize_rows(rows, self.scale, self.offset, self.lo, self.hi, out)
            return out.reshape(dot.shape)
        rows = np.ascontiguousarray(dot).reshape(-1, self.channels)
        out = np.empty(rows.shape, dtype=self.out_dtype)
        requantize_int_rows(
            rows, self.multiplier, self.int_offset, self.shift, self.lo, self.hi, out
        )
        return out.reshape(dot.shape)


INT_DOT_MAX_ROWS = 8
"""Dense calls of at most this many rows use the compiled int32 dot product (int8 weights): a
few rows are bound by reading the weights, and int8 weights are a quarter of float32 ones."""


class LinearRequant:
    """Exact x @ W^T then requantisation, for dense and conv layers.

    `weight` is [C, K], or [G, C/G, K] for grouped convolution (then x is [G, R, K]); the result
    is always [R, C]. The dot product is exact either way (see docs/integer-semantics.md):

    - path vnni, ungrouped: `vnni.Int8Product` (int32 VNNI sums), any number of rows;
    - path avx2, ungrouped: `avx2.Avx2Product` (int32 vpmaddubsw sums), any number of rows;
    - otherwise dense calls of at most INT_DOT_MAX_ROWS rows: the compiled int32 dot product;
    - otherwise `ExactMatmul` (float32 blocks of fan-in <= 1032 added in float64, or float64).

    An int16 input (version 2): `madd16.Int16Product` (AVX2 vpmaddwd, int32 sums over fan-in
    blocks of <= 512 terms, added in int64) where the CPU has AVX2, ungrouped, on any path but
    float64; otherwise the float64 product (partial sums below 2^47, the wide bound). The int8
    paths would overflow on int16 inputs and are never used for them.

    Then the Requantizer's float path (one compiled pass) or its int64 path.
    """

    def __init__(
        self, weight: np.ndarray, requantize: Requantizer, path: str, in_dtype: str = "int8"
    ) -> None:
        self.requantize = requantize
        self.grouped = weight.ndim == 3
        self.channels = weight.shape[0] * weight.shape[1] if self.grouped else weight.shape[0]
        self.fan_in = weight.shape[-1]
        check_matmul_path(path)
        self.int8_product: vnni.Int8Product | avx2.Avx2Product | None = None
        self.int16_product: madd16.Int16Product | None = None
        if in_dtype != "int8":
            # The int8 products would overflow on int16 inputs: vpmaddwd or float64 only.
            if path != "float64" and not self.grouped and madd16.available():
                self.int16_product = madd16.Int16Product(np.ascontiguousarray(weight, np.int8))
            path = "float64"
        int8_weight = np.ascontiguousarray(weight, dtype=np.int8)
        isa = vnni.host_isa() if path == "vnni" else None
        if isa is not None and not self.grouped and vnni.fits_int32(weight):
            self.int8_product = vnni.Int8Product(int8_weight, isa)
        elif path == "avx2" and not self.grouped and avx2.fits(int8_weight):
            self.int8_product = avx2.Avx2Product(int8_weight)
        self.int_product = self.int8_product or self.int16_product
        self.matmul = None if self.int_product else ExactMatmul(weight, path)
        # The integer products read int8 / int16 values; the float products their own type.
        self.input_dtype: type = (
            np.int8 if self.int8_product else np.int16 if self.int16_product else self.matmul.dtype
        )
        self.int_weight = None if self.grouped or in_dtype != "int8" else int8_weight

    def columns(self, rows: int) -> np.ndarray:
        """An input matrix to fill: [rows, K] in the dtype the product takes without a copy."""
        return np.empty((rows, self.fan_in), dtype=self.input_dtype)

    def product(self, x: np.ndarray) -> np.ndarray:
        """The exact dot product [R, C]. A max over it commutes with the requantisation, which
        is non-decreasing in the accumulator (M >= 1)."""
        if self.int_product is not None:
            return self.int_product(x)
        out = self.matmul(x)
        if self.grouped:
            out = out.transpose(1, 0, 2).reshape(out.shape[1], self.channels)
        return np.ascontiguousarray(out)

    def finish(self, product: np.ndarray, requantize: Requantizer | None = None) -> np.ndarray:
        """y from a product; `requantize` may be the per-channel parameters of a product whose
        columns repeat the channels differently (this layer's were tiled to its columns)."""
        return (requantize or self.requantize)(product)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x [R, K] (or [G, R, K] grouped), any dtype holding int8 values."""
        if (
            self.int_product is None
            and self.int_weight is not None
            and x.shape[0] <= INT_DOT_MAX_ROWS
        ):
            return self.requantize(int_dot_rows(x, self.int_weight))
        if isinstance(self.int8_product, avx2.Avx2Product) and self.requantize.float_path:
            r = self.requantize  # the float requantisation, fused into the product's threads
            return self.int8_product.requantized(x, r.scale, r.offset, r.lo, r.hi, r.float_dtype)
        return self.finish(self.product(x))


def layer_requantizer(
    layer: Layer, tensors: Mapping[str, np.ndarray], fan_in: int, in_dtype: str = "int8"
) -> Requantizer:
    return Requantizer(
        tensors[layer.tensors["bias"]],
        tensors[layer.tensors["multiplier"]],
        tensors[layer.tensors["shift"]],
        int(layer.attrs["lo"]),
        int(layer.attrs["hi"]),
        layer.out_dtype,
        fan_in,
        TERM_BOUND[in_dtype],
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


def dense_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = INT8,
) -> Kernel:
    """x [N, K] or, in version 2, [N, L, K]: the same product for every row of the last axis."""
    weight = tensors[layer.tensors["weight"]]
    dtype = in_dtypes[0]
    requantize = layer_requantizer(layer, tensors, weight.shape[1], dtype)
    linear = LinearRequant(weight, requantize, path, dtype)
    if len(in_shape) == 1:
        return linear
    channels = weight.shape[0]
    return lambda x: linear(x.reshape(-1, x.shape[-1])).reshape((*x.shape[:-1], channels))


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
    in_shape: Sequence[int], pads: Sequence[int], fill: float
) -> Callable[[np.ndarray], np.ndarray]:
    """NHWC input -> the zero/fill-padded copy (or the input itself when there is no pad).
    A fill of -inf in an integer array is the dtype's minimum: an int32 VNNI product is
    above -2^31 (|dot| < 2^31), so that pad never wins a max either."""
    channels, height, width = in_shape
    top, left, bottom, right = pads
    if not any(pads):
        return lambda x: x

    def pad(x: np.ndarray) -> np.ndarray:
        value = fill
        if fill == -np.inf and np.issubdtype(x.dtype, np.integer):
            value = np.iinfo(x.dtype).min
        padded = np.full(
            (x.shape[0], height + top + bottom, width + left + right, channels),
            value,
            dtype=x.dtype,
        )
        padded[:, top : top + height, left : left + width, :] = x
        return padded

    return pad


BANDED_MAX_BLOWUP = 4
"""A conv runs as one matmul over bands of whole input rows (no im2col) when the banded weight
costs at most this many times the conv's own MACs (that factor is width * groups / kw)."""
BANDED_MAX_WEIGHTS = 1 << 20
"""...and the banded weight matrix has at most this many entries."""


def banded_weight(
    weight: np.ndarray,
    in_shape: Sequence[int],
    out_w: int,
    strides: Sequence[int],
    pads: Sequence[int],
    dilations: Sequence[int],
    groups: int,
) -> np.ndarray:
    """The conv as a matrix [out_w * C, kh * W * C_in] from bands of kh whole input rows (NHWC
    row order) to one output row: entry ((ox, c), (ky, ix, ci)) = W[c, ci - group start, ky, kx]
    where ix = ox*sw - left + kx*dw; left/right zero padding and other groups are zero entries.
    Zeros add nothing, so each output still sums exactly the conv's own terms."""
    channels, group_in, kernel_h, kernel_w = weight.shape
    in_channels, width = in_shape[0], in_shape[2]
    group_out = channels // groups
    band = np.zeros((out_w, channels, kernel_h, width, in_channels), dtype=weight.dtype)
    for ox in range(out_w):
        for kx in range(kernel_w):
            ix = ox * strides[1] - pads[1] + kx * dilations[1]
            if not 0 <= ix < width:
                continue
            for g in range(groups):
                out_slice = slice(g * group_out, (g + 1) * group_out)
                in_slice = slice(g * group_in, (g + 1) * group_in)
                # weight [c, ci, ky] -> band [c, ky, ci]
                band[ox, out_slice, :, ix, in_slice] = weight[out_slice, :, :, kx].transpose(
                    0, 2, 1
                )
    return band.reshape(out_w * channels, kernel_h * width * in_channels)


class ConvKernel:
    """conv2d on NHWC input: a product over banded rows or im2col columns, then requantisation.

    `product` and `finish` are exposed separately so a following maxpool can run between them.
    With `pool_phase = s` (a fused s x s, stride s, unpadded maxpool that tiles the output), the
    banded product's output columns are ordered (ox mod s, ox div s) so the pool is 2(s-1)
    maxima of contiguous blocks.
    """

    def __init__(
        self,
        layer: Layer,
        tensors: Mapping[str, np.ndarray],
        in_shape: Sequence[int],
        path: str,
        pool_phase: int = 1,
        in_dtype: str = "int8",
    ) -> None:
        a = layer.attrs
        weight = tensors[layer.tensors["weight"]]
        channels, group_in, kernel_h, kernel_w = weight.shape
        self.groups = groups = int(a["groups"])
        self.in_shape = tuple(in_shape)
        self.channels = channels
        self.out_h, self.out_w = layer.out_shape[1], layer.out_shape[2]
        self.kernel = (kernel_h, kernel_w)
        self.strides, self.pads, self.dilations = a["strides"], a["pads"], a["dilations"]
        fan_in = group_in * kernel_h * kernel_w
        self.requantize = layer_requantizer(layer, tensors, fan_in, in_dtype)
        in_channels, height, width = in_shape
        banded_size = kernel_h * width * in_channels * self.out_w * channels
        self.banded = (
            width * groups <= BANDED_MAX_BLOWUP * kernel_w and banded_size <= BANDED_MAX_WEIGHTS
        )
        self.pool_phase = pool_phase if self.banded else 1
        # Per-channel parameters for a pooled row of out_w / s positions (fused pools only).
        self.pooled_requantize = (
            self.requantize.tiled(self.out_w // self.pool_phase) if self.pool_phase > 1 else None
        )
        if self.banded:
            band = banded_weight(
                weight, in_shape, self.out_w, self.strides, self.pads, self.dilations, groups
            )
            phase = self.pool_phase
            order = sorted(range(self.out_w), key=lambda ox: (ox % phase, ox // phase))
            band = band.reshape(self.out_w, channels, -1)[order].reshape(band.shape)
            self.linear = LinearRequant(band, self.requantize.tiled(self.out_w), path, in_dtype)
            return
        # Column order (ky, kx, ci) to match NHWC slices; weights reordered once to the same order.
        grouped = weight.reshape(groups, channels // groups, group_in, kernel_h, kernel_w)
        grouped = grouped.transpose(0, 1, 3, 4, 2).reshape(groups, channels // groups, fan_in)
        self.linear = LinearRequant(
            grouped[0] if groups == 1 else grouped, self.requantize, path, in_dtype
        )
        self._plan_im2col()

    def _banded_columns(self, x: np.ndarray) -> np.ndarray:
        """Each output row's band of kh input rows (NHWC rows, zero rows for padding)."""
        in_channels, height, width = self.in_shape
        columns = self.linear.columns(x.shape[0] * self.out_h)
        rows = x.reshape(x.shape[0], height, width * in_channels)
        top, stride, dilation = self.pads[0], self.strides[0], self.dilations[0]
        return band_rows(rows, self.kernel[0], stride, top, dilation, columns)

    def _plan_im2col(self) -> None:
        in_channels, height, width = self.in_shape
        self.offsets = _window_slices(
            self.kernel, self.strides, self.dilations, (self.out_h, self.out_w)
        )
        self.pad = _padder(self.in_shape, self.pads, 0)
        plane_idx, _, _ = window_indices(
            (height, width), self.kernel, self.strides, self.pads, self.dilations
        )
        plane_size = height * width
        inside = (plane_idx < plane_size)[:, :, None]
        # NHWC flat index of (position, ky, kx, ci); the pad slot (a zero) follows the input.
        channel = np.arange(in_channels)
        gather = np.where(
            inside, plane_idx[:, :, None] * in_channels + channel, plane_size * in_channels
        )
        self.gather = gather.reshape(self.out_h * self.out_w, -1)
        self.gather_limit = GATHER_MAX_ELEMENTS // max(gather.size, 1)

    def _im2col_columns(self, x: np.ndarray) -> np.ndarray:
        batch = x.shape[0]
        in_channels, height, width = self.in_shape
        positions = batch * self.out_h * self.out_w
        window = self.kernel[0] * self.kernel[1]
        if batch <= self.gather_limit:
            size = height * width * in_channels
            flat = np.empty((batch, size + 1), dtype=self.linear.input_dtype)
            flat[:, :size] = x.reshape(batch, -1)
            flat[:, size] = 0
            columns = flat[:, self.gather]
        else:
            padded = self.pad(x)
            columns = np.empty(
                (batch, self.out_h, self.out_w, window, in_channels), dtype=self.linear.input_dtype
            )
            for offset, (rows, cols) in enumerate(self.offsets):
                columns[:, :, :, offset, :] = padded[:, rows, cols, :]
        if self.groups == 1:
            return columns.reshape(positions, -1)
        group_in = in_channels // self.groups
        per_group = columns.reshape(positions, window, self.groups, group_in).transpose(2, 0, 1, 3)
        return per_group.reshape(self.groups, positions, window * group_in)

    def product(self, x: np.ndarray) -> np.ndarray:
        """The pre-requantisation value per output: NHWC [N, out_h, out_w, C], or with a pool
        phase s the banded layout [N, out_h, s * (out_w / s) * C] (columns by ox mod s)."""
        if not self.banded:
            out = self.linear.product(self._im2col_columns(x))
            return out.reshape(x.shape[0], self.out_h, self.out_w, self.channels)
        out = self.linear.product(self._banded_columns(x))
        if self.pool_phase > 1:
            return out.reshape(x.shape[0], self.out_h, -1)
        return out.reshape(x.shape[0], self.out_h, self.out_w, self.channels)

    def phase_pool(self, product: np.ndarray) -> np.ndarray:
        """The fused s x s / stride s maxpool of a phase-ordered product: NHWC result."""
        phase = self.pool_phase
        batch = product.shape[0]
        by_rows = product.reshape(batch, self.out_h // phase, phase, -1)
        out = np.maximum(by_rows[:, :, 0], by_rows[:, :, 1])
        for p in range(2, phase):
            np.maximum(out, by_rows[:, :, p], out=out)
        by_cols = out.reshape(batch, self.out_h // phase, phase, -1)
        pooled = np.maximum(by_cols[:, :, 0], by_cols[:, :, 1])
        for p in range(2, phase):
            np.maximum(pooled, by_cols[:, :, p], out=pooled)
        return pooled.reshape(batch, self.out_h // phase, self.out_w // phase, self.channels)

    def pooled_finish(self, product: np.ndarray) -> np.ndarray:
        """y of the fused s x s pool of a phase-ordered product, NHWC: the max over the s*s
        phases and the requantisation in one pass where the float path allows."""
        phase = self.pool_phase
        height, width = self.out_h // phase, self.out_w // phase
        requantize = self.pooled_requantize
        if not requantize.float_path:
            return self.finish(self.phase_pool(product))
        batch = product.shape[0]
        values = np.ascontiguousarray(product).reshape(batch * height, phase * phase, -1)
        out = np.empty((batch * height, values.shape[2]), dtype=requantize.float_dtype)
        pool_requantize_rows(
            values, requantize.scale, requantize.offset, requantize.lo, requantize.hi, out
        )
        return out.reshape(batch, height, width, self.channels)

    def pooled(self, x: np.ndarray) -> np.ndarray:
        """y of the conv and its fused s x s pool (s = pool_phase > 1), NHWC: on AVX2 with the
        float requantisation the product's threads pool and requantise each chunk of rows as
        they compute it (`Avx2Product.pooled`), else `pooled_finish(product(x))`."""
        product = self.linear.int8_product
        requantize = self.pooled_requantize
        if not isinstance(product, avx2.Avx2Product) or not requantize.float_path:
            return self.pooled_finish(self.product(x))
        phase = self.pool_phase
        out = product.pooled(
            self._banded_columns(x),
            phase,
            requantize.scale,
            requantize.offset,
            requantize.lo,
            requantize.hi,
            requantize.float_dtype,
        )
        return out.reshape(x.shape[0], self.out_h // phase, self.out_w // phase, self.channels)

    def finish(self, product: np.ndarray) -> np.ndarray:
        """y from NHWC pre-requantisation values (pooled or not): channels on the last axis."""
        return self.linear.finish(product, self.requantize)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.banded and self.pool_phase == 1:  # the product and its requantisation at once
            out = self.linear(self._banded_columns(x))
            return out.reshape(x.shape[0], self.out_h, self.out_w, self.channels)
        return self.finish(self.product(x))


def conv2d_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = INT8,
) -> ConvKernel:
    return ConvKernel(layer, tensors, in_shape, path, in_dtype=in_dtypes[0])


def tiling_pool_phase(pool: Layer, in_shape: Sequence[int]) -> int:
    """s when `pool` is an s x s maxpool with stride s, no padding or dilation, that tiles its
    [C, H, W] input exactly (every input in one window); else 1."""
    a = pool.attrs
    size = int(a["kernel"][0])
    tiles = (
        list(a["kernel"]) == [size, size]
        and list(a["strides"]) == [size, size]
        and not any(a["pads"])
        and list(a["dilations"]) == [1, 1]
        and in_shape[1] % size == 0
        and in_shape[2] % size == 0
    )
    return size if tiles and size > 1 else 1


def pool_kernel(
    layer: Layer, in_shape: Sequence[int], *, is_max: bool, max_fill: float | None = None
) -> Kernel:
    """maxpool / avgpool on NHWC values. `max_fill` pads a maxpool: -128 never beats an int8
    value; a maxpool over pre-requantisation values (floats of any magnitude, or int32 VNNI
    products) pads with -inf (the int32 minimum for the latter)."""
    a = layer.attrs
    out_dtype = np.dtype(layer.out_dtype)
    if max_fill is None:
        max_fill = float(np.iinfo(out_dtype).min)
    out_h, out_w = layer.out_shape[1], layer.out_shape[2]
    dilations = a["dilations"] if is_max else (1, 1)
    offsets = _window_slices(a["kernel"], a["strides"], dilations, (out_h, out_w))
    pad = _padder(in_shape, a["pads"], max_fill if is_max else 0)
    _, counts, _ = window_indices(in_shape[1:], a["kernel"], a["strides"], a["pads"], dilations)
    if not is_max and int(a["count_include_pad"]):
        counts = np.full_like(counts, int(a["kernel"][0]) * int(a["kernel"][1]))
    counts = counts.reshape(out_h, out_w, 1)
    doubled_counts = 2 * counts

    def run(x: np.ndarray) -> np.ndarray:
        # Sums are taken in integers; inputs may arrive as exact floats from a float-path layer.
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
        return np.floor_divide(total, doubled_counts).astype(out_dtype)

    return run


def maxpool_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = INT8,
) -> Kernel:
    return pool_kernel(layer, in_shape, is_max=True)


def avgpool_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = INT8,
) -> Kernel:
    return pool_kernel(layer, in_shape, is_max=False)


def add_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = INT8,
) -> Kernel:
    multiplier = tensors[layer.tensors["multiplier"]].astype(np.int64)
    shift = int(tensors[layer.tensors["shift"]][0])
    rounding = (1 << (shift - 1)) if shift > 0 else 0
    lo, hi = int(layer.attrs["lo"]), int(layer.attrs["hi"])
    out_dtype = np.dtype(layer.out_dtype)

    if in_dtypes != ("int8", "int8"):
        # Version 2 (an int16 operand): one compiled pass, in the layout the operands share.
        multipliers = (int(multiplier[0]), int(multiplier[1]))
        return lambda a, b: add_scaled(a, b, multipliers, shift, lo, hi, out_dtype)

    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        total = a.astype(np.int64) * multiplier[0]
        total += b.astype(np.int64) * multiplier[1]
        total += rounding
        total >>= shift
        np.maximum(total, lo, out=total)
        np.minimum(total, hi, out=total)
        return total.astype(out_dtype)

    return run


def clamp_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = INT8,
) -> Kernel:
    lo, hi = int(layer.attrs["lo"]), int(layer.attrs["hi"])
    return lambda x: np.minimum(np.maximum(x, lo), hi)


def reshape_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = INT8,
) -> Kernel:
    """Reshape in NCHW (the semantics) order: leave the internal layout around it."""
    shape = tuple(int(v) for v in layer.attrs["shape"])

    def run(x: np.ndarray) -> np.ndarray:
        external = x.transpose(0, 3, 1, 2) if x.ndim == 4 else x
        out = external.reshape((x.shape[0], *shape))
        return to_internal(out)

    return run


# -- version 2: the transformer ops -------------------------------------------------------------
# A value of 3 axes per sample is 4-D batched, which the internal layout keeps channels-last
# (`to_internal`); these kernels read `external` views and hand back `to_internal` views, so a
# chain of them never copies for the layout (the two transposes cancel).


def external(x: np.ndarray) -> np.ndarray:
    """The semantics' (NCHW) view of an internal value, without copying."""
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x


def embed_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = INT8,
) -> Kernel:
    """Gather rows, then `table*Mt + position*Mp` in int64 (< 2^47), shift, clamp. An id
    outside the table is refused (numpy would wrap a negative index)."""
    table = tensors[layer.tensors["table"]]
    length = in_shape[0]
    multiplier = tensors[layer.tensors["multiplier"]].astype(np.int64)
    shift = int(tensors[layer.tensors["shift"]][0])
    rounding = (1 << (shift - 1)) if shift > 0 else 0
    position = tensors[layer.tensors["position"]][:length].astype(np.int64)
    position_term = position * multiplier[1] + rounding
    lo, hi = int(layer.attrs["lo"]), int(layer.attrs["hi"])
    out_dtype = np.dtype(layer.out_dtype)
    vocab = table.shape[0]

    def run(ids: np.ndarray) -> np.ndarray:
        if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
            bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
            raise InputError(f"token id {bad} is outside the embedding table [0, {vocab})")
        total = table[ids.astype(np.intp)].astype(np.int64)
        total *= multiplier[0]
        total += position_term
        total >>= shift
        np.clip(total, lo, hi, out=total)
        return total.astype(out_dtype)

    return run


def pad_mask_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = INT8,
) -> Kernel:
    pad_id = int(layer.attrs["pad_id"])
    return lambda ids: (ids != pad_id).astype(np.int8)


@functools.cache
def _blas_threads() -> ThreadpoolController:
    return ThreadpoolController()


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """BLAS on the calling thread only, for stacked products of many small matrices (the
    attention heads): OpenBLAS threads each small GEMM, and on a shared 2-CPU machine its
    second thread is often descheduled, so the calls wait (measured here: 3.3 s on 2 threads
    vs 0.11 s on 1 for 384 products 128x32x128). Results do not depend on threads (exact)."""
    with _blas_threads().limit(limits=1, user_api="blas"):
        yield


def matmul_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = ("int8", "int8"),
) -> Kernel:
    """Batched BLAS product, then the one requantisation. Exact: every partial sum is at most
    K * X(a) * X(b) < 2^47 in magnitude (the op's bound), so float64 holds it in any order;
    float32 when that bound is below 2^24 (int8 operands, K <= 1024)."""
    fan_in = in_shape[-1]
    term = INPUT_BOUND[in_dtypes[0]] * INPUT_BOUND[in_dtypes[1]]
    dtype: type = np.float32 if fan_in * term < 2**24 else np.float64
    requantize = Requantizer(
        np.zeros(1, dtype=np.int32),
        tensors[layer.tensors["multiplier"]],
        tensors[layer.tensors["shift"]],
        int(layer.attrs["lo"]),
        int(layer.attrs["hi"]),
        layer.out_dtype,
        fan_in,
        term,
    )

    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        # C-contiguous operands: numpy hands stacked products to BLAS only then.
        left = np.ascontiguousarray(external(a), dtype=dtype)
        right = np.ascontiguousarray(external(b), dtype=dtype)
        with single_thread_blas():
            product = np.matmul(left, right)
        return to_internal(requantize(product))

    return run


def transpose_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = INT8,
) -> Kernel:
    axes = (0, *(int(p) + 1 for p in layer.attrs["perm"]))
    return lambda x: to_internal(external(x).transpose(axes))


def exp_table(in_frac: int, size: int = 1 << 16) -> np.ndarray:
    """exp_neg_q30(d, in_frac) for every d < size, int64, computed with the reference's exact
    steps on int64 arrays: u < 2^47, Horner products < 2^61, >> an arithmetic shift."""
    d = np.arange(size, dtype=np.int64)
    u = d * ref.LOG2E_Q30
    k = u >> (30 + in_frac)
    r = (u >> in_frac) & ((1 << 30) - 1)
    p = np.full(size, ref.EXP2_NEG_Q30[4], dtype=np.int64)
    for c in ref.EXP2_NEG_Q30[3::-1]:
        p = ((p * r) >> 30) + c
    return np.where(k > 30, 0, p >> np.minimum(k, 62))


def softmax_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = ("int16", "int8"),
) -> Kernel:
    """One compiled pass per row (`loops.softmax_rows`) with e = exp_table[m - x]: the
    difference of two int8/int16 values is below 2^16, the table's length."""
    table = exp_table(int(layer.attrs["in_frac"]))
    length = in_shape[-1]

    def run(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        scores = external(x)
        rows = scores.reshape(scores.shape[0], -1, length)
        return to_internal(softmax_rows(rows, mask, table).reshape(scores.shape))

    return run


def layernorm_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = ("int16",),
) -> Kernel:
    width = in_shape[-1]
    multiplier = tensors[layer.tensors["multiplier"]].astype(np.int64)
    shift = tensors[layer.tensors["shift"]].astype(np.int64)
    bias = tensors[layer.tensors["bias"]].astype(np.int64)
    lo, hi = int(layer.attrs["lo"]), int(layer.attrs["hi"])
    out_dtype = np.dtype(layer.out_dtype)

    def run(x: np.ndarray) -> np.ndarray:
        values = external(x)
        rows = values.reshape(-1, width)
        out = np.empty(rows.shape, dtype=out_dtype)
        layernorm_rows(rows, multiplier, shift, bias, lo, hi, ref.LAYERNORM_FRAC, out)
        return to_internal(out.reshape(values.shape))

    return run


def lookup_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = ("int16",),
) -> Kernel:
    """table[x + len/2], element-wise (so in any layout)."""
    table = tensors[layer.tensors["table"]]
    offset = table.shape[0] // 2
    return lambda x: lookup_values(x, table, offset)


def mean_pool_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = ("int16", "int8"),
) -> Kernel:
    """Masked sums as a float64 product x[N, D, L] @ keep[N, L, 1] (exact: |sum| < L * 2^15),
    then div_round in int64."""
    out_dtype = np.dtype(layer.out_dtype)

    def run(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        keep = (mask != 0).astype(np.float64)
        rows = x.astype(np.float64)
        sums = np.matmul(rows, keep[:, :, None])[:, :, 0].astype(np.int64)
        counts = keep.sum(axis=1).astype(np.int64)[:, None]
        safe = np.maximum(counts, 1)
        out = np.floor_divide(2 * sums + safe, 2 * safe)
        return np.where(counts > 0, out, 0).astype(out_dtype)

    return run


def l2norm_kernel(
    layer: Layer,
    tensors: Mapping[str, np.ndarray],
    in_shape: Sequence[int],
    path: str,
    *,
    in_dtypes: Dtypes = ("int16",),
) -> Kernel:
    width = in_shape[-1]
    frac = int(layer.attrs["out_frac"])
    lo, hi = int(layer.attrs["lo"]), int(layer.attrs["hi"])
    out_dtype = np.dtype(layer.out_dtype)

    def run(x: np.ndarray) -> np.ndarray:
        values = external(x)
        rows = values.reshape(-1, width)
        out = np.empty(rows.shape, dtype=out_dtype)
        l2norm_rows(rows, frac, lo, hi, out)
        return to_internal(out.reshape(values.shape))

    return run
