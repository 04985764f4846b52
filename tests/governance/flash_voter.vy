# pragma version ~=0.4.3
"""
@title flash_voter: a test attacker that borrows tokens, votes with them and repays, all in one
       transaction (what a flash loan allows), to show such tokens carry no weight.
"""

interface IToken:
    def transferFrom(owner: address, to: address, amount: uint256) -> bool: nonpayable
    def transfer(to: address, amount: uint256) -> bool: nonpayable
    def delegate(delegatee: address): nonpayable


interface IGovernor:
    def castVote(proposal_id: uint256, support: uint8) -> uint256: nonpayable


token: immutable(IToken)
governor: immutable(IGovernor)


@deploy
def __init__(token_: address, governor_: address):
    token = IToken(token_)
    governor = IGovernor(governor_)


@external
def borrow_and_vote(lender: address, amount: uint256, proposal_id: uint256) -> uint256:
    extcall token.transferFrom(lender, self, amount)
    extcall token.delegate(self)
    weight: uint256 = extcall governor.castVote(proposal_id, 1)
    extcall token.transfer(lender, amount)
    return weight
