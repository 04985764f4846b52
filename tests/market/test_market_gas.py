"""The market's gas against the issue's targets, measured by `measure_market_gas` (what
`aic bench market` prints): dispute rounds, the one-step at fan-in 1024, each side's dispute
total, and posts getting ten times cheaper per request in batches of 64.
"""

from __future__ import annotations

import pytest

from aicommons.market.gasbench import measure_market_gas, rounds_target

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rows():
    return {row.model: row for row in measure_market_gas()}


@pytest.mark.parametrize("model", ["digits-cnn", "synthetic-wide"])
def test_targets(rows, model: str) -> None:
    row = rows[model]
    assert row.dispute_rounds <= rounds_target(row)
    assert row.post_gas_per_request_batch64 * 10 <= row.post_gas_per_request_batch1
    assert row.dispute_gas_challenger <= 5_000_000 and row.dispute_gas_provider <= 5_000_000
    assert row.one_step_gas <= 2_000_000
    assert 0 < row.finalise_gas < 300_000 and row.request_gas > 0


def test_the_synthetic_model_disputes_its_wide_layer_at_fan_in_1024(rows) -> None:
    row = rows["synthetic-wide"]
    assert row.disputed_layer == 1 and row.widest_rows == 4096
    assert row.dispute_rounds == 12 + 2  # ceil(log2 4096) bisection levels, the challenge, the step
