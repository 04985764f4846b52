"""Playing the dispute game from one side: given where a dispute stands and the trace this side
committed to (or recomputed), choose and send the next move (docs/market.md "Moves").

The provider side reveals what its trace commits to; the challenger side picks the first
differing layer, then the differing child at every level, then the one-step on the first
differing element. Both sides call `timeout` once the other side's deadline has passed.
Decisions come from `TraceCommitments`; transactions go through `client.market` only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from aicommons.commit import MerkleTree
from aicommons.market.dispute import OneStepArgs, TraceCommitments
from aicommons.market.errors import DisputeError
from aicommons.market.records import DisputeState, MarketEvent

if TYPE_CHECKING:
    from aicommons.sdk.client import Client


@dataclass(frozen=True)
class Move:
    """A move just sent (for the daemon's one-line log)."""

    dispute_id: int
    name: str
    detail: str
    tx_hash: str


def _latest(events: list[MarketEvent], name: str) -> MarketEvent | None:
    chosen = [event for event in events if event.name == name]
    return chosen[-1] if chosen else None


def chain_now(client: Client) -> int:
    """The time the next block will (at least) carry: the later of the head's and the clock's."""
    import time

    head = int(client.w3.eth.get_block("latest")["timestamp"])
    return max(head, int(time.time()))


def timeout_due(state: DisputeState, now: int) -> bool:
    return state.winner is None and state.to_move is not None and now > state.deadline


def defend(
    client: Client, state: DisputeState, mine: TraceCommitments, *, output: bytes
) -> Move | None:
    """The provider's move in `state` (None when it is not the provider's turn)."""
    market = client.market
    if state.winner is not None or state.to_move != "provider":
        return None
    if state.phase == "roots":
        tx = market.reveal_roots(state.id, layer_roots=mine.layer_roots, output=output)
        return Move(state.id, "reveal_roots", f"{len(mine.layer_roots)} roots", tx)
    if state.phase == "children":
        left, right = mine.children(state.layer, state.level, state.index)
        tx = market.reveal_children(state.id, left=left, right=right)
        detail = f"layer {state.layer} level {state.level} node {state.index}"
        return Move(state.id, "reveal_children", detail, tx)
    if state.phase == "rows":
        rows = mine.leaf_rows(state.layer, state.level, state.index)
        tx = market.reveal_rows(state.id, rows=rows)
        return Move(state.id, "reveal_rows", f"layer {state.layer} node {state.index}", tx)
    return None


def challenge_move(
    client: Client, state: DisputeState, mine: TraceCommitments, events: list[MarketEvent]
) -> Move | None:
    """The challenger's move in `state`, from its own (honest) trace and what the provider
    revealed so far (`events` of this dispute)."""
    market = client.market
    if state.winner is not None or state.to_move != "challenger":
        return None
    if state.phase == "layer":
        revealed = _latest(events, "RootsRevealed")
        if revealed is None:
            return None
        theirs = _unpack_roots(revealed)
        layer = mine.first_difference(theirs)
        tree = MerkleTree.from_leaves(theirs)
        tx = market.pick_layer(
            state.id,
            layer=layer,
            layer_root=theirs[layer],
            root_siblings=list(tree.prove(layer).siblings),
            spec=mine.graph.specs[layer - 1],
            spec_siblings=mine.graph.proof(layer),
        )
        return Move(state.id, "pick_layer", f"layer {layer}", tx)
    if state.phase == "pick":
        revealed = _latest(events, "ChildrenRevealed")
        if revealed is None:
            return None
        left, right = bytes(revealed.args["left"]), bytes(revealed.args["right"])
        go_right = mine.pick(state.layer, state.level, state.index, left, right)
        tx = market.pick_child(state.id, right=go_right)
        return Move(state.id, "pick_child", "right" if go_right else "left", tx)
    if state.phase == "step":
        revealed = _latest(events, "RowsRevealed")
        roots = _latest(events, "RootsRevealed")
        if revealed is None or roots is None:
            return None
        rows = [bytes(row) for row in revealed.args["rows"]]
        return _one_step(client, state, mine, rows, _unpack_roots(roots))
    return None


def _unpack_roots(event: MarketEvent) -> list[bytes]:
    """The provider's layer roots from its RootsRevealed event (32 bytes each, input first)."""
    packed = bytes(event.args["layer_roots"])
    return [packed[i : i + 32] for i in range(0, len(packed), 32)]


def _one_step(
    client: Client,
    state: DisputeState,
    mine: TraceCommitments,
    rows: list[bytes],
    their_roots: list[bytes],
) -> Move:
    """The one-step on the first revealed row that differs from ours, at its first differing
    element (an honest challenger always finds one: the rows fold to a differing node).

    The input rows are ours, which equal the provider's (the layer is the first that differs),
    but they are proven under the provider's trace root, so their trace proofs are built from
    the provider's revealed layer roots, not from our tree."""
    first_row = state.index * 2 if state.level == 1 else state.index
    for offset, row in enumerate(rows):
        index = first_row + offset
        if row == mine.rows[state.layer][index]:
            continue
        element = mine.differing_element(state.layer, index, row)
        args = _under_their_roots(mine.one_step(state.layer, index, element), their_roots)
        tx = client.market.one_step(state.id, right=offset == 1, row=row, args=args)
        return Move(state.id, "one_step", f"layer {state.layer} row {index} elem {element}", tx)
    raise DisputeError(f"dispute {state.id}: the revealed rows equal ours")


def _under_their_roots(args: OneStepArgs, their_roots: list[bytes]) -> OneStepArgs:
    """`args` with each input's root and trace proof taken from the provider's trace tree."""
    tree = MerkleTree.from_leaves(their_roots)
    inputs = []
    for leaf, arg in zip(args.spec.inputs, args.inputs, strict=True):
        inputs.append(
            replace(arg, root=their_roots[leaf], trace_siblings=tuple(tree.prove(leaf).siblings))
        )
    return replace(args, inputs=tuple(inputs))


def claim_timeout(client: Client, state: DisputeState, *, now: int) -> Move | None:
    """`timeout` when the side to move has missed its deadline."""
    if not timeout_due(state, now):
        return None
    tx = client.market.timeout(state.id)
    return Move(state.id, "timeout", f"{state.to_move} missed its move", tx)


def output_of(mine: TraceCommitments) -> bytes:
    """The output bytes this trace commits to (the graph header's output leaf, all rows)."""
    return b"".join(mine.rows[mine.graph.header.output_leaf])
