"""The local network behind `aic up`: a devnet chain and a storage node as child processes.

Their pids and URLs are kept in `$AIC_HOME/network/network.json` so a second `aic up` reuses a
running network, `aic down` stops a detached one, and other commands find its endpoints. A
recorded network whose processes live is used even while it is too busy to answer a probe;
no command ever falls back silently to another endpoint. It never touches a non-loopback
address.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from aicommons.chain.devnet import free_port, launch_devnet_process, rpc_answers
from aicommons.commit.json_input import read_json_file
from aicommons.fsutil import atomic_write_bytes
from aicommons.home import state_dir
from aicommons.sdk.errors import ClientError
from aicommons.storage.process import launch_node_process, node_answers

HOST = "127.0.0.1"
DEFAULT_RPC_URL = "http://127.0.0.1:8545"
"""The conventional local JSON-RPC port (hardhat, anvil, geth --dev), used only when no `--rpc`
is given and no local network is running."""
BUSY_TIMEOUT_S = 120.0
"""How long `aic up` waits for a running but busy network before saying so."""


@dataclass(frozen=True)
class NetworkState:
    devnet_pid: int
    rpc_url: str
    storage_pid: int
    storage_url: str
    provider_pid: int = 0
    watcher_pid: int = 0
    explorer_pid: int = 0
    """The market daemons and the explorer `aic up` starts (0: none); stopped with it."""
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
    """The recorded network if both of its processes are alive, answering or not: a network
    busy with a long transaction is still the network (a probe timing out says nothing)."""
    state = _recorded_network()
    if state is None:
        return None
    return state if _alive(state.devnet_pid) and _alive(state.storage_pid) else None


def network_answers(state: NetworkState, timeout_s: float = 1.0) -> bool:
    """Whether both the devnet and the storage node of `state` answer within `timeout_s`."""
    return rpc_answers(state.rpc_url, timeout_s=timeout_s) and node_answers(
        state.storage_url, timeout_s=timeout_s
    )


def wait_for_network(state: NetworkState, timeout_s: float = BUSY_TIMEOUT_S) -> bool:
    """Wait until `state` answers; False if its processes die first, `ClientError` if they
    live but stay silent for `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if network_answers(state):
            return True
        if not (_alive(state.devnet_pid) and _alive(state.storage_pid)):
            return False
        if time.monotonic() >= deadline:
            raise ClientError(
                f"the local network at {state.rpc_url} (devnet pid {state.devnet_pid}, storage "
                f"pid {state.storage_pid}) runs but has not answered for {timeout_s:g} s: "
                "wait for it, or stop it with `aic down`"
            )
        time.sleep(0.2)


@dataclass(frozen=True)
class Endpoint:
    """Where a command sends its requests, and why there (for messages that name it)."""

    rpc_url: str
    storage_urls: tuple[str, ...]
    origin: str
    network: NetworkState | None
    """The local network behind `rpc_url`, if that is where it points."""


def resolve_endpoint(rpc_url: str | None, storage_urls: Sequence[str] = ()) -> Endpoint:
    """The endpoint a command uses: `rpc_url` if given; else the running local network of
    `aic up` (busy or not); else `DEFAULT_RPC_URL`, and `origin` says that nothing runs.
    Storage nodes default to the local network's node."""
    local = running_network()
    storage = tuple(storage_urls) or ((local.storage_url,) if local else ())
    if rpc_url:
        same = local if local is not None and local.rpc_url == rpc_url else None
        return Endpoint(rpc_url, storage, "given with --rpc", same)
    if local is not None:
        origin = f"the local network of `aic up`, devnet pid {local.devnet_pid}"
        return Endpoint(local.rpc_url, storage, origin, local)
    origin = (
        "the default endpoint: no local network is running (start one with `aic up`, or give --rpc)"
    )
    return Endpoint(DEFAULT_RPC_URL, storage, origin, None)


def start_network(
    devnet_port: int | None = None, *, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> tuple[NetworkState, bool]:
    """Start (or reuse) the devnet and a storage node; returns the state and whether reused.

    A recorded network whose processes live is reused once it answers, never replaced by a
    second one while it is busy (`ClientError` after `busy_timeout_s` of silence)."""
    existing = running_network()
    if existing is not None and wait_for_network(existing, busy_timeout_s):
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
    # The market daemons and the explorer first (they talk to both), then storage: it has no
    # state the chain needs, and the devnet flushes on SIGTERM.
    for pid in (state.provider_pid, state.watcher_pid, state.explorer_pid):
        if pid:
            _stop_pid(pid)
    _stop_pid(state.storage_pid)
    _stop_pid(state.devnet_pid)
    network_file().unlink(missing_ok=True)
    return state


def start_market_daemons(
    state: NetworkState, *, provider: str, watcher: str, models: tuple[str, ...]
) -> NetworkState:
    """Start `aic provider serve` (as `provider`, serving `models`) and `aic watch` (as
    `watcher`) against the network, unless the recorded ones still run; their pids are recorded
    with the network so `aic down` (or Ctrl-C on `aic up`) stops them. Logs go to
    `$AIC_HOME/provider.log` and `$AIC_HOME/watcher.log`."""
    import subprocess
    import sys
    from dataclasses import replace

    home = state_dir()
    common = ["--rpc", state.rpc_url, "--node", state.storage_url]
    pids = {}
    for role, pid, args in (
        ("provider", state.provider_pid, ["provider", "serve", "--account", provider]),
        ("watcher", state.watcher_pid, ["watch", "--account", watcher]),
    ):
        if pid and _alive(pid):
            pids[role] = pid
            continue
        if role == "provider":
            args = [*args, *(arg for model in models for arg in ("--model", model))]
        with open(home / f"{role}.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "aicommons", *args, *common],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        pids[role] = process.pid
    updated = replace(state, provider_pid=pids["provider"], watcher_pid=pids["watcher"])
    atomic_write_bytes(network_file(), json.dumps(updated.to_json()).encode())
    return updated
