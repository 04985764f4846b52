"""FundingRound: random rounds against the reference formula (aicommons.governance.qf), to the
wei; every refusal by name; claims paid to the canonical version's attribution list."""

from __future__ import annotations

from pathlib import Path

import boa
import pytest
from governance_fixtures import publish_model
from hypothesis import given, settings
from hypothesis import strategies as st

from aicommons.chain.compile import compile_source_file, load_boa
from aicommons.commit import keccak256
from aicommons.governance.qf import Contribution, round_matches

HERE = Path(__file__).resolve().parent
SUPPLY = 10**9 * 10**18
SLUGS = [f"model-{i}" for i in range(6)]


class World:
    """Token, registry (models 0-5 with a canonical version each, model-5 without one), a
    FundingRound, an allowlist, a funder and six contributors holding tokens."""

    def __init__(self) -> None:
        self.deployer = boa.env.generate_address("deployer")
        self.treasury = boa.env.generate_address("treasury")
        self.token = load_boa("CommonsToken", self.deployer, SUPPLY, sender=self.deployer)
        self.registry = load_boa("ModelRegistry", sender=self.deployer)
        self.funding = load_boa(
            "FundingRound", self.token.address, self.registry.address, self.treasury
        )
        self.allowlist = load_boa(compile_source_file(HERE / "allowlist.vy"))
        self.maintainer = boa.env.generate_address("maintainer")
        self.author = boa.env.generate_address("author")
        self.data = boa.env.generate_address("data")
        self.models = []
        for index, slug in enumerate(SLUGS):
            version = keccak256(slug.encode() + b"@1")
            attribution = [(self.author, 1, 6_000), (self.data, 2, 3_000)]
            model_id = publish_model(self.registry, self.maintainer, slug, version, attribution)
            if index < 5:
                with boa.env.prank(self.deployer):
                    self.registry.set_canonical(model_id, version)
            self.models.append(model_id)
        self.funder = boa.env.generate_address("funder")
        self.people = [boa.env.generate_address(f"contributor{i}") for i in range(6)]
        for account in [self.funder, *self.people]:
            with boa.env.prank(self.deployer):
                self.token.transfer(account, SUPPLY // 10)
            with boa.env.prank(account):
                self.token.approve(self.funding.address, 2**256 - 1)

    def open(self, pool: int, *, duration: int = 1_000, cap_bps: int = 0, eligibility=None) -> int:
        now = boa.env.evm.patch.timestamp
        with boa.env.prank(self.funder):
            return self.funding.new_round(
                pool, now, now + duration, cap_bps, eligibility or "0x" + "00" * 20
            )

    def give(self, round_id: int, person: str, model_id: bytes, amount: int) -> None:
        with boa.env.prank(person):
            self.funding.contribute(round_id, model_id, amount)


@pytest.fixture(scope="module")
def shared_world():
    with boa.env.anchor():
        yield World()


@pytest.fixture
def world(shared_world):
    with boa.env.anchor():
        yield shared_world


amounts = st.one_of(st.integers(1, 1_000), st.integers(1, 10**24))


@settings(max_examples=40, deadline=None)
@given(
    pool=st.one_of(st.integers(1, 10**6), st.integers(1, 10**25)),
    cap_bps=st.one_of(st.just(0), st.integers(0, 10_000)),
    eligible=st.lists(st.booleans(), min_size=6, max_size=6),
    gifts=st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 4), amounts, st.booleans()),
        min_size=1,
        max_size=14,
    ),
)
def test_random_rounds_match_the_reference_to_the_wei(shared_world, pool, cap_bps, eligible, gifts):
    world = shared_world
    with boa.env.anchor():
        for person, allowed in zip(world.people, eligible, strict=True):
            world.allowlist.set_allowed(person, allowed)
        round_id = world.open(pool, cap_bps=cap_bps, eligibility=world.allowlist.address)
        made = []
        for person_index, model_index, amount, flips in gifts:
            person = world.people[person_index]
            if flips:  # eligibility may change during the round; each gift is judged as made
                now_allowed = not world.allowlist.allowed(person)
                world.allowlist.set_allowed(person, now_allowed)
            world.give(round_id, person, world.models[model_index], amount)
            made.append(
                Contribution(
                    person, world.models[model_index], amount, world.allowlist.allowed(person)
                )
            )
        boa.env.time_travel(seconds=1_000)
        world.funding.finalise(round_id)
        expected = round_matches(pool, made, cap_bps)
        assert list(world.funding.projects(round_id)) == [r.model for r in expected]
        for result in expected:
            total, contributors, sqrt_sum, eligible_total, raw, match, claimed = (
                world.funding.project(round_id, result.model)
            )
            assert (total, contributors, sqrt_sum, eligible_total, raw, match) == (
                result.total,
                result.contributors,
                result.sqrt_sum,
                result.eligible_total,
                result.raw,
                result.match,
            )
            assert not claimed
            if cap_bps:
                assert match <= pool * cap_bps // 10_000
        matched = sum(r.match for r in expected)
        assert matched <= pool
        assert world.funding.owed(world.funder) == pool - matched
        # Everything held is owed or claimable: nothing is created or lost.
        held = world.token.balanceOf(world.funding.address)
        assert held == world.funding.total_owed() + sum(r.total + r.match for r in expected)


