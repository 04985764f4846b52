"""The devnet's block clock: a block carries the time it was mined (not its parent's), and the
chain never runs ahead of the wall clock except by evm_increaseTime, even when many blocks are
mined in one second (they share its timestamp; deadlines in seconds then mean wall seconds).
"""

from __future__ import annotations

import time
from pathlib import Path

from eth_account import Account

from aicommons.chain.devnet import DEV_ACCOUNTS
from aicommons.chain.devnet.node import CHAIN_ID, DevnetChain

SENDER = Account.from_key(DEV_ACCOUNTS[0].private_key)


def _transfer(chain: DevnetChain, nonce: int) -> int:
    """Mine one 0-value self-transfer; returns its block's timestamp."""
    tx = {"to": SENDER.address, "value": 0, "gas": 21_000, "chainId": CHAIN_ID}
    tx |= {"nonce": nonce, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    tx_hash = chain.send_raw_transaction(bytes(SENDER.sign_transaction(tx).raw_transaction))
    mined = chain.mined_transaction(tx_hash)
    assert mined is not None
    return int(mined.header.timestamp)


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
