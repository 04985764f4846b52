"""Quadratic funding (CLR) in exact integers: the reference FundingRound.vy implements.

`round_matches` takes every contribution as made (who, to which model, how much, eligible or
not) and computes each model's S_p, C_p, raw_p and match_p from scratch; the contract keeps
S_p and C_p incrementally. The formula is docs/governance.md "Quadratic funding". Pure: Python
ints only, no floats, no I/O.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from math import isqrt

from aicommons.governance.errors import FundingError

BPS = 10_000


@dataclass(frozen=True)
class Contribution:
    contributor: Hashable
    model: Hashable
    amount: int
    eligible: bool


@dataclass(frozen=True)
class ProjectResult:
    """One model's figures in a round: all money given, and the matched part's inputs."""

    model: Hashable
    total: int
    contributors: int
    sqrt_sum: int
    eligible_total: int
    raw: int
    match: int


def raw_match(sqrt_sum: int, eligible_total: int) -> int:
    """max(S_p^2 - C_p, 0): floor square roots can make S_p^2 smaller than C_p."""
    return max(sqrt_sum * sqrt_sum - eligible_total, 0)


def matches(pool: int, raws: Sequence[int], cap_bps: int) -> list[int]:
    """match_p for every raw_p: pool * raw_p // sum(raw), then caps redistributed.

    With cap_bps > 0 (cap = pool * cap_bps // 10000): while some uncapped model's share
    `remaining * raw_p // sum(uncapped raw)` exceeds the cap, every such model gets the cap
    and `remaining` (pool minus the caps given) is shared again among the others.
    """
    if pool < 0 or any(raw < 0 for raw in raws):
        raise FundingError("pool and raw matches must be non-negative")
    if not 0 <= cap_bps <= BPS:
        raise FundingError(f"cap {cap_bps} bps is outside 0..{BPS}")
    result = [0] * len(raws)
    capped = [False] * len(raws)
    cap = pool * cap_bps // BPS
    remaining = pool
    while True:
        uncapped = [index for index, done in enumerate(capped) if not done]
        shared = sum(raws[index] for index in uncapped)
        if shared == 0:
            return result
        shares = {index: remaining * raws[index] // shared for index in uncapped}
        over = [index for index, share in shares.items() if cap_bps and share > cap]
        if not over:
            for index, share in shares.items():
                result[index] = share
            return result
        for index in over:
            capped[index] = True
            result[index] = cap
        remaining -= cap * len(over)


def round_matches(
    pool: int, contributions: Iterable[Contribution], cap_bps: int = 0
) -> list[ProjectResult]:
    """Every model's result, in the order models first received a contribution."""
    totals: dict[Hashable, int] = {}
    given: dict[Hashable, dict[Hashable, int]] = {}
    eligible: dict[Hashable, dict[Hashable, int]] = {}
    for item in contributions:
        if item.amount <= 0:
            raise FundingError(f"contribution of {item.amount} is not positive")
        totals[item.model] = totals.get(item.model, 0) + item.amount
        people = given.setdefault(item.model, {})
        people[item.contributor] = people.get(item.contributor, 0) + item.amount
        counted = eligible.setdefault(item.model, {})
        if item.eligible:
            counted[item.contributor] = counted.get(item.contributor, 0) + item.amount
    models = list(totals)
    sqrt_sums = [sum(isqrt(t) for t in eligible[model].values()) for model in models]
    eligible_totals = [sum(eligible[model].values()) for model in models]
    raws = [raw_match(s, c) for s, c in zip(sqrt_sums, eligible_totals, strict=True)]
    paid = matches(pool, raws, cap_bps)
    return [
        ProjectResult(
            model=model,
            total=totals[model],
            contributors=len(given[model]),
            sqrt_sum=sqrt_sums[index],
            eligible_total=eligible_totals[index],
            raw=raws[index],
            match=paid[index],
        )
        for index, model in enumerate(models)
    ]