def test_ineligible_contributions_reach_the_model_but_earn_no_match(world):
    a, b = world.people[0], world.people[1]
    world.allowlist.set_allowed(a, True)
    round_id = world.open(10**21, eligibility=world.allowlist.address)
    for person in (a, b):
        world.give(round_id, person, world.models[0], 10**18)
        world.give(round_id, person, world.models[1], 10**18)
    world.give(round_id, world.people[2], world.models[1], 10**18)  # ineligible too
    boa.env.time_travel(seconds=1_000)
    world.funding.finalise(round_id)
    total, contributors, sqrt_sum, eligible_total, raw, match, _ = world.funding.project(
        round_id, world.models[1]
    )
    # Only `a` counts: one eligible backer -> raw 0 -> no match, though 3e18 was given.
    assert (total, contributors, eligible_total, raw, match) == (3 * 10**18, 3, 10**18, 0, 0)
    assert sqrt_sum == 10**9


def test_a_broken_eligibility_hook_only_withholds_the_match(world):
    round_id = world.open(10**21, eligibility=world.allowlist.address)
    world.allowlist.set_broken(True)
    world.give(round_id, world.people[0], world.models[0], 10**18)
    assert world.funding.contribution(round_id, world.models[0], world.people[0]) == (10**18, 0)


def test_bad_input_is_refused_by_name(world):
    now = boa.env.evm.patch.timestamp
    zero = "0x" + "00" * 20
    with boa.env.prank(world.funder):
        with boa.reverts("ZeroPool"):
            world.funding.new_round(0, now, now + 10, 0, zero)
        with boa.reverts("InvalidPeriod"):
            world.funding.new_round(1, now + 10, now + 10, 0, zero)
        with boa.reverts("InvalidCap"):
            world.funding.new_round(1, now, now + 10, 10_001, zero)
        later = world.funding.new_round(10**18, now + 100, now + 200, 0, zero)
    person = world.people[0]
    with boa.reverts("UnknownRound"):
        world.give(99, person, world.models[0], 1)
    with boa.reverts("RoundNotStarted"):
        world.give(later, person, world.models[0], 1)
    round_id = world.open(10**18)
    with boa.reverts("UnknownModel"):
        world.give(round_id, person, keccak256(b"not-registered"), 1)
    with boa.reverts("ZeroAmount"):
        world.give(round_id, person, world.models[0], 0)
    world.give(round_id, person, world.models[0], 10**18)
    with boa.reverts("RoundNotEnded"):
        world.funding.finalise(round_id)
    with boa.reverts("RoundNotFinalised"):
        world.funding.claim(round_id, world.models[0])
    boa.env.time_travel(seconds=1_000)
    with boa.reverts("RoundEnded"):  # contribute after the end
        world.give(round_id, person, world.models[0], 1)
    world.funding.finalise(round_id)
    with boa.reverts("AlreadyFinalised"):
        world.funding.finalise(round_id)
    with boa.reverts("UnknownProject"):
        world.funding.claim(round_id, world.models[1])
    world.funding.claim(round_id, world.models[0])
    with boa.reverts("AlreadyClaimed"):
        world.funding.claim(round_id, world.models[0])


def test_claims_follow_the_canonical_versions_attribution(world):
    round_id = world.open(10**21)
    for person in world.people[:3]:
        world.give(round_id, person, world.models[0], 4 * 10**18)
    world.give(round_id, world.people[0], world.models[5], 10**18)  # no canonical version
    boa.env.time_travel(seconds=1_000)
    world.funding.finalise(round_id)
    total, _, _, _, _, match, _ = world.funding.project(round_id, world.models[0])
    assert world.funding.claim(round_id, world.models[0]) == total + match
    owed_author = world.funding.owed(world.author)
    assert owed_author == (total + match) * 6_000 // 10_000
    assert world.funding.owed(world.data) == (total + match) * 3_000 // 10_000
    assert world.funding.owed(world.treasury) == total + match - owed_author - world.funding.owed(
        world.data
    )
    before = world.token.balanceOf(world.author)
    with boa.env.prank(world.author):
        world.funding.withdraw()
        with boa.reverts("NothingToWithdraw"):  # claim the payout twice
            world.funding.withdraw()
    assert world.token.balanceOf(world.author) == before + owed_author
    with boa.reverts("NoCanonicalVersion"):
        world.funding.claim(round_id, world.models[5])


def test_the_treasury_funds_a_round_by_governance_and_collects_what_is_not_matched(world):
    timelock = boa.env.generate_address("timelock")
    treasury = load_boa("Treasury", timelock)
    with boa.env.prank(world.deployer):
        world.token.transfer(treasury.address, 10**21)
    now = boa.env.evm.patch.timestamp
    args = (world.funding.address, 10**21, now, now + 1_000, 2_500, "0x" + "00" * 20)
    with boa.env.prank(world.funder), boa.reverts("NotGovernance"):
        treasury.fund_round(*args)
    with boa.env.prank(timelock):
        round_id = treasury.fund_round(*args)
    assert world.funding.rounds(round_id)[0] == treasury.address  # the funder
    for person in world.people[:2]:
        world.give(round_id, person, world.models[0], 10**18)
    boa.env.time_travel(seconds=1_000)
    world.funding.finalise(round_id)
    match = world.funding.project(round_id, world.models[0])[5]
    assert match == 10**21 * 2_500 // 10_000  # one model, capped at 25 % of the pool
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(stranger):
        assert treasury.collect(world.funding.address) == 10**21 - match
    assert world.token.balanceOf(treasury.address) == 10**21 - match
