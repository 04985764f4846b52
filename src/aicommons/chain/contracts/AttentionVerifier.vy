# pragma version ~=0.4.3
"""
@title AttentionVerifier: the one-step check of the row-wise aicommons-int/2 ops
@notice Recomputes one output element of a `matmul` (Q K^T, P V), `transpose`, `softmax`,
        `layernorm`, `mean_pool` or `l2norm` layer from proven input segments and weight rows
        (docs/market.md "The one-step check"; `step_rows.vy` is the argument format). A row-wise
        op reads its whole row (softmax: the scores of one query and the mask), so a corrupted
        row is caught at any of its elements. `supported` of any other op is asked of `next`,
        and `route(op)` names the verifier of the chain that recomputes it. Stateless apart
        from `next`.
@dev Mirrored by `aicommons.market.steps` (codes, attrs, segments); each value is the
     `int_ops.<op>_step` of docs/integer-semantics.md "Version 2".
"""

import int_ops
import step_rows
import OneStepVerifier

MAX_STEP_BYTES: public(constant(uint256)) = step_rows.MAX_STEP_BYTES
MAX_ROW_BYTES: public(constant(uint256)) = step_rows.MAX_ROW_BYTES
MAX_SEGMENT: public(constant(uint256)) = step_rows.MAX_SEGMENT
LAYERNORM_MAX_WIDTH: constant(uint256) = 1024

next: public(immutable(OneStepVerifier.__interface__))


@deploy
def __init__(next_: address):
    """
    @param next_ The verifier of every op this one does not know (a chain ends in OneStepVerifier).
    """
    int_ops.require(next_ != empty(address), "ZeroAddress")
    next = OneStepVerifier.__interface__(next_)


@external
@view
def supported(spec: OneStepVerifier.LayerSpec) -> bool:
    """
    @notice True iff a layer with this spec can be recomputed element by element.
    """
    if not self._handles(spec.op):
        return staticcall next.supported(spec)
    return self._supported(spec)


@external
@view
def route(op: uint256) -> address:
    """
    @notice The verifier of the chain that recomputes op `op`: this one or one behind it. The
            game sends the one-step there directly (forwarding 32 KB rows would cost more).
    """
    if self._handles(op):
        return self
    return staticcall next.route(op)


@external
@pure
def recompute(
    context: OneStepVerifier.StepContext,
    spec: OneStepVerifier.LayerSpec,
    row: uint256,
    element: uint256,
    inputs: DynArray[step_rows.InputRows, 2],
    tensors: DynArray[OneStepVerifier.TensorRows, 4],
) -> (bool, int256):
    """
    @notice The value of element `element` of row `row` of the layer's output (the arguments
            of OneStepVerifier.recompute, input rows up to MAX_STEP_BYTES). An op of another
            verifier of the chain is reported unsupported: ask `route(op)` first.
    @return (supported, value)
    """
    if not self._handles(spec.op) or not self._supported(spec):
        return False, 0
    flat: uint256 = step_rows.prove(context, spec, row, element, inputs, tensors)
    segments: DynArray[step_rows.Segment, 2] = self._segments(spec, flat)
    x: DynArray[int256, int_ops.MAX_SEGMENT] = step_rows.read(spec, inputs[0], 0, segments[0])
    y: DynArray[int256, int_ops.MAX_SEGMENT] = []
    if len(segments) == 2:
        y = step_rows.read(spec, inputs[1], 1, segments[1])
    return self._compute(spec, flat, x, y, tensors)


@internal
@pure
def _handles(op: uint256) -> bool:
    return (op >= step_rows.OP_MATMUL and op <= step_rows.OP_LAYERNORM) or op == step_rows.OP_MEAN_POOL or op == step_rows.OP_L2NORM


