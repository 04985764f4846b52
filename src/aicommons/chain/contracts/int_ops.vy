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


# ---------------------------------------------------------------------------------------------
# aicommons-int/2: 16-bit activations and the transformer ops (docs/integer-semantics.md
# "Version 2"). Rows arrive as committed bytes (1, 2 or 4 bytes an element); `decode` turns the
# segment a step needs into int256 values once, and each `<op>_step` is then a line-by-line port
# of `runtime/reference.py` (`softmax_row`, `layernorm_row`, ...). Every bound of the spec keeps
# the intermediates below 2**62, far inside int256.
# ---------------------------------------------------------------------------------------------

# A row the v2 steps read: attention scores or probabilities [L, L] int16 at L = 128.
MAX_WIDE_BYTES: constant(uint256) = 32768
# Values one step decodes: a dense fan-in (FFN 1536), a layer-norm row (<= 1024), a softmax row.
MAX_SEGMENT: constant(uint256) = 2048
LOG2E_Q30: constant(uint256) = 1549082005
EXP2_NEG_Q30_0: constant(int256) = 1073741824
EXP2_NEG_Q30_1: constant(int256) = -744171344
EXP2_NEG_Q30_2: constant(int256) = 257114733
EXP2_NEG_Q30_3: constant(int256) = -57148401
EXP2_NEG_Q30_4: constant(int256) = 7335701
SOFTMAX_OUT_BITS: constant(uint256) = 15
SOFTMAX_MAX: constant(int256) = 2**15 - 1
LAYERNORM_FRAC: constant(uint256) = 16
MAX_RANK: constant(uint256) = 4


@internal
@pure
def decode(
    data: Bytes[MAX_WIDE_BYTES], start: uint256, count: uint256, stride: uint256, width: uint256
) -> DynArray[int256, MAX_SEGMENT]:
    """
    @notice Elements start, start + stride, ... (count of them) of `data`, each `width` bytes
            (1, 2 or 4) big-endian two's complement, sign-extended. Reverts `InvalidElement`
            past the end of `data`.
    @dev One 32-byte word read per element, from `data` itself (no copy per element).
    """
    self.require(width == 1 or width == 2 or width == 4, "InvalidElement")
    values: DynArray[int256, MAX_SEGMENT] = []
    length: uint256 = len(data)
    drop: uint256 = 256 - 8 * width
    for k: uint256 in range(count, bound=MAX_SEGMENT):
        offset: uint256 = (start + k * stride) * width
        self.require(offset + width <= length, "InvalidElement")
        word: uint256 = 0
        if offset + 32 <= length:
            word = extract32(data, offset, output_type=uint256)
        elif length >= 32:
            word = extract32(data, length - 32, output_type=uint256) << (8 * (offset + 32 - length))
        else:
            for i: uint256 in range(4):
                if i == width:
                    break
                word |= convert(convert(slice(data, offset + i, 1), bytes1), uint256) << (248 - 8 * i)
        # The top `width` bytes, arithmetic shift: sign extension.
        values.append(convert(convert(word, bytes32), int256) >> drop)
    return values


@internal
@pure
def dot(a: DynArray[int256, MAX_SEGMENT], b: DynArray[int256, MAX_SEGMENT]) -> int256:
    """
    @notice sum_k a[k] * b[k], exact (the dense and matmul accumulator).
    """
    self.require(len(a) == len(b), "FanInMismatch")
    acc: int256 = 0
    for k: uint256 in range(len(a), bound=MAX_SEGMENT):
        acc += a[k] * b[k]
    return acc


@internal
@pure
def embed_step(
    token: int256, position: int256, multiplier_t: int256, multiplier_p: int256, shift_bits: uint256, lo: int256, hi: int256
) -> int256:
    """
    @notice y[l, d] = clamp(rshift_round(table[ids[l], d] * Mt + position[l, d] * Mp, S), lo, hi).
    @param token table[ids[l], d]; position position[l, d].
    """
    return self.clamp(self.rshift_round(token * multiplier_t + position * multiplier_p, shift_bits), lo, hi)


