"""`aic infer` never loses a paid receipt: a bad --receipt path is refused before paying, a
directory gets `<tx hash>.json`, and every receipt is also kept under $AIC_HOME/receipts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

AIC = str(Path(sys.executable).parent / "aic")


def _aic(network, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIC_HOME": str(network.home)}
    return subprocess.run(
        [AIC, *args, "--rpc", network.rpc_url], env=env, capture_output=True, text=True, timeout=300
    )


def _sample(tmp_path: Path, published_mlp) -> Path:
    path = tmp_path / "x.json"
    path.write_text(json.dumps(published_mlp.sample.tolist()))
    return path


def test_a_bad_receipt_path_is_refused_before_paying(network, published_mlp, tmp_path) -> None:
    client = network.client(None)
    before = client.w3.eth.block_number
    done = _aic(
        network,
        "infer",
        "digits-mlp",
        "--input",
        str(_sample(tmp_path, published_mlp)),
        "--receipt",
        str(tmp_path / "missing-dir" / "r.json"),
        "--node",
        network.storage_url,
    )
    assert done.returncode == 1
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr
    assert client.w3.eth.block_number == before, "a transaction was sent anyway"


def test_receipt_directory_and_kept_copy(network, published_mlp, tmp_path) -> None:
    out = tmp_path / "receipts"
    out.mkdir()
    done = _aic(
        network,
        "infer",
        "digits-mlp",
        "--input",
        str(_sample(tmp_path, published_mlp)),
        "--receipt",
        str(out),
        "--node",
        network.storage_url,
        "--json",
    )
    assert done.returncode == 0, done.stderr
    receipt = json.loads(done.stdout)
    saved = out / f"{receipt['tx_hash']}.json"
    kept = network.home / "receipts" / f"{receipt['tx_hash']}.json"
    assert json.loads(saved.read_text()) == receipt
    assert json.loads(kept.read_text()) == receipt
    verified = _aic(network, "verify", str(saved), "--node", network.storage_url, "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    checks = {c["name"]: c for c in json.loads(verified.stdout)["checks"]}
    assert checks["confirmations"]["ok"]
    deep = _aic(
        network, "verify", str(saved), "--node", network.storage_url, "--confirmations", "1000"
    )
    assert deep.returncode == 1
    assert "FAIL  confirmations" in deep.stdout
