"""One eth_call or one long transaction must not stall the devnet (issue 14 item 4): the gas of
eth_call and eth_estimateGas is capped (RPC gas cap, block gas limit), and eth_blockNumber and
plain reads answer at once while the EVM runs a looping contract on another thread.

The contracts are hand-assembled EVM bytecode, so the test needs no compiler.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from evm_code import deploy_code

from aicommons.chain.devnet import DEV_ACCOUNTS, DevnetServer
from aicommons.chain.devnet.node import BLOCK_GAS_LIMIT
from aicommons.chain.errors import DevnetStartError

pytestmark = pytest.mark.network

# JUMPDEST; PUSH1 0; JUMP: loops until the gas runs out (12 gas a turn, ~1 s per few Mgas in
# py-evm), so a call's running time is proportional to the gas it is allowed.
LOOP_RUNTIME = bytes.fromhex("5b600056")
# GAS; PUSH1 0; MSTORE; PUSH1 32; PUSH1 0; RETURN: answers with the gas left when it starts.
GAS_LEFT_RUNTIME = bytes.fromhex("5a60005260206000f3")
TEST_GAS_CAP = 10_000_000
# An honest query must answer within this while the EVM is busy; generous for a loaded 2-core
# machine (it takes ~0.1 s), yet far below the seconds a 10^8-gas call used to hold it.
QUICK_S = 2.0
SENDER = Account.from_key(DEV_ACCOUNTS[0].private_key)


def rpc(url: str, method: str, *params: Any, timeout: float = 120) -> dict[str, Any]:
    reply = httpx.post(
        url,
        json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)},
        timeout=timeout,
    )
    return reply.json()


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A devnet with a 10 Mgas RPC cap, a looping contract and a gas-reporting contract."""
    with DevnetServer(
        tmp_path_factory.mktemp("devnet"), port=0, rpc_gas_cap=TEST_GAS_CAP
    ) as server:
        addresses = []
        for runtime in (LOOP_RUNTIME, GAS_LEFT_RUNTIME):
            sent = rpc(
                server.url,
                "eth_sendTransaction",
                {
                    "from": SENDER.address,
                    "data": "0x" + deploy_code(runtime).hex(),
                    "gas": "0x30d40",
                },
            )
            receipt = rpc(server.url, "eth_getTransactionReceipt", sent["result"])["result"]
            addresses.append(receipt["contractAddress"])
        yield server.url, addresses[0], addresses[1]


def gas_left(url: str, contract: str, **request: Any) -> int:
    return int(rpc(url, "eth_call", {"to": contract, **request})["result"], 16)


def test_call_gas_is_capped_at_the_rpc_gas_cap(devnet: tuple[str, str, str]) -> None:
    url, _, gas_reporter = devnet
    # What the contract sees is its gas minus the 21,000 intrinsic gas and a few opcodes.
    for request in ({"gas": hex(10**8)}, {}):
        left = gas_left(url, gas_reporter, **request)
        assert TEST_GAS_CAP - 21_100 < left < TEST_GAS_CAP - 21_000, request
    assert gas_left(url, gas_reporter, gas=hex(100_000)) < 100_000 - 21_000


def test_call_gas_is_capped_at_the_block_gas_limit(tmp_path: Path) -> None:
    with DevnetServer(tmp_path / "chain", port=0, rpc_gas_cap=10**12) as server:
        sent = rpc(
            server.url,
            "eth_sendTransaction",
            {"from": SENDER.address, "data": "0x" + deploy_code(GAS_LEFT_RUNTIME).hex()},
        )
        receipt = rpc(server.url, "eth_getTransactionReceipt", sent["result"])["result"]
        left = gas_left(server.url, receipt["contractAddress"], gas=hex(10**9))
        assert BLOCK_GAS_LIMIT - 21_100 < left < BLOCK_GAS_LIMIT - 21_000


def test_a_gas_cap_below_a_transfer_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DevnetStartError, match="rpc gas cap 20999"):
        DevnetServer(tmp_path / "chain", port=0, rpc_gas_cap=20_999)


def test_estimate_of_a_looping_call_stops_at_the_allowance(devnet: tuple[str, str, str]) -> None:
    url, loop, _ = devnet
    reply = rpc(url, "eth_estimateGas", {"to": loop, "gas": hex(10**8)})
    assert f"gas required exceeds allowance ({TEST_GAS_CAP})" in reply["error"]["message"]


def _while_busy(url: str, busy_method: str, busy_request: dict[str, Any]) -> list[float]:
    """Start `busy_method` on a thread; while it runs, time eth_blockNumber and eth_getBalance.
    Returns the latencies; fails if the busy request ended before the probes did (then the
    test would prove nothing)."""
    outcome: dict[str, Any] = {}

    def run_busy() -> None:
        outcome["reply"] = rpc(url, busy_method, busy_request)

    busy = threading.Thread(target=run_busy)
    busy.start()
    time.sleep(0.5)  # let the server pick it up and start executing
    latencies = []
    try:
        for method, params in (
            ("eth_blockNumber", ()),
            ("eth_getBalance", (DEV_ACCOUNTS[3].address, "latest")),
            ("eth_blockNumber", ()),
        ):
            started = time.monotonic()
            reply = rpc(url, method, *params, timeout=30)
            latencies.append(time.monotonic() - started)
            assert "result" in reply, reply
        assert busy.is_alive(), "the busy request finished before the probes: nothing measured"
    finally:
        busy.join(timeout=120)
    assert "reply" in outcome
    return latencies


def test_block_number_answers_while_a_long_call_runs(devnet: tuple[str, str, str]) -> None:
    url, loop, _ = devnet
    latencies = _while_busy(url, "eth_call", {"to": loop, "gas": hex(10**8)})
    assert max(latencies) < QUICK_S, latencies


def test_block_number_answers_while_a_long_transaction_is_mined(
    devnet: tuple[str, str, str],
) -> None:
    url, loop, _ = devnet
    head = int(rpc(url, "eth_blockNumber")["result"], 16)
    request = {"from": SENDER.address, "to": loop, "gas": hex(TEST_GAS_CAP)}
    latencies = _while_busy(url, "eth_sendTransaction", request)
    assert max(latencies) < QUICK_S, latencies
    # The looping transaction ran out of gas but was mined, in its own block.
    assert int(rpc(url, "eth_blockNumber")["result"], 16) == head + 1
