# pragma version ~=0.4.3
"""
@title TransformerVerifier: the one-step check of the token-wise aicommons-int/2 ops
@notice Recomputes one output element of a v2 `dense`, `add` or `reshape` (over int8/int16
        rows), `embed`, `pad_mask` or `lookup` layer from proven input segments and weight rows
        (docs/market.md "The one-step check"; `step_rows.vy` is the argument format).
        `supported` of any other op is asked of `next`, and `route(op)` names the verifier of
        the chain that recomputes it, so one address answers for every op. Stateless apart
        from `next`.
@dev Mirrored by `aicommons.market.steps` (codes, attrs, segments); each value is the
     `int_ops.<op>_step` of docs/integer-semantics.md "Version 2". An `embed` whose proven
     token id lies outside the table is an invalid input: no correct output exists, so the
     layer is reported unsupported and the challenger wins (an honest provider never serves it).
"""

import int_ops
import step_rows
import OneStepVerifier

MAX_STEP_BYTES: public(constant(uint256)) = step_rows.MAX_STEP_BYTES
MAX_ROW_BYTES: public(constant(uint256)) = step_rows.MAX_ROW_BYTES
MAX_SEGMENT: public(constant(uint256)) = step_rows.MAX_SEGMENT

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
    return (op >= step_rows.OP_DENSE and op <= step_rows.OP_PAD_MASK) or op == step_rows.OP_LOOKUP


