"""The dispute game's strategy: which move each side makes next, whatever carries it to the chain.

`provider_move` and `challenger_move` read the game's state (as `DisputeGame.disputes` returns
it, plus what the other side revealed in events) and the mover's own `TraceCommitments`, and
return the next `Move` — a DisputeGame function name and its arguments — or None when it is not
that side's turn. The same moves are sent by titanoboa in tests and the gas bench, and by web3 in
the provider and watcher daemons. Pure: no chain, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aicommons.commit import MerkleTree
from aicommons.market.dispute import TraceCommitments
from aicommons.market.errors import DisputeError

PHASE_NAMES = {
    1: "roots",
    2: "layer",
    4: "reveal",
    8: "pick",
    16: "step",
    32: "challenger_won",
    64: "provider_won",
    128: "cancelled",
}
"""DisputeGame's `Phase` flag values."""
PROVIDER_PHASES = ("roots", "reveal")
CHALLENGER_PHASES = ("layer", "pick", "step")
ACTIVE_PHASES = PROVIDER_PHASES + CHALLENGER_PHASES


@dataclass(frozen=True)
class DisputeState:
    """DisputeGame.Dispute, decoded by field name."""

    dispute_id: int
    request_id: int
    challenger: str
    provider: str
    bond: int
    trace_root: bytes
    output_hash: bytes
    phase: str
    deadline: int
    layer: int
    spec_hash: bytes
    rows: int
    row_bytes: int
    out_bytes: int
    level: int
    index: int
    node: bytes
    at_root: bool
    left: bytes
    right: bytes

    @classmethod
    def from_abi(cls, dispute_id: int, values: Sequence[Any]) -> DisputeState:
        (
            request_id,
            challenger,
            provider,
            bond,
            trace_root,
            output_hash,
            phase,
            deadline,
            layer,
            spec_hash,
            rows,
            row_bytes,
            out_bytes,
            level,
            index,
            node,
            at_root,
            left,
            right,
        ) = values
        return cls(
            dispute_id=dispute_id,
            request_id=int(request_id),
            challenger=str(challenger),
            provider=str(provider),
            bond=int(bond),
            trace_root=bytes(trace_root),
            output_hash=bytes(output_hash),
            phase=PHASE_NAMES.get(int(phase), "none"),
            deadline=int(deadline),
            layer=int(layer),
            spec_hash=bytes(spec_hash),
            rows=int(rows),
            row_bytes=int(row_bytes),
            out_bytes=int(out_bytes),
            level=int(level),
            index=int(index),
            node=bytes(node),
            at_root=bool(at_root),
            left=bytes(left),
            right=bytes(right),
        )

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    @property
    def provider_to_move(self) -> bool:
        return self.phase in PROVIDER_PHASES


@dataclass(frozen=True)
class Move:
    """One DisputeGame call: `function(*args)`."""

    function: str
    args: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.function} (dispute {self.args[0]})"


def provider_move(state: DisputeState, mine: TraceCommitments, output: bytes) -> Move | None:
    """The provider's next move from its own trace, or None when it is not its turn.

    `output` is the posted output bytes (they must open under the output layer's root).
    """
    if state.phase == "roots":
        return Move("reveal_roots", (state.dispute_id, b"".join(mine.layer_roots), bytes(output)))
    if state.phase != "reveal":
        return None
    if state.level >= 2:
        left, right = mine.children(state.layer, state.level, state.index)
        return Move("reveal_children", (state.dispute_id, left, right))
    rows = mine.leaf_rows(state.layer, state.level, state.index)
    return Move("reveal_rows", (state.dispute_id, rows))


def challenger_move(
    state: DisputeState,
    mine: TraceCommitments,
    revealed_roots: Sequence[bytes] | None = None,
    revealed_rows: Sequence[bytes] | None = None,
) -> Move | None:
    """An honest challenger's next move, or None when it is not its turn.

    `revealed_roots` are the provider's layer roots (the RootsRevealed event), needed to pick
    the layer; `revealed_rows` the rows of the RowsRevealed event, needed for the one-step.
    """
    if state.phase == "layer":
        if revealed_roots is None:
            raise DisputeError("picking a layer needs the provider's revealed roots")
        roots = list(revealed_roots)
        layer = mine.first_difference(roots)
        proof = MerkleTree.from_leaves(roots).prove(layer)
        spec = mine.graph.specs[layer - 1]
        return Move(
            "pick_layer",
            (
                state.dispute_id,
                layer,
                roots[layer],
                list(proof.siblings),
                spec.as_abi(),
                mine.graph.proof(layer),
            ),
        )
    if state.phase == "pick":
        right = mine.pick(state.layer, state.level, state.index, state.left, state.right)
        return Move("pick_child", (state.dispute_id, right))
    if state.phase == "step":
        if revealed_rows is None:
            raise DisputeError("the one-step needs the provider's revealed rows")
        first = 2 * state.index if state.level == 1 else state.index
        for offset, their_row in enumerate(revealed_rows):
            row = first + offset
            if their_row != mine.rows[state.layer][row]:
                element = mine.differing_element(state.layer, row, their_row)
                return one_step_move(state, mine, row, element, their_row, revealed_roots)
        raise DisputeError("the revealed rows equal ours")
    return None


def one_step_move(
    state: DisputeState,
    mine: TraceCommitments,
    row: int,
    element: int,
    their_row: bytes,
    revealed_roots: Sequence[bytes] | None,
) -> Move:
    """The `one_step` call for element `element` of revealed row `row`, arguments from `mine`
    with the input roots proven under the provider's revealed roots."""
    args = mine.one_step(state.layer, row, element, trace_roots=revealed_roots)
    right = state.level == 1 and row % 2 == 1
    return Move(
        "one_step",
        (
            state.dispute_id,
            right,
            bytes(their_row),
            element,
            args.spec.as_abi(),
            [arg.as_abi() for arg in args.inputs],
            [arg.as_abi() for arg in args.tensors],
        ),
    )
