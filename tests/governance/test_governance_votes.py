"""CommonsToken votes (votes.vy): ERC-5805 delegation and checkpoints, ERC-6372 clock.

The long random sequence compares every answer with the naive Python model of
governance_fixtures; the other tests pin each path that moves tokens, the signatures, the
reverts and the gas of a transfer.
"""

from __future__ import annotations

import random

import boa
import pytest
from eth_account import Account
from governance_fixtures import ZERO, VotesModel, sign_typed

from aicommons.chain.compile import load_boa

SUPPLY = 10**9 * 10**18
MAX_SUPPLY = 2**90 - 1


@pytest.fixture(scope="module")
def world():
    with boa.env.anchor():
        treasury = boa.env.generate_address("treasury")
        token = load_boa("CommonsToken", treasury, SUPPLY)
        yield token, treasury


@pytest.fixture
def token(world):
    with boa.env.anchor():
        yield world


def test_clock_is_the_block_timestamp(token):
    token, _ = token
    assert token.CLOCK_MODE() == "mode=timestamp"
    assert token.clock() == boa.env.evm.patch.timestamp
    boa.env.time_travel(seconds=7)
    assert token.clock() == boa.env.evm.patch.timestamp


def test_votes_count_only_once_delegated(token):
    token, treasury = token
    alice = boa.env.generate_address("alice")
    with boa.env.prank(treasury):
        token.transfer(alice, 100)
    assert token.getVotes(alice) == 0
    assert token.delegates(alice) == ZERO
    with boa.env.prank(alice):
        token.delegate(alice)
    assert token.getVotes(alice) == 100
    assert token.delegates(alice) == alice
    with boa.env.prank(alice):
        token.delegate(ZERO)
    assert token.getVotes(alice) == 0


def test_lookups_at_or_after_the_clock_revert(token):
    token, _ = token
    now = token.clock()
    with boa.reverts("FutureLookup"):
        token.getPastVotes(ZERO, now)
    with boa.reverts("FutureLookup"):
        token.getPastTotalSupply(now + 1)
    boa.env.time_travel(seconds=1)
    assert token.getPastTotalSupply(now) == SUPPLY


def test_supply_above_the_checkpoint_width_is_refused():
    treasury = boa.env.generate_address("treasury")
    with pytest.raises(Exception, match="SupplyTooLarge"):
        load_boa("CommonsToken", treasury, MAX_SUPPLY + 1)
    token = load_boa("CommonsToken", treasury, MAX_SUPPLY)
    boa.env.time_travel(seconds=1)
    assert token.getPastTotalSupply(token.clock() - 1) == MAX_SUPPLY


def test_every_path_that_moves_tokens_moves_votes(token):
    token, treasury = token
    alice, bob, spender = (boa.env.generate_address(n) for n in ("alice", "bob", "spender"))
    with boa.env.prank(treasury):
        token.transfer(alice, 1_000)
    for account in (alice, bob):
        with boa.env.prank(account):
            token.delegate(account)
    with boa.env.prank(alice):
        token.transfer(bob, 100)
    assert (token.getVotes(alice), token.getVotes(bob)) == (900, 100)
    with boa.env.prank(alice):
        token.approve(spender, 300)
    with boa.env.prank(spender):
        token.transferFrom(alice, bob, 200)
        token.burn_from(alice, 100)
    assert (token.getVotes(alice), token.getVotes(bob)) == (600, 300)
    with boa.env.prank(bob):
        token.burn(50)
    assert token.getVotes(bob) == 250
    boa.env.time_travel(seconds=1)
    assert token.getPastTotalSupply(token.clock() - 1) == SUPPLY - 150


