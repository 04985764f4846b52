"""Treasury: anyone collects what sources owe it; only governance (the timelock) spends."""

from __future__ import annotations

from pathlib import Path

import boa
import pytest

from aicommons.chain.compile import compile_source_file, load_boa

HERE = Path(__file__).resolve().parent
SUPPLY = 10**27


@pytest.fixture(scope="module")
def shared():
    with boa.env.anchor():
        holder = boa.env.generate_address("holder")
        governance = boa.env.generate_address("timelock")
        token = load_boa("CommonsToken", holder, SUPPLY)
        treasury = load_boa("Treasury", governance)
        source = load_boa(compile_source_file(HERE / "fee_source.vy"), token.address)
        with boa.env.prank(holder):
            token.approve(source.address, SUPPLY)
        yield token, treasury, source, holder, governance


@pytest.fixture
def world(shared):
    with boa.env.anchor():
        yield shared


def test_anyone_collects_what_a_source_owes(world):
    token, treasury, source, holder, _ = world
    source.charge(holder, treasury.address, 700)
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(stranger):
        assert treasury.collect(source.address) == 700
    assert token.balanceOf(treasury.address) == 700
    logs = treasury.get_logs()
    collected = [(e.source, e.token, e.amount) for e in logs if type(e).__name__ == "Collected"]
    assert collected == [(source.address, token.address, 700)]


def test_a_source_that_pays_nothing_is_refused(world):
    _, treasury, source, holder, _ = world
    source.charge(holder, treasury.address, 700)
    source.set_mode(1)
    with boa.reverts("NothingCollected"):
        treasury.collect(source.address)


def test_a_source_that_calls_back_cannot_collect_twice(world):
    _, treasury, source, holder, _ = world
    source.charge(holder, treasury.address, 700)
    source.set_mode(2)
    with pytest.raises(Exception):  # noqa: B017 - the nonreentrancy lock has no reason string
        treasury.collect(source.address)


def test_only_governance_spends(world):
    token, treasury, source, holder, governance = world
    source.charge(holder, treasury.address, 1_000)
    treasury.collect(source.address)
    grantee = boa.env.generate_address("grantee")
    with boa.env.prank(holder), boa.reverts("NotGovernance"):
        treasury.grant(token.address, grantee, 1, "no")
    with boa.env.prank(governance):
        with boa.reverts("ZeroAmount"):
            treasury.grant(token.address, grantee, 0, "nothing")
        treasury.grant(token.address, grantee, 400, "model maintenance")
    assert token.balanceOf(grantee) == 400
    assert token.balanceOf(treasury.address) == 600
    with boa.env.prank(holder), boa.reverts("NotGovernance"):
        treasury.transfer_governance(holder)
    new_governance = boa.env.generate_address("new timelock")
    with boa.env.prank(governance):
        treasury.transfer_governance(new_governance)
    assert treasury.governance() == new_governance


def test_only_governance_funds_the_storage_reward_pool(world):
    """`fund_storage_rewards` moves the protocol share into StorageRegistry's reward pool:
    refused for anyone but governance and for nothing; exactly the amount named moves."""
    token, treasury, _, holder, governance = world
    registry = load_boa(
        "StorageRegistry", token.address, treasury.address, 1000, 10, 5000, 5000, 20, 5
    )
    with boa.env.prank(holder):
        token.transfer(treasury.address, 500)
    with boa.reverts("NotGovernance"):
        treasury.fund_storage_rewards(registry.address, 100, sender=holder)
    with boa.env.prank(governance), boa.reverts("ZeroAmount"):
        treasury.fund_storage_rewards(registry.address, 0)
    with boa.env.prank(governance):
        treasury.fund_storage_rewards(registry.address, 300)
    assert registry.reward_pool() == 300 == token.balanceOf(registry.address)
    assert token.balanceOf(treasury.address) == 200
    assert token.allowance(treasury.address, registry.address) == 0
