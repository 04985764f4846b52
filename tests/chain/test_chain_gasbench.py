"""`aic bench gas` runs, prints its documented keys, and meets the gas/MAC target on the digits MLP.

In-process (Typer's runner, titanoboa's EVM); only the digits MLP, the small configuration.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from aicommons.chain.gasbench import GAS_PER_MAC_TARGET
from aicommons.cli import app
from aicommons.errors import AicommonsError

KEYS = {"model", "macs", "infer_gas", "gas_per_mac", "upload_gas", "upload_txs"}


def test_bench_gas_prints_its_rows_and_meets_the_digits_target() -> None:
    done = CliRunner().invoke(app, ["bench", "gas", "--json", "--model", "digits-mlp"])
    assert done.exit_code == 0, done.output
    rows = json.loads(done.output)
    assert [row["model"] for row in rows] == ["digits-mlp"]
    (row,) = rows
    assert set(row) == KEYS
    assert row["macs"] == 64 * 64 + 64 * 32 + 32 * 10
    assert row["infer_gas"] > 21_000 and row["upload_txs"] == 5
    assert row["gas_per_mac"] == round(row["infer_gas"] / row["macs"], 2)
    assert row["gas_per_mac"] <= GAS_PER_MAC_TARGET


def test_bench_gas_refuses_an_unknown_model_by_name() -> None:
    # An AicommonsError: `aic` (run_cli) prints it as one line, without a traceback.
    done = CliRunner().invoke(app, ["bench", "gas", "--model", "gpt-5"])
    assert done.exit_code != 0
    assert isinstance(done.exception, AicommonsError)
    assert str(done.exception).startswith("unknown gas bench model 'gpt-5'")