def test_balances_keep_erc20_rules_and_the_zero_address_has_no_votes(token):
    """The balances live beside the vote state (votes.vy): erc20's reverts and events hold,
    a self-transfer and a zero transfer change nothing, and the zero address, which holds the
    total-supply trace internally, reports no votes."""
    token, treasury = token
    alice, bob = boa.env.generate_address("alice"), boa.env.generate_address("bob")
    with boa.env.prank(treasury):
        token.transfer(alice, 100)
        token.delegate(treasury)
    with boa.env.prank(alice):
        token.delegate(bob)
        with boa.reverts("erc20: transfer amount exceeds balance"):
            token.transfer(bob, 101)
        with boa.reverts("erc20: transfer to the zero address"):
            token.transfer(ZERO, 1)
        with boa.reverts("erc20: burn amount exceeds balance"):
            token.burn(101)
        token.transfer(alice, 60)
        token.transfer(bob, 0)
    logs = token.get_logs()
    assert [(type(log).__name__, log.value) for log in logs] == [("Transfer", 0)]
    assert (token.balanceOf(alice), token.getVotes(bob), token.getVotes(alice)) == (100, 100, 0)
    assert token.balanceOf(treasury) == token.getVotes(treasury) == SUPPLY - 100
    assert token.getVotes(ZERO) == 0
    boa.env.time_travel(seconds=1)
    assert token.getPastVotes(ZERO, token.clock() - 1) == 0
    assert token.getPastTotalSupply(token.clock() - 1) == SUPPLY


def _sign(
    account, token, primary: str, fields: list[dict], message: dict
) -> tuple[int, bytes, bytes]:
    signed = sign_typed(
        account,
        domain="aicommons CommonsToken",
        contract=token.address,
        primary=primary,
        fields=fields,
        message=message,
    )
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


