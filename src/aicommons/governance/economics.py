"""The economics of cheating: a seeded Monte Carlo of many epochs of honest and dishonest
compute and storage providers under the protocol's terms, next to the exact expectation.

Money is integer base units (10^-18 AIC) throughout; randomness decides only which requests
are disputed and which commitments are challenged. The terms (stakes, bonds, slash shares,
rewards) are inputs: `aicommons.sdk.governance.default_economics` reads them from where the
deployments take them. Pure: no chain, no I/O; numpy only for the random draws.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from aicommons.governance.errors import ParameterError

AIC = 10**18
BPS = 10_000


@dataclass(frozen=True)
class ComputeTerms:
    """The compute market's slashing terms (ComputeMarket `Params`, docs/market.md).

    claim_lock: stake locked per claimed request and slashed when a dispute shows its result
    wrong; winner_share_bps: the challenger's part of that slash (the rest: treasury).
    """

    claim_lock: int = 10 * AIC
    challenge_bond: int = 10 * AIC
    winner_share_bps: int = 5_000


@dataclass(frozen=True)
class StorageTerms:
    """The storage registry's terms (`set_terms`) and its reward (`set_reward`).

    epoch_reward: what a commitment on a listed blob earns for each epoch in which it answers a
    challenge validly, paid from the reward pool the treasury funds from the protocol share
    (docs/economics.md, "The storage reward").
    """

    stake_per_commitment: int
    challenge_bond: int
    slash_bps: int
    challenger_share_bps: int
    epoch_reward: int = AIC // 2


@dataclass(frozen=True)
class Workload:
    """What an epoch looks like for a provider; costs are what honest work costs it.

    watcher_coverage: probability that a wrong result is disputed within its window (the
    architecture has watchers re-execute every result, so 1 is the design point; the default
    is deliberately pessimistic). external_challenge_rate: probability that somebody else
    challenges a given storage commitment in an epoch. kept_fraction: the share of a blob a
    partial cheater keeps (a challenge lands on a random segment, so it passes with that
    probability). Honest storage providers challenge themselves once an epoch to earn the
    epoch reward (the bond comes back to them).
    """

    requests_per_epoch: int = 100
    price_per_request: int = AIC // 100
    compute_cost_per_request: int = AIC // 500
    dispute_gas_cost: int = AIC // 20
    watcher_coverage: Fraction = Fraction(1, 2)
    lazy_fraction: Fraction = Fraction(1, 10)
    storage_cost_per_epoch: int = AIC // 10
    answer_gas_cost: int = AIC // 100
    external_challenge_rate: Fraction = Fraction(1, 50)
    kept_fraction: Fraction = Fraction(9, 10)

    def check(self) -> Workload:
        for name in (
            "watcher_coverage",
            "lazy_fraction",
            "external_challenge_rate",
            "kept_fraction",
        ):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ParameterError(f"{name} {value} is not a probability")
        return self


@dataclass(frozen=True)
class StrategyResult:
    """One strategy's outcome: mean profit per epoch over the simulated epochs (base units,
    rounded down), its 95 % interval half-width, the exact expectation, and the expected gain
    over the honest strategy of the same role (negative: cheating does not pay)."""

    role: str
    strategy: str
    epochs: int
    mean_profit: int
    ci95: int
    expected_profit: int
    gain_over_honest: int
    slashes: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EconomicsReport:
    results: list[StrategyResult]
    compute: ComputeTerms
    storage: StorageTerms
    workload: Workload
    epochs: int
    seed: int
    break_even: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        workload = {
            k: (str(v) if isinstance(v, Fraction) else v) for k, v in asdict(self.workload).items()
        }
        return {
            "epochs": self.epochs,
            "seed": self.seed,
            "compute_terms": asdict(self.compute),
            "storage_terms": asdict(self.storage),
            "workload": workload,
            "break_even": self.break_even,
            "results": [r.to_json() for r in self.results],
        }

    @property
    def cheating_pays(self) -> bool:
        """Whether any dishonest strategy expects to earn more than honest work."""
        return any(r.gain_over_honest >= 0 for r in self.results if r.strategy != "honest")


# -- exact expectations (per epoch) ----------------------------------------------------------


def _compute_expectation(terms: ComputeTerms, load: Workload, lazy: Fraction) -> Fraction:
    """A provider that skips the work on a fraction `lazy` of its requests and posts a wrong
    result for them: each is disputed with probability w, and a disputed wrong result is lost
    (the honest watcher wins any dispute, docs/market.md): no price, the claim lock slashed,
    the dispute's gas spent. Undisputed ones are paid like honest ones, and cost nothing."""
    n, w = load.requests_per_epoch, load.watcher_coverage
    honest_part = (1 - lazy) * n * (load.price_per_request - load.compute_cost_per_request)
    caught_loss = terms.claim_lock + load.dispute_gas_cost
    lazy_part = lazy * n * ((1 - w) * load.price_per_request - w * caught_loss)
    return honest_part + lazy_part