@internal
@pure
def pad_mask_step(token_id: int256, pad_id: int256) -> int256:
    """
    @notice mask[l] = 0 if ids[l] == pad_id else 1.
    """
    if token_id == pad_id:
        return 0
    return 1


@internal
@pure
def matmul_step(
    a_row: DynArray[int256, MAX_SEGMENT],
    b_column: DynArray[int256, MAX_SEGMENT],
    multiplier: int256,
    shift_bits: uint256,
    lo: int256,
    hi: int256,
) -> int256:
    """
    @notice y[..., r, c] = requantize(sum_k a[..., r, k] * b[..., k, c], M, S, lo, hi).
    @param a_row a[..., r, :]; b_column b[..., :, c].
    """
    return self.requantize(self.dot(a_row, b_column), multiplier, shift_bits, lo, hi)


@internal
@pure
def transpose_step(
    out_shape: DynArray[uint256, MAX_RANK], perm: DynArray[uint256, MAX_RANK], flat: uint256
) -> uint256:
    """
    @notice The flat (C order) input index of output element `flat` of a transpose:
            y[i_0, ..., i_n] = x[j] with j[perm[a]] = i_a, as numpy `transpose(perm)`.
    """
    rank: uint256 = len(out_shape)
    self.require(len(perm) == rank, "InvalidElement")
    index: uint256[MAX_RANK] = empty(uint256[MAX_RANK])
    in_shape: uint256[MAX_RANK] = empty(uint256[MAX_RANK])
    rest: uint256 = flat
    for step: uint256 in range(rank, bound=MAX_RANK):
        axis: uint256 = rank - 1 - step
        index[perm[axis]] = rest % out_shape[axis]
        in_shape[perm[axis]] = out_shape[axis]
        rest = rest // out_shape[axis]
    source: uint256 = 0
    for axis: uint256 in range(rank, bound=MAX_RANK):
        source = source * in_shape[axis] + index[axis]
    return source


@internal
@pure
def exp2_neg_q30(r: int256) -> int256:
    """
    @notice 2^30 * 2^(-r / 2^30) for 0 <= r < 2^30: the degree-4 polynomial in Q30 by Horner,
            p = c4; p = ((p * r) >> 30) + c_k for k = 3, 2, 1, 0 (>> floors).
    """
    p: int256 = EXP2_NEG_Q30_4
    p = ((p * r) >> 30) + EXP2_NEG_Q30_3
    p = ((p * r) >> 30) + EXP2_NEG_Q30_2
    p = ((p * r) >> 30) + EXP2_NEG_Q30_1
    p = ((p * r) >> 30) + EXP2_NEG_Q30_0
    return p


@internal
@pure
def exp_neg_q30(d: uint256, in_frac: uint256) -> int256:
    """
    @notice 2^30 * e^(-d / 2^in_frac): u = d * LOG2E_Q30, k = u >> (30 + in_frac),
            r = (u >> in_frac) mod 2^30, exp2_neg_q30(r) >> k, 0 once k > 30.
    """
    u: uint256 = d * LOG2E_Q30
    k: uint256 = u >> (30 + in_frac)
    if k > 30:
        return 0
    r: uint256 = (u >> in_frac) & (2**30 - 1)
    return self.exp2_neg_q30(convert(r, int256)) >> k


@internal
@pure
def softmax_step(
    row: DynArray[int256, MAX_SEGMENT], mask: DynArray[int256, MAX_SEGMENT], j: uint256, in_frac: uint256
) -> int256:
    """
    @notice Element j of the masked softmax of one row (reference.softmax_row): m = max over
            kept positions, e = exp_neg_q30(m - x), y_j = min(div_round(e_j * 2^15, sum e),
            2^15 - 1) for a kept j, 0 for a dropped one (and for all when none is kept).
    """
    self.require(len(row) == len(mask) and j < len(row), "InvalidElement")
    if mask[j] == 0:
        return 0
    top: int256 = min_value(int256)
    for k: uint256 in range(len(row), bound=MAX_SEGMENT):
        if mask[k] != 0 and row[k] > top:
            top = row[k]
    total: int256 = 0
    mine: int256 = 0
    for k: uint256 in range(len(row), bound=MAX_SEGMENT):
        if mask[k] == 0:
            continue
        e: int256 = self.exp_neg_q30(convert(top - row[k], uint256), in_frac)
        total += e
        if k == j:
            mine = e
    return min(self.div_round(mine << SOFTMAX_OUT_BITS, total), SOFTMAX_MAX)


