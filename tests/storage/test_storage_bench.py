"""`aic bench storage --json` runs end to end on a small blob and reports every documented key."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from aicommons.cli import app


@pytest.mark.network
def test_bench_storage_json_keys() -> None:
    result = CliRunner().invoke(app, ["bench", "storage", "--json", "--size-mib", "2"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    for key in ("put_mb_s", "get_mb_s", "hash_limit_mb_s", "put_ratio", "get_ratio"):
        assert figures[key] > 0
    # The printed speeds are rounded to 0.1 MB/s, which matters when a tiny put is slow.
    rounding = 0.06 / figures["hash_limit_mb_s"] + 0.0005
    assert figures["put_ratio"] == pytest.approx(
        figures["put_mb_s"] / figures["hash_limit_mb_s"], rel=0.01, abs=rounding
    )
