# pragma version ~=0.4.3
"""
@title The argument format of the aicommons-int/2 one-step: input segments and their proofs
@notice Shared by the v2 verifiers (TransformerVerifier, AttentionVerifier): the op codes, the
        wide input-row struct, the trace and weights proofs every one-step starts with, and
        `read`, which proves the rows holding a segment of an input and decodes its values.
        Mirrors `aicommons.market.steps` (same codes, same segments, same limits).
@dev A stateless module (`import step_rows`). A segment is `count` values of the flattened
     per-sample input from flat index `start`, `stride` apart; the rows covering it (first ..
     last row holding one of its values) are sent whole and proven against the input's tensor
     root, which is proven as trace leaf `spec.inputs[j]` under the provider's trace root. The
     attrs of every v2 op open with its inputs' layout: the element width of input 0, and for a
     second input its width, rows and row length (input 0's shape is `in_shape`).
"""

import int_ops
import merkle
import tensor_commit
import OneStepVerifier

OP_DENSE: constant(uint256) = 8
OP_ADD: constant(uint256) = 9
OP_RESHAPE: constant(uint256) = 10
OP_EMBED: constant(uint256) = 11
OP_PAD_MASK: constant(uint256) = 12
OP_MATMUL: constant(uint256) = 13
OP_TRANSPOSE: constant(uint256) = 14
OP_SOFTMAX: constant(uint256) = 15
OP_LAYERNORM: constant(uint256) = 16
OP_LOOKUP: constant(uint256) = 17
OP_MEAN_POOL: constant(uint256) = 18
OP_L2NORM: constant(uint256) = 19

MAX_FAN_IN: constant(uint256) = OneStepVerifier.MAX_FAN_IN  # bytes of one weight-tensor read
MAX_STEP_BYTES: constant(uint256) = int_ops.MAX_WIDE_BYTES  # rows of one input one step reads
MAX_ROW_BYTES: constant(uint256) = int_ops.MAX_WIDE_BYTES  # one output row
MAX_SEGMENT: constant(uint256) = int_ops.MAX_SEGMENT  # values of one segment
MAX_RANGE_ROWS: constant(uint256) = tensor_commit.MAX_RANGE_ROWS


struct InputRows:
    root: bytes32  # tensor root of the input value: trace leaf spec.inputs[j]
    trace_siblings: DynArray[bytes32, OneStepVerifier.MAX_TRACE_DEPTH]
    first: uint256
    data: Bytes[int_ops.MAX_WIDE_BYTES]  # rows first .. first + count - 1, concatenated
    siblings: DynArray[bytes32, tensor_commit.MAX_RANGE_SIBLINGS]


struct Segment:
    start: uint256
    count: uint256
    stride: uint256


@internal
@pure
def arity(op: uint256) -> uint256:
    if op == OP_ADD or op == OP_MATMUL or op == OP_SOFTMAX or op == OP_MEAN_POOL:
        return 2
    return 1


@internal
@pure
def prove(
    context: OneStepVerifier.StepContext,
    spec: OneStepVerifier.LayerSpec,
    row: uint256,
    element: uint256,
    inputs: DynArray[InputRows, 2],
    tensors: DynArray[OneStepVerifier.TensorRows, 4],
) -> uint256:
    """
    @notice Check the element is in the layer and every input and weight root is under the
            trace and weights roots; return the element's flat index in the per-sample output.
    """
    int_ops.require(row < spec.out_shape[0], "InvalidElement")
    row_length: uint256 = OneStepVerifier._row_length(spec.out_shape)
    int_ops.require(element < row_length, "InvalidElement")
    int_ops.require(len(inputs) == len(spec.inputs), "InputRowsMismatch")
    int_ops.require(len(tensors) == len(spec.tensors), "TensorRowsMismatch")
    for j: uint256 in range(len(inputs), bound=2):
        proven: bool = merkle.verify_proof(
            context.trace_root,
            merkle.leaf_hash_bytes32(inputs[j].root),
            spec.inputs[j],
            context.trace_leaves,
            inputs[j].trace_siblings,
        )
        int_ops.require(proven, "InputRowsMismatch")
    for t: uint256 in range(len(tensors), bound=4):
        proven: bool = merkle.verify_proof(
            context.weights_root,
            merkle.leaf_hash_bytes32(tensors[t].root),
            spec.tensors[t],
            context.tensor_count,
            tensors[t].weights_siblings,
        )
        int_ops.require(proven, "TensorRowsMismatch")
    return row * row_length + element


@internal
@pure
def layout(spec: OneStepVerifier.LayerSpec, j: uint256) -> (uint256, uint256, uint256):
    """
    @notice (rows, row length, element width) of input j.
    """
    if j == 0:
        return spec.in_shape[0], OneStepVerifier._row_length(spec.in_shape), convert(spec.attrs[0], uint256)
    return convert(spec.attrs[2], uint256), convert(spec.attrs[3], uint256), convert(spec.attrs[1], uint256)


