"""The development methods hardhat and anvil users know (evm_snapshot, evm_revert,
evm_increaseTime, evm_setNextBlockTimestamp, evm_mine) behave on the devnet as on the hardhat
node: one scenario, run against both. The devnet also keeps snapshots and its clock across
restarts and `kill -9`, and `aic devnet advance` drives either node.

Everything goes over JSON-RPC; the contract is hand-assembled EVM bytecode.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from evm_code import deploy_code
from typer.testing import CliRunner

from aicommons.chain.devnet import DEV_ACCOUNTS, DevnetServer, launch_devnet_process
from aicommons.chain.devnet.control import (
    ChainPosition,
    increase_time,
    mine,
    position,
    revert,
    rpc_request,
    set_next_block_timestamp,
    snapshot,
)
from aicommons.chain.devnet.hardhat_node import launch_hardhat_node
from aicommons.chain.errors import DevnetError
from aicommons.cli import app

pytestmark = pytest.mark.network

SENDER = DEV_ACCOUNTS[0].address
TOPIC = bytes(range(32))
# Each call adds one to storage slot 1 and logs TOPIC:
# PUSH1 1 SLOAD PUSH1 1 ADD PUSH1 1 SSTORE; PUSH32 TOPIC PUSH1 0 PUSH1 0 LOG1; STOP
COUNTER_RUNTIME = (
    bytes.fromhex("600154600101600155") + b"\x7f" + TOPIC + bytes.fromhex("60006000a100")
)


@pytest.fixture(scope="module", params=["devnet", "hardhat"])
def node_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh devnet (in-process) or hardhat node (subprocess)."""
    if request.param == "devnet":
        with DevnetServer(tmp_path_factory.mktemp("devnet"), port=0) as server:
            yield server.url
        return
    process, url = launch_hardhat_node()
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def send(url: str, **transaction: Any) -> str:
    return str(rpc_request(url, "eth_sendTransaction", [{"from": SENDER, **transaction}]))


def receipt(url: str, transaction_hash: str) -> dict[str, Any] | None:
    return rpc_request(url, "eth_getTransactionReceipt", [transaction_hash])


def counter(url: str, contract: str) -> int:
    return int(rpc_request(url, "eth_getStorageAt", [contract, "0x1", "latest"]), 16)


def nonce(url: str) -> int:
    return int(rpc_request(url, "eth_getTransactionCount", [SENDER, "latest"]), 16)


def logged(url: str, contract: str) -> list[str]:
    logs = rpc_request(
        url, "eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "address": contract}]
    )
    return [log["transactionHash"] for log in logs]


def deploy_counter(url: str) -> str:
    created = receipt(url, send(url, data="0x" + deploy_code(COUNTER_RUNTIME).hex()))
    assert created is not None and created["status"] == "0x1"
    return str(created["contractAddress"])


