"""Run the explorer: the indexer on a background thread and the web app under uvicorn.

Binds 127.0.0.1 unless told otherwise. `ExplorerServer` runs both in-process (tests, the bench);
`serve` blocks (`aic explorer`); `launch_explorer_process` starts it as a child (`aic up`).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aicommons.explorer.errors import IndexerError
from aicommons.explorer.indexer import Indexer, open_index
from aicommons.explorer.views import Explorer

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def pick_port(host: str = DEFAULT_HOST, preferred: int = DEFAULT_PORT) -> int:
    """`preferred` if it is free on `host`, else any free port."""
    import socket

    from aicommons.storage.process import free_port

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, preferred))
        except OSError:
            return free_port(host)
    return preferred


def build_explorer(rpc_url: str, *, storage_nodes: Sequence[str] = ()) -> tuple[Explorer, Indexer]:
    """An `Explorer` over `rpc_url`'s deployment and the indexer that keeps its index current."""
    from aicommons.sdk.client import Client
    from aicommons.sdk.errors import SdkError

    client = Client(rpc_url, storage_nodes=storage_nodes, timeout=30.0)
    try:
        deployment = client.deployment
    except SdkError as exc:
        raise IndexerError(f"nothing to explore at {rpc_url}: {exc}") from None
    indexer, index = open_index(client.w3, deployment)
    return Explorer(client, index), indexer


@dataclass
class ExplorerServer:
    """The explorer app and its indexer, served on a thread (stop with `stop`)."""

    rpc_url: str
    storage_nodes: Sequence[str] = ()
    host: str = DEFAULT_HOST
    port: int = 0
    poll_s: float = 1.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _server: Any = None

    def start(self) -> ExplorerServer:
        import uvicorn

        from aicommons.explorer.app import create_app
        from aicommons.storage.process import free_port

        explorer, indexer = build_explorer(self.rpc_url, storage_nodes=self.storage_nodes)
        self.explorer, self.indexer = explorer, indexer
        indexer.sync()  # the first pages already show the whole chain
        if self.port == 0:
            self.port = free_port()
        self._server = uvicorn.Server(
            uvicorn.Config(
                create_app(explorer), host=self.host, port=self.port, log_level="warning"
            )
        )
        self._threads = [
            threading.Thread(
                target=indexer.run, args=(self._stop,), kwargs={"poll_s": self.poll_s}, daemon=True
            ),
            threading.Thread(target=self._server.run, daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._threads[1].is_alive():
                raise IndexerError(f"the explorer did not start on {self.url}")
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=15)


def serve(
    rpc_url: str,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    storage_nodes: Sequence[str] = (),
) -> None:
    """Index `rpc_url`'s deployment and serve the explorer until interrupted."""
    import uvicorn

    from aicommons.explorer.app import create_app

    explorer, indexer = build_explorer(rpc_url, storage_nodes=storage_nodes)
    stop = threading.Event()
    follower = threading.Thread(target=indexer.run, args=(stop,), daemon=True)
    follower.start()
    try:
        uvicorn.run(create_app(explorer), host=host, port=port, log_level="warning")
    finally:
        stop.set()
        follower.join(timeout=15)


def launch_explorer_process(
    rpc_url: str,
    *,
    port: int,
    storage_nodes: Sequence[str] = (),
    log_path: Path,
    host: str = DEFAULT_HOST,
    timeout_s: float = 120.0,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `python -m aicommons.explorer` as a child and wait until it answers."""
    import httpx

    command = [sys.executable, "-m", "aicommons.explorer", "--rpc", rpc_url]
    command += ["--host", host, "--port", str(port)]
    for node in storage_nodes:
        command += ["--node", node]
    log = open(log_path, "ab")  # noqa: SIM115 (owned by the child)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise IndexerError(f"the explorer exited with status {process.returncode}: {log_path}")
        try:
            if httpx.get(f"{url}/api/", timeout=2.0).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    process.wait(10)
    raise IndexerError(f"the explorer did not answer on {url} within {timeout_s:.0f} s")
