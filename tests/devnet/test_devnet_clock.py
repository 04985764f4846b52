"""The devnet's block clock: a block carries the time it was mined (not its parent's), and the
chain never runs ahead of the wall clock except by evm_increaseTime, even when many blocks are
mined in one second (they share its timestamp; deadlines in seconds then mean wall seconds).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import to_checksum_address
from evm_code import deploy_code

from aicommons.chain.devnet import DEV_ACCOUNTS
from aicommons.chain.devnet.node import (
    CHAIN_ID,
    CallRequest,
    DevnetChain,
    created_contract_address,
)

SENDER = Account.from_key(DEV_ACCOUNTS[0].private_key)


# Writes 1 to storage slots 3T, 3T+1 and 3T+2, T = block.timestamp: three fresh slots (~66 000
# gas) in a new second, three no-op writes in a second that already wrote them.
# (PUSH1 1 PUSH1 3 TIMESTAMP MUL PUSH1 k ADD SSTORE) for k = 0, 1, 2; STOP
PER_SECOND_RUNTIME = bytes.fromhex("60016003420260000155600160034202600101556001600342026002015500")


def _send(
    chain: DevnetChain, nonce: int, *, to: str | None = None, data: bytes = b"", gas: int = 21_000
) -> Any:
    """Mine one transaction from SENDER (a 0-value self-transfer by default); its record."""
    tx = {"to": SENDER.address if to is None else to, "value": 0, "gas": gas, "chainId": CHAIN_ID}
    tx |= {"nonce": nonce, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, "data": data}
    if to == "":
        del tx["to"]
    tx_hash = chain.send_raw_transaction(bytes(SENDER.sign_transaction(tx).raw_transaction))
    mined = chain.mined_transaction(tx_hash)
    assert mined is not None
    return mined


def _transfer(chain: DevnetChain, nonce: int) -> int:
    """Mine one 0-value self-transfer; returns its block's timestamp."""
    return int(_send(chain, nonce).header.timestamp)


def test_blocks_carry_their_own_time_and_never_run_ahead(tmp_path: Path) -> None:
    chain = DevnetChain(tmp_path / "chain")
    time.sleep(2.2)  # a pause: the next block must carry the time it is mined, not older
    before = int(time.time())
    stamped = _transfer(chain, 0)
    assert before <= stamped <= int(time.time())
    # A burst of blocks in a few seconds: each at most the wall clock, never decreasing.
    stamps = [_transfer(chain, nonce) for nonce in range(1, 25)]
    assert stamps == sorted(stamps)
    assert stamps[-1] <= int(time.time())
    # Only evm_increaseTime moves the chain ahead of the wall clock, by exactly its offset.
    chain.increase_time(1000)
    ahead = _transfer(chain, 25)
    assert int(time.time()) + 1000 - 2 <= ahead <= int(time.time()) + 1000


def test_a_gas_estimate_suffices_in_the_same_second_and_in_the_next(tmp_path: Path) -> None:
    """A block may share its parent's second or start a new one, and gas can depend on which
    (here: fresh storage slots keyed by the timestamp): the estimate covers both."""
    chain = DevnetChain(tmp_path / "chain")
    created = _send(chain, 0, to="", data=deploy_code(PER_SECOND_RUNTIME), gas=200_000)
    contract = created_contract_address(created)
    assert contract is not None
    fresh = 21_000 + 3 * 22_100  # three zero-to-non-zero writes (cold slots)
    for nonce in range(1, 6):
        _send(
            chain, nonce, to=to_checksum_address(contract), gas=200_000
        )  # this second's slots written
        request = CallRequest(
            sender=bytes.fromhex(SENDER.address[2:]),
            to=contract,
            data=b"",
            value=0,
            gas=None,
            gas_price=None,
            max_fee_per_gas=None,
            max_priority_fee_per_gas=None,
            nonce=None,
        )
        assert chain.estimate_gas(request) >= fresh
