# pragma version ~=0.4.3
"""
@title plain_token: CommonsToken without votes, the baseline of `aic bench governance`
@notice The same snekmate erc20 surface (transfer, permit, burn) with no checkpoints, so
        `transfer_gas_plain` measures what votes add and nothing else. Never deployed by the
        protocol.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.transfer,
    erc20.transferFrom,
    erc20.approve,
    erc20.burn,
    erc20.burn_from,
)


@deploy
def __init__(holder: address, initial_supply: uint256):
    ownable.__init__()
    erc20.__init__("aicommons", "AIC", 18, "aicommons CommonsToken", "1")
    erc20._mint(holder, initial_supply)
