"""The market through the `aic` command line, with the real daemons as processes: two
`aic provider serve` and one `aic watch` against the in-process network; `aic provider
register`, `aic request` (optimistic and redundant, --wait --receipt), `aic request show`,
`aic provider show` and `aic verify` on the market receipts. Bad input is one line, non-zero,
and nothing is paid or kept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flow_fixtures import (
    CHALLENGER,
    PROVIDERS,
    REQUESTER,
    WATCHER,
    MarketNetwork,
    digits_sample,
)

pytestmark = [pytest.mark.network, pytest.mark.slow]

AIC = str(Path(sys.executable).parent / "aic")


class Cli:
    def __init__(self, net: MarketNetwork) -> None:
        self.net = net
        self.env = {**os.environ, "AIC_HOME": str(net.home)}

    def args(self, *args: str) -> list[str]:
        return [AIC, *args, "--rpc", self.net.rpc_url]

    def run(self, *args: str, node: bool = False) -> subprocess.CompletedProcess[str]:
        extra = ["--node", self.net.storage_url] if node else []
        return subprocess.run(
            [*self.args(*args), *extra],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def start(self, log: Path, *args: str) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            return subprocess.Popen(
                [*self.args(*args), "--node", self.net.storage_url, "--poll", "0.2"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )


@pytest.fixture
def cli(market_net: MarketNetwork) -> Cli:
    return Cli(market_net)


@pytest.fixture
def daemons_as_processes(cli: Cli, tmp_path: Path) -> Iterator[list[Path]]:
    for name in PROVIDERS[:2]:
        registered = cli.run(
            "provider",
            "register",
            "--stake",
            "200",
            "--model",
            "digits-cnn",
            "--price",
            "0.01",
            "--account",
            name,
            "--json",
            node=True,
        )
        assert registered.returncode == 0, registered.stderr
        assert json.loads(registered.stdout)["offers"], registered.stdout
    logs = [tmp_path / f"{name}.log" for name in (*PROVIDERS[:2], WATCHER)]
    processes = [
        cli.start(logs[0], "provider", "serve", "--model", "digits-cnn", "--account", PROVIDERS[0]),
        cli.start(logs[1], "provider", "serve", "--model", "digits-cnn", "--account", PROVIDERS[1]),
        cli.start(logs[2], "watch", "--account", WATCHER),
    ]
    try:
        yield logs
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for process in processes:
            assert process.returncode == 0, [log.read_text() for log in logs]


def test_optimistic_and_redundant_requests_through_the_cli(
    cli: Cli, daemons_as_processes: list[Path], tmp_path: Path
) -> None:
    sample = tmp_path / "x.json"
    sample.write_text(json.dumps(digits_sample(8).reshape(-1).tolist()))
    logs = daemons_as_processes
    started = time.monotonic()
    running = {}  # both modes at once (two requesters: one account, one nonce sequence)
    for mode, extra, requester in (
        ("optimistic", [], REQUESTER),
        ("redundant", ["--providers", "2"], CHALLENGER),
    ):
        args = ["request", "digits-cnn", "--input", str(sample), "--mode", mode, *extra]
        args += ["--wait", "--timeout", "240", "--receipt", str(tmp_path / f"{mode}.json")]
        args += ["--json", "--account", requester, "--node", cli.net.storage_url]
        running[mode] = subprocess.Popen(
            cli.args(*args), env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    for mode, process in running.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, (err, [log.read_text() for log in logs])
        shown = json.loads(out)
        assert shown["status"] == "finalised" and shown["mode"] == mode
        assert len(shown["output"]) == 10, shown
        assert time.monotonic() - started < 240
        verdict = cli.run("verify", str(tmp_path / f"{mode}.json"), "--json", node=True)
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr
        assert json.loads(verdict.stdout)["ok"] is True
        again = cli.run("request", "show", str(shown["id"]), "--json")
        assert again.returncode == 0, again.stderr
        keys = {"id", "model", "version_id", "mode", "status", "provider", "output", "fee"}
        assert keys | {"window_ends"} <= set(json.loads(again.stdout))
        # Anyone rebuilds the receipt from the chain alone, and it verifies the same.
        rebuilt = tmp_path / f"{mode}-rebuilt.json"
        made = cli.run("request", "receipt", str(shown["id"]), "--out", str(rebuilt), node=True)
        assert made.returncode == 0, made.stderr
        assert json.loads(rebuilt.read_text()) == json.loads(
            (tmp_path / f"{mode}.json").read_text()
        )
        verdict = cli.run("verify", str(rebuilt), "--json", node=True)
        assert verdict.returncode == 0 and json.loads(verdict.stdout)["ok"] is True
    provider = cli.run("provider", "show", "--account", PROVIDERS[0], "--json")
    assert provider.returncode == 0, provider.stderr
    info = json.loads(provider.stdout)
    assert {"stake", "locked", "earned", "slashed"} <= set(info) and info["locked"] == 0
    served = logs[0].read_text() + logs[1].read_text()
    assert "posted batch" in served and "finalised request" in served, served


def _deprecated_version(net: MarketNetwork) -> str:
    """A version with a registered graph that its maintainer then deprecated: NAME@VERSION."""
    from aicommons.chain.transact import send_call
    from aicommons.demo import DIGITS_MLP
    from aicommons.sdk.demo import demo_package
    from aicommons.sdk.registry import model_id_of

    admin = net.client()
    published = admin.registry.publish(demo_package(DIGITS_MLP), model="old-digits", fee=0)
    version_id = bytes.fromhex(published.version_id[2:])
    send_call(
        admin.w3,
        admin.account,
        admin.contract("ModelRegistry").functions.deprecate_version(
            model_id_of("old-digits"), version_id
        ),
        "deprecating",
    )
    return f"old-digits@{published.version_id}"


def _optimistic_only_version(cli: Cli) -> str:
    """`aic publish --mode optimistic`: the registry records the mode and the graph root."""
    from aicommons.demo import DIGITS_MLP
    from aicommons.sdk.demo import demo_package

    path = str(demo_package(DIGITS_MLP))
    published = cli.run(
        "publish", path, "--model", "opt-digits", "--mode", "optimistic", "--json", node=True
    )
    assert published.returncode == 0, published.stderr
    result = json.loads(published.stdout)
    assert result["modes"] == ["optimistic"] and result["graph_root"], result
    shown = cli.run("model", "show", "opt-digits", "--json")
    (version,) = json.loads(shown.stdout)["versions"]
    assert version["mode_names"] == ["optimistic"]
    assert version["graph_root"] == result["graph_root"]
    refused = cli.run("publish", path, "--model", "bad-modes", "--mode", "psychic", node=True)
    assert refused.returncode != 0 and "unknown verification mode" in refused.stderr
    return "opt-digits"


def test_bad_requests_are_one_line_errors_and_cost_nothing(cli: Cli, tmp_path: Path) -> None:
    deprecated = _deprecated_version(cli.net)
    optimistic_only = _optimistic_only_version(cli)
    wrong_size = tmp_path / "wrong.json"
    wrong_size.write_text(json.dumps([0.5] * 63))
    good = tmp_path / "x.json"
    good.write_text(json.dumps(digits_sample(9).reshape(-1).tolist()))
    receipts = cli.net.home / "receipts"
    kept_before = sorted(receipts.glob("*.json")) if receipts.exists() else []
    cases = {
        "wrong input size": (["digits-cnn", "--input", str(wrong_size)], "does not match"),
        "unknown version": (["digits-cnn@0xdeadbeef", "--input", str(good)], "has no version"),
        "deprecated version": ([deprecated, "--input", str(good)], "deprecated"),
        "past its deadline": (["digits-cnn", "--input", str(good), "--ttl", "0"], "deadline"),
        "fee above balance": (  # (every dev account holds a development allocation)
            ["digits-cnn", "--input", str(good), "--max-fee", "100000000"],
            "insufficient AIC",
        ),
        "fee below the version fee": (
            ["digits-cnn", "--input", str(good), "--max-fee", "0.000001"],
            "below the version fee",
        ),
        "bad mode": (["digits-cnn", "--input", str(good), "--mode", "psychic"], "unknown mode"),
        "text for a model without a tokenizer": (
            ["digits-cnn", "--text", "seven"],
            "needs a text model",
        ),
        "both --input and --text": (
            ["digits-cnn", "--input", str(good), "--text", "seven"],
            "exactly one of --input X or --text TEXT",
        ),
        "no sample": (["digits-cnn"], "exactly one of --input X or --text TEXT"),
        "mode not offered": (
            [optimistic_only, "--input", str(good), "--mode", "redundant", "--providers", "2"],
            "does not offer the redundant mode",
        ),
    }
    for name, (args, message) in cases.items():
        account = [] if "--account" in args else ["--account", REQUESTER]
        result = cli.run("request", *args, *account, node=True)
        assert result.returncode != 0, name
        assert message in result.stderr, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (name, result.stderr)
        assert "Traceback" not in result.stderr, name
    kept_after = sorted(receipts.glob("*.json")) if receipts.exists() else []
    assert kept_after == kept_before  # nothing was paid, so nothing was kept
