"""Token conservation: over 1,000 random sequences of market actions, no token is created or lost.

After every action — valid or reverted — the market holds exactly what it owes
(escrow + stakes + bonds + pull-payment credits) and every account's balance plus the market's
adds up to the supply. Sequences are generated from fixed seeds (reproducible), each run from the
same snapshot of one deployed suite (`boa.env.anchor()`), so the test stays fast.
"""

from __future__ import annotations

import boa
import numpy as np
import pytest
from market_fixtures import AIC, SUPPLY, advance, deploy_market_suite, honest_result
from market_layers import random_layer_package

from aicommons.commit import keccak256
from aicommons.market.commitments import (
    UNSIGNED,
    BatchCommitment,
    PostedResult,
    redundant_commitment,
)

SEQUENCES = 1000
MAX_ACTIONS = 9


@pytest.fixture(scope="module")
def world():
    with boa.env.anchor():
        suite = deploy_market_suite()
        package, x = random_layer_package(np.random.default_rng(5), "dense", fan_in=2)
        author = boa.env.generate_address("author")
        suite.publish(package, "tiny", fee=AIC, attribution=[(author, 1, 3333)])
        providers = [suite.provider(f"p{i}", ["tiny"]) for i in range(3)]
        requester = boa.env.generate_address("requester")
        watcher = boa.env.generate_address("watcher")
        for account in (requester, watcher):
            suite.fund(account)
        result, _ = honest_result(package, 1, x)
        # One settled request, so withdrawals have something to pay from the start.
        request_id = suite.request(requester, "tiny", x)
        with boa.env.prank(providers[0]):
            suite.market.claim(request_id)
        batch = BatchCommitment([PostedResult(request_id, result.trace_root, result.output)])
        with boa.env.prank(providers[0]):
            batch_id = suite.market.post_batch(*batch.post_args())
        advance(suite.params.window)
        suite.market.finalise(request_id, batch_id, 0, result.output, result.trace_root, [])
        accounts = [suite.treasury, suite.governance, author, requester, watcher, *providers]
        yield suite, x, result, providers, requester, watcher, accounts


def _check(suite, accounts: list[str] | None = None) -> None:
    """The market holds what it owes; with `accounts`, also every token is somewhere."""
    market = suite.market
    held = suite.token.balanceOf(market.address)
    owed = market.total_stake() + market.total_escrow() + market.total_bonds() + market.total_owed()
    assert held == owed
    if accounts is not None:
        assert sum(suite.token.balanceOf(a) for a in accounts) + held == SUPPLY


class Skip(Exception):
    """The action has nothing to act on yet (no batch, no dispute...)."""