@internal
@pure
def _segments(spec: OneStepVerifier.LayerSpec, flat: uint256) -> DynArray[step_rows.Segment, 2]:
    """
    @dev The segment of each input that output element `flat` reads.
    """
    op: uint256 = spec.op
    last_out: uint256 = spec.out_shape[len(spec.out_shape) - 1]
    last_in: uint256 = spec.in_shape[len(spec.in_shape) - 1]
    if op == step_rows.OP_MATMUL:
        # a [..., R, K] x b [..., K, C]: row r of a's group g, column c of b's group g
        rows: uint256 = spec.in_shape[len(spec.in_shape) - 2]
        c: uint256 = flat % last_out
        r: uint256 = (flat // last_out) % rows
        g: uint256 = flat // last_out // rows
        return [
            step_rows.Segment(start=(g * rows + r) * last_in, count=last_in, stride=1),
            step_rows.Segment(start=g * last_in * last_out + c, count=last_in, stride=last_out),
        ]
    if op == step_rows.OP_TRANSPOSE:
        perm: DynArray[uint256, int_ops.MAX_RANK] = []
        for a: uint256 in range(len(spec.out_shape), bound=int_ops.MAX_RANK):
            perm.append(convert(spec.attrs[1 + a], uint256))
        return [step_rows.Segment(start=int_ops.transpose_step(spec.out_shape, perm, flat), count=1, stride=1)]
    if op == step_rows.OP_MEAN_POOL:
        # row `flat` of x [D, L] and the whole mask
        return [
            step_rows.Segment(start=flat * last_in, count=last_in, stride=1),
            step_rows.Segment(start=0, count=last_in, stride=1),
        ]
    # softmax, layernorm, l2norm: the row along the last axis holding the element
    row: step_rows.Segment = step_rows.Segment(start=flat - flat % last_in, count=last_in, stride=1)
    if op == step_rows.OP_SOFTMAX:
        return [row, step_rows.Segment(start=0, count=last_in, stride=1)]
    return [row]


@internal
@pure
def _compute(
    spec: OneStepVerifier.LayerSpec,
    flat: uint256,
    x: DynArray[int256, int_ops.MAX_SEGMENT],
    y: DynArray[int256, int_ops.MAX_SEGMENT],
    tensors: DynArray[OneStepVerifier.TensorRows, 4],
) -> (bool, int256):
    """
    @dev The value from the segments' values `x` (input 0) and `y` (input 1) and the proven
         weight rows, by the op's `int_ops.<op>_step`.
    """
    op: uint256 = spec.op
    attrs: DynArray[int256, 16] = spec.attrs
    last_in: uint256 = spec.in_shape[len(spec.in_shape) - 1]
    i: uint256 = flat % last_in
    if op == step_rows.OP_MATMUL:
        # attrs: widths and b's layout, lo, hi
        multiplier: int256 = step_rows.int32_row(tensors[0], 0, 1)
        shift_value: int256 = step_rows.int32_row(tensors[1], 0, 1)
        if multiplier < 1 or not step_rows.shift_ok(shift_value):
            return False, 0
        return True, int_ops.matmul_step(x, y, multiplier, convert(shift_value, uint256), attrs[4], attrs[5])
    if op == step_rows.OP_TRANSPOSE:
        return True, x[0]
    if op == step_rows.OP_SOFTMAX:
        return True, int_ops.softmax_step(x, y, i, convert(attrs[4], uint256))
    if op == step_rows.OP_MEAN_POOL:
        return True, int_ops.mean_pool_step(x, y)
    if op == step_rows.OP_LAYERNORM:
        # tensors: multiplier, shift, bias [D]; attrs: width, lo, hi
        multiplier: int256 = step_rows.int32_row(tensors[0], i, last_in)
        shift_value: int256 = step_rows.int32_row(tensors[1], i, last_in)
        bias: int256 = step_rows.int32_row(tensors[2], i, last_in)
        if multiplier < -(2**31 - 1) or not step_rows.shift_ok(shift_value):
            return False, 0
        return True, int_ops.layernorm_step(x, i, multiplier, convert(shift_value, uint256), bias, attrs[1], attrs[2])
    # l2norm; attrs: width, out_frac, lo, hi
    return True, int_ops.l2norm_step(x, i, convert(attrs[1], uint256), attrs[2], attrs[3])


@internal
@pure
def _supported(spec: OneStepVerifier.LayerSpec) -> bool:
    """
    @dev Structure and limits only (the graph root vouches that the spec is the manifest's).
    """
    op: uint256 = spec.op
    tensor_count: uint256 = 0
    own_attrs: uint256 = 0
    if op == step_rows.OP_MATMUL:
        tensor_count = 2
        own_attrs = 2
    elif op == step_rows.OP_TRANSPOSE:
        own_attrs = len(spec.out_shape)
    elif op == step_rows.OP_SOFTMAX:
        own_attrs = 1
    elif op == step_rows.OP_LAYERNORM:
        tensor_count = 3
        own_attrs = 2
    elif op == step_rows.OP_L2NORM:
        own_attrs = 3
    if not step_rows.header_ok(spec, tensor_count, own_attrs):
        return False
    attrs: DynArray[int256, 16] = spec.attrs
    rows: uint256 = spec.in_shape[0]
    row_length: uint256 = OneStepVerifier._row_length(spec.in_shape)
    width: uint256 = convert(attrs[0], uint256)
    last_in: uint256 = spec.in_shape[len(spec.in_shape) - 1]
    last_out: uint256 = spec.out_shape[len(spec.out_shape) - 1]
    if op == step_rows.OP_MATMUL:
        if len(spec.in_shape) < 2 or len(spec.out_shape) != len(spec.in_shape) or last_in > step_rows.MAX_SEGMENT:
            return False
        b_rows: uint256 = convert(attrs[2], uint256)
        b_length: uint256 = convert(attrs[3], uint256)
        # b holds C values for every K values of a's rows: the [K, C] block of each leading index.
        if b_rows * b_length * spec.in_shape[len(spec.in_shape) - 2] != rows * row_length * last_out:
            return False
        return (
            step_rows.span_ok(rows, row_length, width, last_in)
            and step_rows.span_ok(b_rows, b_length, convert(attrs[1], uint256), last_in * last_out)
            and step_rows.bounds_ok(attrs[4], attrs[5], spec.out_bytes)
        )
    if op == step_rows.OP_TRANSPOSE:
        if len(spec.in_shape) != len(spec.out_shape):
            return False
        seen: uint256 = 0
        for a: uint256 in range(len(spec.out_shape), bound=int_ops.MAX_RANK):
            axis: int256 = attrs[1 + a]
            if axis < 0 or axis >= convert(len(spec.out_shape), int256):
                return False
            seen |= 1 << convert(axis, uint256)
        return seen == (1 << len(spec.out_shape)) - 1 and step_rows.span_ok(rows, row_length, width, 1)
    if op == step_rows.OP_SOFTMAX or op == step_rows.OP_MEAN_POOL:
        mask_values: uint256 = convert(attrs[2] * attrs[3], uint256)
        if mask_values > step_rows.MAX_SEGMENT:
            return False
        if not step_rows.span_ok(convert(attrs[2], uint256), convert(attrs[3], uint256), convert(attrs[1], uint256), mask_values):
            return False
        if mask_values != last_in or last_in > step_rows.MAX_SEGMENT:
            return False
        if op == step_rows.OP_SOFTMAX:
            if spec.out_bytes != 2 or attrs[4] < 0 or attrs[4] > 30:
                return False
        elif len(spec.in_shape) != 2 or len(spec.out_shape) != 1:
            return False  # mean_pool: x [D, L] -> [D], one row of x a step
        return step_rows.span_ok(rows, row_length, width, last_in)
    if last_in > step_rows.MAX_SEGMENT or not step_rows.span_ok(rows, row_length, width, last_in):
        return False
    if op == step_rows.OP_LAYERNORM:
        return last_in >= 2 and last_in <= LAYERNORM_MAX_WIDTH and step_rows.bounds_ok(attrs[1], attrs[2], spec.out_bytes)
    # l2norm
    return attrs[1] >= 0 and attrs[1] <= 30 and step_rows.bounds_ok(attrs[2], attrs[3], spec.out_bytes)
