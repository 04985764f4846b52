"""The compute market's pages from indexed events: requests and their status, providers' stake
and earnings, and each dispute as a round-by-round timeline (challenge, reveals and picks, the
one-step verdict or a timeout).

Pure functions of `Event` lists and the indexed head's time: no chain or index access, so each
is tested on events alone. Event and argument names are those of ComputeMarket.vy,
DisputeGame.vy and RedundantMode.vy, declared in `explorer.schema.PAGE_EVENTS`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from aicommons.explorer.schema import DISPUTE_REASONS
from aicommons.explorer.store import Event
from aicommons.market.records import mode_name

Format = Callable[[int], str]

PROVIDER_MOVES = ("Challenged", "LayerPicked", "ChildPicked")
"""After these events the provider moves next (reveal roots, children or rows)."""
CHALLENGER_MOVES = ("RootsRevealed", "ChildrenRevealed", "RowsRevealed")
"""After these the challenger moves next (pick a layer, a child, or run the one-step)."""
DISPUTE_END = ("DisputeResolved", "DisputeCancelled")
PROVIDER_EVENTS = (
    "Staked",
    "UnstakeStarted",
    "StakeWithdrawn",
    "Slashed",
    "ResultFinalised",
    "OfferSet",
)
"""ComputeMarket events that change a provider's row on the market page."""


def _addr(value: Any) -> str:
    return str(value or "").lower()


