"""Storage nodes as child processes on loopback: start one, wait until it answers.

Used by `aic up`, the storage benchmark and the tests, so there is one way to run a node in the
background. It never binds anything but 127.0.0.1 unless the caller passes another host.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from aicommons.storage.errors import NodeStartError

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def node_answers(url: str, timeout_s: float = 1.0) -> bool:
    """Whether a storage node at `url` answers its health check."""
    try:
        return httpx.get(f"{url}/health", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def start_node_process(
    directory: Path, port: int | None = None, host: str = LOCALHOST, log_path: Path | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `aic storage serve` without waiting (start several side by side, then wait)."""
    directory.mkdir(parents=True, exist_ok=True)
    chosen_port = port if port is not None else free_port(host)
    command = [sys.executable, "-m", "aicommons", "storage", "serve", "--dir", str(directory)]
    command += ["--host", host, "--port", str(chosen_port)]
    if log_path is None:
        output = subprocess.DEVNULL
        process = subprocess.Popen(command, stdout=output, stderr=output)
    else:
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://{host}:{chosen_port}"


def wait_for_node(url: str, process: subprocess.Popen[bytes], timeout_s: float = 90.0) -> None:
    """Block until the node answers; kill it and raise if it exits or stays silent."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NodeStartError(f"storage node {url} exited with status {process.returncode}")
        if node_answers(url, timeout_s=0.5):
            return
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise NodeStartError(f"storage node {url} did not answer within {timeout_s:.0f} s")


def launch_node_process(
    directory: Path,
    port: int | None = None,
    host: str = LOCALHOST,
    log_path: Path | None = None,
    timeout_s: float = 90.0,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start a storage node and wait until it answers; the caller owns the process."""
    process, url = start_node_process(directory, port, host, log_path)
    wait_for_node(url, process, timeout_s)
    return process, url
