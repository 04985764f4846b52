# pragma version ~=0.4.3
"""
@title CommonsToken (AIC): the aicommons fee and governance token
@notice A fixed-supply ERC-20 with EIP-2612 permit, built on snekmate's audited erc20 module,
        and with checkpointed, delegated votes (ERC-5805, clock ERC-6372 "mode=timestamp", the
        `votes` module). The whole supply is minted once, at deploy, to a treasury address
        chosen by the deployer; nobody can mint afterwards (no minter role, no owner powers are
        exported), so the supply is a constant anyone can check. Inference fees are paid in
        this token; the governor weighs votes with it.
@dev Every path that moves tokens moves votes: `transfer`, `transferFrom` (also after a
     `permit`), `burn` and `burn_from` go through the votes module's `_transfer` and `_burn`,
     which keep each balance in one storage word with the holder's vote state (so a transfer
     between delegated holders costs at most twice a plain one; docs/governance.md, "Gas");
     the constructor mints through `votes._mint`. snekmate's erc20 keeps the total supply,
     allowances, permit, nonces and the EIP-712 domain.
     Reverts: ZeroAddress, SupplyTooLarge (above votes.MAX_SUPPLY), snekmate erc20's and
     votes' reasons.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

implements: IERC20
implements: IERC20Detailed

from snekmate.auth import ownable
from snekmate.tokens import erc20

import votes

initializes: ownable
initializes: erc20[ownable := ownable]
initializes: votes[erc20 := erc20]

# The holder-facing ERC-20 + permit surface and the votes; `mint`, `set_minter` and the
# ownership functions stay internal so the supply is fixed forever. The balances are the
# votes module's; the four functions that move or destroy tokens are defined below on it.
exports: (
    erc20.totalSupply,
    votes.balanceOf,
    erc20.allowance,
    erc20.approve,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    votes.clock,
    votes.CLOCK_MODE,
    votes.delegates,
    votes.getVotes,
    votes.getPastVotes,
    votes.getPastTotalSupply,
    votes.delegate,
    votes.delegateBySig,
)

# EIP-712 signing domain (permit and delegateBySig); a new version would make old signatures
# invalid, so it is fixed here.
_EIP712_NAME: constant(String[50]) = "aicommons CommonsToken"
_EIP712_VERSION: constant(String[20]) = "1"


@deploy
def __init__(treasury: address, initial_supply: uint256):
    """
    @param treasury Receives the entire supply (the Treasury contract, or a development
           account on a devnet).
    @param initial_supply Total supply in the smallest unit (18 decimals), at most
           votes.MAX_SUPPLY (2^90 - 1, about 1.24e27, i.e. 1.24 billion AIC).
    """
    assert treasury != empty(address), "ZeroAddress"
    assert initial_supply <= votes.MAX_SUPPLY, "SupplyTooLarge"
    ownable.__init__()
    erc20.__init__("aicommons", "AIC", 18, _EIP712_NAME, _EIP712_VERSION)
    votes._mint(treasury, initial_supply)
    # Drop the deployer's minter role and ownership: the supply above is final.
    erc20.is_minter[msg.sender] = False
    log erc20.RoleMinterChanged(minter=msg.sender, status=False)
    ownable._transfer_ownership(empty(address))


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Move `amount` of the caller's tokens (and the votes they carry) to `to`.
    @param to The receiver, not the zero address.
    @param amount In base units.
    @return True (failures revert).
    """
    votes._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Move `amount` of `owner`'s tokens to `to` within the caller's allowance (set by
            `approve` or a `permit` signature).
    @param owner Whose tokens.
    @param to The receiver, not the zero address.
    @param amount In base units.
    @return True (failures revert).
    """
    erc20._spend_allowance(owner, msg.sender, amount)
    votes._transfer(owner, to, amount)
    return True


@external
def burn(amount: uint256):
    """
    @notice Destroy `amount` of the caller's tokens (and their votes).
    @param amount In base units.
    """
    votes._burn(msg.sender, amount)


@external
def burn_from(owner: address, amount: uint256):
    """
    @notice Destroy `amount` of `owner`'s tokens within the caller's allowance.
    @param owner Whose tokens.
    @param amount In base units.
    """
    erc20._spend_allowance(owner, msg.sender, amount)
    votes._burn(owner, amount)
