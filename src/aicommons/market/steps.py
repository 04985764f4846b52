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
    """A layer with the per-sample shapes and element widths of its inputs."""

    layer: Layer
    in_shapes: tuple[Shape, ...]
    in_bytes: tuple[int, ...]


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


AttrsRule = Callable[[LayerContext], list[int]]
LimitsRule = Callable[[SpecView], "str | None"]
RowsRule = Callable[[SpecView, int, int], StepRows]


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


def _dense_rows(spec: SpecView, row: int, element: int) -> StepRows:
    # The whole input vector: K rows of one value.
    return StepRows(((0, spec.in_shape[0]),), _requant_rows(spec, row))


def _conv_rows(spec: SpecView, row: int, element: int) -> StepRows:
    groups = spec.attrs[10]
    group_in = spec.in_shape[0] // groups
    group = row // (spec.out_shape[0] // groups)
    return StepRows(((group * group_in, group_in),), _requant_rows(spec, row))


def _same_row(spec: SpecView, row: int, element: int) -> StepRows:
    return StepRows(tuple((row, 1) for _ in spec.inputs), ())


def _add_rows(spec: SpecView, row: int, element: int) -> StepRows:
    return StepRows(((row, 1), (row, 1)), ((0, 2), (0, 1)))


def _reshape_rows(spec: SpecView, row: int, element: int) -> StepRows:
    flat = row * row_length(spec.out_shape) + element
    return StepRows(((flat // row_length(spec.in_shape), 1),), ())


def _none(spec: SpecView) -> None:
    return None


REQUANT_ROLES = ("weight", "bias", "multiplier", "shift")

_RULES: dict[str, StepRule] = {}


def register(rule: StepRule) -> StepRule:
    """Add an op to the registry (once per op and per code)."""
    if rule.op in _RULES or any(r.code == rule.code for r in _RULES.values()):
        raise ValueError(f"op {rule.op!r} or code {rule.code} is registered twice")
    _RULES[rule.op] = rule
    return rule


for _rule in (
    StepRule("dense", 1, REQUANT_ROLES, _bounds, _dense_limits, _dense_rows),
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
    StepRule("add", 5, ("multiplier", "shift"), _bounds, _in_row_limit, _add_rows, arity=2),
    StepRule("clamp", 6, (), _bounds, _in_row_limit, _same_row),
    StepRule("reshape", 7, (), lambda c: [], _in_row_limit, _reshape_rows),
):
    register(_rule)


def rules() -> Mapping[str, StepRule]:
    """Every registered op, keyed by manifest op."""
    return dict(_RULES)


def rule_for(op: str) -> StepRule | None:
    return _RULES.get(op)


def rule_for_code(code: int) -> StepRule:
    for rule in _RULES.values():
        if rule.code == code:
            return rule
    raise KeyError(f"no one-step rule has code {code}")
