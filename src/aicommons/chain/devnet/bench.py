"""`aic bench devnet`: mined transactions per second on our devnet and on hardhat node, driven by
the same web3.py client code (signed EIP-1559 raw transactions from a development key).

A workload is `(web3, account) -> TransactionFactory`: setup (e.g. deploying a token) happens
in the call and is not timed; the factory maps a nonce to the fields (to, value, gas, data)
of the transaction to send with it.
It measures and reports; it never asserts a target.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from aicommons.chain.devnet.accounts import DEV_ACCOUNTS
from aicommons.chain.devnet.hardhat_node import launch_hardhat_node
from aicommons.chain.devnet.server import launch_devnet_process

TransactionFactory = Callable[[int], dict[str, Any]]
Workload = Callable[[Web3, LocalAccount], TransactionFactory]

PRIORITY_FEE_WEI = 1_000_000_000
_RECIPIENT = DEV_ACCOUNTS[1].address


@dataclass(frozen=True)
class BenchRow:
    """One workload's throughput on both nodes; ratio = ours / hardhat."""

    workload: str
    ours_tx_s: float
    hardhat_tx_s: float
    ratio: float
    transactions: int
    # The 1-minute load average at the end of the row: on a shared machine it explains a lot.
    load_1min: float


def eth_transfer_workload(web3: Web3, account: LocalAccount) -> TransactionFactory:
    """Plain 1-wei ether transfers to the second development account."""
    del web3, account  # nothing to set up

    def transfer(_index: int) -> dict[str, Any]:
        return {"to": _RECIPIENT, "value": 1, "gas": 21_000, "data": b""}

    return transfer


def _deploy_suite(web3: Web3, account: LocalAccount) -> tuple[Any, Any, Any]:
    """The aicommons suite with the bench account as treasury: (token, registry, executor)."""
    from aicommons.chain.compile import compile_contract
    from aicommons.chain.deploy import deploy_suite_web3

    addresses = deploy_suite_web3(web3, account, account.address)
    return tuple(
        web3.eth.contract(address=address, abi=compile_contract(name).abi)
        for name, address in (
            ("CommonsToken", addresses.token),
            ("ModelRegistry", addresses.registry),
            ("OnchainExecutor", addresses.executor),
        )
    )


def _fixed_call(web3: Web3, account: LocalAccount, address: str, calldata: bytes) -> int:
    """Gas for a call whose cost does not change between repetitions (estimate + 20%)."""
    estimate = web3.eth.estimate_gas({"from": account.address, "to": address, "data": calldata})
    return int(estimate * 1.2)


def erc20_transfer_workload(web3: Web3, account: LocalAccount) -> TransactionFactory:
    """CommonsToken (snekmate ERC-20) `transfer(recipient, 1)` calls."""
    token, _, _ = _deploy_suite(web3, account)
    calldata = bytes.fromhex(token.encode_abi("transfer", args=[_RECIPIENT, 1])[2:])
    # Later transfers to an already-funded recipient cost the same, so one estimate holds.
    gas = _fixed_call(web3, account, token.address, calldata)

    def transfer(_index: int) -> dict[str, Any]:
        return {"to": token.address, "value": 0, "gas": gas, "data": calldata}

    return transfer


def digits_inference_workload(web3: Web3, account: LocalAccount) -> TransactionFactory:
    """On-chain `infer` of the demo digits MLP (uploaded and verified first, fee 0), cycling
    through 32 held-out digits; each transaction logs its Inference receipt."""
    import numpy as np

    from aicommons.chain.executor import (
        ContractCall,
        encode_input,
        model_from_package,
        program_hash,
        send_web3,
        upload_calls,
    )
    from aicommons.commit import keccak256
    from aicommons.demo import DIGITS_DATA, DIGITS_MLP
    from aicommons.runtime.quantize import quantize_onnx

    _, registry, executor = _deploy_suite(web3, account)
    with np.load(DIGITS_DATA) as data:
        package = quantize_onnx(DIGITS_MLP, data["x_calib"])
        samples = package.quantize_input(data["x_test"][:32])
    version_id = package.version_id
    model_id = keccak256(b"digits-mlp")
    registration = [
        ContractCall("register_model", ("digits-mlp", [account.address])),
        ContractCall(
            "publish_version",
            (
                model_id,
                version_id,
                package.weights_root,
                program_hash(package),
                ["bench"],
                "MIT",
                [],
                1,
                0,
            ),
        ),
    ]
    send_web3(registry, registration, account)
    send_web3(executor, upload_calls(model_id, version_id, model_from_package(package)), account)
    calls = [
        bytes.fromhex(
            executor.encode_abi("infer", args=[model_id, version_id, encode_input(x)])[2:]
        )
        for x in samples
    ]
    gas = max(_fixed_call(web3, account, executor.address, data) for data in calls[:4])

    def infer(index: int) -> dict[str, Any]:
        return {"to": executor.address, "value": 0, "gas": gas, "data": calls[index % len(calls)]}

    return infer


