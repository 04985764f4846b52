"""Every `aic verify` check fails, by name, on the receipt field it guards (in-process, fast).

Each test tampers with one thing and asserts that exactly the named check is the first failure;
the untouched receipt passes every check.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import pytest

from aicommons.sdk.errors import ClientError, ReceiptError
from aicommons.sdk.receipt import Receipt
from aicommons.sdk.verify import CHECK_NAMES


def _first_failure(network, receipt: Receipt) -> tuple[str, str]:
    report = network.client(None).verify(receipt)
    failed = [check for check in report.checks if not check.ok]
    assert failed, "a tampered receipt verified"
    assert not report.ok
    return failed[0].name, failed[0].detail


def test_the_genuine_receipt_passes_every_check(network, published_mlp) -> None:
    report = network.client(None).verify(published_mlp.receipt)
    assert [check.name for check in report.checks] == list(CHECK_NAMES)
    assert report.ok, report.to_json()


def _other_tx(network, published_mlp) -> str:
    """A real transaction that is not the inference (the fee approval before it)."""
    w3 = network.client(None).w3
    block = w3.eth.get_block(published_mlp.receipt.block_number - 1, full_transactions=True)
    return "0x" + bytes(block["transactions"][0]["hash"]).hex()


TAMPERINGS = {
    "format": lambda r, n, p: {"format": "aicommons-receipt/0"},
    "chain": lambda r, n, p: {"chain_id": r.chain_id + 1},
    "deployment": lambda r, n, p: {"executor": "0x" + "11" * 20},
    "transaction": lambda r, n, p: {"tx_hash": _other_tx(n, p)},
    "event": lambda r, n, p: {"fee": r.fee + 1},
    "hashes": lambda r, n, p: {"input": [v ^ 1 for v in r.input]},
}
"""One tampering per check that the receipt alone can fail. `registry`, `package` and
`reexecution` need the chain, storage or the package to disagree, and have their own tests
below (the receipt's model is bound by the event: Inference logs the model id)."""


@pytest.mark.parametrize("check", sorted(TAMPERINGS))
def test_each_check_fails_by_name(network, published_mlp, check: str) -> None:
    receipt = published_mlp.receipt
    tampered = dataclasses.replace(receipt, **TAMPERINGS[check](receipt, network, published_mlp))
    name, _ = _first_failure(network, tampered)
    assert name == check


def test_another_model_name_fails_the_event_check(network, published_mlp) -> None:
    # Versions are keyed by model: the same version id may be a fork under another model, so
    # the receipt's model must be the one the Inference event logs.
    tampered = dataclasses.replace(published_mlp.receipt, model="digits-cnn")
    name, detail = _first_failure(network, tampered)
    assert (name, detail) == ("event", "event differs from receipt in: model_id")


def test_registry_check_fails_for_a_version_not_under_the_model(network, published_mlp) -> None:
    from aicommons.sdk.verify import Context, check_registry

    tampered = dataclasses.replace(published_mlp.receipt, model="digits-cnn")
    context = Context(network.client(None), tampered, confirmations=1)
    with pytest.raises(ClientError, match="is not a version of model 'digits-cnn'"):
        check_registry(context)


def test_a_version_registered_with_another_program_is_refused(network, published_mlp) -> None:
    # Issue 14 item 8, SDK side: the registry cannot parse a manifest, so a maintainer can
    # register a package's version id with a program hash that is not the package's. The SDK
    # never treats such a version as usable, and will not publish on top of it.
    from aicommons.chain.transact import send_call
    from aicommons.commit import keccak256
    from aicommons.demo import DIGITS_MLP
    from aicommons.sdk.demo import demo_package
    from aicommons.sdk.registry import model_id_of

    owner, co_maintainer = network.client("dev0"), network.client("dev1")
    genuine = owner.registry.resolve("digits-mlp")
    registry = owner.contract("ModelRegistry").functions
    send_call(
        owner.w3,
        owner.account,
        registry.register_model("hijack-demo", [co_maintainer.account.address]),
        "registering hijack-demo",
    )
    wrong_program = registry.publish_version(
        model_id_of("hijack-demo"),
        genuine.version_bytes,
        bytes.fromhex(genuine.weights_root[2:]),
        keccak256(b"some other program"),
        genuine.locators,
        "MIT",
        [],
        1,
        0,
    )
    send_call(owner.w3, co_maintainer.account, wrong_program, "publishing another program hash")
    hijacked = owner.registry.resolve("hijack-demo")
    assert hijacked.version_id == genuine.version_id and not hijacked.onchain_ready
    with pytest.raises(ClientError, match="registers program hash .* refusing it"):
        owner.storage.fetch_package(hijacked)
    with pytest.raises(ClientError, match="not uploaded to the on-chain executor"):
        owner.inference.infer("hijack-demo", published_mlp.sample)
    with pytest.raises(ClientError, match="already published with another weights root, program"):
        owner.registry.publish(demo_package(DIGITS_MLP), model="hijack-demo", onchain=True)


def test_confirmations_are_required_and_reported(network, published_mlp) -> None:
    client = network.client(None)
    depth = client.w3.eth.block_number - published_mlp.receipt.block_number + 1
    report = client.verify(published_mlp.receipt, confirmations=depth + 5)
    failed = [check for check in report.checks if not check.ok]
    assert failed[0].name == "confirmations"
    assert f"{depth} confirmation(s), {depth + 5} required" in failed[0].detail
    passed = client.verify(published_mlp.receipt)
    detail = next(c.detail for c in passed.checks if c.name == "confirmations")
    assert "(1 required)" in detail  # the devnet's default


def test_a_receipt_from_another_block_fails_the_block_hash_check(network, published_mlp) -> None:
    tampered = dataclasses.replace(published_mlp.receipt, block_hash="0x" + "ab" * 32)
    name, detail = _first_failure(network, tampered)
    assert name == "transaction"
    assert "reorganised" in detail


def test_paid_receipts_are_always_kept(network, published_mlp) -> None:
    from aicommons.sdk.receipt import kept_receipt_path

    kept = kept_receipt_path(published_mlp.receipt)
    assert Receipt.load(kept) == published_mlp.receipt


def test_legacy_receipts_without_a_block_hash_still_load(tmp_path: Path, published_mlp) -> None:
    data = published_mlp.receipt.to_json()
    del data["block_hash"]
    path = tmp_path / "v1.json"
    path.write_text(json.dumps({**data, "format": "aicommons-receipt/1"}))
    legacy = Receipt.load(path)
    assert legacy.block_hash == ""
    assert "block_hash" not in legacy.to_json()
    path.write_text(json.dumps(data))  # format 2 without a block hash is incomplete
    with pytest.raises(ReceiptError, match="block_hash"):
        Receipt.load(path)


def test_package_check_fails_when_storage_serves_other_bytes(network, published_mlp) -> None:
    """The package check refuses a download that does not hash to the registered version."""
    from aicommons.home import state_dir

    client = network.client(None)
    version = client.registry.resolve("digits-mlp")
    cache = state_dir("packages") / f"{version.version_id}.aicm"
    genuine = cache.read_bytes()
    try:
        from aicommons.demo import DIGITS_CNN
        from aicommons.sdk.demo import demo_package

        cache.write_bytes(demo_package(DIGITS_CNN).read_bytes())
        report = client.verify(published_mlp.receipt)
        failed = [check for check in report.checks if not check.ok]
        assert failed[0].name == "package"
        assert "hashes to" in failed[0].detail
        assert not cache.exists(), "a package that does not match its version stays cached"
    finally:
        cache.write_bytes(genuine)


def test_reexecution_check_fails_when_the_chain_and_the_package_disagree(
    network, published_mlp, monkeypatch
) -> None:
    """If a package ran differently from what the chain logged, re-execution names it."""
    from aicommons.runtime import ModelPackage

    original = ModelPackage.run

    def off_by_one(self, x):
        return original(self, x) + 1

    monkeypatch.setattr(ModelPackage, "run", off_by_one)
    name, detail = _first_failure(network, published_mlp.receipt)
    assert name == "reexecution"
    assert "different output" in detail


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([], "a receipt is a JSON object"),
        ({"chain_id": 1}, r"lacks field\(s\)"),
        ("unknown", "a receipt is a JSON object"),
    ],
)
def test_malformed_receipts_are_refused_by_name(
    tmp_path: Path, published_mlp, payload, reason: str
) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ReceiptError, match=reason):
        Receipt.load(path)