@internal
@pure
def read(spec: OneStepVerifier.LayerSpec, proof: InputRows, j: uint256, segment: Segment) -> DynArray[int256, int_ops.MAX_SEGMENT]:
    """
    @notice The segment's values of input j, from exactly the rows that hold it, proven under
            the input's tensor root (`InputRowsMismatch` otherwise).
    """
    rows: uint256 = 0
    row_length: uint256 = 0
    width: uint256 = 0
    rows, row_length, width = self.layout(spec, j)
    first: uint256 = segment.start // row_length
    last: uint256 = (segment.start + (segment.count - 1) * segment.stride) // row_length
    int_ops.require(proof.first == first, "InputRowsMismatch")
    int_ops.require(len(proof.data) == (last - first + 1) * row_length * width, "InputRowsMismatch")
    proven: bool = tensor_commit.verify_rows(proof.root, proof.data, row_length * width, first, rows, proof.siblings)
    int_ops.require(proven, "InputRowsMismatch")
    return int_ops.decode(proof.data, segment.start - first * row_length, segment.count, segment.stride, width)


@internal
@pure
def int32_row(rows: OneStepVerifier.TensorRows, index: uint256, leaf_count: uint256) -> int256:
    """
    @notice Row `index` of a 1-D int32 weight tensor of `leaf_count` values, proven.
    """
    return OneStepVerifier._int32_at(OneStepVerifier._tensor_rows(rows, index, 1, 4, leaf_count), 0)


@internal
@pure
def int32_pair(rows: OneStepVerifier.TensorRows) -> (int256, int256):
    """
    @notice Both values of a 2-value int32 weight tensor ([Ma, Mb] of add, [Mt, Mp] of embed).
    """
    data: Bytes[OneStepVerifier.MAX_FAN_IN] = OneStepVerifier._tensor_rows(rows, 0, 2, 4, 2)
    return OneStepVerifier._int32_at(data, 0), OneStepVerifier._int32_at(data, 4)


@internal
@pure
def shift_ok(shift_value: int256) -> bool:
    return shift_value >= 0 and shift_value <= 62


@internal
@pure
def span_ok(rows: uint256, row_length: uint256, width: uint256, span: uint256) -> bool:
    """
    @notice A read inside one aligned block of `span` consecutive flat values lies within one
            row (span divides the row length) or within whole rows (the row length divides
            span): at most MAX_STEP_BYTES either way, a partial range of <= MAX_RANGE_ROWS rows.
    """
    if width != 1 and width != 2 and width != 4:
        return False
    if span == 0 or row_length == 0:
        return False
    if span <= row_length:
        return row_length % span == 0 and row_length * width <= MAX_STEP_BYTES
    if span % row_length != 0 or span * width > MAX_STEP_BYTES:
        return False
    return span // row_length == rows or span // row_length <= MAX_RANGE_ROWS


@internal
@pure
def bounds_ok(lo: int256, hi: int256, out_bytes: uint256) -> bool:
    limit: int256 = convert(1 << (8 * out_bytes - 1), int256)
    return -limit <= lo and lo <= hi and hi < limit


@internal
@pure
def header_ok(spec: OneStepVerifier.LayerSpec, tensor_count: uint256, own_attrs: uint256) -> bool:
    """
    @notice What every v2 spec must satisfy: shapes of 1-4 positive axes, an output width of
            1, 2 or 4 bytes and rows of at most MAX_ROW_BYTES, the op's input, tensor and
            attribute counts, and a valid input layout header.
    """
    if len(spec.in_shape) == 0 or len(spec.out_shape) == 0:
        return False
    for d: uint256 in spec.in_shape:
        if d == 0 or d > 2**32:
            return False
    for d: uint256 in spec.out_shape:
        if d == 0 or d > 2**32:
            return False
    if spec.out_bytes != 1 and spec.out_bytes != 2 and spec.out_bytes != 4:
        return False
    if OneStepVerifier._row_length(spec.out_shape) * spec.out_bytes > MAX_ROW_BYTES:
        return False
    arity: uint256 = self.arity(spec.op)
    header: uint256 = 1
    if arity == 2:
        header = 4
    if len(spec.inputs) != arity or len(spec.tensors) != tensor_count or len(spec.attrs) != header + own_attrs:
        return False
    attrs: DynArray[int256, 16] = spec.attrs
    if attrs[0] != 1 and attrs[0] != 2 and attrs[0] != 4:
        return False
    if arity == 2:
        if attrs[1] != 1 and attrs[1] != 2 and attrs[1] != 4:
            return False
        if attrs[2] < 1 or attrs[2] > 2**32 or attrs[3] < 1 or attrs[3] > 2**32:
            return False
    return True
