"""The local network behind `aic up`: a devnet chain and a storage node as child processes.

Their pids and URLs are kept in `$AIC_HOME/network/network.json` so a second `aic up` reuses a
running network and `aic down` stops a detached one. It never touches a non-loopback address.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from aicommons.chain.devnet import free_port, launch_devnet_process, rpc_answers
from aicommons.fsutil import atomic_write_bytes
from aicommons.home import state_dir

HOST = "127.0.0.1"


class NetworkError(OSError):
    """A local network process that would not start or answer."""


@dataclass(frozen=True)
class NetworkState:
    devnet_pid: int
    rpc_url: str
    storage_pid: int
    storage_url: str

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def network_file() -> Path:
    return state_dir("network") / "network.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def storage_answers(url: str, timeout_s: float = 1.0) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def running_network() -> NetworkState | None:
    """The recorded network if both of its processes are alive and answering."""
    path = network_file()
    if not path.is_file():
        return None
    try:
        state = NetworkState(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        return None
    healthy = (
        _alive(state.devnet_pid)
        and _alive(state.storage_pid)
        and rpc_answers(state.rpc_url)
        and storage_answers(state.storage_url)
    )
    return state if healthy else None


def launch_storage_process(directory: Path, port: int, timeout_s: float = 30.0) -> subprocess.Popen:
    """`aic storage serve` as a child process on loopback; waits until /health answers."""
    directory.mkdir(parents=True, exist_ok=True)
    log = open(directory / "node.log", "ab")  # noqa: SIM115 (the child owns it)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aicommons",
            "storage",
            "serve",
            "--dir",
            str(directory),
            "--host",
            HOST,
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    url = f"http://{HOST}:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NetworkError(f"storage node exited at start (see {directory / 'node.log'})")
        if storage_answers(url):
            return process
        time.sleep(0.1)
    process.kill()
    raise NetworkError(f"storage node did not answer within {timeout_s:.0f} s")


def start_network(devnet_port: int | None = None) -> tuple[NetworkState, bool]:
    """Start (or reuse) the devnet and a storage node; returns the state and whether reused."""
    existing = running_network()
    if existing is not None:
        return existing, True
    home = state_dir()
    devnet, rpc_url = launch_devnet_process(
        home / "devnet", devnet_port if devnet_port is not None else free_port(HOST), HOST
    )
    storage_port = free_port(HOST)
    try:
        storage = launch_storage_process(home / "storage", storage_port)
    except BaseException:
        devnet.terminate()
        devnet.wait(10)
        raise
    state = NetworkState(devnet.pid, rpc_url, storage.pid, f"http://{HOST}:{storage_port}")
    atomic_write_bytes(network_file(), json.dumps(state.to_json()).encode())
    return state, False


def _stop_pid(pid: int, timeout_s: float = 15.0) -> None:
    """SIGTERM, wait for a clean exit, SIGKILL as the last resort."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def stop_network() -> NetworkState | None:
    """Stop the recorded network (if any) and forget it; returns what was stopped."""
    path = network_file()
    if not path.is_file():
        return None
    try:
        state = NetworkState(**json.loads(path.read_text()))
    except (ValueError, TypeError):
        path.unlink()
        return None
    # Storage first: it has no state the chain needs, and the devnet flushes on SIGTERM.
    _stop_pid(state.storage_pid)
    _stop_pid(state.devnet_pid)
    path.unlink(missing_ok=True)
    return state
