"""Every argument of the dispute game, computed from a package and one sample's trace.

`TraceCommitments` holds what one party committed to (every layer's rows and roots, the trace
tree) and answers each move of docs/market.md: the layer roots to reveal, the first layer that
differs from another party's roots, the children of any node of a layer's row tree, the leaf
rows, and the one-step arguments (input rows with range proofs against the trace, weight rows
with proofs against the weights root). Pure: no chain, no I/O; mirrors OneStepVerifier.vy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aicommons.commit import MerkleTree
from aicommons.commit.merkle import tree_depth
from aicommons.market import steps
from aicommons.market.errors import DisputeError
from aicommons.market.graph import GraphCommitment, LayerSpec, graph_commitment
from aicommons.market.rows import inner_node, prove_rows
from aicommons.runtime import ModelPackage, Trace, tensor_rows


@dataclass(frozen=True)
class InputRowsArg:
    """OneStepVerifier.InputRows (step_rows.InputRows for ops 8-19): rows of one input value,
    proven against the trace root."""

    root: bytes
    trace_siblings: tuple[bytes, ...]
    first: int
    data: bytes
    siblings: tuple[bytes, ...]

    def as_abi(self) -> tuple[Any, ...]:
        return (self.root, list(self.trace_siblings), self.first, self.data, list(self.siblings))


@dataclass(frozen=True)
class TensorRowsArg:
    """OneStepVerifier.TensorRows: rows of one weight tensor, proven against the weights root."""

    root: bytes
    weights_siblings: tuple[bytes, ...]
    first: int
    data: bytes
    siblings: tuple[bytes, ...]

    def as_abi(self) -> tuple[Any, ...]:
        return (self.root, list(self.weights_siblings), self.first, self.data, list(self.siblings))


@dataclass(frozen=True)
class OneStepArgs:
    """Everything `one_step` needs for element `element` of row `row` of layer `layer`."""

    layer: int
    row: int
    element: int
    spec: LayerSpec
    inputs: tuple[InputRowsArg, ...]
    tensors: tuple[TensorRowsArg, ...]
    value: int
    """The element's value in this party's trace (the true value for an honest party)."""


def element_at(row: bytes, element: int, width: int) -> int:
    """Element `element` of a committed row: big-endian two's complement of `width` bytes."""
    chunk = row[element * width : (element + 1) * width]
    if len(chunk) != width:
        raise DisputeError(f"element {element} is outside a {len(row)}-byte row")
    return int.from_bytes(chunk, "big", signed=True)


def _width(spec: LayerSpec, j: int) -> int:
    """Element width of input j of a layer: from the v2 attrs header, else 1 (int8)."""
    rule = steps.rule_for_code(spec.op)
    return steps.input_layout(spec, rule, j).width


