# pragma version ~=0.4.3
"""
@title OneStepVerifier: recompute one output element of one layer from proven inputs and weights
@notice The referee at the end of the market's dispute game (docs/market.md "The one-step
        check"). Given a layer spec (already proven against the version's graph root), the
        element's position, the rows of the layer's inputs (proven against the provider's trace
        root) and the rows of its weights (proven against the registered weights root), it
        returns the element's value under the aicommons integer semantics. Stateless: it holds
        nothing and calls nothing, so the market can trust it with static calls.
@dev A spec this verifier cannot evaluate (unknown op, sizes beyond the limits, attributes
     outside the semantics) yields (False, 0): the market decides such a dispute for the
     challenger, since an honest provider never serves a version it cannot defend. Proofs that
     do not match revert (`InputRowsMismatch`, `TensorRowsMismatch`): the challenger must supply
     the right data. New ops: one `<op>_step` in int_ops.vy, one code, one branch in _recompute.
"""

import int_ops
import merkle
import tensor_commit

OP_DENSE: constant(uint256) = 1
OP_CONV2D: constant(uint256) = 2
OP_MAXPOOL: constant(uint256) = 3
OP_AVGPOOL: constant(uint256) = 4
OP_ADD: constant(uint256) = 5
OP_CLAMP: constant(uint256) = 6
OP_RESHAPE: constant(uint256) = 7

MAX_FAN_IN: public(constant(uint256)) = 4096
MAX_STEP_BYTES: public(constant(uint256)) = int_ops.MAX_STEP_BYTES
MAX_ROW_BYTES: public(constant(uint256)) = 16384
MAX_KERNEL: constant(uint256) = 256
MAX_TRACE_DEPTH: public(constant(uint256)) = 16
MAX_WEIGHTS_DEPTH: public(constant(uint256)) = 24
INT8_MIN: constant(int256) = -128
INT8_MAX: constant(int256) = 127
INT32_MIN: constant(int256) = -(2**31)
INT32_MAX: constant(int256) = 2**31 - 1


struct LayerSpec:
    op: uint256
    inputs: DynArray[uint256, 2]
    in_shape: DynArray[uint256, 4]
    out_shape: DynArray[uint256, 4]
    out_bytes: uint256
    tensors: DynArray[uint256, 4]
    attrs: DynArray[int256, 16]


struct InputRows:
    root: bytes32  # tensor root of the input value: trace leaf spec.inputs[j]
    trace_siblings: DynArray[bytes32, MAX_TRACE_DEPTH]
    first: uint256
    data: Bytes[int_ops.MAX_STEP_BYTES]  # rows first .. first + count - 1, concatenated
    siblings: DynArray[bytes32, tensor_commit.MAX_RANGE_SIBLINGS]


struct TensorRows:
    root: bytes32  # tensor root: leaf spec.tensors[t] of the weights root
    weights_siblings: DynArray[bytes32, MAX_WEIGHTS_DEPTH]
    first: uint256
    data: Bytes[MAX_FAN_IN]
    siblings: DynArray[bytes32, tensor_commit.MAX_RANGE_SIBLINGS]


struct StepContext:
    trace_root: bytes32
    trace_leaves: uint256  # layer count + 1
    weights_root: bytes32
    tensor_count: uint256


@external
@pure
def supported(spec: LayerSpec) -> bool:
    """
    @notice True iff this verifier can evaluate every element of a layer with this spec.
    """
    return self._supported(spec)


@external
@view
def route(op: uint256) -> address:
    """
    @notice The verifier that recomputes op `op`: this one (the end of a verifier chain).
    """
    return self


@external
@pure
def recompute(
    context: StepContext,
    spec: LayerSpec,
    row: uint256,
    element: uint256,
    inputs: DynArray[InputRows, 2],
    tensors: DynArray[TensorRows, 4],
) -> (bool, int256):
    """
    @notice The value of element `element` of row `row` of the layer's output.
    @return (supported, value): supported is False for a spec this verifier cannot evaluate.
    """
    if not self._supported(spec):
        return False, 0
    assert row < spec.out_shape[0], "InvalidElement"
    assert element < self._row_length(spec.out_shape), "InvalidElement"
    assert len(inputs) == len(spec.inputs), "InputRowsMismatch"
    assert len(tensors) == len(spec.tensors), "TensorRowsMismatch"
    for j: uint256 in range(len(inputs), bound=2):
        proven: bool = merkle.verify_proof(
            context.trace_root,
            merkle.leaf_hash_bytes32(inputs[j].root),
            spec.inputs[j],
            context.trace_leaves,
            inputs[j].trace_siblings,
        )
        assert proven, "InputRowsMismatch"
    for t: uint256 in range(len(tensors), bound=4):
        proven: bool = merkle.verify_proof(
            context.weights_root,
            merkle.leaf_hash_bytes32(tensors[t].root),
            spec.tensors[t],
            context.tensor_count,
            tensors[t].weights_siblings,
        )
        assert proven, "TensorRowsMismatch"
    return self._recompute(spec, row, element, inputs, tensors)