def _move_text(event: Event) -> tuple[str, str, str]:
    """(kind, who moved, what it did) of one dispute event."""
    args = event.args
    name = event.event
    if name == "Challenged":
        return (
            "challenge",
            "challenger",
            f"disputes request {args['request_id']}'s result in batch {args['batch_id']}",
        )
    if name == "RootsRevealed":
        layers = max(len(str(args["layer_roots"]).removeprefix("0x")) // 64 - 1, 0)
        return "reveal", "provider", f"opens its trace root into {layers} layer roots + the input"
    if name == "LayerPicked":
        return "pick", "challenger", f"disputes layer {args['layer']} ({args['rows']} rows)"
    if name == "ChildrenRevealed":
        return (
            "reveal",
            "provider",
            f"reveals both children of node {args['index']} at level {args['level']}",
        )
    if name == "ChildPicked":
        return "pick", "challenger", f"descends to node {args['index']} at level {args['level']}"
    if name == "RowsRevealed":
        return (
            "reveal",
            "provider",
            f"reveals {len(args['rows'])} leaf row(s) under node {args['index']}",
        )
    if name == "DisputeCancelled":
        return "cancelled", "", "cancelled: another dispute already overturned the request"
    raise KeyError(name)


def dispute_view(
    events: Sequence[Event], *, now: int | None, consequences: Sequence[Event] = ()
) -> dict[str, Any]:
    """A dispute's timeline, round by round. A round is one provider reveal and the challenger's
    answer; the verdict says whether the one-step recomputation or a timeout decided it. While
    the game is open, the side to move and its deadline are shown, and a deadline that passed
    at the indexed head (`now`) shows as a timeout anyone can claim. `consequences` are the
    market's events in the verdict's transaction (the slash and its payout)."""
    if not events or events[0].event != "Challenged":
        raise ValueError("a dispute's events start with Challenged")
    opened = events[0].args
    parties = {"challenger": _addr(opened["challenger"]), "provider": _addr(opened["provider"])}
    steps: list[dict[str, Any]] = []
    round_number = 0
    to_move, deadline = "provider", int(opened["deadline"])
    outcome: dict[str, Any] | None = None
    for event in events:
        row = {
            "event": event.event,
            "contract": event.contract,
            "block_number": event.block_number,
            "tx_hash": event.tx_hash,
            "timestamp": event.timestamp,
        }
        if event.event == "DisputeResolved":
            args = event.args
            winner = _addr(args["winner"])
            side = next((s for s, a in parties.items() if a == winner), "")
            reason = DISPUTE_REASONS.get(int(args["reason"]), str(args["reason"]))
            if reason == "one-step":
                what = (
                    f"one-step recomputation of layer {args['layer']}, row {args['row']}, "
                    f"element {args['element']}: committed {args['committed']}, "
                    f"correct {args['correct']}"
                )
            elif reason == "timeout":
                loser = "provider" if side == "challenger" else "challenger"
                what = f"the {loser} missed its deadline"
            else:
                what = f"layer {args['layer']} cannot be checked by the one-step verifier"
            outcome = {"winner": winner, "side": side, "reason": reason}
            steps.append(
                {
                    **row,
                    "round": round_number,
                    "kind": "verdict",
                    "actor": "",
                    "text": f"{what}; the {side or winner} wins",
                    "reason": reason,
                }
            )
            to_move = ""
            continue
        kind, actor, text = _move_text(event)
        if event.event in CHALLENGER_MOVES:
            round_number += 1
        if event.event == "DisputeCancelled":
            outcome = {"winner": "", "side": "", "reason": "cancelled"}
            to_move = ""
        else:
            deadline = int(event.args["deadline"])
            to_move = "provider" if event.event in PROVIDER_MOVES else "challenger"
        steps.append(
            {
                **row,
                "round": round_number,
                "kind": kind,
                "actor": actor,
                "text": text,
                "next": to_move,
                "deadline": deadline if to_move else None,
            }
        )
    overdue = bool(to_move) and now is not None and now > deadline
    if outcome is not None:
        state = "cancelled" if outcome["reason"] == "cancelled" else f"{outcome['side']} won"
    elif overdue:
        state = f"{to_move} timed out"
    else:
        state = f"open: {to_move} to move"
    return {
        "dispute_id": str(opened["dispute_id"]),
        "request_id": str(opened["request_id"]),
        "batch_id": str(opened["batch_id"]),
        "challenger": parties["challenger"],
        "provider": parties["provider"],
        "bond": str(opened["bond"]),
        "rounds": round_number,
        "steps": steps,
        "state": state,
        "outcome": outcome,
        "to_move": to_move or None,
        "deadline": deadline if to_move else None,
        "timed_out": overdue,
        "consequences": [c.to_json() for c in consequences],
    }


def dispute_summary(events: Sequence[Event], *, now: int | None) -> dict[str, Any]:
    """One row of the market page's dispute table."""
    view = dispute_view(events, now=now)
    return {
        key: view[key]
        for key in ("dispute_id", "request_id", "challenger", "provider", "rounds", "state")
    } | {"reason": (view["outcome"] or {}).get("reason")}


def request_status(events: Sequence[Event], *, now: int | None) -> str:
    """A request's status from its events (as ComputeMarket's `request_status` names them)."""
    names = [e.event for e in events]
    if "ResultFinalised" in names:
        return "finalised"
    if "RequestExpired" in names:
        return "expired"
    resolved = [e for e in events if e.event == "DisputeResolved"]
    created = next(e for e in events if e.event == "RequestCreated")
    if any(
        _addr(e.args["winner"]) != _addr(_provider_of(events, created)) and e.args["winner"]
        for e in resolved
    ):
        return "overturned"
    open_disputes = {str(e.args["dispute_id"]) for e in events if e.event == "Challenged"} - {
        str(e.args["dispute_id"]) for e in events if e.event in DISPUTE_END
    }
    if open_disputes:
        return "disputed"
    if "BatchPosted" in names or "Revealed" in names:
        return "posted"
    if "Claimed" in names or "Committed" in names:
        return "claimed"
    deadline = int(created.args["deadline"])
    return "open" if now is None or now <= deadline else "open (past its deadline)"


def _provider_of(events: Sequence[Event], created: Event) -> str:
    claimed = next((e for e in events if e.event == "Claimed"), None)
    return str(claimed.args["provider"]) if claimed is not None else str(created.args["provider"])


def request_view(events: Sequence[Event], *, now: int | None, units: Format) -> dict[str, Any]:
    """A request: what was asked (model, mode, fee), its status, and every event naming it in
    chain order (market, dispute game and redundant mode), batch posts included."""
    created = next((e for e in events if e.event == "RequestCreated"), None)
    if created is None:
        raise ValueError("a request's events include RequestCreated")
    args = created.args
    final = next((e for e in events if e.event == "ResultFinalised"), None)
    return {
        "request_id": str(args["request_id"]),
        "requester": args["requester"],
        "model_id": str(args["model_id"]).lower(),
        "version_id": str(args["version_id"]).lower(),
        "mode": mode_name(int(args["mode"])),
        "redundancy": int(args["redundancy"]),
        "max_fee": str(args["max_fee"]),
        "max_fee_text": units(int(args["max_fee"])),
        "deadline": int(args["deadline"]),
        "status": request_status(events, now=now),
        "provider": None if final is None else final.args["provider"],
        "fee_paid": None if final is None else str(final.args["fee"]),
        "fee_paid_text": None if final is None else units(int(final.args["fee"])),
        "disputes": [str(e.args["dispute_id"]) for e in events if e.event == "Challenged"],
        "events": [e.to_json() for e in events],
    }


def providers_view(events: Sequence[Event], *, units: Format) -> list[dict[str, Any]]:
    """Each market provider's stake (staked − unstaked − slashed), results finalised, fees
    earned and amount slashed, from ComputeMarket's events."""
    rows: dict[str, dict[str, int]] = defaultdict(
        lambda: {"stake": 0, "unbonding": 0, "results": 0, "earned": 0, "slashed": 0, "offers": 0}
    )
    for event in events:
        args = event.args
        provider = args.get("provider")
        if event.event not in PROVIDER_EVENTS or int(str(provider or "0x0"), 16) == 0:
            continue  # a request naming no provider, or a redundant result paid to several
        row = rows[str(provider)]
        if event.event == "Staked":
            row["stake"] += int(args["amount"])
        elif event.event == "UnstakeStarted":
            row["stake"] -= int(args["amount"])
            row["unbonding"] += int(args["amount"])
        elif event.event == "StakeWithdrawn":
            row["unbonding"] -= int(args["amount"])
        elif event.event == "Slashed":
            row["slashed"] += int(args["amount"])
            row["stake"] -= int(args["amount"])
        elif event.event == "ResultFinalised":
            row["results"] += 1
            row["earned"] += int(args["fee"])
        elif event.event == "OfferSet":
            row["offers"] += 1 if args["active"] else 0
    return [
        {
            "provider": provider,
            **{key: value for key, value in row.items() if key in ("results", "offers")},
            **{key: str(max(row[key], 0)) for key in ("stake", "unbonding", "earned", "slashed")},
            **{
                f"{key}_text": units(max(row[key], 0))
                for key in ("stake", "unbonding", "earned", "slashed")
            },
        }
        for provider, row in sorted(rows.items())
    ]
