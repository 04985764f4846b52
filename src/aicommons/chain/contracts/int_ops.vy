# pragma version ~=0.4.3
"""
@title One-step integer ops: one output element of one layer, exactly as the runtime computes it
@notice The integer semantics of docs/integer-semantics.md (aicommons-int/1), one `<op>_step`
        function per op of runtime/graph.py, each recomputing a single output element from the
        rows of its inputs. They must equal `runtime/reference.py` bit for bit (tested against
        it with hypothesis): arithmetic `rshift_round` (sar), round-half-up `div_round` with floor
        division, zero padding for conv, padding that never wins a pool.
@dev A stateless module (`import int_ops`). Rows are bytes as committed: int8 values one byte
     each, two's complement. A new op (softmax, layer norm, GELU, matmul) is one new `_step`
     function here and one branch in OneStepVerifier's dispatch. Nothing here can overflow:
     |acc| < 2**31 by the fan-in bound and |acc * M| < 2**62, far inside int256; checked
     arithmetic would revert rather than wrap.
"""

import tensor_commit

# Largest row buffer a step reads (input planes of a conv group, a dense input vector, a
# weight row). Bounded so memory stays small; the market's limits keep real layers inside.
MAX_STEP_BYTES: constant(uint256) = 16384
# Loop bounds for signed loop variables (Vyper needs a bound of the variable's type).
MAX_GROUP_IN: constant(int256) = 16384
MAX_KERNEL: constant(int256) = 256


struct Window:
    # A conv/pool window: kernel, strides, pads (top, left; bottom/right only shape the output,
    # which the caller's row and column already respect) and dilations.
    kh: int256
    kw: int256
    sh: int256
    sw: int256
    top: int256
    left: int256
    dh: int256
    dw: int256


@internal
@pure
def rshift_round(v: int256, shift_bits: uint256) -> int256:
    """
    @notice (v + 2**(s-1)) >> s with an arithmetic (floor) shift; v when s = 0. Rounds half up.
    """
    if shift_bits == 0:
        return v
    return (v + convert(1 << (shift_bits - 1), int256)) >> shift_bits


@internal
@pure
def clamp(v: int256, lo: int256, hi: int256) -> int256:
    """
    @notice max(lo, min(hi, v)).
    """
    return max(lo, min(hi, v))


@internal
@pure
def requantize(acc: int256, multiplier: int256, shift_bits: uint256, lo: int256, hi: int256) -> int256:
    """
    @notice clamp(rshift_round(acc * M, S), lo, hi): every weighted layer's fixed-point rescale.
    """
    return self.clamp(self.rshift_round(acc * multiplier, shift_bits), lo, hi)


@internal
@pure
def div_round(total: int256, count: int256) -> int256:
    """
    @notice floor((2 t + n) / (2 n)) for n > 0: round half up. EVM `sdiv` truncates towards
            zero, so a negative inexact quotient is moved down by one.
    """
    numerator: int256 = 2 * total + count
    denominator: int256 = 2 * count
    quotient: int256 = numerator // denominator
    if numerator < 0 and quotient * denominator != numerator:
        quotient -= 1
    return quotient


@internal
@pure
def int8_at(data: Bytes[MAX_STEP_BYTES], index: uint256) -> int256:
    """
    @notice Byte `index` of `data` as a signed int8.
    """
    value: int256 = convert(convert(slice(data, index, 1), bytes1), int256)
    return value


