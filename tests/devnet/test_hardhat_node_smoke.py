"""The pinned hardhat node (npm ci) starts on 127.0.0.1 and mines a plain web3.py transfer, so
CI proves the third-party reference node used by integration tests and benchmarks works.
"""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from aicommons.chain.devnet import DEV_ACCOUNTS
from aicommons.chain.devnet.hardhat_node import HARDHAT_CHAIN_ID, launch_hardhat_node

pytestmark = pytest.mark.network


def test_hardhat_node_answers_and_mines_a_transfer() -> None:
    process, url = launch_hardhat_node()
    try:
        assert url.startswith("http://127.0.0.1:")
        web3 = Web3(Web3.HTTPProvider(url))
        assert web3.eth.chain_id == HARDHAT_CHAIN_ID
        sender = Account.from_key(DEV_ACCOUNTS[0].private_key)
        # Same mnemonic, same first account: code defaulting to DEV_ACCOUNTS works on both nodes.
        assert web3.eth.accounts[0] == sender.address
        recipient = Account.create().address
        transaction = {
            "to": recipient,
            "value": 12345,
            "gas": 21_000,
            "nonce": web3.eth.get_transaction_count(sender.address),
            "chainId": HARDHAT_CHAIN_ID,
            "maxFeePerGas": 2 * web3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
        signed = sender.sign_transaction(transaction)
        receipt = web3.eth.wait_for_transaction_receipt(
            web3.eth.send_raw_transaction(signed.raw_transaction), timeout=30
        )
        assert receipt["status"] == 1
        assert web3.eth.get_balance(recipient) == 12345
    finally:
        process.terminate()
        process.wait(timeout=15)