class TraceCommitments:
    """One sample's committed trace: rows and roots of every value, and the trace tree."""

    def __init__(
        self,
        package: ModelPackage,
        values: Sequence[np.ndarray],
        graph: GraphCommitment | None = None,
    ) -> None:
        if len(values) != len(package.layers) + 1:
            raise DisputeError(
                f"a trace of {len(values)} values does not fit {len(package.layers)} layers"
            )
        self.package = package
        self.graph = graph if graph is not None else graph_commitment(package)
        self.rows: list[list[bytes]] = [tensor_rows(np.asarray(value)) for value in values]
        self._trace = MerkleTree.from_leaves([self._root_of(rows) for rows in self.rows])
        self.layer_roots: list[bytes] = [self._root_of(rows) for rows in self.rows]
        self.trace_root: bytes = self._trace.root
        names = sorted(package.tensors)
        self._tensor_names = names
        self._tensor_rows = {name: tensor_rows(package.tensors[name]) for name in names}
        self._weights = MerkleTree.from_leaves([self._root_of(self._tensor_rows[n]) for n in names])

    @classmethod
    def from_trace(
        cls,
        package: ModelPackage,
        trace: Trace,
        sample: int = 0,
        graph: GraphCommitment | None = None,
    ) -> TraceCommitments:
        return cls(package, trace.sample_values(sample), graph)

    @staticmethod
    def _root_of(rows: Sequence[bytes]) -> bytes:
        return MerkleTree.from_leaves(rows).root

    # -- moves 1-5 -------------------------------------------------------------------------

    def trace_proof(self, leaf: int) -> list[bytes]:
        """Siblings of trace leaf `leaf` (0 = input, i = layer i) under the trace root."""
        return list(self._trace.prove(leaf).siblings)

    def first_difference(self, their_roots: Sequence[bytes]) -> int:
        """The first layer whose root differs from ours (the layer an honest challenger picks)."""
        if len(their_roots) != len(self.layer_roots):
            raise DisputeError(f"{len(their_roots)} layer roots for {len(self.layer_roots)} values")
        if their_roots[0] != self.layer_roots[0]:
            raise DisputeError("the input roots differ: this is not the same request")
        for leaf in range(1, len(self.layer_roots)):
            if their_roots[leaf] != self.layer_roots[leaf]:
                return leaf
        raise DisputeError("the traces agree on every layer")

    def depth(self, layer: int) -> int:
        """Height of layer `layer`'s row tree: ceil(log2 rows)."""
        return tree_depth(len(self.rows[layer]))

    def node(self, layer: int, level: int, index: int) -> bytes:
        """Node `index` at `level` (0 = leaf hashes) of layer `layer`'s padded row tree."""
        return inner_node(self.rows[layer], level, index)

    def children(self, layer: int, level: int, index: int) -> tuple[bytes, bytes]:
        """The two children (at level - 1) of node (level, index): what `reveal_children` sends."""
        if level < 1:
            raise DisputeError("a leaf has no children")
        return self.node(layer, level - 1, 2 * index), self.node(layer, level - 1, 2 * index + 1)

    def leaf_rows(self, layer: int, level: int, index: int) -> list[bytes]:
        """What `reveal_rows` sends for node (level, index), level 1 or (one-row tree) 0."""
        rows = self.rows[layer]
        if level == 0:
            return [rows[index]]
        if level != 1:
            raise DisputeError(f"rows are revealed at level 1 or 0, not {level}")
        return [rows[i] for i in (2 * index, 2 * index + 1) if i < len(rows)]

    def pick(self, layer: int, level: int, index: int, left: bytes, right: bytes) -> bool:
        """True to pick the right child: the first of (left, right) that differs from ours."""
        mine_left, mine_right = self.children(layer, level, index)
        if left != mine_left:
            return False
        if right != mine_right:
            return True
        raise DisputeError("both revealed children equal ours")

    def differing_element(self, layer: int, row: int, their_row: bytes) -> int:
        """The first element of row `row` where their revealed row differs from ours."""
        width = self.graph.specs[layer - 1].out_bytes
        mine = self.rows[layer][row]
        if len(their_row) != len(mine):
            raise DisputeError("the revealed row has the wrong length")
        for element in range(len(mine) // width):
            if element_at(their_row, element, width) != element_at(mine, element, width):
                return element
        raise DisputeError("the revealed row equals ours")

    # -- move 6: the one-step ------------------------------------------------------------------

    def _input_arg(self, leaf: int, first: int, count: int, trace: MerkleTree) -> InputRowsArg:
        rows = self.rows[leaf]
        return InputRowsArg(
            root=self.layer_roots[leaf],
            trace_siblings=tuple(trace.prove(leaf).siblings),
            first=first,
            data=b"".join(rows[first : first + count]),
            siblings=tuple(prove_rows(rows, first, count)),
        )

    def _tensor_arg(self, index: int, first: int, count: int) -> TensorRowsArg:
        rows = self._tensor_rows[self._tensor_names[index]]
        return TensorRowsArg(
            root=self._root_of(rows),
            weights_siblings=tuple(self._weights.prove(index).siblings),
            first=first,
            data=b"".join(rows[first : first + count]),
            siblings=tuple(prove_rows(rows, first, count)),
        )

    def one_step(
        self, layer: int, row: int, element: int, *, trace_roots: Sequence[bytes] | None = None
    ) -> OneStepArgs:
        """The one-step arguments for (layer, row, element), as OneStepVerifier reads them.

        The input roots are proven against the trace tree over `trace_roots` — the disputed
        trace, i.e. the provider's revealed roots (a challenger agrees with them up to the
        disputed layer, so its own input rows open under them) — or against our own trace.
        """
        if not 1 <= layer < len(self.rows):
            raise DisputeError(f"no layer {layer}")
        trace = self._trace
        if trace_roots is not None:
            if len(trace_roots) != len(self.rows):
                raise DisputeError(f"{len(trace_roots)} trace roots for {len(self.rows)} values")
            for leaf in self.graph.specs[layer - 1].inputs:
                if trace_roots[leaf] != self.layer_roots[leaf]:
                    raise DisputeError(f"layer {layer}'s input {leaf} differs from ours")
            trace = MerkleTree.from_leaves(list(trace_roots))
        spec = self.graph.specs[layer - 1]
        out_row_length = spec.out_row_bytes // spec.out_bytes
        if not (0 <= row < spec.out_rows and 0 <= element < out_row_length):
            raise DisputeError(f"element ({row}, {element}) is outside layer {layer}")

        def value(j: int, flat: int) -> int:
            """Value `flat` of input j in this trace (the provider's, up to the layer)."""
            rows = self.rows[spec.inputs[j]]
            width = _width(spec, j)
            length = len(rows[0]) // width
            return element_at(rows[flat // length], flat % length, width)

        needed = steps.rule_for_code(spec.op).rows(spec, row, element, value)
        inputs = [
            self._input_arg(leaf, first, count, trace)
            for leaf, (first, count) in zip(spec.inputs, needed.inputs, strict=True)
        ]
        tensors = [
            self._tensor_arg(index, first, count)
            for index, (first, count) in zip(spec.tensors, needed.tensors, strict=True)
        ]
        value = element_at(self.rows[layer][row], element, spec.out_bytes)
        return OneStepArgs(layer, row, element, spec, tuple(inputs), tuple(tensors), value)