class Sequence:
    """One random sequence: the actors act on whatever requests, batches and disputes exist."""

    def __init__(self, world, rng: np.random.Generator) -> None:
        self.suite, self.x, self.result, self.providers, self.requester, self.watcher, _ = world
        self.rng = rng
        self.requests: list[int] = []
        self.batches: list[tuple[int, BatchCommitment]] = []
        self.disputes: list[int] = []
        self.done: list[str] = []
        self.claimed: list[int] = []
        self.settled = True

    def pick(self, items):
        if not items:
            raise Skip
        return items[int(self.rng.integers(0, len(items)))]

    def act(self) -> None:
        """One action, drawn among those that have something to act on (so that sequences
        reach finalisation, disputes and withdrawals, not only requests)."""
        enabled = ["request", "request", "request_redundant", "advance"]
        enabled += ["stake", "unstake", "withdraw_stake"]
        if self.requests:
            enabled += ["claim"] * 3 + ["expire"] + ["redundant"] * 3
        if self.claimed:
            enabled += ["post"] * 3
        if self.batches:
            enabled += ["finalise"] * 3 + ["challenge"] * 2 + ["advance"] * 2
        if self.disputes:
            enabled += ["resolve"] * 3
        if self.settled:
            enabled += ["withdraw"] * 2
        action = self.pick(enabled)
        getattr(self, action)()
        self.done.append(action)

    def prefix(self) -> None:
        try:
            self.pick([self.request, self.request, self.request_redundant])()
            self.claim()
        except boa.BoaError:
            pass

    def request(self) -> None:
        self.requests.append(
            self.suite.request(self.requester, "tiny", self.x, ttl=int(self.rng.integers(5, 60)))
        )

    def request_redundant(self) -> None:
        self.requests.append(
            self.suite.request(self.requester, "tiny", self.x, mode=2, redundancy=2, ttl=200)
        )

    def claim(self) -> None:
        request_id = self.pick(self.requests)
        with boa.env.prank(self.pick(self.providers)):
            self.suite.market.claim(request_id)
        self.claimed.append(request_id)

    def post(self) -> None:
        request_id = self.pick(self.claimed)
        claims = self.suite.market.claims(request_id)
        if not claims:
            return
        output = (
            self.result.output if self.rng.integers(0, 2) else b"\x01" * len(self.result.output)
        )
        batch = BatchCommitment([PostedResult(request_id, self.result.trace_root, output)])
        with boa.env.prank(claims[0][0]):
            batch_id = self.suite.market.post_batch(*batch.post_args())
        self.batches.append((batch_id, batch))

    def finalise(self) -> None:
        batch_id, batch = self.pick(self.batches)
        result = batch.results[0]
        self.suite.market.finalise(
            result.request_id,
            batch_id,
            0,
            result.output,
            result.trace_root,
            list(batch.proof(0).siblings),
        )

    def challenge(self) -> None:
        batch_id, batch = self.pick(self.batches)
        result = batch.results[0]
        with boa.env.prank(self.watcher):
            self.disputes.append(
                self.suite.game.challenge(
                    result.request_id, batch_id, 0, result.output_hash, result.trace_root, []
                )
            )

    def resolve(self) -> None:
        dispute_id = self.pick(self.disputes)
        advance(self.suite.params.move_period + 1)
        if self.rng.integers(0, 3) == 0:
            self.suite.game.cancel_dispute(dispute_id)
        else:
            self.suite.game.timeout(dispute_id)
        self.settled = True

    def expire(self) -> None:
        request_id = self.pick(self.requests)
        if self.rng.integers(0, 2):
            self.suite.market.expire(request_id)
        else:
            self.suite.redundant.expire(request_id)
        self.settled = True

    def advance(self) -> None:
        advance(int(self.rng.choice([1, 25, 120, 400])))

    def stake(self) -> None:
        with boa.env.prank(self.pick(self.providers)):
            self.suite.market.stake(int(self.rng.integers(1, 50)) * AIC)

    def unstake(self) -> None:
        with boa.env.prank(self.pick(self.providers)):
            self.suite.market.unstake(int(self.rng.integers(1, 150)) * AIC)

    def withdraw_stake(self) -> None:
        with boa.env.prank(self.pick(self.providers)):
            self.suite.market.withdraw_stake()

    def withdraw(self) -> None:
        with boa.env.prank(
            self.pick([self.requester, self.watcher, *self.providers, self.suite.treasury])
        ):
            self.suite.market.withdraw()

    def redundant(self) -> None:
        """A claimant of a redundant request commits and reveals an honest or a wrong output,
        or anyone settles one."""
        request_id = self.pick(self.requests)
        if self.rng.integers(0, 3) == 0:
            self.suite.redundant.finalise(request_id, self.result.output)
            self.settled = True
            return
        claims = self.suite.market.claims(request_id)
        if not claims:
            raise Skip
        provider = self.pick([claim[0] for claim in claims])
        output = self.result.output if self.rng.integers(0, 3) else b"\x07"
        salt = keccak256(provider.encode())
        commitment = redundant_commitment(
            request_id=request_id,
            provider=provider,
            output_hash=keccak256(output),
            trace_root=self.result.trace_root,
            salt=salt,
        )
        with boa.env.prank(provider):
            if self.suite.redundant.votes(request_id, provider)[0] == b"\x00" * 32:
                self.suite.redundant.commit(request_id, commitment)
            else:
                self.suite.redundant.reveal(
                    request_id, output, self.result.trace_root, salt, UNSIGNED
                )


def test_tokens_are_conserved_over_random_sequences(world) -> None:
    suite, accounts = world[0], world[-1]
    actions = reverted = 0
    succeeded: dict[str, int] = {}
    for seed in range(SEQUENCES):
        rng = np.random.default_rng(seed)
        sequence = Sequence(world, rng)
        with boa.env.anchor():
            # Every sequence opens with a request and a claim (both random), so that most reach
            # posts, finalisation and disputes within a few more random actions.
            sequence.prefix()
            for _ in range(int(rng.integers(2, MAX_ACTIONS + 1))):
                try:
                    sequence.act()
                except boa.BoaError:
                    reverted += 1
                except Skip:
                    continue
                actions += 1
                _check(suite)
            _check(suite, accounts)
            for action in sequence.done:
                succeeded[action] = succeeded.get(action, 0) + 1
    # The sequences must exercise the market, not just bounce off its checks.
    assert actions >= SEQUENCES * 2 and reverted < actions * 0.8, (actions, reverted)
    for action in (
        "claim",
        "post",
        "finalise",
        "challenge",
        "resolve",
        "expire",
        "redundant",
        "withdraw",
    ):
        assert succeeded.get(action, 0) >= 3, (action, succeeded)
