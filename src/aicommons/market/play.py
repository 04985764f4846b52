"""Playing one side of a dispute through `client.market`: the next move comes from the game's
strategy (`aicommons.market.game`: `provider_move`, `challenger_move`), this module sends it, and
claims the win by `timeout` once the other side's deadline has passed.

Never decides a move itself; never moves after its own deadline (the other side settles that).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aicommons.market.dispute import TraceCommitments
from aicommons.market.game import DisputeState, Move, challenger_move, provider_move

if TYPE_CHECKING:
    from aicommons.sdk.client import Client


@dataclass(frozen=True)
class Turn:
    """What one side did in a dispute this poll (for the daemon's one-line log)."""

    dispute_id: int
    action: str
    tx_hash: str = ""


def chain_now(client: Client) -> int:
    """The time the next block will (at least) carry: the later of the head's and the clock's."""
    head = int(client.w3.eth.get_block("latest")["timestamp"])
    return max(head, int(time.time()))


def winner(state: DisputeState) -> str | None:
    """The winning side's address once the dispute is decided, else None."""
    if state.phase == "challenger_won":
        return state.challenger
    if state.phase == "provider_won":
        return state.provider
    return None


def _send(client: Client, state: DisputeState, move: Move | None) -> Turn | None:
    if move is None:
        return None
    return Turn(state.dispute_id, move.function, client.market.send_move(move))


def _their_timeout(client: Client, state: DisputeState, now: int) -> Turn | None:
    if now <= state.deadline:
        return None
    return Turn(state.dispute_id, "timeout", client.market.timeout(state.dispute_id))


def provider_turn(
    client: Client, state: DisputeState, mine: TraceCommitments, *, output: bytes, now: int
) -> Turn | None:
    """The provider's action this poll: its move, a timeout of a silent challenger, or None."""
    if not state.active:
        return None
    if not state.provider_to_move:
        return _their_timeout(client, state, now)
    if now > state.deadline:
        return Turn(state.dispute_id, "missed")
    return _send(client, state, provider_move(state, mine, output))


def challenger_turn(
    client: Client,
    state: DisputeState,
    mine: TraceCommitments,
    *,
    revealed_roots: Sequence[bytes] | None,
    revealed_rows: Sequence[bytes] | None,
    now: int,
) -> Turn | None:
    """The challenger's action this poll: its move (from its own trace and what the provider
    revealed), a timeout of a silent provider, or None."""
    if not state.active:
        return None
    if state.provider_to_move:
        return _their_timeout(client, state, now)
    if now > state.deadline:
        return Turn(state.dispute_id, "missed")
    move = challenger_move(state, mine, revealed_roots, revealed_rows)
    return _send(client, state, move)


def unpack_roots(packed: bytes) -> list[bytes]:
    """Layer roots as RootsRevealed carries them (32 bytes each, the input's first)."""
    return [packed[i : i + 32] for i in range(0, len(packed), 32)]


def output_of(mine: TraceCommitments) -> bytes:
    """The output bytes this trace commits to (every row of the graph's output leaf)."""
    return b"".join(mine.rows[mine.graph.header.output_leaf])