WORKLOADS: dict[str, Workload] = {
    "eth-transfer": eth_transfer_workload,
    "erc20-transfer": erc20_transfer_workload,
    "digits-inference": digits_inference_workload,
}


def send_and_wait(
    web3: Web3, account: LocalAccount, fields: dict[str, Any], nonce: int
) -> dict[str, Any]:
    """Sign `fields` as an EIP-1559 transaction, send it raw, and return its mined receipt."""
    max_fee = 2 * web3.eth.get_block("latest")["baseFeePerGas"] + PRIORITY_FEE_WEI
    signed = sign_eip1559(account, fields, nonce, web3.eth.chain_id, max_fee)
    transaction_hash = web3.eth.send_raw_transaction(signed)
    return dict(web3.eth.wait_for_transaction_receipt(transaction_hash, timeout=60))


def sign_eip1559(
    account: LocalAccount, fields: dict[str, Any], nonce: int, chain_id: int, max_fee: int
) -> bytes:
    """A signed type-2 transaction with a 1 gwei tip (what a wallet would send)."""
    transaction = {
        **fields,
        "nonce": nonce,
        "chainId": chain_id,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": PRIORITY_FEE_WEI,
        "type": 2,
    }
    if transaction.get("to") is None:
        transaction.pop("to", None)
    return bytes(account.sign_transaction(transaction).raw_transaction)


class ThroughputRun:
    """One workload against one node: set up once, then timed batches that add up."""

    def __init__(self, url: str, workload: Workload) -> None:
        self.web3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
        self.account = Account.from_key(DEV_ACCOUNTS[0].private_key)
        self.next_transaction = workload(self.web3, self.account)
        self.nonce = self.web3.eth.get_transaction_count(self.account.address)
        self.chain_id = self.web3.eth.chain_id
        # Fees fixed once: the base fee only falls on a chain of near-empty blocks.
        self.max_fee = 2 * self.web3.eth.get_block("latest")["baseFeePerGas"] + PRIORITY_FEE_WEI
        self.timed_transactions = 0
        self.timed_seconds = 0.0

    def run_batch(self, count: int, timed: bool = True) -> None:
        """Send `count` transactions one after another, each waited for until mined."""
        started = time.perf_counter()
        for _ in range(count):
            fields = self.next_transaction(self.nonce)
            raw = sign_eip1559(self.account, fields, self.nonce, self.chain_id, self.max_fee)
            transaction_hash = self.web3.eth.send_raw_transaction(raw)
            receipt = self.web3.eth.wait_for_transaction_receipt(transaction_hash, timeout=60)
            if receipt["status"] != 1:
                raise RuntimeError(f"bench transaction with nonce {self.nonce} reverted")
            self.nonce += 1
        if timed:
            self.timed_seconds += time.perf_counter() - started
            self.timed_transactions += count

    @property
    def transactions_per_second(self) -> float:
        return self.timed_transactions / self.timed_seconds


def compare_throughput(
    ours_url: str, hardhat_url: str, workload: Workload, transactions: int, batches: int = 6
) -> tuple[float, float]:
    """(ours, hardhat) tx/s. Batches alternate between the nodes, so a busy machine (other
    processes competing for the CPU) slows both sides alike instead of skewing the ratio."""
    ours = ThroughputRun(ours_url, workload)
    theirs = ThroughputRun(hardhat_url, workload)
    for run in (ours, theirs):
        run.run_batch(5, timed=False)  # warm-up: connection, caches, JIT on the node side
    batch_size = max(1, transactions // batches)
    for _ in range(batches):
        ours.run_batch(batch_size)
        theirs.run_batch(batch_size)
    return ours.transactions_per_second, theirs.transactions_per_second


def run_devnet_bench(
    workloads: dict[str, Workload] | None = None, transactions: int = 300
) -> list[BenchRow]:
    """Run each workload on a fresh devnet (temp data dir) and a fresh hardhat node."""
    selected = workloads if workloads is not None else WORKLOADS
    data_dir = Path(tempfile.mkdtemp(prefix="aic-bench-devnet-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        devnet_process, devnet_url = launch_devnet_process(data_dir / "chain")
        processes.append(devnet_process)
        hardhat_process, hardhat_url = launch_hardhat_node()
        processes.append(hardhat_process)
        rows = []
        for name, workload in selected.items():
            ours, theirs = compare_throughput(devnet_url, hardhat_url, workload, transactions)
            rows.append(
                BenchRow(
                    workload=name,
                    ours_tx_s=round(ours, 1),
                    hardhat_tx_s=round(theirs, 1),
                    ratio=round(ours / theirs, 3),
                    transactions=transactions,
                    load_1min=round(os.getloadavg()[0], 2),
                )
            )
        return rows
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def rows_as_dicts(rows: list[BenchRow]) -> list[dict[str, Any]]:
    """Rows as plain dicts (for --json)."""
    return [asdict(row) for row in rows]