@internal
@pure
def _recompute(
    spec: LayerSpec,
    row: uint256,
    element: uint256,
    inputs: DynArray[InputRows, 2],
    tensors: DynArray[TensorRows, 4],
) -> (bool, int256):
    """
    @dev The one place that maps an op to its input rows, weight rows and `<op>_step`.
    """
    in_rows: uint256 = spec.in_shape[0]
    in_row_bytes: uint256 = self._row_length(spec.in_shape)
    op: uint256 = spec.op
    if op == OP_DENSE:
        fan_in: uint256 = spec.in_shape[0]
        # The whole input vector: K rows of one value, which rebuild the whole input tree.
        self._check_input(inputs[0], 0, fan_in, 1, fan_in)
        channels: uint256 = spec.out_shape[0]
        weight_row: Bytes[MAX_FAN_IN] = self._tensor_row(tensors[0], row, fan_in, channels)
        bias: int256 = 0
        multiplier: int256 = 0
        shift_bits: uint256 = 0
        ok: bool = False
        bias, multiplier, shift_bits, ok = self._requant_params(tensors, row, channels)
        if not ok:
            return False, 0
        return True, int_ops.dense_step(
            inputs[0].data, weight_row, bias, multiplier, shift_bits, spec.attrs[0], spec.attrs[1]
        )
    if op == OP_CONV2D:
        groups: uint256 = convert(spec.attrs[10], uint256)
        group_in: uint256 = spec.in_shape[0] // groups
        channels: uint256 = spec.out_shape[0]
        group: uint256 = row // (channels // groups)
        self._check_input(inputs[0], group * group_in, group_in, in_row_bytes, in_rows)
        taps: uint256 = convert(spec.attrs[0] * spec.attrs[1], uint256)
        weight_row: Bytes[MAX_FAN_IN] = self._tensor_row(tensors[0], row, group_in * taps, channels)
        bias: int256 = 0
        multiplier: int256 = 0
        shift_bits: uint256 = 0
        ok: bool = False
        bias, multiplier, shift_bits, ok = self._requant_params(tensors, row, channels)
        if not ok:
            return False, 0
        out_w: uint256 = spec.out_shape[2]
        return True, int_ops.conv2d_step(
            inputs[0].data,
            convert(spec.in_shape[1], int256),
            convert(spec.in_shape[2], int256),
            weight_row,
            self._window(spec.attrs, True),
            convert(element // out_w, int256),
            convert(element % out_w, int256),
            bias,
            multiplier,
            shift_bits,
            spec.attrs[11],
            spec.attrs[12],
        )
    if op == OP_MAXPOOL or op == OP_AVGPOOL:
        self._check_input(inputs[0], row, 1, in_row_bytes, in_rows)
        out_w: uint256 = spec.out_shape[2]
        oy: int256 = convert(element // out_w, int256)
        ox: int256 = convert(element % out_w, int256)
        height: int256 = convert(spec.in_shape[1], int256)
        width: int256 = convert(spec.in_shape[2], int256)
        if op == OP_MAXPOOL:
            return True, int_ops.maxpool_step(
                inputs[0].data, height, width, self._window(spec.attrs, True), oy, ox
            )
        return True, int_ops.avgpool_step(
            inputs[0].data, height, width, self._window(spec.attrs, False), spec.attrs[8] == 1, oy, ox
        )
    if op == OP_ADD:
        self._check_input(inputs[0], row, 1, in_row_bytes, in_rows)
        self._check_input(inputs[1], row, 1, in_row_bytes, in_rows)
        multipliers: Bytes[MAX_FAN_IN] = self._tensor_rows(tensors[0], 0, 2, 4, 2)
        shift_row: Bytes[MAX_FAN_IN] = self._tensor_rows(tensors[1], 0, 1, 4, 1)
        multiplier_a: int256 = self._int32_at(multipliers, 0)
        multiplier_b: int256 = self._int32_at(multipliers, 4)
        shift_value: int256 = self._int32_at(shift_row, 0)
        if multiplier_a < 0 or multiplier_b < 0 or shift_value < 0 or shift_value > 62:
            return False, 0
        return True, int_ops.add_step(
            int_ops.int8_at(inputs[0].data, element),
            int_ops.int8_at(inputs[1].data, element),
            multiplier_a,
            multiplier_b,
            convert(shift_value, uint256),
            spec.attrs[0],
            spec.attrs[1],
        )
    if op == OP_CLAMP:
        self._check_input(inputs[0], row, 1, in_row_bytes, in_rows)
        return True, int_ops.clamp_step(
            int_ops.int8_at(inputs[0].data, element), spec.attrs[0], spec.attrs[1]
        )
    if op == OP_RESHAPE:
        flat: uint256 = row * self._row_length(spec.out_shape) + element
        self._check_input(inputs[0], flat // in_row_bytes, 1, in_row_bytes, in_rows)
        return True, int_ops.reshape_step(inputs[0].data, flat % in_row_bytes)
    return False, 0


@internal
@pure
def _check_input(rows: InputRows, first: uint256, count: uint256, row_bytes: uint256, leaf_count: uint256):
    """
    @dev The rows the op needs, exactly, and under the input's (trace-proven) tensor root.
    """
    assert rows.first == first and len(rows.data) == count * row_bytes, "InputRowsMismatch"
    assert tensor_commit.verify_rows(
        rows.root, rows.data, row_bytes, first, leaf_count, rows.siblings
    ), "InputRowsMismatch"


@internal
@pure
def _tensor_rows(
    rows: TensorRows, first: uint256, count: uint256, row_bytes: uint256, leaf_count: uint256
) -> Bytes[MAX_FAN_IN]:
    assert rows.first == first and len(rows.data) == count * row_bytes, "TensorRowsMismatch"
    assert tensor_commit.verify_rows(
        rows.root, rows.data, row_bytes, first, leaf_count, rows.siblings
    ), "TensorRowsMismatch"
    return rows.data


@internal
@pure
def _tensor_row(rows: TensorRows, row: uint256, row_bytes: uint256, leaf_count: uint256) -> Bytes[MAX_FAN_IN]:
    return self._tensor_rows(rows, row, 1, row_bytes, leaf_count)


@internal
@pure
def _requant_params(
    tensors: DynArray[TensorRows, 4], row: uint256, channels: uint256
) -> (int256, int256, uint256, bool):
    """
    @dev bias, multiplier and shift of output channel `row` (tensors 1..3, int32 rows); ok is
         False when M or S lie outside the semantics (no honest package has them).
    """
    bias: int256 = self._int32_at(self._tensor_row(tensors[1], row, 4, channels), 0)
    multiplier: int256 = self._int32_at(self._tensor_row(tensors[2], row, 4, channels), 0)
    shift_value: int256 = self._int32_at(self._tensor_row(tensors[3], row, 4, channels), 0)
    ok: bool = multiplier >= 1 and shift_value >= 0 and shift_value <= 62
    if not ok:
        return 0, 0, 0, False
    return bias, multiplier, convert(shift_value, uint256), True


@internal
@pure
def _int32_at(data: Bytes[MAX_FAN_IN], offset: uint256) -> int256:
    """
    @dev 4 bytes big-endian two's complement at `offset`, sign-extended.
    """
    return convert(convert(slice(data, offset, 4), bytes4), int256)


@internal
@pure
def _window(attrs: DynArray[int256, 16], dilated: bool) -> int_ops.Window:
    """
    @dev attrs start kh, kw, sh, sw, top, left, bottom, right (then dh, dw when dilated).
    """
    dh: int256 = 1
    dw: int256 = 1
    if dilated:
        dh = attrs[8]
        dw = attrs[9]
    return int_ops.Window(
        kh=attrs[0], kw=attrs[1], sh=attrs[2], sw=attrs[3], top=attrs[4], left=attrs[5], dh=dh, dw=dw
    )


@internal
@pure
def _row_length(shape: DynArray[uint256, 4]) -> uint256:
    """
    @dev Elements per row along the first axis: the product of the other dimensions.
    """
    length: uint256 = 1
    for i: uint256 in range(1, len(shape), bound=4):
        length *= shape[i]
    return length


@internal
@pure
def _window_ok(attrs: DynArray[int256, 16], dilated: bool) -> bool:
    for i: uint256 in range(2):
        if attrs[i] < 1 or attrs[i] > convert(MAX_KERNEL, int256):
            return False
        if attrs[2 + i] < 1 or attrs[2 + i] > 2**32:
            return False
    for i: uint256 in range(4):
        if attrs[4 + i] < 0 or attrs[4 + i] > 2**32:
            return False
    if dilated:
        for i: uint256 in range(2):
            if attrs[8 + i] < 1 or attrs[8 + i] > 2**32:
                return False
    return True


@internal
@pure
def _bounds_ok(lo: int256, hi: int256, out_bytes: uint256) -> bool:
    if out_bytes == 1:
        return INT8_MIN <= lo and lo <= hi and hi <= INT8_MAX
    return INT32_MIN <= lo and lo <= hi and hi <= INT32_MAX


@internal
@pure
def _supported(spec: LayerSpec) -> bool:
    """
    @dev Structure and limits only; whether the spec matches the manifest is the graph root's
         business (the maintainer's statement, checked off-chain by every honest party).
    """
    op: uint256 = spec.op
    if op < OP_DENSE or op > OP_RESHAPE:
        return False
    if len(spec.in_shape) == 0 or len(spec.out_shape) == 0:
        return False
    for d: uint256 in spec.in_shape:
        if d == 0 or d > 2**32:
            return False
    for d: uint256 in spec.out_shape:
        if d == 0 or d > 2**32:
            return False
    if spec.out_bytes != 1 and spec.out_bytes != 4:
        return False
    if self._row_length(spec.out_shape) * spec.out_bytes > MAX_ROW_BYTES:
        return False
    in_row_bytes: uint256 = self._row_length(spec.in_shape)
    arity: uint256 = 1
    tensor_count: uint256 = 0
    attr_count: uint256 = 0
    if op == OP_DENSE:
        tensor_count = 4
        attr_count = 2
    elif op == OP_CONV2D:
        tensor_count = 4
        attr_count = 13
    elif op == OP_MAXPOOL:
        attr_count = 10
    elif op == OP_AVGPOOL:
        attr_count = 9
    elif op == OP_ADD:
        arity = 2
        tensor_count = 2
        attr_count = 2
    elif op == OP_CLAMP:
        attr_count = 2
    if len(spec.inputs) != arity or len(spec.tensors) != tensor_count or len(spec.attrs) != attr_count:
        return False
    if op != OP_DENSE and op != OP_CONV2D and op != OP_ADD and spec.out_bytes != 1:
        return False
    if op == OP_DENSE:
        if len(spec.in_shape) != 1 or len(spec.out_shape) != 1 or spec.in_shape[0] > MAX_FAN_IN:
            return False
        return self._bounds_ok(spec.attrs[0], spec.attrs[1], spec.out_bytes)
    if op == OP_RESHAPE:
        return in_row_bytes <= MAX_STEP_BYTES
    if op == OP_ADD or op == OP_CLAMP:
        if in_row_bytes > MAX_STEP_BYTES or self._row_length(spec.out_shape) != in_row_bytes:
            return False
        return self._bounds_ok(spec.attrs[0], spec.attrs[1], spec.out_bytes)
    # conv2d and the pools: [C, H, W] planes in and out.
    if len(spec.in_shape) != 3 or len(spec.out_shape) != 3:
        return False
    if not self._window_ok(spec.attrs, op != OP_AVGPOOL):
        return False
    if op == OP_CONV2D:
        groups: int256 = spec.attrs[10]
        if groups < 1 or groups > convert(spec.in_shape[0], int256):
            return False
        group_count: uint256 = convert(groups, uint256)
        if spec.in_shape[0] % group_count != 0 or spec.out_shape[0] % group_count != 0:
            return False
        group_in: uint256 = spec.in_shape[0] // group_count
        taps: uint256 = convert(spec.attrs[0] * spec.attrs[1], uint256)
        if group_in * taps > MAX_FAN_IN or group_in * in_row_bytes > MAX_STEP_BYTES:
            return False
        # A group short of all input planes is a partial row range: at most MAX_RANGE_ROWS.
        if group_count > 1 and group_in > tensor_commit.MAX_RANGE_ROWS:
            return False
        return self._bounds_ok(spec.attrs[11], spec.attrs[12], spec.out_bytes)
    if spec.out_shape[0] != spec.in_shape[0] or in_row_bytes > MAX_STEP_BYTES:
        return False
    return op == OP_MAXPOOL or spec.attrs[8] == 0 or spec.attrs[8] == 1
