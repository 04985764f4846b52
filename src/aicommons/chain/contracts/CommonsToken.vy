# pragma version ~=0.4.3
"""
@title CommonsToken (AIC): the aicommons fee and governance token
@notice A fixed-supply ERC-20 with EIP-2612 permit, built on snekmate's audited erc20 module.
        The whole supply is minted once, at deploy, to a treasury address chosen by the
        deployer; nobody can mint afterwards (no minter role, no owner powers are exported),
        so the supply is a constant anyone can check. Inference fees are paid in this token.
@dev Vote checkpoints arrive with governance: they will wrap `transfer`/`transferFrom` in this
     contract (exporting wrappers instead of the erc20 functions) without changing the storage of
     balances, so the public interface below stays stable.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

implements: IERC20
implements: IERC20Detailed

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

# Only the holder-facing ERC-20 + permit surface; `mint`, `set_minter` and the ownership
# functions stay internal so the supply is fixed forever.
exports: (
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.transfer,
    erc20.transferFrom,
    erc20.approve,
    erc20.burn,
    erc20.burn_from,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
)

# EIP-712 signing domain; a new version would make old permits invalid, so it is fixed here.
_EIP712_NAME: constant(String[50]) = "aicommons CommonsToken"
_EIP712_VERSION: constant(String[20]) = "1"


@deploy
def __init__(treasury: address, initial_supply: uint256):
    """
    @param treasury Receives the entire supply (a multisig or, later, the timelock).
    @param initial_supply Total supply in the smallest unit (18 decimals).
    """
    assert treasury != empty(address), "ZeroAddress"
    ownable.__init__()
    erc20.__init__("aicommons", "AIC", 18, _EIP712_NAME, _EIP712_VERSION)
    erc20._mint(treasury, initial_supply)
    # Drop the deployer's minter role and ownership: the supply above is final.
    erc20.is_minter[msg.sender] = False
    log erc20.RoleMinterChanged(minter=msg.sender, status=False)
    ownable._transfer_ownership(empty(address))
