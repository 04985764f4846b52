# pragma version ~=0.4.3
"""
@title payouts: pull payments in one ERC-20 token
@notice The contract that holds other people's money credits it here (`_credit`, effects only)
        and each account takes its balance out itself with `withdraw`, so a payout never calls
        an account's code in the middle of the host's logic and one account that cannot receive
        never blocks another's payment.
@dev Use: `initializes: payouts`, call `payouts.__init__(token)` in the host's constructor and
     `exports: (payouts.token, payouts.owed, payouts.total_owed, payouts.withdraw)`.
     Invariants:
     - total_owed == sum of owed[account] over all accounts (every change updates both);
     - token.balanceOf(host) >= total_owed, provided the host credits only tokens it holds or
       receives in the same transaction before it returns (OnchainExecutor: the fee, pulled
       with transferFrom after crediting it; the transaction reverts if the pull fails). A host
       that holds no other tokens keeps token.balanceOf(host) == total_owed;
     - `withdraw` zeroes the balance and logs before the one external call (the token's
       `transfer`): checks, effects, interactions.
     Reverts: NothingToWithdraw, TransferFailed.
"""

from ethereum.ercs import IERC20

# The token every balance here is denominated in; fixed at deploy, the only contract called.
token: public(immutable(IERC20))
owed: public(HashMap[address, uint256])
total_owed: public(uint256)


event Credited:
    account: indexed(address)
    # What the credit pays for, chosen by the host (OnchainExecutor: the version id; the
    # `Inference` log of the same transaction names the model).
    reference: indexed(bytes32)
    amount: uint256


event Withdrawn:
    account: indexed(address)
    amount: uint256


@deploy
def __init__(token_: address):
    """
    @param token_ The ERC-20 all balances are paid in.
    """
    assert token_ != empty(address), "ZeroAddress"
    token = IERC20(token_)


@external
def withdraw() -> uint256:
    """
    @notice Pay out everything credited to the caller.
    @return The amount transferred (the caller's whole balance).
    """
    amount: uint256 = self.owed[msg.sender]
    assert amount > 0, "NothingToWithdraw"
    self.owed[msg.sender] = 0
    self.total_owed -= amount
    log Withdrawn(account=msg.sender, amount=amount)
    assert extcall token.transfer(msg.sender, amount, default_return_value=True), "TransferFailed"
    return amount


@internal
def _credit(account: address, amount: uint256, reference: bytes32):
    """
    @dev Owe `amount` more to `account` (no token moves). The host must hold or pull in the
         tokens within the same transaction (see the invariants above).
    """
    self.owed[account] += amount
    self.total_owed += amount
    log Credited(account=account, reference=reference, amount=amount)