def _storage_expectation(
    terms: StorageTerms, load: Workload, kept: Fraction, claims_reward: bool
) -> Fraction:
    """A provider keeping a fraction `kept` of a blob (1: honest) pays `kept` of the storage
    cost and faces others' challenges (probability h an epoch): a challenge lands on a random
    segment, so it passes with probability `kept`, and a failed one slashes. If `claims_reward`
    it challenges itself once an epoch for the epoch reward: challenges are commit-reveal and
    the challenger knows its secret, so once the reveal block is mined it knows the segment and
    reveals only if it holds it; otherwise it lets the challenge expire (the bond comes back to
    it as the provider) and loses only the gas. So the reward is earned with probability
    `kept`, and a self-challenge never slashes."""
    slash = terms.stake_per_commitment * terms.slash_bps // BPS
    h = load.external_challenge_rate
    own = Fraction(0)
    if claims_reward:
        own = kept * terms.epoch_reward - load.answer_gas_cost
    other = h * (kept * (terms.challenge_bond - load.answer_gas_cost) - (1 - kept) * slash)
    return own + other - kept * load.storage_cost_per_epoch


# -- Monte Carlo ------------------------------------------------------------------------------


def _summary(profits: list[int]) -> tuple[int, int]:
    count = len(profits)
    total = sum(profits)
    mean = Fraction(total, count)
    variance = sum((Fraction(p) - mean) ** 2 for p in profits) / max(count - 1, 1)
    # 1.96 standard errors; the square root is the only float, and only in the interval.
    half_width = int(1.96 * float(variance / count) ** 0.5)
    return total // count, half_width


def _simulate_compute(
    terms: ComputeTerms, load: Workload, lazy: Fraction, epochs: int, rng: Any
) -> tuple[list[int], int]:
    n = load.requests_per_epoch
    skipped = rng.binomial(n, float(lazy), size=epochs) if lazy else [0] * epochs
    caught = [int(rng.binomial(k, float(load.watcher_coverage))) if k else 0 for k in skipped]
    profits = []
    for k, c in zip(skipped, caught, strict=True):
        k = int(k)
        honest = (n - k) * (load.price_per_request - load.compute_cost_per_request)
        profits.append(
            honest
            + (k - c) * load.price_per_request
            - c * (terms.claim_lock + load.dispute_gas_cost)
        )
    return profits, sum(caught)


def _simulate_storage(
    terms: StorageTerms, load: Workload, kept: Fraction, claims_reward: bool, epochs: int, rng: Any
) -> tuple[list[int], int]:
    slash = terms.stake_per_commitment * terms.slash_bps // BPS
    own_pass = rng.random(epochs) < float(kept)
    challenged = rng.random(epochs) < float(load.external_challenge_rate)
    other_pass = rng.random(epochs) < float(kept)
    store = kept * load.storage_cost_per_epoch
    profits, slashes = [], 0
    for epoch in range(epochs):
        profit = Fraction(-store)
        if claims_reward:
            profit -= load.answer_gas_cost
            if own_pass[epoch]:
                profit += terms.epoch_reward
        if challenged[epoch]:
            if other_pass[epoch]:
                profit += terms.challenge_bond - load.answer_gas_cost
            else:
                profit -= slash
                slashes += 1
        profits.append(int(profit))
    return profits, slashes


