"""Every transaction whose hash the devnet returned survives `kill -9` and a restart on the
same data dir: balances, nonces, blocks, receipts, logs and contract state.

The client side is plain web3.py; the project only starts and stops the server process.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import vyper
from eth_account import Account
from web3 import Web3

from aicommons.chain.devnet import DEV_ACCOUNTS, launch_devnet_process

pytestmark = pytest.mark.network

EMITTER_SOURCE = """\
# pragma version ~=0.4.3
event Ping:
    counter: indexed(uint256)

pings: public(uint256)

@external
def ping():
    self.pings += 1
    log Ping(counter=self.pings)
"""
TRANSFERS = 12
PINGS = 6


def _send(web3: Web3, account: object, fields: dict) -> bytes:
    transaction = {
        **fields,
        "nonce": web3.eth.get_transaction_count(account.address),
        "chainId": 1337,
        "maxFeePerGas": 2 * web3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    # Only the returned hash counts as acknowledged; no receipt is fetched before the kill.
    return bytes(
        web3.eth.send_raw_transaction(account.sign_transaction(transaction).raw_transaction)
    )


def test_acknowledged_transactions_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "chain"
    process, url = launch_devnet_process(data_dir)
    web3 = Web3(Web3.HTTPProvider(url))
    sender = Account.from_key(DEV_ACCOUNTS[3].private_key)
    recipient = Account.create().address
    compiled = vyper.compile_code(EMITTER_SOURCE, output_formats=["abi", "bytecode"])
    deploy_hash = _send(web3, sender, {"data": compiled["bytecode"], "gas": 500_000})
    emitter_address = web3.eth.wait_for_transaction_receipt(deploy_hash)["contractAddress"]
    emitter = web3.eth.contract(address=emitter_address, abi=compiled["abi"])
    ping_data = emitter.encode_abi("ping")

    hashes = [
        _send(web3, sender, {"to": recipient, "value": 1000 + i, "gas": 21_000})
        for i in range(TRANSFERS)
    ]
    hashes += [
        _send(web3, sender, {"to": emitter_address, "data": ping_data, "gas": 100_000})
        for _ in range(PINGS)
    ]
    head_before = web3.eth.block_number
    head_hash_before = web3.eth.get_block("latest")["hash"]
    sender_balance_before = web3.eth.get_balance(sender.address)

    # Then a second account streams transfers and the node is killed in mid-stream: every hash
    # it got back must survive, whichever request the kill interrupted.
    streamed = _stream_until_killed(url, process)

    restarted, restarted_url = launch_devnet_process(data_dir)
    try:
        web3 = Web3(Web3.HTTPProvider(restarted_url))
        streamer = DEV_ACCOUNTS[4].address
        mined_stream = web3.eth.get_transaction_count(streamer)
        assert mined_stream >= len(streamed) >= 10
        for transaction_hash in streamed:
            assert web3.eth.get_transaction_receipt(transaction_hash)["status"] == 1
        assert web3.eth.block_number == head_before + mined_stream
        assert web3.eth.get_block(head_before)["hash"] == head_hash_before

        assert web3.eth.get_balance(recipient) == sum(1000 + i for i in range(TRANSFERS))
        assert web3.eth.get_balance(sender.address) == sender_balance_before
        assert web3.eth.get_transaction_count(sender.address) == 1 + TRANSFERS + PINGS
        for transaction_hash in hashes:
            receipt = web3.eth.get_transaction_receipt(transaction_hash)
            assert receipt["status"] == 1
            block = web3.eth.get_block(receipt["blockNumber"])
            assert block["transactions"] == [receipt["transactionHash"]]
        emitter = web3.eth.contract(address=emitter_address, abi=compiled["abi"])
        assert emitter.functions.pings().call() == PINGS
        logs = emitter.events.Ping.get_logs(from_block=0)
        assert [entry["args"]["counter"] for entry in logs] == list(range(1, PINGS + 1))

        # The restarted chain keeps going from where it was.
        follow_up = _send(web3, sender, {"to": recipient, "value": 1, "gas": 21_000})
        follow_up_block = web3.eth.wait_for_transaction_receipt(follow_up)["blockNumber"]
        assert follow_up_block == head_before + mined_stream + 1
    finally:
        restarted.terminate()
        assert restarted.wait(timeout=15) == 0


def _stream_until_killed(url: str, process: subprocess.Popen[bytes]) -> list[bytes]:
    """Send 1-wei transfers from a thread; SIGKILL the node once some are acknowledged.
    Returns the hashes the node acknowledged."""
    sender = Account.from_key(DEV_ACCOUNTS[4].private_key)
    recipient = Account.create().address
    acknowledged: list[bytes] = []

    def send_until_killed() -> None:
        web3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 5}))
        for nonce in range(10_000):
            transaction = {
                "to": recipient,
                "value": 1,
                "gas": 21_000,
                "nonce": nonce,
                "chainId": 1337,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9,
            }
            raw = sender.sign_transaction(transaction).raw_transaction
            try:
                acknowledged.append(bytes(web3.eth.send_raw_transaction(raw)))
            except Exception:  # the node died mid-request: that one was never acknowledged
                return

    sending = threading.Thread(target=send_until_killed)
    sending.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    sending.join(timeout=15)
    return list(acknowledged)
