"""Crash safety: a store killed with SIGKILL in the middle of puts has nothing that fails
verification after restart (every chunk matches its CID, every blob has all its chunks).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aicommons.storage.store import LocalStore

WRITER = """
import os, sys
from aicommons.storage.store import LocalStore
store = LocalStore(sys.argv[1])
source = sys.argv[2]
for round in range(1000):
    with open(source, "wb") as handle:
        handle.write(os.urandom(3 * (1 << 20) + round))
    store.put_file(source, workers=4)
"""


@pytest.mark.parametrize("delay", [0.4, 0.9, 1.5])
def test_sigkill_during_put_leaves_only_verifiable_data(tmp_path: Path, delay: float) -> None:
    store_dir = tmp_path / "store"
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(store_dir), str(tmp_path / "source.bin")]
    )
    try:
        # Wait until it is really writing chunks, then kill it at an arbitrary moment.
        deadline = time.monotonic() + 30
        while not any((store_dir / "chunks").glob("*/*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    store = LocalStore(store_dir)
    assert any(store.chunk_cids()), "the writer never stored a chunk"
    assert store.verify_all() == []
    for blob_id in store.blob_ids():
        manifest = store.read_manifest(blob_id)
        assert all(store.read_chunk(chunk.cid) for chunk in manifest.chunks)
    # Whatever the kill interrupted is only ever a temp file, never a named chunk or blob.
    leftovers = list((store_dir / "tmp").iterdir())
    assert all(path.suffix == ".tmp" for path in leftovers)
    assert not any(os.path.getsize(p) == 0 for p in (store_dir / "chunks").glob("*/*"))
