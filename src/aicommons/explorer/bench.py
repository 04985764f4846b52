"""`aic bench explorer`: index a devnet full of real on-chain inferences and time the pages.

A fresh devnet and storage node (child processes, temporary $AIC_HOME) get the suite and the
demo models; then the digits MLP runs `inferences` times on the real executor (signed locally,
sent in JSON-RPC batches as fast as the devnet mines them). The indexer indexes the chain from
scratch (`index_events_per_s`), and 20 concurrent clients fetch the home, model, version and
receipt pages from the explorer running as its own process (`page_p50_ms`, `page_p95_ms`).
It measures and reports; it asserts no target.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SEND_BATCH = 100
"""Signed transactions per JSON-RPC batch request."""
INFER_GAS = 600_000
"""Gas limit per inference transaction (the digits MLP uses ~210k)."""


def _generate_inferences(
    rpc_url: str, storage_url: str, count: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Publish the demo models and send `count` paid inferences of the digits MLP."""
    import httpx

    from aicommons.chain.accounts import load_account
    from aicommons.chain.devnet.bench import sign_eip1559
    from aicommons.chain.executor import encode_input
    from aicommons.demo import DIGITS_DATA
    from aicommons.sdk.client import Client
    from aicommons.sdk.demo import publish_demo_models
    from aicommons.sdk.deployment import deploy_suite

    client = Client(rpc_url, account=load_account("dev0", None), storage_nodes=[storage_url])
    deploy_suite(client.w3, client.account)
    publish_demo_models(client)
    version = client.registry.resolve("digits-mlp")
    package = client.storage.fetch_package(version)
    with np.load(DIGITS_DATA) as data:
        samples = package.quantize_input(data["x_test"].astype(np.float32))
    executor = client.contract("OnchainExecutor")
    model_id = bytes.fromhex(version.model_id.removeprefix("0x"))
    client.tokens.approve(executor.address, version.fee * count)
    account, w3 = client.account, client.w3
    nonce = w3.eth.get_transaction_count(account.address)
    max_fee = 2 * int(w3.eth.get_block("latest")["baseFeePerGas"]) + 10**9
    calldata = [
        executor.encode_abi("infer", args=[model_id, version.version_bytes, encode_input(row)])
        for row in samples.reshape(len(samples), -1)
    ]
    progress(f"sending {count} inferences of digits-mlp")
    started = time.perf_counter()
    last_hash = None
    with httpx.Client(timeout=600) as http:
        for offset in range(0, count, SEND_BATCH):
            batch = []
            for i in range(offset, min(count, offset + SEND_BATCH)):
                fields = {
                    "to": executor.address,
                    "data": calldata[i % len(calldata)],
                    "gas": INFER_GAS,
                    "value": 0,
                }
                raw = sign_eip1559(account, fields, nonce, client.chain_id, max_fee)
                batch.append(
                    {
                        "jsonrpc": "2.0",
                        "id": i,
                        "method": "eth_sendRawTransaction",
                        "params": ["0x" + raw.hex()],
                    }
                )
                nonce += 1
            replies = http.post(rpc_url, json=batch).json()
            refused = [reply["error"] for reply in replies if "error" in reply]
            if refused:
                raise RuntimeError(f"the devnet refused an inference transaction: {refused[0]}")
            last_hash = replies[-1]["result"]
        receipt = w3.eth.wait_for_transaction_receipt(last_hash, timeout=3600)
    seconds = time.perf_counter() - started
    if receipt["status"] != 1:
        raise RuntimeError("the last inference transaction reverted")
    return {
        "version_id": version.version_id,
        "devnet_tx_per_s": count / seconds,
        "generate_s": seconds,
    }


def _page_latencies(
    base_url: str, paths: list[str], *, clients: int, requests_per_client: int
) -> list[float]:
    """Each client fetches the pages round-robin; returns every request's latency in ms."""
    import httpx

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client_loop(offset: int) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            start.wait()
            for n in range(requests_per_client):
                path = paths[(offset + n) % len(paths)]
                began = time.perf_counter()
                status = http.get(path).status_code
                elapsed = (time.perf_counter() - began) * 1000
                with lock:
                    latencies.append(elapsed)
                    if status != 200:
                        failures.append(f"{path}: {status}")

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} page requests failed, e.g. {failures[0]}")
    return latencies


def run_explorer_bench(
    *,
    inferences: int = 10_000,
    clients: int = 20,
    requests_per_client: int = 40,
    receipts: int = 20,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Generate, index, serve and time; returns the figures (see the module docstring)."""
    from aicommons.chain.devnet import launch_devnet_process
    from aicommons.explorer.indexer import open_index
    from aicommons.explorer.server import launch_explorer_process, pick_port
    from aicommons.sdk.client import Client
    from aicommons.storage.process import launch_node_process

    home = Path(tempfile.mkdtemp(prefix="aic-bench-explorer-"))
    previous_home = os.environ.get("AIC_HOME")
    os.environ["AIC_HOME"] = str(home)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        devnet, rpc_url = launch_devnet_process(home / "devnet")
        processes.append(devnet)
        storage, storage_url = launch_node_process(
            home / "storage", log_path=home / "storage-node.log"
        )
        processes.append(storage)
        generated = _generate_inferences(rpc_url, storage_url, inferences, progress)

        progress("indexing the chain from scratch")
        client = Client(rpc_url, storage_nodes=[storage_url])
        indexer, index = open_index(client.w3, client.deployment)
        stats = indexer.sync()
        indexed_inferences = index.count(contract="OnchainExecutor", event="Inference")
        tx_hashes = [
            e.tx_hash
            for e in index.events(
                contract="OnchainExecutor", event="Inference", newest_first=True, limit=receipts
            )
        ]

        progress("serving the explorer and timing pages")
        explorer, explorer_url = launch_explorer_process(
            rpc_url,
            port=pick_port(),
            storage_nodes=[storage_url],
            log_path=home / "explorer.log",
        )
        processes.append(explorer)
        version_path = f"/models/digits-mlp/versions/{generated['version_id']}"
        paths = ["/", "/models/digits-mlp", version_path]
        paths += [f"/inferences/{tx_hash}" for tx_hash in tx_hashes]
        _page_latencies(explorer_url, paths, clients=1, requests_per_client=len(paths))  # warm
        latencies = sorted(
            _page_latencies(
                explorer_url, paths, clients=clients, requests_per_client=requests_per_client
            )
        )
        return {
            "inferences": inferences,
            "indexed_inference_events": indexed_inferences,
            "indexed_events": stats.events,
            "indexed_blocks": stats.blocks,
            "index_s": round(stats.seconds, 3),
            "index_events_per_s": round(stats.events_per_s, 1),
            "devnet_tx_per_s": round(generated["devnet_tx_per_s"], 1),
            "index_vs_devnet": round(stats.events_per_s / generated["devnet_tx_per_s"], 1),
            "clients": clients,
            "page_requests": len(latencies),
            "page_p50_ms": round(statistics.median(latencies), 1),
            "page_p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
            "load_1min": round(os.getloadavg()[0], 2),
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if previous_home is None:
            os.environ.pop("AIC_HOME", None)
        else:
            os.environ["AIC_HOME"] = previous_home
        shutil.rmtree(home, ignore_errors=True)
