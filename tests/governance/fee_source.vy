# pragma version ~=0.4.3
"""
@title fee_source: a test contract that owes like the executor does (pull payments), and can
       misbehave: `withdraw` may pay nothing, or call the treasury back first.
"""

import payouts

initializes: payouts

exports: (payouts.token, payouts.owed, payouts.total_owed)


interface ITreasury:
    def collect(source: address) -> uint256: nonpayable


# 0: honest; 1: pays nothing; 2: calls treasury.collect(self) before paying
mode: public(uint256)


@deploy
def __init__(token_: address):
    payouts.__init__(token_)


@external
def charge(payer: address, account: address, amount: uint256):
    payouts._credit(account, amount, empty(bytes32))
    extcall payouts.token.transferFrom(payer, self, amount)


@external
def set_mode(mode_: uint256):
    self.mode = mode_


@external
def withdraw() -> uint256:
    if self.mode == 1:
        return 0
    if self.mode == 2:
        self.mode = 0  # call back once, then pay: without a lock the treasury would book twice
        extcall ITreasury(msg.sender).collect(self)
    amount: uint256 = payouts.owed[msg.sender]
    payouts.owed[msg.sender] = 0
    payouts.total_owed -= amount
    extcall payouts.token.transfer(msg.sender, amount)
    return amount
