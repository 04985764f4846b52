# pragma version ~=0.4.3
"""
@title Test harness: a host of the payouts module and the fee_split module (tests only)
@notice `credit_split` does what OnchainExecutor's `_charge` does with a fee, minus the pull, so
        the modules are tested on their own; `split` exposes the pure split.
"""
import fee_split
import payouts

initializes: payouts

exports: (payouts.token, payouts.owed, payouts.total_owed, payouts.withdraw)


@deploy
def __init__(token_: address):
    payouts.__init__(token_)


@external
def credit(account: address, amount: uint256, reference: bytes32):
    payouts._credit(account, amount, reference)


@external
@pure
def split(
    fee: uint256,
    protocol_share_bps: uint256,
    attribution: DynArray[fee_split.Attribution, fee_split.MAX_ATTRIBUTION],
    treasury: address,
) -> DynArray[fee_split.Credit, fee_split.MAX_CREDITS]:
    return fee_split.split(fee, protocol_share_bps, attribution, treasury)
