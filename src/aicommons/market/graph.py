"""The graph commitment: what the market contract knows about a version's layers.

A Merkle root over ABI-encoded leaves — leaf 0 the graph header, leaf i layer i's spec (op,
inputs, shapes, tensor indices, attributes) — computed from a verified package by one pure
function, so the maintainer who registers it and every provider who checks it get the same
bytes (docs/market.md "Graph commitment"). Refuses graphs the one-step check cannot evaluate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode

from aicommons.commit import MerkleTree
from aicommons.market.errors import NotDisputable
from aicommons.runtime import Layer, ModelPackage

OP_CODES: Mapping[str, int] = {
    "dense": 1,
    "conv2d": 2,
    "maxpool": 3,
    "avgpool": 4,
    "add": 5,
    "clamp": 6,
    "reshape": 7,
}
"""Op codes of LayerSpec.op; one entry per `<op>_step` in int_ops.vy."""

TENSOR_ROLES: Mapping[str, tuple[str, ...]] = {
    "dense": ("weight", "bias", "multiplier", "shift"),
    "conv2d": ("weight", "bias", "multiplier", "shift"),
    "add": ("multiplier", "shift"),
}
"""Order of LayerSpec.tensors per op (ops not listed have no tensors)."""

# Limits of the on-chain game; pinned against the contracts by tests/market.
MAX_LAYERS = 511
MAX_FAN_IN = 4096
MAX_STEP_BYTES = 16384
MAX_RANGE_ROWS = 256
MAX_ROW_BYTES = 16384
MAX_OUTPUT_BYTES = 4096
MAX_KERNEL = 256
MAX_TENSORS = 2**16

HEADER_ABI = "(uint256,uint256,uint256[],uint256,uint256[],uint256)"
SPEC_ABI = "(uint256,uint256[],uint256[],uint256[],uint256,uint256[],int256[])"


def _window_attrs(attrs: Mapping[str, Any], *, dilations: bool) -> list[int]:
    kernel, strides, pads = attrs["kernel"], attrs["strides"], attrs["pads"]
    values = [*kernel, *strides, *pads]
    if dilations:
        values += list(attrs["dilations"])
    return [int(v) for v in values]


def _attrs(layer: Layer) -> list[int]:
    """LayerSpec.attrs in the documented order of each op."""
    a = layer.attrs
    if layer.op in ("dense", "add", "clamp"):
        return [int(a["lo"]), int(a["hi"])]
    if layer.op == "conv2d":
        return [*_window_attrs(a, dilations=True), int(a["groups"]), int(a["lo"]), int(a["hi"])]
    if layer.op == "maxpool":
        return _window_attrs(a, dilations=True)
    if layer.op == "avgpool":
        return [*_window_attrs(a, dilations=False), int(a["count_include_pad"])]
    if layer.op == "reshape":
        return []
    raise NotDisputable(f"layer {layer.name!r}: op {layer.op!r} has no one-step verifier")


@dataclass(frozen=True)
class GraphHeader:
    """Leaf 0: sizes the contract checks requests and outputs against."""

    layer_count: int
    tensor_count: int
    input_shape: tuple[int, ...]
    output_leaf: int
    output_shape: tuple[int, ...]
    output_bytes: int

    def as_abi(self) -> tuple[Any, ...]:
        return (
            self.layer_count,
            self.tensor_count,
            list(self.input_shape),
            self.output_leaf,
            list(self.output_shape),
            self.output_bytes,
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


def _row_bytes(shape: Sequence[int], width: int = 1) -> int:
    return math.prod(shape[1:]) * width


def _check_limits(layer: Layer, spec: LayerSpec) -> None:
    """Refuse what the on-chain one-step cannot evaluate (the same limits as the verifier)."""

    def refuse(why: str) -> NotDisputable:
        return NotDisputable(f"layer {layer.name!r} ({layer.op}) is not disputable: {why}")

    if len(spec.in_shape) > 4 or len(spec.out_shape) > 4:
        raise refuse("more than 4 dimensions")
    if spec.out_row_bytes > MAX_ROW_BYTES:
        raise refuse(f"output rows of {spec.out_row_bytes} bytes exceed {MAX_ROW_BYTES}")
    in_row = _row_bytes(spec.in_shape)
    if layer.op == "dense":
        fan_in = spec.in_shape[0]
        if fan_in > MAX_FAN_IN:
            raise refuse(f"fan-in {fan_in} exceeds {MAX_FAN_IN}")
    elif layer.op == "conv2d":
        kh, kw, groups = spec.attrs[0], spec.attrs[1], spec.attrs[10]
        group_in = spec.in_shape[0] // groups
        if group_in * kh * kw > MAX_FAN_IN:
            raise refuse(f"fan-in {group_in * kh * kw} exceeds {MAX_FAN_IN}")
        if group_in * in_row > MAX_STEP_BYTES:
            raise refuse(
                f"a group's input planes ({group_in * in_row} bytes) exceed {MAX_STEP_BYTES}"
            )
        if max(kh, kw) > MAX_KERNEL:
            raise refuse(f"kernel larger than {MAX_KERNEL}")
    elif in_row > MAX_STEP_BYTES:
        raise refuse(f"input rows of {in_row} bytes exceed {MAX_STEP_BYTES}")
    elif layer.op in ("maxpool", "avgpool") and max(spec.attrs[0], spec.attrs[1]) > MAX_KERNEL:
        raise refuse(f"kernel larger than {MAX_KERNEL}")


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
    specs = []
    for position, layer in enumerate(package.layers, start=1):
        if layer.op not in OP_CODES:
            raise NotDisputable(f"layer {layer.name!r}: op {layer.op!r} has no one-step verifier")
        spec = LayerSpec(
            op=OP_CODES[layer.op],
            inputs=tuple(leaf_of[name] for name in layer.inputs),
            in_shape=shape_of[layer.inputs[0]],
            out_shape=tuple(layer.out_shape),
            out_bytes=4 if layer.out_dtype == "int32" else 1,
            tensors=tuple(
                tensor_index[layer.tensors[role]] for role in TENSOR_ROLES.get(layer.op, ())
            ),
            attrs=tuple(_attrs(layer)),
        )
        _check_limits(layer, spec)
        specs.append(spec)
        leaf_of[layer.output] = position
        shape_of[layer.output] = tuple(layer.out_shape)
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
    )
    leaves = [header.encode(), *(spec.encode() for spec in specs)]
    return GraphCommitment(header, tuple(specs), MerkleTree.from_leaves(leaves).root)
