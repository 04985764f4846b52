"""The economics simulation: cheating does not pay under the default terms, the Monte Carlo
agrees with the exact expectation, and the verdict flips where the arithmetic says it must
(so the table is computed, not asserted)."""

from __future__ import annotations

import json
from dataclasses import replace
from fractions import Fraction

from typer.testing import CliRunner

from aicommons.cli import app
from aicommons.governance.economics import (
    AIC,
    ComputeTerms,
    StorageTerms,
    Workload,
    break_even,
    simulate,
)
from aicommons.sdk import deployment
from aicommons.sdk.governance import default_economics


def test_defaults_come_from_the_deployment():
    _, storage, _ = default_economics()
    assert storage.stake_per_commitment == deployment.STORAGE_STAKE
    assert storage.slash_bps == deployment.STORAGE_SLASH_BPS
    assert storage.challenger_share_bps == deployment.STORAGE_CHALLENGER_SHARE_BPS
    assert storage.challenge_bond == deployment.STORAGE_CHALLENGE_BOND


def test_cheating_does_not_pay_under_the_defaults_and_the_sample_agrees():
    report = simulate(*default_economics(), epochs=4_000, seed=7)
    assert not report.cheating_pays
    for row in report.results:
        if row.strategy != "honest":
            assert row.gain_over_honest < 0
            assert row.mean_profit < 0
        # The sample mean sits within its (generous) interval around the exact expectation.
        assert abs(row.mean_profit - row.expected_profit) <= 2 * row.ci95 + AIC // 10**6
    honest = {r.role: r for r in report.results if r.strategy == "honest"}
    assert honest["compute"].expected_profit > 0 and honest["storage"].expected_profit > 0


def test_without_watchers_skipping_the_work_pays():
    compute, storage, workload = default_economics()
    report = simulate(compute, storage, replace(workload, watcher_coverage=Fraction(0)), epochs=200)
    lazy = next(r for r in report.results if r.role == "compute" and r.strategy == "lazy")
    assert lazy.gain_over_honest > 0 and report.cheating_pays


def test_compute_break_even_coverage_is_exact():
    compute, storage, workload = default_economics()
    threshold = Fraction(break_even(compute, storage, workload)["compute_watcher_coverage"])
    assert threshold == Fraction(workload.compute_cost_per_request) / (
        workload.price_per_request + compute.claim_lock + workload.dispute_gas_cost
    )
    for coverage, pays in ((threshold * 2, False), (threshold / 2, True)):
        report = simulate(compute, storage, replace(workload, watcher_coverage=coverage), epochs=50)
        lazy = next(r for r in report.results if r.strategy == "lazy")
        assert (lazy.gain_over_honest > 0) is pays


def test_unchallenged_storage_without_reward_is_dropped():
    """The reason for the epoch reward: with no reward and nobody challenging, keeping the data
    only costs; proving it each epoch for a reward is what makes storing pay."""
    compute, storage, workload = default_economics()
    idle = replace(workload, external_challenge_rate=Fraction(0))
    report = simulate(compute, replace(storage, epoch_reward=0), idle, epochs=50)
    drop = next(r for r in report.results if r.strategy == "drop-all")
    assert drop.gain_over_honest > 0
    rewarded = simulate(compute, storage, idle, epochs=50)
    assert next(r for r in rewarded.results if r.strategy == "drop-all").gain_over_honest < 0
    # A provider keeping part of the blob may probe its own challenges and reveal only those it
    # can answer; it then earns the reward only that often: it loses (1 - kept) * (R - s).
    partial = next(r for r in rewarded.results if r.strategy == "partial-claiming")
    kept = workload.kept_fraction
    loss = (1 - kept) * (storage.epoch_reward - workload.storage_cost_per_epoch)
    assert partial.gain_over_honest == -loss


def test_storage_terms_are_inputs():
    terms = StorageTerms(10 * AIC, AIC, 10_000, 0, epoch_reward=AIC)
    report = simulate(ComputeTerms(claim_lock=AIC), terms, Workload(), epochs=20)
    assert report.storage.stake_per_commitment == 10 * AIC
    assert report.compute.claim_lock == AIC


def test_cli_prints_the_table_and_json():
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "economics", "--epochs", "100"])
    assert result.exit_code == 0, result.output
    assert "drop-all" in result.output and "cheating never pays" in result.output
    result = runner.invoke(app, ["bench", "economics", "--epochs", "100", "--json"])
    payload = json.loads(result.output)
    assert {r["strategy"] for r in payload["results"]} >= {"honest", "lazy", "drop-all"}
    assert payload["storage_terms"]["slash_bps"] == deployment.STORAGE_SLASH_BPS