def test_receipt_field_types_are_checked(tmp_path: Path, published_mlp) -> None:
    data = published_mlp.receipt.to_json()
    for field, value, reason in [
        ("chain_id", "1", "must hold integers"),
        ("input", [1, True], "must hold integers"),
        ("fee", 1.5, "must hold integers"),
        ("extra", 1, "unknown field"),
    ]:
        path = tmp_path / f"{field}.json"
        path.write_text(json.dumps({**data, field: value}))
        with pytest.raises(ReceiptError, match=reason):
            Receipt.load(path)
    missing = tmp_path / "missing.json"
    with pytest.raises(ReceiptError, match="cannot read receipt"):
        Receipt.load(missing)
    not_json = tmp_path / "bad.json"
    not_json.write_text("{")
    with pytest.raises(ReceiptError, match="not valid JSON"):
        Receipt.load(not_json)


def test_infer_and_verify_print_no_warning_a_user_cannot_act_on(network, published_mlp) -> None:
    client = network.client()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        receipt = client.inference.infer("digits-mlp", published_mlp.sample)
        assert client.verify(receipt).ok
    assert [str(w.message) for w in caught] == []


def test_infer_refuses_an_unknown_model_before_paying(network, published_mlp) -> None:
    client = network.client()
    with pytest.raises(ClientError, match="unknown model 'no-such-model'"):
        client.inference.infer("no-such-model", published_mlp.sample)


def test_connect_resolves_accounts_like_the_cli(network, monkeypatch) -> None:
    import aicommons
    from aicommons.chain.accounts import new_account

    with pytest.raises(ClientError, match="no local network is recorded"):
        aicommons.connect()
    client = aicommons.connect(rpc_url=network.rpc_url, storage_nodes=[network.storage_url])
    assert client.account is not None and client.chain_id == 1337  # dev0 on a devnet
    new_account("carol", "pw-carol")
    monkeypatch.setenv("AIC_PASSWORD", "pw-carol")
    carol = aicommons.connect(account="carol", rpc_url=network.rpc_url, storage_nodes=[])
    assert carol.account.address != client.account.address
    monkeypatch.setenv("AIC_PASSWORD", "wrong")
    with pytest.raises(ValueError, match="wrong password"):
        aicommons.connect(account="carol", rpc_url=network.rpc_url, storage_nodes=[])


def test_a_receipts_own_integer_input_gives_the_same_result(network, published_mlp) -> None:
    """Integers are integers (issue 14 item 13): the committed int8 input, fed back as JSON ints
    or an int64 array, is taken as those values, not re-quantised as floats."""
    import numpy as np

    client = network.client()
    receipt = published_mlp.receipt
    as_list = client.inference.predict("digits-mlp", receipt.input)
    as_int64 = client.inference.predict("digits-mlp", np.asarray(receipt.input, dtype=np.int64))
    assert as_list == as_int64 == (receipt.output, receipt.label)
    with pytest.raises(ValueError, match="outside int8"):
        client.inference.predict("digits-mlp", [300] + receipt.input[1:])
