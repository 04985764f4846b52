"""The one-step registry: per op, how a layer becomes a graph leaf and which rows its check reads.

Each op the dispute game can settle is registered once as a `StepRule` keyed by its manifest
`op`: its LayerSpec code, tensor roles and attribute list (docs/market.md "Graph commitment"),
the limits beyond which the on-chain one-step cannot evaluate it, and the input and weight rows
the verifier reads for one output element (docs/market.md "The one-step check"). `graph.py` and
`dispute.py` look rules up here and never branch on op names; the Vyper verifiers mirror each
rule in their `_recompute`. Pure: no chain, no runtime execution.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from aicommons.runtime import Layer

Shape = tuple[int, ...]

# Limits of the on-chain game; pinned against the contracts by tests/market.
MAX_FAN_IN = 4096
MAX_STEP_BYTES = 16384
MAX_RANGE_ROWS = 256
MAX_ROW_BYTES = 16384
MAX_TENSOR_ROW_BYTES = 4096
MAX_KERNEL = 256
ELEMENT_BYTES: Mapping[str, int] = {"int8": 1, "int16": 2, "int32": 4}
"""Committed element width of each activation dtype (docs/integer-semantics.md "Commitments")."""


class SpecView(Protocol):
    """What a rule reads of a LayerSpec (graph.LayerSpec; a protocol to keep imports one-way)."""

    op: int
    inputs: tuple[int, ...]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    out_bytes: int
    tensors: tuple[int, ...]
    attrs: tuple[int, ...]


@dataclass(frozen=True)
class LayerContext:
    """A layer with the per-sample shapes and element widths of its inputs, its output width
    and the package's tensors (for the shapes and widths of tables)."""

    layer: Layer
    in_shapes: tuple[Shape, ...]
    in_bytes: tuple[int, ...]
    out_bytes: int
    tensors: Mapping[str, np.ndarray]

    def tensor(self, role: str) -> np.ndarray:
        return self.tensors[self.layer.tensors[role]]


@dataclass(frozen=True)
class StepRows:
    """Rows one one-step reads: per input (first, count), per weight tensor (first, count)."""

    inputs: tuple[tuple[int, int], ...]
    tensors: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class InputLayout:
    """Rows, elements a row and element width of input `j` of a layer, as the verifier sees it."""

    rows: int
    row_length: int
    width: int

    @property
    def row_bytes(self) -> int:
        return self.row_length * self.width


ValueReader = Callable[[int, int], int]
"""(input j, flat index) -> that value of the input in the disputed trace."""
AttrsRule = Callable[[LayerContext], list[int]]
LimitsRule = Callable[[SpecView], "str | None"]
RowsRule = Callable[[SpecView, int, int, ValueReader], StepRows]


@dataclass(frozen=True)
class StepRule:
    """One op of the one-step verifier. `op` is the manifest op and the stem of `<op>_step`."""

    op: str
    code: int
    tensor_roles: tuple[str, ...]
    attrs: AttrsRule
    limits: LimitsRule
    rows: RowsRule
    arity: int = 1
    widths_in_attrs: bool = False
    """Ops from code 8 on open their attrs with the widths (and second-input layout) of their
    inputs (`input_layout`); the first seven predate int16 and read int8 inputs only."""
    matches: Callable[[LayerContext], bool] = lambda context: True
    """Whether this rule takes the layer (an op with a classic and a v2 form has two rules)."""

    @property
    def step_name(self) -> str:
        return f"{self.op}_step"


def row_length(shape: Sequence[int]) -> int:
    """Elements of one row along the first axis: the product of the other dimensions."""
    return math.prod(shape[1:])


def input_header(context: LayerContext) -> list[int]:
    """The attrs prefix of ops with `widths_in_attrs`: the width of input 0, then for a second
    input its width, rows and row length (input 0's shape is the spec's `in_shape`)."""
    header = [context.in_bytes[0]]
    if len(context.in_shapes) > 1:
        shape = context.in_shapes[1]
        header += [context.in_bytes[1], shape[0], row_length(shape)]
    return header