COMPUTE_STRATEGIES = {
    "honest": "computes every request",
    "lazy": "skips the work on lazy_fraction of its requests and posts wrong results",
    "always-wrong": "never computes",
}
STORAGE_STRATEGIES = {
    "honest": "keeps the whole blob, proves it every epoch for the reward",
    "partial-hiding": "keeps kept_fraction of the blob and never proves it",
    "partial-claiming": "keeps kept_fraction of the blob, challenges itself for the reward and "
    "reveals only when it can answer",
    "drop-all": "keeps nothing and never proves it",
}


def simulate(
    compute: ComputeTerms,
    storage: StorageTerms,
    workload: Workload,
    *,
    epochs: int = 10_000,
    seed: int = 0,
) -> EconomicsReport:
    """Every strategy of both roles over `epochs` epochs; deterministic for a given seed."""
    import numpy as np

    workload.check()
    if epochs < 2:
        raise ParameterError("simulate at least 2 epochs")
    rng = np.random.default_rng(seed)
    results: list[StrategyResult] = []
    compute_levels = {
        "honest": Fraction(0),
        "lazy": workload.lazy_fraction,
        "always-wrong": Fraction(1),
    }
    honest_compute = _compute_expectation(compute, workload, Fraction(0))
    for name, lazy in compute_levels.items():
        profits, slashes = _simulate_compute(compute, workload, lazy, epochs, rng)
        mean, ci95 = _summary(profits)
        expected = _compute_expectation(compute, workload, lazy)
        results.append(
            StrategyResult(
                "compute",
                name,
                epochs,
                mean,
                ci95,
                int(expected),
                int(expected - honest_compute),
                slashes,
            )
        )
    storage_levels = {
        "honest": (Fraction(1), True),
        "partial-hiding": (workload.kept_fraction, False),
        "partial-claiming": (workload.kept_fraction, True),
        "drop-all": (Fraction(0), False),
    }
    honest_storage = _storage_expectation(storage, workload, Fraction(1), True)
    for name, (kept, claims) in storage_levels.items():
        profits, slashes = _simulate_storage(storage, workload, kept, claims, epochs, rng)
        mean, ci95 = _summary(profits)
        expected = _storage_expectation(storage, workload, kept, claims)
        results.append(
            StrategyResult(
                "storage",
                name,
                epochs,
                mean,
                ci95,
                int(expected),
                int(expected - honest_storage),
                slashes,
            )
        )
    return EconomicsReport(
        results, compute, storage, workload, epochs, seed, break_even(compute, storage, workload)
    )


def break_even(compute: ComputeTerms, storage: StorageTerms, workload: Workload) -> dict[str, str]:
    """Where cheating would start to pay, as exact fractions.

    compute: the watcher coverage below which skipping the work gains:
    w* = c / (p + claim_lock + dispute gas). storage: the challenge rate by others below which
    dropping a blob gains over storing and proving it: h* solves honest(h) = drop-all(h), i.e.
    h* = -(R - g - s) / (bond - g + slash), clipped at 0 (an honest provider that earns
    R - g - s >= 0 from the reward is better off at any h)."""
    load = workload
    coverage = Fraction(
        load.compute_cost_per_request,
        load.price_per_request + compute.claim_lock + load.dispute_gas_cost,
    )
    slash = storage.stake_per_commitment * storage.slash_bps // BPS
    margin = storage.epoch_reward - load.answer_gas_cost - load.storage_cost_per_epoch
    rate = Fraction(-margin, storage.challenge_bond - load.answer_gas_cost + slash)
    return {
        "compute_watcher_coverage": str(coverage),
        "storage_external_challenge_rate": str(max(rate, Fraction(0))),
    }
