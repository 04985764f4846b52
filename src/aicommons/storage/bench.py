"""Storage benchmark: put and get throughput over HTTP against the hashing limit of the same bytes.

Starts two local storage nodes as subprocesses on free loopback ports; measures, never asserts.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from eth_account import Account

from aicommons.commit import keccak256
from aicommons.storage.client import get_blob, put_file

MIB = 1 << 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_nodes(*directories: Path) -> list[tuple[str, subprocess.Popen[bytes]]]:
    """Start one node per directory side by side (start-up is mostly imports), then wait."""
    nodes = [_spawn_node(directory) for directory in directories]
    try:
        for url, process in nodes:
            _wait_until_up(url, process)
    except OSError:
        for _, process in nodes:
            process.kill()
            process.wait(timeout=10)
        raise
    return nodes


def _spawn_node(directory: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = _free_port()
    command = [sys.executable, "-c", "from aicommons.cli import main; main()"]
    process = subprocess.Popen(
        [*command, "storage", "serve", "--dir", str(directory), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return f"http://127.0.0.1:{port}", process


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise OSError(f"benchmark storage node {url} did not start")


def hashing_limit_mb_s(data: bytes) -> float:
    """MB/s of sha2-256 followed by keccak-256 over `data` on one thread (the work a CID plus a
    keccak commitment of the same bytes needs at least)."""
    start = time.perf_counter()
    hashlib.sha256(data).digest()
    keccak256(data)
    return len(data) / MIB / (time.perf_counter() - start)


def run_storage_bench(size_mib: int = 256, parallel: int = 8) -> dict[str, float]:
    """Put a random blob into one node, get it from two, and compare with the hashing limit."""
    with tempfile.TemporaryDirectory(prefix="aic-bench-storage-") as scratch:
        root = Path(scratch)
        source = root / "blob.bin"
        data = os.urandom(size_mib * MIB)
        source.write_bytes(data)
        hash_limit_before = hashing_limit_mb_s(data)
        signer = Account.create()
        nodes = []
        try:
            nodes = _start_nodes(root / "node-a", root / "node-b")
            urls = [url for url, _ in nodes]
            start = time.perf_counter()
            result = put_file(source, urls[:1], signer, parallel)
            put_seconds = time.perf_counter() - start
            # The second replica is set up untimed; get then reads from both nodes.
            put_file(source, urls[1:], signer, parallel)
            start = time.perf_counter()
            get_blob(result.blob_id, root / "copy.bin", urls, parallel)
            get_seconds = time.perf_counter() - start
        finally:
            for _, process in nodes:
                process.terminate()
                process.wait(timeout=10)
        # Measured before and after the transfers, keeping the faster: on a shared machine a
        # burst of other load during one measurement must not make the ratios look better.
        hash_limit = max(hash_limit_before, hashing_limit_mb_s(data))
        del data
        if (root / "copy.bin").read_bytes() != source.read_bytes():
            raise OSError("benchmark download differs from the source blob")
    put_mb_s = size_mib / put_seconds
    get_mb_s = size_mib / get_seconds
    return {
        "size_mib": size_mib,
        "put_mb_s": round(put_mb_s, 1),
        "get_mb_s": round(get_mb_s, 1),
        "hash_limit_mb_s": round(hash_limit, 1),
        "put_ratio": round(put_mb_s / hash_limit, 3),
        "get_ratio": round(get_mb_s / hash_limit, 3),
    }
