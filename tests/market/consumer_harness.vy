# pragma version ~=0.4.3
"""
@title Test harness: a result consumer (callback target) that stores, reverts or burns gas
@notice Only for tests of ComputeMarket's callback: behaviour 0 stores the result, 1 reverts,
        2 loops until it runs out of gas.
"""

market: public(address)
behaviour: public(uint256)
last_request: public(uint256)
last_output: public(Bytes[4096])


@deploy
def __init__(market_: address):
    self.market = market_


@external
def set_behaviour(behaviour_: uint256):
    self.behaviour = behaviour_


@external
def on_result(request_id: uint256, version_id: bytes32, output: Bytes[4096]):
    assert msg.sender == self.market, "NotMarket"
    if self.behaviour == 1:
        raise "ConsumerRefuses"
    if self.behaviour == 2:
        for i: uint256 in range(10**9):
            self.last_request = i
    self.last_request = request_id
    self.last_output = output
