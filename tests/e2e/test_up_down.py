"""`aic up` (the main job behind `make run`): starts a devnet and a storage node, deploys,
publishes the demo models and proves a sample inference; its background search demo answers
`aic search` through the market; a second `aic up` reuses the running network; Ctrl-C stops every
process it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from aicommons.runtime.package import ModelPackage
from aicommons.runtime.text import TextModel

pytestmark = [pytest.mark.network, pytest.mark.slow]

AIC = str(Path(sys.executable).parent / "aic")
PIDS = ("devnet_pid", "storage_pid", "provider_pid", "watcher_pid", "explorer_pid")
"""Every process `aic up` starts: Ctrl-C must stop them all."""


def _alive(*pids: int) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    return alive


def _wait_gone(*pids: int, timeout_s: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _alive(*pids):
        time.sleep(0.2)
    return _alive(*pids)


def test_up_reuse_and_ctrl_c(
    tmp_path: Path, minilm_package: ModelPackage, minilm_package_file: Path
) -> None:
    env = {**os.environ, "AIC_HOME": str(tmp_path / "home")}
    # The search demo's cache, seeded from the session's MiniLM package so nothing re-quantises.
    seeded = tmp_path / "home/demo/all-minilm-l6-v2.aicm"
    seeded.parent.mkdir(parents=True)
    shutil.copyfile(minilm_package_file, seeded)
    seeded_mtime = seeded.stat().st_mtime_ns

    def aic(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AIC, *args], env=env, capture_output=True, text=True, timeout=900, check=False
        )

    process = subprocess.Popen(
        [AIC, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "press Ctrl-C" in line:
            break
    output = "".join(lines)
    assert "press Ctrl-C" in output, output
    assert "DEVELOPMENT KEYS ONLY" in output
    assert "pass reexecution" in output
    state = json.loads((tmp_path / "home/network/network.json").read_text())
    try:
        # `aic up` also serves the explorer, which has indexed the demo it just ran.
        assert f"explorer: {state['explorer_url']}" in output
        assert state["explorer_url"].startswith("http://127.0.0.1:")
        explored = httpx.get(state["explorer_url"] + "/api/models", timeout=30).json()
        # (the search demo may already have published all-minilm-l6-v2 in the background)
        assert {"digits-cnn", "digits-mlp"} <= {m["name"] for m in explored["models"]}
        listed = {m["name"]: m for m in json.loads(aic("models", "--json").stdout)}
        assert listed["digits-mlp"]["versions"][0]["onchain_ready"] is True
        assert listed["digits-cnn"]["versions"][0]["onchain_ready"] is False
        receipts = sorted((tmp_path / "home/receipts").glob("*.json"))
        assert len(receipts) == 2  # the on-chain inference and the market request
        for receipt in receipts:
            verdict = aic("verify", str(receipt), "--json")
            assert verdict.returncode == 0 and json.loads(verdict.stdout)["ok"] is True
        assert "market request 1 for digits-cnn" in output
        assert state["provider_pid"] and state["watcher_pid"]

        # `aic search` waits for the background search demo, then embeds the query through the
        # market (MiniLM, finalised, receipt kept and verified) and ranks the shipped documents.
        query = "my dog is learning new tricks"
        found = aic("search", query, "-k", "3")
        assert found.returncode == 0, found.stdout + found.stderr
        assert "1. " in found.stdout and found.stdout.count("\n") >= 5, found.stdout
        top = found.stdout.split("1. ", 1)[1].splitlines()[0]
        assert top.endswith(
            "The puppy learned to sit and stay after a week of short training sessions."
        )
        assert ": verified" in found.stdout
        assert seeded.stat().st_mtime_ns == seeded_mtime  # used as seeded, not rebuilt
        status = json.loads((tmp_path / "home/search-demo.json").read_text())
        assert status["state"] == "ready"
        assert minilm_package.version_id.hex() in status["detail"]
        kept = set(sorted((tmp_path / "home/receipts").glob("*.json"))) - set(receipts)
        assert len(kept) == 1
        receipt = json.loads(kept.pop().read_text())
        assert receipt["model"] == "all-minilm-l6-v2" and receipt["finalise_tx"]
        exact = TextModel(minilm_package).embed([query]).values[0]
        assert receipt["output"] == exact.tolist()
        state = json.loads((tmp_path / "home/network/network.json").read_text())  # new provider

        # A second `aic up` reuses the running network and deployment instead of starting more.
        second = aic("up", "--detach")
        assert second.returncode == 0, second.stdout + second.stderr
        assert "reusing devnet" in second.stdout
        assert "found contracts" in second.stdout
    finally:
        process.send_signal(signal.SIGINT)
        # Stopping waits up to 15 s per child for a clean exit before SIGKILL; allow for a
        # loaded machine, and show what `aic up` printed if it still does not finish.
        try:
            rest, _ = process.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            process.kill()
            rest, _ = process.communicate()
            for pid in _alive(*(state[key] for key in PIDS)):
                os.kill(pid, signal.SIGKILL)  # leave no orphaned node behind a failed test
            raise AssertionError(f"aic up did not stop after Ctrl-C:\n{output}{rest}") from None
    assert process.returncode == 0, output + rest
    assert "network stopped" in rest
    assert _wait_gone(*(state[key] for key in PIDS)) == []
    assert not (tmp_path / "home/network/network.json").exists()
    assert "no local network is running" in aic("down").stdout