def header_length(arity: int) -> int:
    return 1 if arity == 1 else 4


def input_layout(spec: SpecView, rule: StepRule, j: int) -> InputLayout:
    """Rows, row length and width of input `j` as the verifier derives them from the spec."""
    if not rule.widths_in_attrs:
        return InputLayout(spec.in_shape[0], row_length(spec.in_shape), 1)
    if j == 0:
        return InputLayout(spec.in_shape[0], row_length(spec.in_shape), spec.attrs[0])
    return InputLayout(spec.attrs[2], spec.attrs[3], spec.attrs[1])


def op_attrs(spec: SpecView, rule: StepRule) -> tuple[int, ...]:
    """The op's own attributes (after the input header of ops with `widths_in_attrs`)."""
    if not rule.widths_in_attrs:
        return spec.attrs
    return spec.attrs[header_length(rule.arity) :]


# -- the classic ops (codes 1-7; OneStepVerifier.vy) ---------------------------------------------


def _window_attrs(attrs: Mapping[str, Any], *, dilations: bool) -> list[int]:
    kernel, strides, pads = attrs["kernel"], attrs["strides"], attrs["pads"]
    values = [*kernel, *strides, *pads]
    if dilations:
        values += list(attrs["dilations"])
    return [int(v) for v in values]


def _bounds(context: LayerContext) -> list[int]:
    return [int(context.layer.attrs["lo"]), int(context.layer.attrs["hi"])]


def _in_row_limit(spec: SpecView) -> str | None:
    in_row = row_length(spec.in_shape)
    if in_row > MAX_STEP_BYTES:
        return f"input rows of {in_row} bytes exceed {MAX_STEP_BYTES}"
    return None


def _dense_limits(spec: SpecView) -> str | None:
    if spec.in_shape[0] > MAX_FAN_IN:
        return f"fan-in {spec.in_shape[0]} exceeds {MAX_FAN_IN}"
    return None


def _conv_limits(spec: SpecView) -> str | None:
    kh, kw, groups = spec.attrs[0], spec.attrs[1], spec.attrs[10]
    group_in = spec.in_shape[0] // groups
    if group_in * kh * kw > MAX_FAN_IN:
        return f"fan-in {group_in * kh * kw} exceeds {MAX_FAN_IN}"
    planes = group_in * row_length(spec.in_shape)
    if planes > MAX_STEP_BYTES:
        return f"a group's input planes ({planes} bytes) exceed {MAX_STEP_BYTES}"
    if max(kh, kw) > MAX_KERNEL:
        return f"kernel larger than {MAX_KERNEL}"
    return None


def _pool_limits(spec: SpecView) -> str | None:
    if max(spec.attrs[0], spec.attrs[1]) > MAX_KERNEL:
        return f"kernel larger than {MAX_KERNEL}"
    return _in_row_limit(spec)


def _requant_rows(spec: SpecView, row: int) -> tuple[tuple[int, int], ...]:
    return tuple((row, 1) for _ in spec.tensors)


def _dense_rows(spec: SpecView, row: int, element: int, value: ValueReader) -> StepRows:
    # The whole input vector: K rows of one value.
    return StepRows(((0, spec.in_shape[0]),), _requant_rows(spec, row))


def _conv_rows(spec: SpecView, row: int, element: int, value: ValueReader) -> StepRows:
    groups = spec.attrs[10]
    group_in = spec.in_shape[0] // groups
    group = row // (spec.out_shape[0] // groups)
    return StepRows(((group * group_in, group_in),), _requant_rows(spec, row))


def _same_row(spec: SpecView, row: int, element: int, value: ValueReader) -> StepRows:
    return StepRows(tuple((row, 1) for _ in spec.inputs), ())


