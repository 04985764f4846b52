"""Fee accounting: every fee is credited in full, held by the executor, and withdrawn once.

A property test over random sequences of paid inferences and withdrawals checks that the token
balance held by the executor always equals everything still owed, and that nobody is paid twice.
"""

from __future__ import annotations

import boa
import numpy as np
import pytest
from chain_fixtures import PROTOCOL_BPS, dense_package, deploy_suite, publish, upload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aicommons.chain.executor import encode_input

FEES = (1, 999, 10**18 + 7)  # one version per fee: rounding dust, typical, large
SHARES = (6000, 2500)  # author and data provider; the rest (and protocol share) to treasury
FUNDING = 10**22


@pytest.fixture(scope="module")
def world():
    with boa.env.anchor():
        suite = deploy_suite()
        maintainer = boa.env.generate_address("fee-maintainer")
        author = boa.env.generate_address("author")
        data_provider = boa.env.generate_address("data-provider")
        attribution = [(author, 1, SHARES[0]), (data_provider, 2, SHARES[1])]
        versions = []
        for seed, fee in enumerate(FEES):
            package = dense_package(np.random.default_rng(seed), [4, 2])
            key = publish(
                suite, package, maintainer, "paid-model", fee=fee, attribution=attribution
            )
            upload(suite, package, maintainer, "paid-model")
            versions.append(key)
        payers = [boa.env.generate_address(f"payer{i}") for i in range(2)]
        for payer in payers:
            with boa.env.prank(suite.treasury):
                suite.token.transfer(payer, FUNDING)
            with boa.env.prank(payer):
                suite.token.approve(suite.executor.address, 2**256 - 1)
        accounts = [author, data_provider, suite.treasury, maintainer]
        yield suite, versions, payers, accounts


operations = st.lists(
    st.one_of(
        st.tuples(st.just("infer"), st.integers(0, 1), st.integers(0, len(FEES) - 1)),
        st.tuples(st.just("withdraw"), st.integers(0, 3), st.just(0)),
    ),
    max_size=10,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=operations)
def test_balance_held_equals_everything_owed(world, steps) -> None:
    suite, versions, payers, accounts = world
    token, executor = suite.token, suite.executor
    x = encode_input(np.array([1, -2, 3, -4], dtype=np.int8))
    with boa.env.anchor():
        paid = 0
        withdrawn = {account: 0 for account in accounts}
        for action, who, which in steps:
            if action == "infer":
                with boa.env.prank(payers[who]):
                    executor.infer(*versions[which], x)
                paid += FEES[which]
            else:
                account = accounts[who]
                owed = executor.owed(account)
                before = token.balanceOf(account)
                if owed == 0:
                    with boa.env.prank(account), boa.reverts("NothingToWithdraw"):
                        executor.withdraw()
                else:
                    with boa.env.prank(account):
                        executor.withdraw()
                    assert token.balanceOf(account) == before + owed
                    withdrawn[account] += owed
                    # A second withdrawal right away has nothing left to pay.
                    with boa.env.prank(account), boa.reverts("NothingToWithdraw"):
                        executor.withdraw()
            still_owed = sum(executor.owed(account) for account in accounts)
            assert token.balanceOf(executor.address) == executor.total_owed() == still_owed
            assert still_owed + sum(withdrawn.values()) == paid
        assert executor.owed(accounts[3]) == 0  # the maintainer has no attribution share


def test_one_fee_is_split_by_shares_with_the_rest_to_the_treasury(world) -> None:
    suite, versions, payers, accounts = world
    author, data_provider, treasury, _ = accounts
    fee = FEES[2]
    with boa.env.anchor():
        with boa.env.prank(payers[0]):
            suite.executor.infer(*versions[2], encode_input(np.zeros(4, dtype=np.int8)))
        credited = [e for e in suite.executor.get_logs() if type(e).__name__ == "Credited"]
        assert sum(e.amount for e in credited) == fee
        distributable = fee - fee * PROTOCOL_BPS // 10_000
        author_share = distributable * SHARES[0] // 10_000
        data_share = distributable * SHARES[1] // 10_000
        assert suite.executor.owed(author) == author_share
        assert suite.executor.owed(data_provider) == data_share
        assert suite.executor.owed(treasury) == fee - author_share - data_share


