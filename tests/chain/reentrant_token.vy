# pragma version ~=0.4.3
"""
@title Test token whose `transfer` calls back into the payer's `withdraw` (tests only)
@notice Models a token with receive hooks (ERC-777 style): the first transfer it is asked to
        make re-enters `withdraw` on the contract that pays. Checks-effects-interactions must
        make that second withdrawal fail, so the account is paid once.
"""

interface Payer:
    def withdraw() -> uint256: nonpayable

balanceOf: public(HashMap[address, uint256])
reentered: public(bool)
reentry_paid: public(bool)


@external
def attack(payer: address):
    """
    @notice Withdraw this token's own balance from `payer` (so the callback's msg.sender is ours).
    """
    extcall Payer(payer).withdraw()


@external
def transfer(to: address, amount: uint256) -> bool:
    self.balanceOf[to] += amount
    if not self.reentered:
        self.reentered = True
        success: bool = False
        response: Bytes[32] = b""
        success, response = raw_call(
            msg.sender, method_id("withdraw()"), max_outsize=32, revert_on_failure=False
        )
        self.reentry_paid = success
    return True
