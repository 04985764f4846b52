"""The search demo's pieces that need no network: cosine ranking, the status file `aic up`'s
background preparation writes, and `aic search`'s one-line refusals.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aicommons.demo import SEARCH_DOCS
from aicommons.runtime.text import read_text_lines
from aicommons.sdk import demo


def test_rank_orders_by_cosine_not_by_length() -> None:
    documents = np.array([[10.0, 0.0], [0.6, 0.8], [0.0, -3.0], [1.0, 1.0]])
    ranked = demo.rank(np.array([0.0, 2.0]), documents, 3)
    assert [index for index, _ in ranked] == [1, 3, 0]
    assert ranked[0][1] == pytest.approx(0.8)
    assert ranked[1][1] == pytest.approx(2**-0.5)
    assert len(demo.rank(np.array([1.0, 0.0]), documents, 10)) == 4


def test_shipped_documents_are_package_data_and_distinct() -> None:
    documents = read_text_lines(SEARCH_DOCS)
    assert 30 <= len(documents) <= 40
    assert len(set(documents)) == len(documents)


def test_status_file_round_trip_and_waiting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIC_HOME", str(tmp_path))
    assert demo.read_search_status() is None
    with pytest.raises(ValueError, match="not started: run `aic up`"):
        demo.wait_search_ready(1.0)
    demo.write_search_status("ready", "all-minilm-l6-v2 0xabc")
    assert demo.wait_search_ready(1.0).detail == "all-minilm-l6-v2 0xabc"
    demo.write_search_status("failed", "CheckpointError: not installed", 0)
    with pytest.raises(ValueError, match="failed: CheckpointError: not installed"):
        demo.wait_search_ready(1.0)
    demo.search_status_path().write_text("{not json")
    assert demo.read_search_status().state == "failed"


def test_search_refuses_an_empty_query_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "AIC_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "aicommons", "search", "   "],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip() == "error: the query is empty: give some words to search for"
    assert not (tmp_path / "receipts").exists()  # nothing was requested
    for query, k, message in (("", 3, "the query is empty"), ("cats", 0, "k must be at least")):
        with pytest.raises(ValueError, match=message):
            demo.search(None, query, k)  # type: ignore[arg-type]  # refused before any call
