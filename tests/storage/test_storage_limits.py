"""Bounds on what a storage node reads and keeps: JSON depth and size, request bodies refused by
Content-Length before they are read, per-signer upload quotas, and collection of abandoned
uploads. Issue 14, items 2 and 3.
"""

from __future__ import annotations

import httpx
import pytest

from aicommons.storage.process import node_answers

BRACKET_BOMB = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.network
def test_bracket_bomb_to_uploads_is_refused_and_the_node_keeps_answering(process_nodes) -> None:
    # A real node process: on the old code this body overflowed the C stack (SIGSEGV), which
    # only a separate process can show without taking the test run down with it.
    [(url, process)] = process_nodes("bomb")
    answer = httpx.post(
        f"{url}/uploads",
        content=BRACKET_BOMB,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= answer.status_code < 500, answer.text
    nested_but_small = b"[" * 2000 + b"]" * 2000  # under the size bound: the depth bound refuses
    answer = httpx.post(f"{url}/uploads", content=nested_but_small, timeout=30)
    assert answer.status_code == 400 and "nested" in answer.text
    assert process.poll() is None and node_answers(url)
