"""Fixtures for the storage tests: storage nodes on free 127.0.0.1 ports, in-thread or subprocess.

In-thread nodes (uvicorn.Server on a thread) are cheap; subprocess nodes can be killed for real.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from eth_account import Account
from eth_account.signers.local import LocalAccount

from aicommons.storage.node import NodePolicy, create_app
from aicommons.storage.store import LocalStore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"storage node at {url} did not come up")


@pytest.fixture
def signer() -> LocalAccount:
    return Account.create()


NodeFactory = Callable[..., tuple[str, LocalStore]]


@pytest.fixture
def thread_node(tmp_path: Path) -> Iterator[NodeFactory]:
    """Start nodes in this process; `wrap` may replace the ASGI app (to make a node misbehave)."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(name: str = "node", wrap=None, policy: NodePolicy | None = None):
        store = LocalStore(tmp_path / name)
        app = create_app(store, policy)
        port = free_port()
        config = uvicorn.Config(
            wrap(app) if wrap else app, host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        servers.append((server, thread))
        return url, store

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
        started = [spawn(name) for name in names]
        for url, _ in started:
            wait_healthy(url)
        return started

    def spawn(name: str) -> tuple[str, subprocess.Popen]:
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from aicommons.cli import main; main()",
                "storage",
                "serve",
                "--dir",
                str(tmp_path / name),
                "--port",
                str(port),
            ],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        processes.append(process)
        return f"http://127.0.0.1:{port}", process

    yield start_all
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
