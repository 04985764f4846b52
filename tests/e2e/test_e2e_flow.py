"""A new user's whole flow through the `aic` CLI: devnet → deploy → account → publish → infer →
verify, every receipt field tampered, kill -9 persistence, bad input; and the same flow on a
standard third-party node (hardhat), so nothing depends on our devnet's quirks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aicommons.chain.devnet import free_port, launch_devnet_process
from aicommons.demo import DIGITS_DATA, DIGITS_MLP
from aicommons.storage.process import launch_node_process

pytestmark = [pytest.mark.network, pytest.mark.slow]

AIC = str(Path(sys.executable).parent / "aic")
PASSWORD = "correct horse battery staple"


class Cli:
    """Runs `aic` as a user would, in an isolated AIC_HOME, against one chain and one node."""

    def __init__(self, home: Path, rpc: str, node: str) -> None:
        self.home, self.rpc, self.node = home, rpc, node

    def run(self, *args: str, password: str = PASSWORD, check: bool = True):
        env = {**os.environ, "AIC_HOME": str(self.home), "AIC_PASSWORD": password}
        done = subprocess.run([AIC, *args], env=env, capture_output=True, text=True, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"aic {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def chain(self, *args: str, **kwargs):
        return self.run(*args, "--rpc", self.rpc, **kwargs)

    def one_line_error(self, done, fragment: str) -> None:
        assert done.returncode != 0, done.stdout
        assert fragment in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.fixture(scope="module")
def mlp_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "mlp.aicm"
    home = tmp_path_factory.mktemp("quant-home")
    env = {**os.environ, "AIC_HOME": str(home)}
    subprocess.run(
        [AIC, "model", "quantize", str(DIGITS_MLP), "--calib", str(DIGITS_DATA), "-o", str(out)],
        env=env,
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def storage_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = launch_node_process(tmp_path_factory.mktemp("node"))
    yield url
    process.terminate()
    process.wait(10)


def _sample(path: Path, index: int) -> Path:
    with np.load(DIGITS_DATA) as data:
        path.write_text(json.dumps(data["x_test"][index].tolist()))
    return path


def _flow(cli: Cli, package: Path, tmp: Path) -> Path:
    """deploy → account → fund → publish → infer; returns the receipt path."""
    cli.chain("deploy")
    again = cli.chain("deploy")
    assert "already deployed" in again.stdout
    made = cli.run("account", "new", "alice")
    alice = made.stdout.split()[-1]
    cli.chain("transfer", alice, "--eth", "5", "--tokens", "100")
    published = cli.chain(
        "publish",
        str(package),
        "--model",
        "digits-mlp",
        "--license",
        "Apache-2.0",
        "--author",
        f"{alice}:6000",
        "--fee",
        "1000",
        "--onchain",
        "--account",
        "alice",
        "--node",
        cli.node,
        "--json",
    )
    version_id = json.loads(published.stdout)["version_id"]
    shown = json.loads(cli.chain("model", "show", "digits-mlp", "--json").stdout)
    assert shown["versions"][0]["version_id"] == version_id
    assert shown["versions"][0]["onchain_ready"] is True
    assert shown["versions"][0]["attribution"][0]["share_bps"] == 6000
    receipt = tmp / "receipt.json"
    cli.chain(
        "infer",
        f"digits-mlp@{version_id[:12]}",
        "--input",
        str(_sample(tmp / "x.json", 3)),
        "--receipt",
        str(receipt),
        "--account",
        "alice",
        "--node",
        cli.node,
    )
    verdict = cli.chain("verify", str(receipt), "--node", cli.node, "--json")
    checks = json.loads(verdict.stdout)["checks"]
    assert all(check["ok"] for check in checks), checks
    return receipt


TAMPERS = {
    # field: (how to forge it, the check that must be the first to fail)
    "chain_id": (lambda r: r["chain_id"] + 1, "chain"),
    "executor": (lambda r: r["registry"], "deployment"),
    "registry": (lambda r: r["executor"], "deployment"),
    "tx_hash": (lambda r: "0x" + "ab" * 32, "transaction"),
    "block_number": (lambda r: r["block_number"] - 1, "transaction"),
    "block_hash": (lambda r: "0x" + "cd" * 32, "transaction"),
    "model": (lambda r: "digits-cnn", "event"),  # Inference logs the model id
    "version_id": (lambda r: "0x" + "00" * 31 + "01", "event"),
    "caller": (lambda r: "0x" + "11" * 20, "transaction"),
    "input": (lambda r: [(v + 1) % 100 for v in r["input"]], "hashes"),
    "input_hash": (lambda r: "0x" + "22" * 32, "event"),
    "output": (lambda r: [v + 1 for v in r["output"]], "event"),
    "output_hash": (lambda r: "0x" + "33" * 32, "event"),
    "label": (lambda r: (r["label"] + 1) % 10, "event"),
    "fee": (lambda r: r["fee"] + 1, "event"),
    "format": (lambda r: "aicommons-receipt/0", "format"),
}


def _assert_every_tamper_fails(cli: Cli, receipt: Path, tmp: Path) -> None:
    original = json.loads(receipt.read_text())
    assert set(TAMPERS) == set(original), "every receipt field needs a tamper case"
    for field, (change, expected_check) in TAMPERS.items():
        forged = dict(original)
        forged[field] = change(original)
        path = tmp / f"forged-{field}.json"
        path.write_text(json.dumps(forged))
        done = cli.chain("verify", str(path), "--node", cli.node, "--json", check=False)
        assert done.returncode == 1, f"tampered {field} still verified"
        failed = [c["name"] for c in json.loads(done.stdout)["checks"] if not c["ok"]]
        assert failed and failed[0] == expected_check, (field, failed)


def test_devnet_flow_tamper_persistence_and_bad_input(
    tmp_path: Path, mlp_package: Path, storage_node: str
) -> None:
    data = tmp_path / "chain"
    devnet, rpc = launch_devnet_process(data)
    try:
        cli = Cli(tmp_path / "home", rpc, storage_node)
        receipt = _flow(cli, mlp_package, tmp_path)
        _assert_every_tamper_fails(cli, receipt, tmp_path)

        # Bad input: each a one-line error, and no transaction sent (nonces and blocks unchanged).
        from web3 import Web3

        w3 = Web3(Web3.HTTPProvider(rpc))
        alice = json.loads(receipt.read_text())["caller"]
        nonce_before, block_before = w3.eth.get_transaction_count(alice), w3.eth.block_number
        sample = _sample(tmp_path / "sample.json", 0)
        cli.one_line_error(
            cli.chain(
                "infer",
                "no-such-model",
                "--input",
                str(sample),
                "--node",
                storage_node,
                check=False,
            ),
            "unknown model",
        )
        bad_shape = tmp_path / "bad.json"
        bad_shape.write_text(json.dumps([0.5] * 63))
        cli.one_line_error(
            cli.chain(
                "infer",
                "digits-mlp",
                "--input",
                str(bad_shape),
                "--account",
                "alice",
                "--node",
                storage_node,
                check=False,
            ),
            "shape",
        )
        cli.one_line_error(
            cli.chain(
                "infer",
                "digits-mlp",
                "--input",
                str(_sample(tmp_path / "y.json", 1)),
                "--account",
                "alice",
                "--node",
                storage_node,
                password="wrong",
                check=False,
            ),
            "wrong password",
        )
        bob = cli.run("account", "new", "bob").stdout.split()[-1]
        cli.chain("transfer", bob, "--eth", "1")
        cli.one_line_error(
            cli.chain(
                "infer",
                "digits-mlp",
                "--input",
                str(_sample(tmp_path / "z.json", 2)),
                "--account",
                "bob",
                "--node",
                storage_node,
                check=False,
            ),
            "insufficient CommonsToken balance",
        )
        cli.one_line_error(
            cli.run("models", "--rpc", f"http://127.0.0.1:{free_port()}", check=False),
            "cannot reach JSON-RPC endpoint",
        )
        assert w3.eth.get_transaction_count(alice) == nonce_before
        # Only bob's funding transfer was mined; his failed inference sent nothing.
        assert w3.eth.block_number == block_before + 1
        assert w3.eth.get_transaction_count(bob) == 0

        # kill -9, restart on the same data: the model is still registered and usable.
        devnet.send_signal(signal.SIGKILL)
        devnet.wait(10)
        devnet, rpc = launch_devnet_process(data)
        cli.rpc = rpc
        verdict = cli.chain("verify", str(receipt), "--node", storage_node, "--json")
        assert json.loads(verdict.stdout)["ok"] is True
        second = tmp_path / "second.json"
        cli.chain(
            "infer",
            "digits-mlp",
            "--input",
            str(_sample(tmp_path / "w.json", 5)),
            "--receipt",
            str(second),
            "--account",
            "alice",
            "--node",
            storage_node,
        )
        assert json.loads(cli.chain("verify", str(second), "--json").stdout)["ok"] is True
    finally:
        devnet.terminate()
        devnet.wait(10)


def test_same_flow_on_hardhat_node(tmp_path: Path, mlp_package: Path, storage_node: str) -> None:
    from aicommons.chain.devnet.hardhat_node import launch_hardhat_node

    hardhat, rpc = launch_hardhat_node()
    try:
        cli = Cli(tmp_path / "home", rpc, storage_node)
        receipt = _flow(cli, mlp_package, tmp_path)
        forged = json.loads(receipt.read_text())
        forged["output"] = [v + 1 for v in forged["output"]]
        path = tmp_path / "forged.json"
        path.write_text(json.dumps(forged))
        assert cli.chain("verify", str(path), "--json", check=False).returncode == 1
    finally:
        hardhat.terminate()
        hardhat.wait(10)
