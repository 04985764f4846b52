# pragma version ~=0.4.3
"""
@title allowlist: a test eligibility contract for funding rounds (is_eligible), which can also
       be told to revert, to show a broken hook only costs its contributors their match.
"""

allowed: public(HashMap[address, bool])
broken: public(bool)


@external
def set_allowed(account: address, allowed: bool):
    self.allowed[account] = allowed


@external
def set_broken(broken: bool):
    self.broken = broken


@external
@view
def is_eligible(contributor: address) -> bool:
    assert not self.broken, "Broken"
    return self.allowed[contributor]
