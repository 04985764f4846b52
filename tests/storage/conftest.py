"""Fixtures for the storage tests: storage nodes on free 127.0.0.1 ports, in-thread or subprocess.

In-thread nodes (uvicorn.Server on a thread) are cheap; subprocess nodes can be killed for real.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount

from aicommons.storage.node import NodePolicy, StorageNode, node_origins
from aicommons.storage.process import free_port, node_answers, start_node_process, wait_for_node
from aicommons.storage.store import LocalStore


def wait_healthy(url: str, timeout: float = 90.0) -> None:
    """Wait for an in-thread node (no process to watch) to answer its health check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node_answers(url):
            return
        time.sleep(0.05)
    raise RuntimeError(f"storage node at {url} did not come up")


@pytest.fixture
def signer() -> LocalAccount:
    return Account.create()


NodeFactory = Callable[..., tuple[str, LocalStore]]


@pytest.fixture
def thread_node(tmp_path: Path) -> Iterator[NodeFactory]:
    """Start nodes in this process; `wrap` may replace the ASGI app (to make a node misbehave),
    `store` serves a given store, `with_node` returns the `StorageNode` (to look at its state)
    instead of its store, `public_urls` replaces the loopback origins."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(
        name: str = "node",
        wrap=None,
        policy: NodePolicy | None = None,
        store: LocalStore | None = None,
        with_node: bool = False,
        public_urls: tuple[str, ...] = (),
    ):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        origins = node_origins("127.0.0.1", port, public_urls)  # as `aic storage serve` does
        node = StorageNode(store or LocalStore(tmp_path / name), policy, origins=origins)
        app = node.app()
        config = uvicorn.Config(
            wrap(app) if wrap else app, host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        wait_healthy(url)
        servers.append((server, thread))
        return (url, node) if with_node else (url, node.store)

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def process_nodes(
    tmp_path: Path,
) -> Iterator[Callable[..., list[tuple[str, subprocess.Popen]]]]:
    """Start `aic storage serve` subprocesses (killable) side by side; stopped at teardown."""
    processes: list[subprocess.Popen] = []

    def start_all(*names: str) -> list[tuple[str, subprocess.Popen]]:
        started = [start_node_process(tmp_path / name) for name in names]
        processes.extend(process for process, _ in started)
        for process, url in started:
            wait_for_node(url, process)
        return [(url, process) for process, url in started]

    yield start_all
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
