"""`aic bench devnet --json` runs both workloads on our devnet and on hardhat node and reports
the agreed keys with positive throughputs (the target ratio is reported, not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.network


def test_bench_devnet_json_rows() -> None:
    aic = Path(sys.executable).with_name("aic")
    result = subprocess.run(
        [str(aic), "bench", "devnet", "--json", "--transactions", "12"]
        + ["--workload", "eth-transfer", "--workload", "erc20-transfer"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["workload"] for row in rows] == ["eth-transfer", "erc20-transfer"]
    for row in rows:
        assert {"workload", "ours_tx_s", "hardhat_tx_s", "ratio"} <= set(row)
        assert row["ours_tx_s"] > 0 and row["hardhat_tx_s"] > 0
        assert row["ratio"] == pytest.approx(row["ours_tx_s"] / row["hardhat_tx_s"], rel=0.05)
