"""The graph commitment: what the market contract knows about a version's layers.

A Merkle root over ABI-encoded leaves — leaf 0 the graph header, leaf i layer i's spec (op,
inputs, shapes, tensor indices, attributes) — computed from a verified package by one pure
function, so the maintainer who registers it and every provider who checks it get the same
bytes (docs/market.md "Graph commitment"). Refuses graphs the one-step check cannot evaluate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from eth_abi import encode

from aicommons.commit import MerkleTree
from aicommons.market import steps
from aicommons.market.errors import NotDisputable
from aicommons.runtime import Layer, ModelPackage

# Limits of the on-chain game; pinned against the contracts by tests/market.
MAX_LAYERS = 511
MAX_FAN_IN = steps.MAX_FAN_IN
MAX_STEP_BYTES = steps.MAX_STEP_BYTES
MAX_RANGE_ROWS = steps.MAX_RANGE_ROWS
MAX_ROW_BYTES = steps.MAX_ROW_BYTES
MAX_OUTPUT_BYTES = 4096
MAX_KERNEL = steps.MAX_KERNEL
MAX_TENSORS = 2**16

HEADER_ABI = "(uint256,uint256,uint256[],uint256,uint256[],uint256,uint256)"
SPEC_ABI = "(uint256,uint256[],uint256[],uint256[],uint256,uint256[],int256[])"


@dataclass(frozen=True)
class GraphHeader:
    """Leaf 0: sizes the contract checks requests and outputs against."""

    layer_count: int
    tensor_count: int
    input_shape: tuple[int, ...]
    output_leaf: int
    output_shape: tuple[int, ...]
    output_bytes: int
    input_bytes: int = 1
    """Element width of the input: 1 (int8), 2 (int16) or 4 (int32 token ids)."""

    def as_abi(self) -> tuple[Any, ...]:
        return (
            self.layer_count,
            self.tensor_count,
            list(self.input_shape),
            self.output_leaf,
            list(self.output_shape),
            self.output_bytes,
            self.input_bytes,
        )

    def encode(self) -> bytes:
        return encode([HEADER_ABI], [self.as_abi()])


@dataclass(frozen=True)
class LayerSpec:
    """Leaf i: one layer as the one-step verifier reads it."""

    op: int
    inputs: tuple[int, ...]
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    out_bytes: int
    tensors: tuple[int, ...]
    attrs: tuple[int, ...]

    def as_abi(self) -> tuple[Any, ...]:
        return (
            self.op,
            list(self.inputs),
            list(self.in_shape),
            list(self.out_shape),
            self.out_bytes,
            list(self.tensors),
            list(self.attrs),
        )

    def encode(self) -> bytes:
        return encode([SPEC_ABI], [self.as_abi()])

    @property
    def out_rows(self) -> int:
        return self.out_shape[0]

    @property
    def out_row_bytes(self) -> int:
        return math.prod(self.out_shape[1:]) * self.out_bytes


@dataclass(frozen=True)
class GraphCommitment:
    """The graph root of a version with the leaves it is made of and their proofs."""

    header: GraphHeader
    specs: tuple[LayerSpec, ...]
    root: bytes

    @property
    def leaves(self) -> list[bytes]:
        return [self.header.encode(), *(spec.encode() for spec in self.specs)]

    def proof(self, index: int) -> list[bytes]:
        """Siblings of leaf `index` (0 = header, i = layer i) under the graph root."""
        return list(MerkleTree.from_leaves(self.leaves).prove(index).siblings)


def _check_limits(
    layer: Layer, spec: LayerSpec, rule: steps.StepRule, context: steps.LayerContext
) -> None:
    """Refuse what the on-chain one-step cannot evaluate (the same limits as the verifiers)."""
    why = None
    if len(spec.in_shape) > 4 or len(spec.out_shape) > 4:
        why = "more than 4 dimensions"
    elif not rule.widths_in_attrs and spec.out_row_bytes > MAX_ROW_BYTES:
        why = f"output rows of {spec.out_row_bytes} bytes exceed {MAX_ROW_BYTES}"
    elif not rule.widths_in_attrs and any(width != 1 for width in context.in_bytes):
        why = "its verifier reads int8 inputs only"
    elif not rule.widths_in_attrs and spec.out_bytes == 2:
        why = "its verifier writes int8 or int32 values only"
    else:
        why = rule.limits(spec)
    if why is not None:
        raise NotDisputable(f"layer {layer.name!r} ({layer.op}) is not disputable: {why}")


def graph_commitment(package: ModelPackage) -> GraphCommitment:
    """The graph root and its leaves for a verified package (docs/market.md)."""
    tensor_names = sorted(package.tensors)
    if len(package.layers) > MAX_LAYERS:
        raise NotDisputable(f"{len(package.layers)} layers exceed the market's {MAX_LAYERS}")
    if len(tensor_names) > MAX_TENSORS:
        raise NotDisputable(f"{len(tensor_names)} tensors exceed {MAX_TENSORS}")
    tensor_index = {name: index for index, name in enumerate(tensor_names)}
    leaf_of = {package.input_name: 0}
    shape_of = {package.input_name: tuple(package.input_shape)}
    width_of = {package.input_name: steps.ELEMENT_BYTES[package.input_dtype]}
    specs = []
    for position, layer in enumerate(package.layers, start=1):
        context = steps.LayerContext(
            layer,
            tuple(shape_of[name] for name in layer.inputs),
            tuple(width_of[name] for name in layer.inputs),
            steps.ELEMENT_BYTES[layer.out_dtype],
            package.tensors,
        )
        rule = steps.select(context)
        if rule is None:
            raise NotDisputable(f"layer {layer.name!r}: op {layer.op!r} has no one-step verifier")
        spec = LayerSpec(
            op=rule.code,
            inputs=tuple(leaf_of[name] for name in layer.inputs),
            in_shape=shape_of[layer.inputs[0]],
            out_shape=tuple(layer.out_shape),
            out_bytes=steps.ELEMENT_BYTES[layer.out_dtype],
            tensors=tuple(tensor_index[layer.tensors[role]] for role in rule.tensor_roles),
            attrs=tuple(rule.attrs(context)),
        )
        _check_limits(layer, spec, rule, context)
        specs.append(spec)
        leaf_of[layer.output] = position
        shape_of[layer.output] = tuple(layer.out_shape)
        width_of[layer.output] = spec.out_bytes
    output_name = package.output_names[0]
    output_spec = specs[leaf_of[output_name] - 1]
    output_size = math.prod(output_spec.out_shape) * output_spec.out_bytes
    if output_size > MAX_OUTPUT_BYTES:
        raise NotDisputable(f"the output ({output_size} bytes) exceeds {MAX_OUTPUT_BYTES} bytes")
    header = GraphHeader(
        layer_count=len(specs),
        tensor_count=len(tensor_names),
        input_shape=tuple(package.input_shape),
        output_leaf=leaf_of[output_name],
        output_shape=output_spec.out_shape,
        output_bytes=output_spec.out_bytes,
        input_bytes=steps.ELEMENT_BYTES[package.input_dtype],
    )
    leaves = [header.encode(), *(spec.encode() for spec in specs)]
    return GraphCommitment(header, tuple(specs), MerkleTree.from_leaves(leaves).root)