def _add_rows(spec: SpecView, row: int, element: int, value: ValueReader) -> StepRows:
    return StepRows(((row, 1), (row, 1)), ((0, 2), (0, 1)))


def _reshape_rows(spec: SpecView, row: int, element: int, value: ValueReader) -> StepRows:
    flat = row * row_length(spec.out_shape) + element
    return StepRows(((flat // row_length(spec.in_shape), 1),), ())


REQUANT_ROLES = ("weight", "bias", "multiplier", "shift")


def _int8_only(context: LayerContext) -> bool:
    return all(width == 1 for width in context.in_bytes)


def _classic_dense(context: LayerContext) -> bool:
    return len(context.in_shapes[0]) == 1 and _int8_only(context) and context.out_bytes in (1, 4)


def _classic_add(context: LayerContext) -> bool:
    return _int8_only(context) and context.out_bytes in (1, 4)


CLASSIC_RULES = (
    StepRule(
        "dense", 1, REQUANT_ROLES, _bounds, _dense_limits, _dense_rows, matches=_classic_dense
    ),
    StepRule(
        "conv2d",
        2,
        REQUANT_ROLES,
        lambda c: [
            *_window_attrs(c.layer.attrs, dilations=True),
            int(c.layer.attrs["groups"]),
            *_bounds(c),
        ],
        _conv_limits,
        _conv_rows,
    ),
    StepRule(
        "maxpool",
        3,
        (),
        lambda c: _window_attrs(c.layer.attrs, dilations=True),
        _pool_limits,
        _same_row,
    ),
    StepRule(
        "avgpool",
        4,
        (),
        lambda c: [
            *_window_attrs(c.layer.attrs, dilations=False),
            int(c.layer.attrs["count_include_pad"]),
        ],
        _pool_limits,
        _same_row,
    ),
    StepRule(
        "add",
        5,
        ("multiplier", "shift"),
        _bounds,
        _in_row_limit,
        _add_rows,
        arity=2,
        matches=_classic_add,
    ),
    StepRule("clamp", 6, (), _bounds, _in_row_limit, _same_row),
    StepRule("reshape", 7, (), lambda c: [], _in_row_limit, _reshape_rows, matches=_int8_only),
)
"""Ops 1-7 (OneStepVerifier.vy): int8 inputs, int8 or int32 outputs."""


# -- the v2 ops (codes 8-19; TransformerVerifier.vy, AttentionVerifier.vy, step_rows.vy) --------

MAX_WIDE_BYTES = 32768
"""Most bytes of the rows one v2 step reads from one input, and of one v2 output row."""
MAX_SEGMENT = 2048
"""Most values of one segment a v2 step decodes."""
LAYERNORM_MAX_WIDTH = 1024


@dataclass(frozen=True)
class Segment:
    """`count` values of an input's flattened per-sample values from `start`, `stride` apart."""

    start: int
    count: int
    stride: int = 1


SegmentsRule = Callable[[SpecView, int], list[Segment]]
TensorsRule = Callable[[SpecView, int, ValueReader], tuple[tuple[int, int], ...]]


def span_ok(rows: int, length: int, width: int, span: int) -> bool:
    """step_rows.span_ok: a read inside one aligned block of `span` values stays within one row
    (span divides the row length) or whole rows (the row length divides span), at most
    MAX_WIDE_BYTES, and a partial range of at most MAX_RANGE_ROWS rows."""
    if width not in (1, 2, 4) or span == 0 or length == 0:
        return False
    if span <= length:
        return length % span == 0 and length * width <= MAX_WIDE_BYTES
    if span % length != 0 or span * width > MAX_WIDE_BYTES:
        return False
    return span // length == rows or span // length <= MAX_RANGE_ROWS


def covering_rows(layout: InputLayout, segment: Segment) -> tuple[int, int]:
    """(first row, row count) of the rows holding every value of `segment`."""
    first = segment.start // layout.row_length
    last = (segment.start + (segment.count - 1) * segment.stride) // layout.row_length
    return first, last - first + 1


def transpose_source(out_shape: Sequence[int], perm: Sequence[int], flat: int) -> int:
    """int_ops.transpose_step: the flat input index of output element `flat`."""
    index = [0] * len(out_shape)
    in_shape = [0] * len(out_shape)
    rest = flat
    for axis in reversed(range(len(out_shape))):
        index[perm[axis]] = rest % out_shape[axis]
        in_shape[perm[axis]] = out_shape[axis]
        rest //= out_shape[axis]
    source = 0
    for axis in range(len(out_shape)):
        source = source * in_shape[axis] + index[axis]
    return source


def _lookup_offset(width: int) -> int:
    return 128 if width == 1 else 32768


def _v2_rows(segments: SegmentsRule, tensors: TensorsRule, arity: int) -> RowsRule:
    def rows(spec: SpecView, row: int, element: int, value: ValueReader) -> StepRows:
        flat = row * row_length(spec.out_shape) + element
        rule = _v2_rule(arity)
        reads = segments(spec, flat)
        return StepRows(
            tuple(covering_rows(input_layout(spec, rule, j), seg) for j, seg in enumerate(reads)),
            tensors(spec, flat, value),
        )

    return rows


def _v2_rule(arity: int) -> StepRule:
    """A stand-in with the v2 header layout (input_layout needs only these two fields)."""
    return StepRule("", 0, (), lambda c: [], lambda s: None, _same_row, arity, True)


def _header_limits(spec: SpecView, arity: int, own_attrs: int, tensor_count: int) -> str | None:
    """step_rows.header_ok: counts, widths and the second input's layout."""
    header = header_length(arity)
    if len(spec.attrs) != header + own_attrs or len(spec.tensors) != tensor_count:
        return "attributes or tensors do not fit the op"
    if spec.out_bytes not in (1, 2, 4) or spec.attrs[0] not in (1, 2, 4):
        return "element widths other than 1, 2 or 4 bytes"
    if arity == 2 and (spec.attrs[1] not in (1, 2, 4) or spec.attrs[2] < 1 or spec.attrs[3] < 1):
        return "the second input's layout is malformed"
    if row_length(spec.out_shape) * spec.out_bytes > MAX_WIDE_BYTES:
        return f"output rows exceed {MAX_WIDE_BYTES} bytes"
    return None


def _bounds_ok(lo: int, hi: int, out_bytes: int) -> bool:
    limit = 1 << (8 * out_bytes - 1)
    return -limit <= lo <= hi < limit


def _layout0(spec: SpecView) -> tuple[int, int, int]:
    return spec.in_shape[0], row_length(spec.in_shape), spec.attrs[0]


def _layout1(spec: SpecView) -> tuple[int, int, int]:
    return spec.attrs[2], spec.attrs[3], spec.attrs[1]


def _first(*checks: tuple[bool, str]) -> str | None:
    """The reason of the first failed check, or None."""
    for ok, why in checks:
        if not ok:
            return why
    return None


def _too_wide(what: str) -> str:
    return f"{what} exceed {MAX_WIDE_BYTES} bytes or {MAX_RANGE_ROWS} rows a step"


def _dense_v2_limits(spec: SpecView) -> str | None:
    rows, length, width = _layout0(spec)
    fan_in = spec.in_shape[-1]
    return _header_limits(spec, 1, 2, 4) or _first(
        (fan_in <= min(MAX_SEGMENT, MAX_FAN_IN), f"fan-in {fan_in} exceeds {MAX_SEGMENT}"),
        (span_ok(rows, length, width, fan_in), _too_wide("input rows")),
        (_bounds_ok(spec.attrs[1], spec.attrs[2], spec.out_bytes), "clamp bounds"),
    )


def _add_v2_limits(spec: SpecView) -> str | None:
    rows, length, width = _layout0(spec)
    return _header_limits(spec, 2, 2, 2) or _first(
        ((spec.attrs[2], spec.attrs[3]) == (rows, length), "inputs of different shapes"),
        (span_ok(rows, length, width, 1), _too_wide("input rows")),
        (span_ok(rows, length, spec.attrs[1], 1), _too_wide("input rows")),
        (_bounds_ok(spec.attrs[4], spec.attrs[5], spec.out_bytes), "clamp bounds"),
    )


def _one_value_limits(own_attrs: int, tensor_count: int = 0) -> LimitsRule:
    def limits(spec: SpecView) -> str | None:
        rows, length, width = _layout0(spec)
        return _header_limits(spec, 1, own_attrs, tensor_count) or _first(
            (span_ok(rows, length, width, 1), _too_wide("input rows")),
        )

    return limits


def _transpose_limits(spec: SpecView) -> str | None:
    rank = len(spec.out_shape)
    perm = spec.attrs[1:]
    return _one_value_limits(rank)(spec) or _first(
        (len(spec.in_shape) == rank and sorted(perm) == list(range(rank)), "not a permutation"),
    )


def _embed_limits(spec: SpecView) -> str | None:
    rows, length, width = _layout0(spec)
    vocab, positions, table_width, position_width, lo, hi = spec.attrs[1:]
    return _header_limits(spec, 1, 6, 4) or _first(
        (len(spec.in_shape) == 1 and len(spec.out_shape) == 2, "ids must be [L], output [L, D]"),
        (1 <= vocab <= 2**32 and rows <= positions <= 2**32, "table sizes"),
        (table_width in (1, 2) and position_width in (1, 2), "table widths"),
        (
            spec.out_shape[1] * max(table_width, position_width) <= MAX_FAN_IN,
            f"table rows exceed {MAX_FAN_IN} bytes",
        ),
        (span_ok(rows, length, width, 1), _too_wide("input rows")),
        (_bounds_ok(lo, hi, spec.out_bytes), "clamp bounds"),
    )


def _matmul_limits(spec: SpecView) -> str | None:
    rows, length, width = _layout0(spec)
    b_rows, b_length, b_width = _layout1(spec)
    fan_in, columns = spec.in_shape[-1], spec.out_shape[-1]
    rank = len(spec.in_shape)
    return _header_limits(spec, 2, 2, 2) or _first(
        (rank >= 2 and len(spec.out_shape) == rank, "operands of rank < 2"),
        (fan_in <= MAX_SEGMENT, f"K = {fan_in} exceeds {MAX_SEGMENT}"),
        (
            rank >= 2 and b_rows * b_length * spec.in_shape[-2] == rows * length * columns,
            "b does not fit a",
        ),
        (span_ok(rows, length, width, fan_in), _too_wide("rows of a")),
        (span_ok(b_rows, b_length, b_width, fan_in * columns), _too_wide("rows of b")),
        (_bounds_ok(spec.attrs[4], spec.attrs[5], spec.out_bytes), "clamp bounds"),
    )


def _masked_limits(spec: SpecView) -> str | None:
    """softmax and mean_pool: a row along the last axis and the whole mask."""
    rows, length, width = _layout0(spec)
    mask_rows, mask_length, mask_width = _layout1(spec)
    mask_values = mask_rows * mask_length
    common = _header_limits(spec, 2, 1 if spec.op == 15 else 0, 0) or _first(
        (mask_values <= MAX_SEGMENT, f"a mask of more than {MAX_SEGMENT} values"),
        (span_ok(mask_rows, mask_length, mask_width, mask_values), _too_wide("the mask")),
    )
    last = spec.in_shape[-1]
    if spec.op == 15:
        shape_ok, why = spec.out_bytes == 2 and 0 <= spec.attrs[4] <= 30, "softmax output, in_frac"
    else:
        shape_ok, why = len(spec.in_shape) == 2 and len(spec.out_shape) == 1, "x must be [D, L]"
    return common or _first(
        (mask_values == last and last <= MAX_SEGMENT, "the mask does not fit the rows"),
        (shape_ok, why),
        (span_ok(rows, length, width, last), _too_wide("rows")),
    )


def _row_op_limits(own_attrs: int, tensor_count: int) -> LimitsRule:
    """layernorm and l2norm: one row along the last axis."""

    def limits(spec: SpecView) -> str | None:
        rows, length, width = _layout0(spec)
        last = spec.in_shape[-1]
        lo, hi = spec.attrs[-2], spec.attrs[-1]
        wide_ok = last <= MAX_SEGMENT and span_ok(rows, length, width, last)
        layernorm_ok = spec.op != 16 or 2 <= last <= LAYERNORM_MAX_WIDTH
        l2norm_ok = spec.op != 19 or 0 <= spec.attrs[1] <= 30
        return _header_limits(spec, 1, own_attrs, tensor_count) or _first(
            (wide_ok, _too_wide("rows")),
            (layernorm_ok, f"layernorm rows of 2..{LAYERNORM_MAX_WIDTH} values"),
            (l2norm_ok, "out_frac outside 0..30"),
            (_bounds_ok(lo, hi, spec.out_bytes), "clamp bounds"),
        )

    return limits


def _lookup_limits(spec: SpecView) -> str | None:
    return _one_value_limits(0, 1)(spec) or _first(
        (spec.attrs[0] in (1, 2), "lookup input wider than int16"),
    )


def _no_tensors(spec: SpecView, flat: int, value: ValueReader) -> tuple[tuple[int, int], ...]:
    return ()


def _same_flat(spec: SpecView, flat: int) -> list[Segment]:
    return [Segment(flat, 1)] * len(spec.inputs)


def _last_axis_row(spec: SpecView, flat: int) -> list[Segment]:
    last = spec.in_shape[-1]
    return [Segment(flat - flat % last, last)]


def _matmul_segments(spec: SpecView, flat: int) -> list[Segment]:
    fan_in, columns, rows = spec.in_shape[-1], spec.out_shape[-1], spec.in_shape[-2]
    c, r, g = flat % columns, (flat // columns) % rows, flat // columns // rows
    return [
        Segment((g * rows + r) * fan_in, fan_in),
        Segment(g * fan_in * columns + c, fan_in, columns),
    ]


def _softmax_segments(spec: SpecView, flat: int) -> list[Segment]:
    return [*_last_axis_row(spec, flat), Segment(0, spec.in_shape[-1])]


def _mean_pool_segments(spec: SpecView, flat: int) -> list[Segment]:
    length = spec.in_shape[-1]
    return [Segment(flat * length, length), Segment(0, length)]


def _dense_tensors(spec: SpecView, flat: int, value: ValueReader) -> tuple[tuple[int, int], ...]:
    return ((flat % spec.out_shape[-1], 1),) * 4


def _embed_tensors(spec: SpecView, flat: int, value: ValueReader) -> tuple[tuple[int, int], ...]:
    position = flat // spec.out_shape[-1]
    return ((value(0, position), 1), (position, 1), (0, 2), (0, 1))


def _v2(
    op: str,
    code: int,
    roles: tuple[str, ...],
    attrs: Callable[[LayerContext], list[int]],
    limits: LimitsRule,
    segments: SegmentsRule,
    tensors: TensorsRule = _no_tensors,
    *,
    arity: int = 1,
    matches: Callable[[LayerContext], bool] = lambda context: True,
) -> StepRule:
    def with_header(context: LayerContext) -> list[int]:
        return [*input_header(context), *attrs(context)]

    return StepRule(
        op,
        code,
        roles,
        with_header,
        limits,
        _v2_rows(segments, tensors, arity),
        arity,
        True,
        matches,
    )


def _attr(name: str) -> Callable[[LayerContext], list[int]]:
    return lambda c: [int(c.layer.attrs[name])]


def _embed_attrs(c: LayerContext) -> list[int]:
    table, position = c.tensor("table"), c.tensor("position")
    widths = [ELEMENT_BYTES[table.dtype.name], ELEMENT_BYTES[position.dtype.name]]
    return [table.shape[0], position.shape[0], *widths, *_bounds(c)]


V2_RULES = (
    _v2(
        "dense",
        8,
        REQUANT_ROLES,
        _bounds,
        _dense_v2_limits,
        lambda spec, flat: [
            Segment(flat // spec.out_shape[-1] * spec.in_shape[-1], spec.in_shape[-1])
        ],
        _dense_tensors,
        matches=lambda c: not _classic_dense(c),
    ),
    _v2(
        "add",
        9,
        ("multiplier", "shift"),
        _bounds,
        _add_v2_limits,
        _same_flat,
        lambda spec, flat, value: ((0, 2), (0, 1)),
        arity=2,
        matches=lambda c: not _classic_add(c),
    ),
    _v2(
        "reshape",
        10,
        (),
        lambda c: [],
        _one_value_limits(0),
        _same_flat,
        matches=lambda c: not _int8_only(c),
    ),
    _v2(
        "embed",
        11,
        ("table", "position", "multiplier", "shift"),
        _embed_attrs,
        _embed_limits,
        lambda spec, flat: [Segment(flat // spec.out_shape[-1], 1)],
        _embed_tensors,
    ),
    _v2("pad_mask", 12, (), _attr("pad_id"), _one_value_limits(1), _same_flat),
    _v2(
        "matmul",
        13,
        ("multiplier", "shift"),
        _bounds,
        _matmul_limits,
        _matmul_segments,
        lambda spec, flat, value: ((0, 1), (0, 1)),
        arity=2,
    ),
    _v2(
        "transpose",
        14,
        (),
        lambda c: [int(v) for v in c.layer.attrs["perm"]],
        _transpose_limits,
        lambda spec, flat: [Segment(transpose_source(spec.out_shape, spec.attrs[1:], flat), 1)],
    ),
    _v2("softmax", 15, (), _attr("in_frac"), _masked_limits, _softmax_segments, arity=2),
    _v2(
        "layernorm",
        16,
        ("multiplier", "shift", "bias"),
        _bounds,
        _row_op_limits(2, 3),
        _last_axis_row,
        lambda spec, flat, value: ((flat % spec.in_shape[-1], 1),) * 3,
    ),
    _v2(
        "lookup",
        17,
        ("table",),
        lambda c: [],
        _lookup_limits,
        _same_flat,
        lambda spec, flat, value: ((value(0, flat) + _lookup_offset(spec.attrs[0]), 1),),
    ),
    _v2("mean_pool", 18, (), lambda c: [], _masked_limits, _mean_pool_segments, arity=2),
    _v2(
        "l2norm",
        19,
        (),
        lambda c: [int(c.layer.attrs["out_frac"]), *_bounds(c)],
        _row_op_limits(3, 0),
        _last_axis_row,
    ),
)
"""Ops 8-19: int8/int16 (token ids: int32) inputs, attrs opening with the input layout."""

_RULES: tuple[StepRule, ...] = ()


def register(rule: StepRule) -> StepRule:
    """Add a rule to the registry (each code once)."""
    global _RULES
    if any(r.code == rule.code for r in _RULES):
        raise ValueError(f"code {rule.code} is registered twice")
    _RULES = (*_RULES, rule)
    return rule


for _rule in (*CLASSIC_RULES, *V2_RULES):
    register(_rule)


def rules() -> tuple[StepRule, ...]:
    """Every registered rule, in code order."""
    return _RULES


def select(context: LayerContext) -> StepRule | None:
    """The rule that takes this layer (its op and the form of its inputs), or None."""
    for rule in _RULES:
        if rule.op == context.layer.op and rule.matches(context):
            return rule
    return None


def rule_for_code(code: int) -> StepRule:
    for rule in _RULES:
        if rule.code == code:
            return rule
    raise KeyError(f"no one-step rule has code {code}")
