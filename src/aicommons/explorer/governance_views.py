"""Governance pages from indexed events: each proposal's tally and timeline (created, votes,
extended, queued in the timelock, executed or canceled), the treasury's grants, and each
funding round's contributions with the match projected if it closed now.

Pure functions of `Event` lists, the indexed head's time and what the caller looked up (a
proposal's live state from the Governor, model names). The projection is
`aicommons.governance.qf.round_matches`, the reference FundingRound.vy implements: the formula
lives there only. Event and argument names are Governor.vy's, Timelock.vy's, Treasury.vy's and
FundingRound.vy's, declared in `explorer.schema.PAGE_EVENTS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aicommons.explorer.schema import SUPPORT_NAMES
from aicommons.explorer.store import Event
from aicommons.governance.qf import Contribution, round_matches

Format = Callable[[int], str]
DescribeCall = Callable[[str, bytes], str]
"""(target address, calldata) → "Contract.function(args)" for a proposal's actions."""

PROPOSAL_LIFECYCLE = (
    "ProposalCreated",
    "VoteCast",
    "ProposalExtended",
    "ProposalQueued",
    "ProposalExecuted",
    "ProposalCanceled",
)
TIMELOCK_STEPS = {"ProposalQueued", "ProposalExecuted", "ProposalCanceled"}
"""Governor events whose transaction also moves the proposal's timelock operation."""


def _hex(value: Any) -> bytes:
    return bytes.fromhex(str(value).removeprefix("0x"))


def tally(votes: Sequence[Event]) -> dict[str, str]:
    """Vote weight for, against and abstaining, in base units."""
    totals = dict.fromkeys(SUPPORT_NAMES.values(), 0)
    for vote in votes:
        name = SUPPORT_NAMES.get(int(vote.args["support"]), str(vote.args["support"]))
        totals[name] = totals.get(name, 0) + int(vote.args["weight"])
    return {name: str(weight) for name, weight in totals.items()}


def _step(event: Event, kind: str, text: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": event.event,
        "contract": event.contract,
        "kind": kind,
        "text": text,
        "block_number": event.block_number,
        "tx_hash": event.tx_hash,
        "timestamp": event.timestamp,
        **extra,
    }


def proposal_view(
    events: Sequence[Event],
    *,
    state: str,
    same_tx: Mapping[str, Sequence[Event]],
    describe: DescribeCall,
    units: Format,
    when: Callable[[int], str] = str,
) -> dict[str, Any]:
    """A proposal: who proposed what, its live `state` (from the Governor), the tally and a
    timeline. `events` are the Governor's events naming the proposal, in chain order;
    `same_tx` maps a queue/execute/cancel transaction to the other contracts' events in it
    (the timelock's CallScheduled/CallExecuted/Cancelled, and what the actions did)."""
    created = next((e for e in events if e.event == "ProposalCreated"), None)
    if created is None:
        raise ValueError("a proposal's events include ProposalCreated")
    args = created.args
    actions = [
        {
            "target": target,
            "value": str(value),
            "calldata": calldata,
            "call": describe(str(target), _hex(calldata)),
        }
        for target, value, calldata in zip(
            args["targets"], args["values"], args["calldatas"], strict=True
        )
    ]
    votes = [e for e in events if e.event == "VoteCast"]
    steps = []
    for event in events:
        a = event.args
        if event.event == "ProposalCreated":
            steps.append(
                _step(
                    event,
                    "created",
                    f"proposed by {a['proposer']}: {len(actions)} action(s); voting from "
                    f"{when(int(a['voteStart']))} to {when(int(a['voteEnd']))}",
                )
            )
        elif event.event == "VoteCast":
            support = SUPPORT_NAMES.get(int(a["support"]), str(a["support"]))
            reason = f" — {a['reason']}" if a["reason"] else ""
            steps.append(
                _step(
                    event,
                    "vote",
                    f"{a['voter']} votes {support} with {units(int(a['weight']))} AIC{reason}",
                    support=support,
                    voter=a["voter"],
                )
            )
        elif event.event == "ProposalExtended":
            steps.append(
                _step(
                    event,
                    "extended",
                    f"quorum reached late: voting extended to {when(int(a['extendedDeadline']))}",
                )
            )
        elif event.event == "ProposalQueued":
            steps.append(
                _step(
                    event,
                    "queued",
                    f"queued in the timelock; executable from {when(int(a['etaSeconds']))}",
                )
            )
        elif event.event == "ProposalExecuted":
            steps.append(_step(event, "executed", "executed by the timelock"))
        elif event.event == "ProposalCanceled":
            steps.append(_step(event, "canceled", "canceled by its proposer"))
        else:
            continue
        if event.event in TIMELOCK_STEPS:
            steps[-1]["effects"] = [e.to_json() for e in same_tx.get(event.tx_hash, ())]
    return {
        "proposal_id": str(args["proposalId"]),
        "proposer": args["proposer"],
        "description": args["description"],
        "state": state,
        "vote_start": int(args["voteStart"]),
        "vote_end": max(
            [int(args["voteEnd"])]
            + [int(e.args["extendedDeadline"]) for e in events if e.event == "ProposalExtended"]
        ),
        "eta": next(
            (int(e.args["etaSeconds"]) for e in events if e.event == "ProposalQueued"), None
        ),
        "actions": actions,
        "votes": tally(votes),
        "voters": len({str(v.args["voter"]).lower() for v in votes}),
        "steps": steps,
    }


