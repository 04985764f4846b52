"""The local network behind `aic up`: a devnet chain and a storage node as child processes.

Their pids and URLs are kept in `$AIC_HOME/network/network.json` so a second `aic up` reuses a
running network and `aic down` stops a detached one. It never touches a non-loopback address.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from aicommons.chain.devnet import free_port, launch_devnet_process, rpc_answers
from aicommons.commit.json_input import read_json_file
from aicommons.fsutil import atomic_write_bytes
from aicommons.home import state_dir
from aicommons.storage.process import launch_node_process, node_answers

HOST = "127.0.0.1"


@dataclass(frozen=True)
class NetworkState:
    devnet_pid: int
    rpc_url: str
    storage_pid: int
    storage_url: str
    explorer_pid: int = 0
    explorer_url: str = ""

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def network_file() -> Path:
    return state_dir("network") / "network.json"


def _alive(pid: int) -> bool:
    """Whether `pid` is a live aicommons process (a recycled pid of another program is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    try:
        return b"aicommons" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the signal probe


def _recorded_network() -> NetworkState | None:
    path = network_file()
    try:
        return NetworkState(**read_json_file(path, what="network record", max_bytes=65536))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        path.unlink()  # a record we cannot read describes nothing we can stop
        return None


def running_network() -> NetworkState | None:
    """The recorded network if both of its processes are alive and answering."""
    state = _recorded_network()
    if state is None:
        return None
    healthy = (
        _alive(state.devnet_pid)
        and _alive(state.storage_pid)
        and rpc_answers(state.rpc_url)
        and node_answers(state.storage_url)
    )
    return state if healthy else None


def start_network(devnet_port: int | None = None) -> tuple[NetworkState, bool]:
    """Start (or reuse) the devnet and a storage node; returns the state and whether reused."""
    existing = running_network()
    if existing is not None:
        return existing, True
    home = state_dir()
    devnet, rpc_url = launch_devnet_process(
        home / "devnet", devnet_port if devnet_port is not None else free_port(HOST), HOST
    )
    try:
        storage, storage_url = launch_node_process(
            home / "storage", host=HOST, log_path=home / "storage-node.log"
        )
    except BaseException:
        devnet.terminate()
        devnet.wait(10)
        raise
    state = NetworkState(devnet.pid, rpc_url, storage.pid, storage_url)
    atomic_write_bytes(network_file(), json.dumps(state.to_json()).encode())
    return state, False


def record_explorer(state: NetworkState, *, pid: int, url: str) -> NetworkState:
    """Record the explorer serving this network, so `aic down` stops it with the rest."""
    recorded = replace(state, explorer_pid=pid, explorer_url=url)
    atomic_write_bytes(network_file(), json.dumps(recorded.to_json()).encode())
    return recorded


def running_explorer(state: NetworkState) -> str | None:
    """The recorded explorer's URL if its process is alive."""
    return state.explorer_url if state.explorer_pid and _alive(state.explorer_pid) else None


def _stop_pid(pid: int, timeout_s: float = 15.0) -> None:
    """SIGTERM, wait for a clean exit, SIGKILL as the last resort."""
    if not _alive(pid):
        return
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
    state = _recorded_network()
    if state is None:
        return None
    # Explorer and storage first: neither has state the chain needs; the devnet flushes on SIGTERM.
    if state.explorer_pid:
        _stop_pid(state.explorer_pid)
    _stop_pid(state.storage_pid)
    _stop_pid(state.devnet_pid)
    network_file().unlink(missing_ok=True)
    return state