def test_snapshot_revert_and_time_behave_as_on_hardhat(node_url: str) -> None:
    url = node_url
    contract = deploy_counter(url)
    deployed = position(url)
    nonce_at_first = nonce(url)

    first = snapshot(url)
    assert first.startswith("0x") and int(first, 16) >= 1
    first_call = send(url, to=contract)
    assert counter(url, contract) == 1

    # The clock: offsets add up and the next block carries them.
    offset = increase_time(url, 3600)
    assert increase_time(url, 10) == offset + 10
    before = position(url)
    mine(url)
    after = position(url)
    assert after.block_number == before.block_number + 1
    assert before.timestamp + 3600 <= after.timestamp <= int(time.time()) + offset + 10 + 5

    second = snapshot(url)
    assert int(second, 16) > int(first, 16)

    # An explicit timestamp, and time continues from it.
    chosen = after.timestamp + 1000
    mine(url, chosen)
    assert position(url).timestamp == chosen
    mine(url)
    latest = position(url)
    # Hardhat moves one second on; the devnet shares a second's timestamp (it never runs ahead).
    assert chosen <= latest.timestamp <= chosen + 5
    with pytest.raises(DevnetError, match="equal"):
        set_next_block_timestamp(url, latest.timestamp)
    with pytest.raises(DevnetError, match="lower"):
        set_next_block_timestamp(url, latest.timestamp - 1)
    set_next_block_timestamp(url, latest.timestamp + 50)
    second_call = send(url, to=contract)
    mined = receipt(url, second_call)
    assert mined is not None
    block = rpc_request(url, "eth_getBlockByNumber", [mined["blockNumber"], False])
    assert int(block["timestamp"], 16) == latest.timestamp + 50
    assert counter(url, contract) == 2
    third = snapshot(url)

    # Revert to the second snapshot: later blocks, receipts, logs and state are gone, the
    # clock is back, and the snapshot and every later one are consumed.
    assert revert(url, second) is True
    assert position(url) == after
    assert receipt(url, second_call) is None
    assert receipt(url, first_call) is not None
    assert counter(url, contract) == 1
    assert logged(url, contract) == [first_call]
    assert revert(url, third) is False
    assert revert(url, second) is False
    mine(url)
    assert after.timestamp <= position(url).timestamp < chosen

    # Back to the first snapshot: before the first call, clock offset zero again.
    assert revert(url, first) is True
    assert position(url) == deployed
    assert receipt(url, first_call) is None
    assert counter(url, contract) == 0
    assert logged(url, contract) == []
    assert nonce(url) == nonce_at_first
    mine(url)
    assert position(url).timestamp <= int(time.time()) + 5

    # Ids are never handed out twice; an unknown id is just False.
    fourth = snapshot(url)
    assert int(fourth, 16) > int(third, 16)
    assert revert(url, hex(int(fourth, 16) + 100)) is False
    assert revert(url, fourth) is True


def test_aic_devnet_advance_moves_time_and_blocks(node_url: str) -> None:
    before = position(node_url)
    runner = CliRunner()
    result = runner.invoke(
        app, ["devnet", "advance", "--seconds", "86400", "--blocks", "3", "--rpc", node_url]
    )
    assert result.exit_code == 0, result.output
    after = position(node_url)
    assert after.block_number == before.block_number + 3
    assert after.timestamp >= before.timestamp + 86400
    assert f"block {after.block_number}, timestamp {after.timestamp}" in result.output

    idle = runner.invoke(app, ["devnet", "advance", "--blocks", "0", "--rpc", node_url])
    assert idle.exit_code != 0
    assert "nothing to do" in str(idle.exception)


def test_snapshots_and_the_clock_survive_restarts(tmp_path: Path) -> None:
    data = tmp_path / "chain"
    with DevnetServer(data, port=0) as server:
        contract = deploy_counter(server.url)
        deployed = position(server.url)
        first = snapshot(server.url)
        call = send(server.url, to=contract)
        increase_time(server.url, 86_400)
    with DevnetServer(data, port=0) as server:
        mine(server.url)  # the offset was kept
        assert position(server.url).timestamp >= int(time.time()) + 86_400 - 5
        assert revert(server.url, first) is True
    with DevnetServer(data, port=0) as server:
        assert position(server.url) == deployed
        assert receipt(server.url, call) is None
        assert counter(server.url, contract) == 0
        assert revert(server.url, first) is False
        assert int(snapshot(server.url), 16) > int(first, 16)
        mine(server.url)  # the offset was reverted too
        assert position(server.url).timestamp <= int(time.time()) + 5


def test_a_revert_is_durable_once_answered(tmp_path: Path) -> None:
    process, url = launch_devnet_process(tmp_path / "chain")
    try:
        contract = deploy_counter(url)
        deployed = position(url)
        first = snapshot(url)
        call = send(url, to=contract)
        assert revert(url, first) is True
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    process, url = launch_devnet_process(tmp_path / "chain")
    try:
        assert position(url) == deployed
        assert receipt(url, call) is None
        assert counter(url, contract) == 0
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_bad_arguments_are_json_rpc_errors(tmp_path: Path) -> None:
    with DevnetServer(tmp_path / "chain", port=0) as server:
        head = position(server.url)
        for method, params in (
            ("evm_increaseTime", [-5]),
            ("evm_increaseTime", [2**70]),
            ("evm_mine", [2**64]),
            ("evm_revert", ["0xzz"]),
            ("evm_revert", []),
            ("evm_setNextBlockTimestamp", [{"timestamp": 1}]),
        ):
            with pytest.raises(DevnetError):
                rpc_request(server.url, method, params)
        assert position(server.url) == ChainPosition(head.block_number, head.timestamp)