@internal
@pure
def dot_int8(x: Bytes[MAX_STEP_BYTES], w: Bytes[MAX_STEP_BYTES]) -> int256:
    """
    @notice sum_k x[k] * w[k] over two equally long int8 byte strings, exact.
    @dev Reads 32 bytes per word and splits them with shifts: one word read per 32 terms.
    """
    length: uint256 = len(x)
    acc: int256 = 0
    words: uint256 = (length + 31) // 32
    for j: uint256 in range(words, bound=MAX_STEP_BYTES // 32):
        word_x: uint256 = tensor_commit.word_at(x, j * 32)
        word_w: uint256 = tensor_commit.word_at(w, j * 32)
        here: uint256 = min(32, length - j * 32)
        for t: uint256 in range(here, bound=32):
            bit: uint256 = unsafe_sub(248, unsafe_mul(8, t))
            # (v ^ 128) - 128 sign-extends a byte v without a branch.
            a: int256 = unsafe_sub(convert(((word_x >> bit) & 255) ^ 128, int256), 128)
            b: int256 = unsafe_sub(convert(((word_w >> bit) & 255) ^ 128, int256), 128)
            acc = unsafe_add(acc, unsafe_mul(a, b))
    return acc


@internal
@pure
def dense_step(
    x: Bytes[MAX_STEP_BYTES],
    weight_row: Bytes[MAX_STEP_BYTES],
    bias: int256,
    multiplier: int256,
    shift_bits: uint256,
    lo: int256,
    hi: int256,
) -> int256:
    """
    @notice y[c] = requantize(bias[c] + sum_k x[k] * W[c, k], M[c], S[c], lo, hi).
    @param x The whole input vector (K int8 values).
    @param weight_row Row c of the weight tensor (K int8 values).
    """
    assert len(x) == len(weight_row), "FanInMismatch"
    return self.requantize(bias + self.dot_int8(x, weight_row), multiplier, shift_bits, lo, hi)


@internal
@pure
def conv2d_step(
    planes: Bytes[MAX_STEP_BYTES],
    height: int256,
    width: int256,
    weight_row: Bytes[MAX_STEP_BYTES],
    window: Window,
    oy: int256,
    ox: int256,
    bias: int256,
    multiplier: int256,
    shift_bits: uint256,
    lo: int256,
    hi: int256,
) -> int256:
    """
    @notice y[c, oy, ox] = requantize(bias[c] + sum over ci, ky, kx of
            x[g*gin + ci, oy*sh - top + ky*dh, ox*sw - left + kx*dw] * W[c, ci, ky, kx]).
            Positions outside the image contribute nothing (zero padding).
    @param planes The `gin` input planes of output channel c's group, each height*width bytes.
    @param weight_row Row c of the weight tensor: gin * kh * kw int8 values, C order.
    """
    plane: int256 = height * width
    taps: int256 = window.kh * window.kw
    group_in: int256 = convert(len(weight_row), int256) // taps
    assert group_in * taps == convert(len(weight_row), int256), "FanInMismatch"
    assert group_in * plane == convert(len(planes), int256), "FanInMismatch"
    acc: int256 = bias
    for ci: int256 in range(group_in, bound=MAX_GROUP_IN):
        for ky: int256 in range(window.kh, bound=MAX_KERNEL):
            iy: int256 = oy * window.sh - window.top + ky * window.dh
            if iy < 0 or iy >= height:
                continue
            for kx: int256 in range(window.kw, bound=MAX_KERNEL):
                ix: int256 = ox * window.sw - window.left + kx * window.dw
                if ix < 0 or ix >= width:
                    continue
                pixel: int256 = self.int8_at(planes, convert(ci * plane + iy * width + ix, uint256))
                weight: int256 = self.int8_at(
                    weight_row, convert(ci * taps + ky * window.kw + kx, uint256)
                )
                acc += pixel * weight
    return self.requantize(acc, multiplier, shift_bits, lo, hi)


@internal
@pure
def maxpool_step(
    plane: Bytes[MAX_STEP_BYTES], height: int256, width: int256, window: Window, oy: int256, ox: int256
) -> int256:
    """
    @notice Max over the in-bounds positions of the window (padding never wins).
    """
    best: int256 = 0
    found: bool = False
    for ky: int256 in range(window.kh, bound=MAX_KERNEL):
        iy: int256 = oy * window.sh - window.top + ky * window.dh
        if iy < 0 or iy >= height:
            continue
        for kx: int256 in range(window.kw, bound=MAX_KERNEL):
            ix: int256 = ox * window.sw - window.left + kx * window.dw
            if ix < 0 or ix >= width:
                continue
            value: int256 = self.int8_at(plane, convert(iy * width + ix, uint256))
            if not found or value > best:
                best = value
                found = True
    assert found, "EmptyWindow"
    return best


@internal
@pure
def avgpool_step(
    plane: Bytes[MAX_STEP_BYTES],
    height: int256,
    width: int256,
    window: Window,
    count_include_pad: bool,
    oy: int256,
    ox: int256,
) -> int256:
    """
    @notice div_round(sum of the in-bounds window values, n), n = kh * kw if count_include_pad
            else the number of in-bounds positions. avgpool has no dilation (dh = dw = 1).
    """
    total: int256 = 0
    count: int256 = 0
    for ky: int256 in range(window.kh, bound=MAX_KERNEL):
        iy: int256 = oy * window.sh - window.top + ky * window.dh
        if iy < 0 or iy >= height:
            continue
        for kx: int256 in range(window.kw, bound=MAX_KERNEL):
            ix: int256 = ox * window.sw - window.left + kx * window.dw
            if ix < 0 or ix >= width:
                continue
            total += self.int8_at(plane, convert(iy * width + ix, uint256))
            count += 1
    assert count > 0, "EmptyWindow"
    if count_include_pad:
        count = window.kh * window.kw
    return self.div_round(total, count)


@internal
@pure
def add_step(
    a: int256, b: int256, multiplier_a: int256, multiplier_b: int256, shift_bits: uint256, lo: int256, hi: int256
) -> int256:
    """
    @notice Residual add: clamp(rshift_round(a * Ma + b * Mb, S), lo, hi).
    """
    return self.clamp(self.rshift_round(a * multiplier_a + b * multiplier_b, shift_bits), lo, hi)


@internal
@pure
def clamp_step(x: int256, lo: int256, hi: int256) -> int256:
    """
    @notice Standalone ReLU / Clip: clamp(x, lo, hi).
    """
    return self.clamp(x, lo, hi)


@internal
@pure
def reshape_step(row: Bytes[MAX_STEP_BYTES], offset: uint256) -> int256:
    """
    @notice Reshape moves no value: output element f (flat, C order) is input element f. The
            caller passes the input row holding flat element f and f's offset in it.
    """
    return self.int8_at(row, offset)
