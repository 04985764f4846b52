"""payouts.vy and fee_split.vy on their own: pull payments that pay once, a split that sums.

The split is compared with its Python mirror `aicommons.chain.executor.split_fee` on random
fees, shares and attribution lists; a token that re-enters `withdraw` is paid once.
"""

from __future__ import annotations

from pathlib import Path

import boa
import pytest
from chain_fixtures import SUPPLY
from hypothesis import given, settings
from hypothesis import strategies as st

from aicommons.chain.compile import compile_source_file, load_boa
from aicommons.chain.errors import ExecutorError
from aicommons.chain.executor import MAX_FEE, Credit, split_fee

HERE = Path(__file__).resolve().parent
REFERENCE = b"\x07" * 32


@pytest.fixture(scope="module")
def harness_code():
    return compile_source_file(HERE / "payouts_harness.vy")


@pytest.fixture(scope="module")
def splitter(harness_code):
    with boa.env.anchor():
        token = load_boa("CommonsToken", boa.env.generate_address("treasury"), SUPPLY)
        yield load_boa(harness_code, token.address)


ACCOUNTS = [f"0x{index:040x}" for index in range(1, 6)]
TREASURY = "0x" + "ee" * 20


@st.composite
def attributions(draw):
    entries = draw(
        st.lists(
            st.tuples(st.sampled_from(ACCOUNTS), st.integers(1, 5), st.integers(0, 10_000)),
            max_size=16,
        )
    )
    total, kept = 0, []
    for account, role, share in entries:  # keep shares summing to at most 10000, as registered
        if total + share <= 10_000:
            kept.append((account, role, share))
            total += share
    return kept


@settings(max_examples=60, deadline=None)
@given(
    fee=st.one_of(st.integers(0, 10**6), st.integers(0, MAX_FEE), st.just(MAX_FEE)),
    protocol_share_bps=st.integers(0, 10_000),
    attribution=attributions(),
)
def test_the_split_matches_its_mirror_and_sums_to_the_fee(
    splitter, fee, protocol_share_bps, attribution
) -> None:
    expected = split_fee(
        fee, protocol_share_bps=protocol_share_bps, attribution=attribution, treasury=TREASURY
    )
    got = [
        Credit(str(account).lower(), int(amount))
        for account, amount in splitter.split(fee, protocol_share_bps, attribution, TREASURY)
    ]
    assert got == expected
    assert sum(credit.amount for credit in got) == fee
    assert all(credit.amount > 0 for credit in got)
    distributable = fee - fee * protocol_share_bps // 10_000
    for (account, _, share), credit in zip(
        [entry for entry in attribution if distributable * entry[2] // 10_000], got, strict=False
    ):
        assert credit.account == account and credit.amount * 10_000 <= distributable * share


def test_the_mirror_refuses_what_the_contracts_refuse() -> None:
    with pytest.raises(ExecutorError, match="out of range"):
        split_fee(MAX_FEE + 1, protocol_share_bps=0, attribution=[], treasury=TREASURY)
    with pytest.raises(ExecutorError, match="above 10000"):
        split_fee(
            10,
            protocol_share_bps=0,
            attribution=[(ACCOUNTS[0], 1, 6000), (ACCOUNTS[1], 2, 4001)],
            treasury=TREASURY,
        )


def test_withdraw_pays_once_and_logs(harness_code) -> None:
    with boa.env.anchor():
        treasury = boa.env.generate_address("treasury")
        token = load_boa("CommonsToken", treasury, SUPPLY)
        host = load_boa(harness_code, token.address)
        alice = boa.env.generate_address("alice")
        with boa.env.prank(treasury):
            token.transfer(host.address, 700)
        credited = []
        for account, amount in ((alice, 500), (treasury, 200)):
            host.credit(account, amount, REFERENCE)
            credited += [e for e in host.get_logs() if type(e).__name__ == "Credited"]
        assert [(e.account, e.reference, e.amount) for e in credited] == [
            (alice, REFERENCE, 500),
            (treasury, REFERENCE, 200),
        ]
        assert host.total_owed() == 700 == token.balanceOf(host.address)
        with boa.env.prank(alice):
            assert host.withdraw() == 500
        withdrawn = [e for e in host.get_logs() if type(e).__name__ == "Withdrawn"]
        assert [(e.account, e.amount) for e in withdrawn] == [(alice, 500)]
        assert token.balanceOf(alice) == 500 and host.owed(alice) == 0
        assert host.total_owed() == 200 == token.balanceOf(host.address)
        with boa.env.prank(alice), boa.reverts("NothingToWithdraw"):
            host.withdraw()


def test_a_token_that_reenters_withdraw_is_paid_once(harness_code) -> None:
    # Effects before the interaction: when the token's transfer calls withdraw again, the
    # balance is already zero, so the re-entry reverts and the account is paid exactly once.
    with boa.env.anchor():
        token = load_boa(compile_source_file(HERE / "reentrant_token.vy"))
        host = load_boa(harness_code, token.address)
        host.credit(token.address, 300, REFERENCE)
        host.credit(boa.env.generate_address("bystander"), 300, REFERENCE)
        token.attack(host.address)
        assert token.reentered() and not token.reentry_paid()
        assert token.balanceOf(token.address) == 300
        assert host.owed(token.address) == 0 and host.total_owed() == 300


def test_the_token_is_required(harness_code) -> None:
    with boa.env.anchor(), pytest.raises(Exception, match="ZeroAddress"):
        load_boa(harness_code, "0x" + "00" * 20)