DELEGATION = [
    {"name": "delegatee", "type": "address"},
    {"name": "nonce", "type": "uint256"},
    {"name": "expiry", "type": "uint256"},
]
PERMIT = [
    {"name": "owner", "type": "address"},
    {"name": "spender", "type": "address"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


def test_delegate_by_sig_shares_the_permit_nonce(token):
    token, treasury = token
    signer = Account.from_key(b"\x11" * 32)
    delegatee, relayer = boa.env.generate_address("delegatee"), boa.env.generate_address("relay")
    with boa.env.prank(treasury):
        token.transfer(signer.address, 500)
    expiry = token.clock() + 60
    v, r, s = _sign(
        signer,
        token,
        "Delegation",
        DELEGATION,
        {"delegatee": delegatee, "nonce": 0, "expiry": expiry},
    )
    with boa.env.prank(relayer):
        token.delegateBySig(delegatee, 0, expiry, v, r, s)
        assert token.getVotes(delegatee) == 500
        assert token.nonces(signer.address) == 1
        with boa.reverts("InvalidNonce"):  # a replay
            token.delegateBySig(delegatee, 0, expiry, v, r, s)
    # A permit signed with nonce 1 (the next one) works; the permit flow then moves votes.
    deadline = token.clock() + 60
    pv, pr, ps = _sign(
        signer,
        token,
        "Permit",
        PERMIT,
        {
            "owner": signer.address,
            "spender": relayer,
            "value": 200,
            "nonce": 1,
            "deadline": deadline,
        },
    )
    with boa.env.prank(relayer):
        token.permit(signer.address, relayer, 200, deadline, pv, pr, ps)
        token.transferFrom(signer.address, relayer, 200)
    assert token.getVotes(delegatee) == 300
    boa.env.time_travel(seconds=120)
    v, r, s = _sign(
        signer, token, "Delegation", DELEGATION, {"delegatee": ZERO, "nonce": 2, "expiry": expiry}
    )
    with boa.reverts("SignatureExpired"):
        token.delegateBySig(ZERO, 2, expiry, v, r, s)


def test_flash_loan_after_the_snapshot_adds_no_weight(token):
    """Weights are read at a past timepoint: tokens that arrive later, even for one transaction
    (a flash loan: borrow, delegate, return), never appear in it."""
    token, treasury = token
    holder, borrower = boa.env.generate_address("holder"), boa.env.generate_address("borrower")
    with boa.env.prank(treasury):
        token.transfer(holder, 10**24)
    with boa.env.prank(borrower):
        token.delegate(borrower)
    snapshot = token.clock()
    boa.env.time_travel(seconds=1)
    with boa.env.prank(holder):
        token.transfer(borrower, 10**24)  # acquired after the snapshot
    assert token.getVotes(borrower) == 10**24
    assert token.getPastVotes(borrower, snapshot) == 0
    with boa.env.prank(borrower):
        token.transfer(holder, 10**24)  # returned in the same block
    boa.env.time_travel(seconds=1)
    assert token.getPastVotes(borrower, snapshot) == 0
    assert token.getPastVotes(borrower, token.clock() - 1) == 0


def test_votes_match_a_plain_model_over_ten_thousand_random_steps(token):
    """Transfers, transferFroms, burns, burn_froms and delegations at random, several per
    timestamp; after each step the current votes of the touched delegates, and every 25 steps
    past votes and supply at random past timepoints, are compared with the model."""
    token, treasury = token
    rng = random.Random(20261202)
    holders = [boa.env.generate_address(f"holder{i}") for i in range(6)]
    accounts = [treasury, *holders]
    model = VotesModel()
    model.mint(treasury, SUPPLY, 0)
    spender = boa.env.generate_address("spender")
    for account in accounts:
        with boa.env.prank(account):
            token.approve(spender, 2**256 - 1)
    boa.env.time_travel(seconds=1)
    times = [int(token.clock())]
    # The supply was minted at deploy, at or before times[0] - 1.
    model.supply = [(times[0] - 1, SUPPLY)]
    mismatches: list[str] = []
    steps = 10_000
    for step in range(steps):
        # The clock is the block timestamp (test_clock_is_the_block_timestamp), read from the
        # EVM directly: a contract call per step only for the model's bookkeeping costs seconds.
        now = boa.env.evm.patch.timestamp
        kind = rng.random()
        touched: set[str] = set()
        if kind < 0.15:
            boa.env.time_travel(seconds=rng.choice([1, 1, 2, 13, 3600, 86_400]))
            times.append(boa.env.evm.patch.timestamp)
        elif kind < 0.55:
            owner, to = rng.choice(accounts), rng.choice(accounts)
            balance = model.balances.get(owner, 0)
            amount = rng.choice([0, balance, rng.randint(0, balance), rng.randint(0, 10**6)])
            amount = min(amount, balance)
            if rng.random() < 0.5:
                with boa.env.prank(owner):
                    token.transfer(to, amount)
            else:
                with boa.env.prank(spender):
                    token.transferFrom(owner, to, amount)
            touched |= {model.delegate_of(owner), model.delegate_of(to)}
            model.transfer(owner, to, amount, now)
        elif kind < 0.65:
            owner = rng.choice(accounts)
            amount = rng.randint(0, min(model.balances.get(owner, 0), 10**20))
            if rng.random() < 0.5:
                with boa.env.prank(owner):
                    token.burn(amount)
            else:
                with boa.env.prank(spender):
                    token.burn_from(owner, amount)
            touched.add(model.delegate_of(owner))
            model.burn(owner, amount, now)
        else:
            account = rng.choice(accounts)
            delegatee = rng.choice([*accounts, ZERO, account])
            touched |= {model.delegate_of(account), delegatee}
            with boa.env.prank(account):
                token.delegate(delegatee)
            model.delegate(account, delegatee, now)
        for account in touched - {ZERO}:
            if token.getVotes(account) != model.votes(account):
                mismatches.append(f"step {step}: getVotes({account})")
        if step % 25 == 0 and len(times) > 1:
            boa.env.time_travel(seconds=1)
            times.append(boa.env.evm.patch.timestamp)
            for _ in range(3):
                past = rng.choice(times[:-1]) - rng.choice([0, 0, 1])
                account = rng.choice(accounts)
                if token.getPastVotes(account, past) != model.past_votes(account, past):
                    mismatches.append(f"step {step}: getPastVotes({account}, {past})")
                if token.getPastTotalSupply(past) != model.past_supply(past):
                    mismatches.append(f"step {step}: getPastTotalSupply({past})")
    for account in accounts:
        assert token.getVotes(account) == model.votes(account)
        assert token.balanceOf(account) == model.balances.get(account, 0)
    assert mismatches == []