def round_state(opened: Event, finalised: bool, now: int | None) -> str:
    """scheduled, open, ended or finalised (the states `aic fund show` prints)."""
    if finalised:
        return "finalised"
    if now is None:
        return "open"
    if now >= int(opened.args["end"]):
        return "ended"
    return "open" if now >= int(opened.args["start"]) else "scheduled"


def round_view(
    events: Sequence[Event],
    *,
    now: int | None,
    names: Mapping[str, str],
    units: Format,
) -> dict[str, Any]:
    """A funding round: its terms, every contribution, and each model's figures — what the
    round would match if it closed now (`qf.round_matches` over the indexed contributions with
    the round's pool and cap) and, once finalised, what it matched and what was claimed."""
    opened = next((e for e in events if e.event == "RoundOpened"), None)
    if opened is None:
        raise ValueError("a round's events include RoundOpened")
    args = opened.args
    pool, cap_bps = int(args["pool"]), int(args["cap_bps"])
    contributed = [e for e in events if e.event == "Contributed"]
    finalised = next((e for e in events if e.event == "RoundFinalised"), None)
    claimed: dict[str, int] = {}
    for event in events:
        if event.event == "Claimed":
            key = str(event.args["model_id"]).lower()
            claimed[key] = claimed.get(key, 0) + int(event.args["amount"])
    results = round_matches(
        pool,
        [
            Contribution(
                contributor=str(e.args["contributor"]).lower(),
                model=str(e.args["model_id"]).lower(),
                amount=int(e.args["amount"]),
                eligible=bool(e.args["eligible"]),
            )
            for e in contributed
        ],
        cap_bps,
    )
    projects = [
        {
            "model_id": str(result.model),
            "model": names.get(str(result.model)),
            "total": str(result.total),
            "total_text": units(result.total),
            "contributors": result.contributors,
            "sqrt_sum": str(result.sqrt_sum),
            "raw": str(result.raw),
            "projected_match": str(result.match),
            "projected_match_text": units(result.match),
            "claimed": str(claimed.get(str(result.model), 0)),
            "claimed_text": units(claimed.get(str(result.model), 0)),
        }
        for result in results
    ]
    total = sum(int(e.args["amount"]) for e in contributed)
    return {
        "round_id": str(args["round_id"]),
        "state": round_state(opened, finalised is not None, now),
        "funder": args["funder"],
        "pool": str(pool),
        "pool_text": units(pool),
        "start": int(args["start"]),
        "end": int(args["end"]),
        "cap_bps": cap_bps,
        "eligibility": args["eligibility"],
        "contributed": str(total),
        "contributed_text": units(total),
        "contributions": [
            {
                "contributor": e.args["contributor"],
                "model_id": str(e.args["model_id"]).lower(),
                "model": names.get(str(e.args["model_id"]).lower()),
                "amount": str(e.args["amount"]),
                "amount_text": units(int(e.args["amount"])),
                "eligible": bool(e.args["eligible"]),
                "block_number": e.block_number,
                "tx_hash": e.tx_hash,
            }
            for e in contributed
        ],
        "projects": projects,
        "projected_total": str(sum(int(p["projected_match"]) for p in projects)),
        "matched": None if finalised is None else str(finalised.args["matched"]),
        "matched_text": None if finalised is None else units(int(finalised.args["matched"])),
        "returned": None if finalised is None else str(finalised.args["returned"]),
        "events": [e.to_json() for e in events],
    }


def timelock_view(events: Sequence[Event]) -> list[dict[str, Any]]:
    """The timelock's operations, newest first: calls scheduled under one id, and whether the
    operation was executed, cancelled or is still waiting."""
    operations: dict[str, dict[str, Any]] = {}
    for event in events:
        args = event.args
        key = str(args["id"]).lower()
        if event.event == "CallScheduled":
            operation = operations.setdefault(
                key,
                {
                    "id": key,
                    "calls": 0,
                    "delay": int(args["delay"]),
                    "state": "waiting",
                    "scheduled_block": event.block_number,
                    "scheduled_tx": event.tx_hash,
                },
            )
            operation["calls"] += 1
        elif event.event == "CallExecuted" and key in operations:
            operations[key]["state"] = "executed"
        elif event.event == "Cancelled" and key in operations:
            operations[key]["state"] = "cancelled"
    return sorted(operations.values(), key=lambda o: o["scheduled_block"], reverse=True)


def treasury_view(events: Sequence[Event], *, units: Format) -> dict[str, Any]:
    """What the treasury collected (by source), granted and put into funding rounds."""
    collected: dict[str, int] = {}
    grants, rounds = [], []
    for event in events:
        args = event.args
        if event.event == "Collected":
            key = str(args["source"])
            collected[key] = collected.get(key, 0) + int(args["amount"])
        elif event.event == "Granted":
            grants.append(
                {
                    "recipient": args["recipient"],
                    "amount": str(args["amount"]),
                    "amount_text": units(int(args["amount"])),
                    "memo": args["memo"],
                    "block_number": event.block_number,
                    "tx_hash": event.tx_hash,
                }
            )
        elif event.event == "RoundFunded":
            rounds.append(
                {
                    "round_id": str(args["round_id"]),
                    "pool": str(args["pool"]),
                    "pool_text": units(int(args["pool"])),
                }
            )
    return {
        "collected": [
            {"source": source, "amount": str(amount), "amount_text": units(amount)}
            for source, amount in sorted(collected.items())
        ],
        "grants": grants,
        "rounds_funded": rounds,
    }