def test_unpaid_fee_reverts_by_name(world) -> None:
    suite, versions, _, _ = world
    x = encode_input(np.zeros(4, dtype=np.int8))
    broke = boa.env.generate_address("broke")
    with boa.env.anchor():
        with boa.env.prank(broke), boa.reverts("FeeNotApproved"):
            suite.executor.infer(*versions[1], x)  # no allowance
        with boa.env.prank(broke):
            suite.token.approve(suite.executor.address, 10**30)
        with boa.env.prank(broke), boa.reverts("FeeUnpaid"):
            suite.executor.infer(*versions[1], x)  # allowance but no balance
        # The free view variant needs neither.
        with boa.env.prank(broke):
            assert len(suite.executor.predict(*versions[1], x)[0]) == 2


def test_an_allowance_and_a_balance_of_exactly_the_fee_suffice(world) -> None:
    # Kills the mutants `allowance >= fee` -> `>` and `balance >= fee` -> `>` in `_charge`
    # (issue 14 item 18: only the slow end-to-end tests caught them).
    suite, versions, _, _ = world
    fee = FEES[1]
    exact = boa.env.generate_address("exact-payer")
    x = encode_input(np.zeros(4, dtype=np.int8))
    with boa.env.anchor():
        with boa.env.prank(suite.treasury):
            suite.token.transfer(exact, fee)
        with boa.env.prank(exact):
            suite.token.approve(suite.executor.address, fee - 1)
        with boa.env.prank(exact), boa.reverts("FeeNotApproved"):
            suite.executor.infer(*versions[1], x)
        with boa.env.prank(exact):
            suite.token.approve(suite.executor.address, fee)
            suite.executor.infer(*versions[1], x)
        assert suite.token.balanceOf(exact) == 0
        assert suite.token.allowance(exact, suite.executor.address) == 0
        assert suite.token.balanceOf(suite.executor.address) == suite.executor.total_owed()


def test_predict_is_free_and_returns_what_infer_returns(world) -> None:
    # predict() is kept on purpose (docs/contracts.md, "Why predict is free"): the same output
    # as infer, for anyone, with no fee, no receipt and no credit.
    suite, versions, payers, _ = world
    x = encode_input(np.array([7, -128, 127, 3], dtype=np.int8))
    stranger = boa.env.generate_address("no-tokens")
    with boa.env.anchor():
        owed_before = suite.executor.total_owed()
        with boa.env.prank(stranger):
            predicted = suite.executor.predict(*versions[2], x)
        assert suite.executor.total_owed() == owed_before
        with boa.env.prank(payers[0]):
            inferred = suite.executor.infer(*versions[2], x)
        receipt = [e for e in suite.executor.get_logs() if type(e).__name__ == "Inference"][0]
        assert list(predicted[0]) == list(inferred[0]) == list(receipt.output)
        assert predicted[1] == inferred[1] == receipt.label
        assert suite.executor.total_owed() == owed_before + FEES[2] == receipt.fee + owed_before


def test_the_owner_sets_the_protocol_share_and_treasury_for_later_fees(world) -> None:
    """The fee terms are the owner's (the timelock after `aic deploy`): named refusals for
    anyone else and for bad values, an event per change, and the next fee splits with the new
    share and credits the new treasury (what the old one is owed stays its)."""
    suite, versions, payers, accounts = world
    author, data_provider, treasury, _ = accounts
    executor, owner = suite.executor, suite.governance
    new_treasury = boa.env.generate_address("new-treasury")
    assert executor.owner() == owner
    with boa.env.anchor():
        with boa.env.prank(payers[0]), boa.reverts("NotGovernance"):
            executor.set_protocol_share(1_000)
        with boa.env.prank(payers[0]), boa.reverts("NotGovernance"):
            executor.set_treasury(new_treasury)
        with boa.env.prank(owner), boa.reverts("InvalidProtocolShare"):
            executor.set_protocol_share(10_001)
        with boa.env.prank(owner), boa.reverts("ZeroAddress"):
            executor.set_treasury("0x" + "00" * 20)
        with boa.env.prank(owner):
            executor.set_protocol_share(2_000)
            executor.set_treasury(new_treasury)
        names = [type(e).__name__ for e in executor.get_logs()]
        assert names == ["TreasurySet"]  # get_logs holds the last call's events
        assert (executor.protocol_share_bps(), executor.treasury()) == (2_000, new_treasury)
        before = executor.owed(treasury)
        fee = FEES[2]
        with boa.env.prank(payers[0]):
            executor.infer(*versions[2], encode_input(np.zeros(4, dtype=np.int8)))
        distributable = fee - fee * 2_000 // 10_000
        author_share = distributable * SHARES[0] // 10_000
        data_share = distributable * SHARES[1] // 10_000
        assert executor.owed(author) == author_share
        assert executor.owed(new_treasury) == fee - author_share - data_share
        assert executor.owed(treasury) == before
