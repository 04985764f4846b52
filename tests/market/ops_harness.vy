# pragma version ~=0.4.3
"""
@title Test harness: the stateless market modules (int_ops, tensor_commit) as external views
@notice Only for tests: lets hypothesis compare every `<op>_step` and the row proofs with the
        Python reference.
"""

import int_ops
import tensor_commit


@external
@pure
def rshift_round(v: int256, shift_bits: uint256) -> int256:
    return int_ops.rshift_round(v, shift_bits)


@external
@pure
def div_round(total: int256, count: int256) -> int256:
    return int_ops.div_round(total, count)


@external
@pure
def requantize(acc: int256, multiplier: int256, shift_bits: uint256, lo: int256, hi: int256) -> int256:
    return int_ops.requantize(acc, multiplier, shift_bits, lo, hi)


@external
@pure
def dense_step(
    x: Bytes[int_ops.MAX_STEP_BYTES],
    weight_row: Bytes[int_ops.MAX_STEP_BYTES],
    bias: int256,
    multiplier: int256,
    shift_bits: uint256,
    lo: int256,
    hi: int256,
) -> int256:
    return int_ops.dense_step(x, weight_row, bias, multiplier, shift_bits, lo, hi)


@external
@pure
def conv2d_step(
    planes: Bytes[int_ops.MAX_STEP_BYTES],
    height: int256,
    width: int256,
    weight_row: Bytes[int_ops.MAX_STEP_BYTES],
    window: int_ops.Window,
    oy: int256,
    ox: int256,
    bias: int256,
    multiplier: int256,
    shift_bits: uint256,
    lo: int256,
    hi: int256,
) -> int256:
    return int_ops.conv2d_step(
        planes, height, width, weight_row, window, oy, ox, bias, multiplier, shift_bits, lo, hi
    )


@external
@pure
def maxpool_step(
    plane: Bytes[int_ops.MAX_STEP_BYTES],
    height: int256,
    width: int256,
    window: int_ops.Window,
    oy: int256,
    ox: int256,
) -> int256:
    return int_ops.maxpool_step(plane, height, width, window, oy, ox)


@external
@pure
def avgpool_step(
    plane: Bytes[int_ops.MAX_STEP_BYTES],
    height: int256,
    width: int256,
    window: int_ops.Window,
    count_include_pad: bool,
    oy: int256,
    ox: int256,
) -> int256:
    return int_ops.avgpool_step(plane, height, width, window, count_include_pad, oy, ox)


@external
@pure
def add_step(
    a: int256, b: int256, multiplier_a: int256, multiplier_b: int256, shift_bits: uint256, lo: int256, hi: int256
) -> int256:
    return int_ops.add_step(a, b, multiplier_a, multiplier_b, shift_bits, lo, hi)


@external
@pure
def clamp_step(x: int256, lo: int256, hi: int256) -> int256:
    return int_ops.clamp_step(x, lo, hi)


@external
@pure
def reshape_step(row: Bytes[int_ops.MAX_STEP_BYTES], offset: uint256) -> int256:
    return int_ops.reshape_step(row, offset)


@external
@pure
def verify_rows(
    root: bytes32,
    data: Bytes[tensor_commit.MAX_ROWS_BYTES],
    row_bytes: uint256,
    first: uint256,
    leaf_count: uint256,
    siblings: DynArray[bytes32, tensor_commit.MAX_RANGE_SIBLINGS],
) -> bool:
    return tensor_commit.verify_rows(root, data, row_bytes, first, leaf_count, siblings)


@external
@pure
def tensor_root(data: Bytes[tensor_commit.MAX_ROWS_BYTES], rows: uint256) -> bytes32:
    return tensor_commit.tensor_root(data, rows)