@internal
@pure
def layernorm_step(
    row: DynArray[int256, MAX_SEGMENT],
    i: uint256,
    multiplier: int256,
    shift_bits: uint256,
    bias: int256,
    lo: int256,
    hi: int256,
) -> int256:
    """
    @notice Element i of reference.layernorm_row: s = sum x; d = D x - s; q = sum d^2;
            r = isqrt(q // D); n_i = div_round(d_i * 2^16, r) (0 when r = 0);
            y_i = clamp(rshift_round(n_i * M_i, S_i) + bias_i, lo, hi).
    """
    width: int256 = convert(len(row), int256)
    self.require(i < len(row), "InvalidElement")
    total: int256 = 0
    for k: uint256 in range(len(row), bound=MAX_SEGMENT):
        total += row[k]
    squares: uint256 = 0
    for k: uint256 in range(len(row), bound=MAX_SEGMENT):
        centred: int256 = width * row[k] - total
        squares += convert(centred * centred, uint256)
    root: int256 = convert(isqrt(squares // convert(width, uint256)), int256)
    n: int256 = 0
    if root > 0:
        n = self.div_round((width * row[i] - total) << LAYERNORM_FRAC, root)
    return self.clamp(self.rshift_round(n * multiplier, shift_bits) + bias, lo, hi)


@internal
@pure
def lookup_step(x: int256, offset: int256, entry_index: uint256, entry: int256) -> int256:
    """
    @notice y = table[x + offset] (offset 128 for int8 inputs, 32768 for int16): `entry` is the
            table row proven at `entry_index`, which must be x + offset.
    """
    self.require(x + offset == convert(entry_index, int256), "InvalidElement")
    return entry


@internal
@pure
def mean_pool_step(row: DynArray[int256, MAX_SEGMENT], mask: DynArray[int256, MAX_SEGMENT]) -> int256:
    """
    @notice reference.mean_pool_row: div_round(sum of the kept values of the row x[d, :],
            their count), 0 when no position is kept.
    """
    self.require(len(row) == len(mask), "InvalidElement")
    total: int256 = 0
    count: int256 = 0
    for k: uint256 in range(len(row), bound=MAX_SEGMENT):
        if mask[k] != 0:
            total += row[k]
            count += 1
    if count == 0:
        return 0
    return self.div_round(total, count)


@internal
@pure
def l2norm_step(row: DynArray[int256, MAX_SEGMENT], i: uint256, out_frac: uint256, lo: int256, hi: int256) -> int256:
    """
    @notice Element i of reference.l2norm_row: r = isqrt(sum x^2);
            y_i = clamp(div_round(x_i * 2^out_frac, r), lo, hi), 0 when r = 0.
    """
    self.require(i < len(row), "InvalidElement")
    squares: uint256 = 0
    for k: uint256 in range(len(row), bound=MAX_SEGMENT):
        squares += convert(row[k] * row[k], uint256)
    root: int256 = convert(isqrt(squares), int256)
    if root == 0:
        return 0
    return self.clamp(self.div_round(row[i] << out_frac, root), lo, hi)


@internal
@pure
def require(ok: bool, reason: String[32]):
    """
    @notice `assert ok, reason` with one shared Error(string) encoder: the v2 verifiers sit
            close to EIP-170's code limit, and each inline assert encodes its own reason.
    """
    if not ok:
        raw_revert(abi_encode(reason, method_id=method_id("Error(string)")))
