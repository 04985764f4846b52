# pragma version ~=0.4.3
"""
@title Treasury: the protocol's share of every fee and slash, spent only by governance
@notice Fees and slashes reach the treasury as pull payments: the executor, the market, the
        storage registry and funding rounds credit it and it must `withdraw()` from them.
        `collect(source)` does that for anyone, at any time, so fees flow in without a
        proposal; paying out (grants, quadratic-funding pools) takes a proposal executed by
        the timelock, the treasury's governance.
@dev The treasury holds any ERC-20 (AIC above all): a source names its token with `token()`,
     as every payer in the suite does (the payouts module exports it). Knowing no token at
     construction lets the treasury exist before the token, which is minted at deployment.
     `collect` calls `withdraw()` on whatever address it is given and books only what its
     balance of the source's token gained: a source cannot fake income, and because every other
     entry point is governance-only, a source that calls back can do nothing but collect again
     (refused by the nonreentrancy lock).
     Invariants: tokens leave only through `grant`, `fund_round` and `fund_storage_rewards`
     (governance) and only as much as they name; every inflow through `collect` is logged with its source and token.
     Reverts: ZeroAddress, NotGovernance, ZeroAmount, NothingCollected, TransferFailed, and
     the source's own reason (e.g. NothingToWithdraw).
"""

from ethereum.ercs import IERC20
from snekmate.auth import ownable

initializes: ownable

exports: ownable.owner


interface IPayer:
    def token() -> address: view


interface IStorageRewards:
    def token() -> address: view
    def fund_rewards(amount: uint256): nonpayable


interface IFundingRound:
    def token() -> address: view
    def new_round(pool: uint256, start: uint256, end: uint256, cap_bps: uint256, eligibility: address) -> uint256: nonpayable


event Collected:
    source: indexed(address)
    token: indexed(address)
    amount: uint256


event Granted:
    recipient: indexed(address)
    token: indexed(address)
    amount: uint256
    memo: String[256]


event StorageRewardsFunded:
    registry: indexed(address)
    amount: uint256


event RoundFunded:
    funding_round: indexed(address)
    round_id: indexed(uint256)
    pool: uint256


@deploy
def __init__(governance_: address):
    """
    @param governance_ The timelock: the only account that spends.
    """
    assert governance_ != empty(address), "ZeroAddress"
    ownable.__init__()
    ownable._transfer_ownership(governance_)


@external
@view
def governance() -> address:
    """
    @return The account that spends from the treasury (the timelock).
    """
    return ownable.owner


@external
def transfer_governance(new_governance: address):
    """
    @notice Governance hands the treasury to a new governance (e.g. a new timelock).
    @param new_governance Not the zero address.
    """
    self._check_governance()
    assert new_governance != empty(address), "ZeroAddress"
    ownable._transfer_ownership(new_governance)


@external
@nonreentrant
def collect(source: address) -> uint256:
    """
    @notice Withdraw what `source` owes the treasury (anyone may call this).
    @param source A contract that credits the treasury in its `token()` and pays out with
           `withdraw()` (the executor, the market, the storage registry, a funding round).
    @return The amount of the source's token received.
    """
    token: IERC20 = IERC20(staticcall IPayer(source).token())
    before: uint256 = staticcall token.balanceOf(self)
    raw_call(source, method_id("withdraw()"))
    received: uint256 = staticcall token.balanceOf(self) - before
    assert received > 0, "NothingCollected"
    log Collected(source=source, token=token.address, amount=received)
    return received


@external
def grant(token: address, recipient: address, amount: uint256, memo: String[256]):
    """
    @notice Governance pays `amount` of `token` to `recipient` (a grant, a reward, a refund).
    @param token The ERC-20 paid (CommonsToken for AIC).
    @param recipient Who is paid.
    @param amount In base units.
    @param memo Why, for the record.
    """
    self._check_governance()
    assert recipient != empty(address), "ZeroAddress"
    assert amount > 0, "ZeroAmount"
    log Granted(recipient=recipient, token=token, amount=amount, memo=memo)
    assert extcall IERC20(token).transfer(recipient, amount, default_return_value=True), "TransferFailed"


@external
def fund_round(
    funding_round: address, pool: uint256, start: uint256, end: uint256, cap_bps: uint256, eligibility: address
) -> uint256:
    """
    @notice Governance opens a quadratic-funding round with `pool` from the treasury, which
            is the round's funder (what the round does not match comes back here).
    @param funding_round The FundingRound contract.
    @param pool The matching pool.
    @param start First second contributions are accepted.
    @param end First second they are not.
    @param cap_bps Cap per model in basis points of the pool (0: none).
    @param eligibility Contract answering is_eligible(contributor) (zero: everyone).
    @return The new round's id.
    """
    self._check_governance()
    token: IERC20 = IERC20(staticcall IFundingRound(funding_round).token())
    assert extcall token.approve(funding_round, pool, default_return_value=True), "TransferFailed"
    round_id: uint256 = extcall IFundingRound(funding_round).new_round(pool, start, end, cap_bps, eligibility)
    log RoundFunded(funding_round=funding_round, round_id=round_id, pool=pool)
    return round_id


@external
def fund_storage_rewards(registry: address, amount: uint256):
    """
    @notice Governance moves `amount` from the treasury (the protocol share) into the storage
            registry's reward pool, which pays providers per epoch of proven storage.
    @param registry The StorageRegistry.
    @param amount In base units of the registry's token.
    """
    self._check_governance()
    assert amount > 0, "ZeroAmount"
    token: IERC20 = IERC20(staticcall IStorageRewards(registry).token())
    log StorageRewardsFunded(registry=registry, amount=amount)
    assert extcall token.approve(registry, amount, default_return_value=True), "TransferFailed"
    extcall IStorageRewards(registry).fund_rewards(amount)


@internal
@view
def _check_governance():
    assert msg.sender == ownable.owner, "NotGovernance"