@internal
@pure
def _segments(spec: OneStepVerifier.LayerSpec, flat: uint256) -> DynArray[step_rows.Segment, 2]:
    """
    @dev The segment of each input that output element `flat` reads.
    """
    last_out: uint256 = spec.out_shape[len(spec.out_shape) - 1]
    last_in: uint256 = spec.in_shape[len(spec.in_shape) - 1]
    if spec.op == step_rows.OP_DENSE:
        return [step_rows.Segment(start=flat // last_out * last_in, count=last_in, stride=1)]
    if spec.op == step_rows.OP_EMBED:
        return [step_rows.Segment(start=flat // last_out, count=1, stride=1)]
    one: step_rows.Segment = step_rows.Segment(start=flat, count=1, stride=1)
    if spec.op == step_rows.OP_ADD:
        return [one, one]
    return [one]


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
    last_out: uint256 = spec.out_shape[len(spec.out_shape) - 1]
    last_in: uint256 = spec.in_shape[len(spec.in_shape) - 1]
    if op == step_rows.OP_DENSE:
        # attrs: width, lo, hi. y[..., c] = requantize(bias[c] + x[..., :] . W[c, :])
        c: uint256 = flat % last_out
        weights: DynArray[int256, int_ops.MAX_SEGMENT] = int_ops.decode(
            OneStepVerifier._tensor_rows(tensors[0], c, 1, last_in, last_out), 0, last_in, 1, 1
        )
        bias: int256 = 0
        multiplier: int256 = 0
        shift_bits: uint256 = 0
        ok: bool = False
        bias, multiplier, shift_bits, ok = OneStepVerifier._requant_params(tensors, c, last_out)
        if not ok:
            return False, 0
        return True, int_ops.requantize(bias + int_ops.dot(x, weights), multiplier, shift_bits, attrs[1], attrs[2])
    if op == step_rows.OP_EMBED:
        # attrs: width, V, P, table width, position width, lo, hi
        l: uint256 = flat // last_out
        d: uint256 = flat % last_out
        if x[0] < 0 or x[0] >= attrs[1]:
            return False, 0
        table_width: uint256 = convert(attrs[3], uint256)
        position_width: uint256 = convert(attrs[4], uint256)
        token: Bytes[OneStepVerifier.MAX_FAN_IN] = OneStepVerifier._tensor_rows(
            tensors[0], convert(x[0], uint256), 1, last_out * table_width, convert(attrs[1], uint256)
        )
        position: Bytes[OneStepVerifier.MAX_FAN_IN] = OneStepVerifier._tensor_rows(
            tensors[1], l, 1, last_out * position_width, convert(attrs[2], uint256)
        )
        multiplier_t: int256 = 0
        multiplier_p: int256 = 0
        multiplier_t, multiplier_p = step_rows.int32_pair(tensors[2])
        shift_value: int256 = step_rows.int32_row(tensors[3], 0, 1)
        if multiplier_t < 0 or multiplier_p < 0 or not step_rows.shift_ok(shift_value):
            return False, 0
        return True, int_ops.embed_step(
            int_ops.decode(token, d, 1, 1, table_width)[0],
            int_ops.decode(position, d, 1, 1, position_width)[0],
            multiplier_t,
            multiplier_p,
            convert(shift_value, uint256),
            attrs[5],
            attrs[6],
        )
    if op == step_rows.OP_ADD:
        # attrs: widths and b's layout, lo, hi
        multiplier_a: int256 = 0
        multiplier_b: int256 = 0
        multiplier_a, multiplier_b = step_rows.int32_pair(tensors[0])
        shift_value: int256 = step_rows.int32_row(tensors[1], 0, 1)
        if multiplier_a < 0 or multiplier_b < 0 or not step_rows.shift_ok(shift_value):
            return False, 0
        return True, int_ops.add_step(x[0], y[0], multiplier_a, multiplier_b, convert(shift_value, uint256), attrs[4], attrs[5])
    if op == step_rows.OP_PAD_MASK:
        return True, int_ops.pad_mask_step(x[0], attrs[1])
    if op == step_rows.OP_LOOKUP:
        offset: int256 = 128
        entries: uint256 = 256
        if attrs[0] == 2:
            offset = 32768
            entries = 65536
        index: uint256 = convert(x[0] + offset, uint256)
        entry: Bytes[OneStepVerifier.MAX_FAN_IN] = OneStepVerifier._tensor_rows(tensors[0], index, 1, spec.out_bytes, entries)
        return True, int_ops.lookup_step(x[0], offset, index, int_ops.decode(entry, 0, 1, 1, spec.out_bytes)[0])
    # reshape: output element f is input element f
    return True, x[0]


@internal
@pure
def _supported(spec: OneStepVerifier.LayerSpec) -> bool:
    """
    @dev Structure and limits only (the graph root vouches that the spec is the manifest's).
    """
    op: uint256 = spec.op
    tensor_count: uint256 = 0
    own_attrs: uint256 = 0
    if op == step_rows.OP_DENSE:
        tensor_count = 4
        own_attrs = 2
    elif op == step_rows.OP_ADD:
        tensor_count = 2
        own_attrs = 2
    elif op == step_rows.OP_EMBED:
        tensor_count = 4
        own_attrs = 6
    elif op == step_rows.OP_PAD_MASK:
        own_attrs = 1
    elif op == step_rows.OP_LOOKUP:
        tensor_count = 1
    if not step_rows.header_ok(spec, tensor_count, own_attrs):
        return False
    attrs: DynArray[int256, 16] = spec.attrs
    rows: uint256 = spec.in_shape[0]
    row_length: uint256 = OneStepVerifier._row_length(spec.in_shape)
    width: uint256 = convert(attrs[0], uint256)
    last_in: uint256 = spec.in_shape[len(spec.in_shape) - 1]
    last_out: uint256 = spec.out_shape[len(spec.out_shape) - 1]
    if not step_rows.span_ok(rows, row_length, width, 1):
        return False
    if op == step_rows.OP_DENSE:
        if last_in > step_rows.MAX_SEGMENT or last_in > step_rows.MAX_FAN_IN:
            return False
        return step_rows.span_ok(rows, row_length, width, last_in) and step_rows.bounds_ok(attrs[1], attrs[2], spec.out_bytes)
    if op == step_rows.OP_ADD:
        if attrs[2] != convert(rows, int256) or attrs[3] != convert(row_length, int256):
            return False
        return step_rows.span_ok(rows, row_length, convert(attrs[1], uint256), 1) and step_rows.bounds_ok(
            attrs[4], attrs[5], spec.out_bytes
        )
    if op == step_rows.OP_EMBED:
        if len(spec.in_shape) != 1 or len(spec.out_shape) != 2 or spec.out_shape[0] != rows:
            return False
        if attrs[1] < 1 or attrs[1] > 2**32 or attrs[2] < convert(rows, int256) or attrs[2] > 2**32:
            return False
        for a: uint256 in range(3, 5):
            if attrs[a] != 1 and attrs[a] != 2:
                return False
            if last_out * convert(attrs[a], uint256) > step_rows.MAX_FAN_IN:
                return False
        return step_rows.bounds_ok(attrs[5], attrs[6], spec.out_bytes)
    if op == step_rows.OP_LOOKUP:
        return width <= 2
    return True  # reshape, pad_mask
