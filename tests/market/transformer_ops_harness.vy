# pragma version ~=0.4.3
"""
@title Test harness: the aicommons-int/2 steps of int_ops as external views
@notice Only for tests: lets hypothesis compare every transformer `<op>_step` (and `decode`)
        with runtime/reference.py.
"""

import int_ops


@external
@pure
def decode(
    data: Bytes[int_ops.MAX_WIDE_BYTES], start: uint256, count: uint256, stride: uint256, width: uint256
) -> DynArray[int256, int_ops.MAX_SEGMENT]:
    return int_ops.decode(data, start, count, stride, width)


@external
@pure
def embed_step(
    token: int256, position: int256, multiplier_t: int256, multiplier_p: int256, shift_bits: uint256, lo: int256, hi: int256
) -> int256:
    return int_ops.embed_step(token, position, multiplier_t, multiplier_p, shift_bits, lo, hi)


@external
@pure
def pad_mask_step(token_id: int256, pad_id: int256) -> int256:
    return int_ops.pad_mask_step(token_id, pad_id)


@external
@pure
def matmul_step(
    a_row: DynArray[int256, int_ops.MAX_SEGMENT],
    b_column: DynArray[int256, int_ops.MAX_SEGMENT],
    multiplier: int256,
    shift_bits: uint256,
    lo: int256,
    hi: int256,
) -> int256:
    return int_ops.matmul_step(a_row, b_column, multiplier, shift_bits, lo, hi)


@external
@pure
def transpose_step(
    out_shape: DynArray[uint256, int_ops.MAX_RANK], perm: DynArray[uint256, int_ops.MAX_RANK], flat: uint256
) -> uint256:
    return int_ops.transpose_step(out_shape, perm, flat)


@external
@pure
def exp_neg_q30(d: uint256, in_frac: uint256) -> int256:
    return int_ops.exp_neg_q30(d, in_frac)


@external
@pure
def softmax_step(
    row: DynArray[int256, int_ops.MAX_SEGMENT], mask: DynArray[int256, int_ops.MAX_SEGMENT], j: uint256, in_frac: uint256
) -> int256:
    return int_ops.softmax_step(row, mask, j, in_frac)


@external
@pure
def layernorm_step(
    row: DynArray[int256, int_ops.MAX_SEGMENT],
    i: uint256,
    multiplier: int256,
    shift_bits: uint256,
    bias: int256,
    lo: int256,
    hi: int256,
) -> int256:
    return int_ops.layernorm_step(row, i, multiplier, shift_bits, bias, lo, hi)


@external
@pure
def lookup_step(x: int256, offset: int256, entry_index: uint256, entry: int256) -> int256:
    return int_ops.lookup_step(x, offset, entry_index, entry)


@external
@pure
def mean_pool_step(
    row: DynArray[int256, int_ops.MAX_SEGMENT], mask: DynArray[int256, int_ops.MAX_SEGMENT]
) -> int256:
    return int_ops.mean_pool_step(row, mask)


@external
@pure
def l2norm_step(row: DynArray[int256, int_ops.MAX_SEGMENT], i: uint256, out_frac: uint256, lo: int256, hi: int256) -> int256:
    return int_ops.l2norm_step(row, i, out_frac, lo, hi)
