"""Storage benchmark: put and get throughput over HTTP against the hashing limit of the same bytes.

Starts two local storage nodes as subprocesses on free loopback ports; measures, never asserts.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

from eth_account import Account

from aicommons.commit import keccak256
from aicommons.storage.client import get_blob, put_file
from aicommons.storage.process import start_node_process, wait_for_node

MIB = 1 << 20


def _start_nodes(*directories: Path) -> list[tuple[str, subprocess.Popen[bytes]]]:
    """Start one node per directory side by side (start-up is mostly imports), then wait."""
    started = [start_node_process(directory) for directory in directories]
    try:
        for process, url in started:
            wait_for_node(url, process)
    except OSError:
        for process, _ in started:
            process.kill()
            process.wait(timeout=10)
        raise
    return [(url, process) for process, url in started]


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
