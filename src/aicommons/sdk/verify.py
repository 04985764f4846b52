"""Receipt verification as named checks: each re-derives one claim of a receipt from the chain,
the registry, storage or a local bit-exact re-execution.

A check returns a one-line detail or raises `CheckFailed` with the reason; `verify_receipt`
runs them in order and stops trusting later ones after the first failure. A check never trusts
a receipt field it can recompute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from aicommons.chain.executor import input_hash, output_hash
from aicommons.commit import keccak256
from aicommons.sdk.errors import ClientError
from aicommons.sdk.receipt import (
    RECEIPT_FORMAT,
    CheckFailed,
    Receipt,
    VerificationReport,
    run_checks,
)
from aicommons.sdk.types import hex32

if TYPE_CHECKING:
    from aicommons.sdk.client import Client


DEFAULT_CONFIRMATIONS = {1: 64, 11155111: 64, 17000: 64, 1337: 1, 31337: 1}
"""Blocks (the receipt's own included) before a receipt counts as final, by chain id: two
epochs on Ethereum and its testnets; 1 on the single-node development chains (our devnet and
hardhat), which never reorganise."""
FALLBACK_CONFIRMATIONS = 12
"""For any other chain: a conservative depth; pass `confirmations=` for the chain's own rule."""


def required_confirmations(chain_id: int) -> int:
    return DEFAULT_CONFIRMATIONS.get(chain_id, FALLBACK_CONFIRMATIONS)


@dataclass
class Context:
    """What the checks share: the client, the receipt, and what earlier checks established."""

    client: Client
    receipt: Receipt
    confirmations: int
    found: dict[str, Any] = field(default_factory=dict)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def check_format(ctx: Context) -> str:
    expect(ctx.receipt.format == RECEIPT_FORMAT, f"format {ctx.receipt.format!r} is not known")
    return RECEIPT_FORMAT


def check_chain(ctx: Context) -> str:
    chain_id = ctx.client.chain_id
    expect(
        ctx.receipt.chain_id == chain_id,
        f"receipt is for chain {ctx.receipt.chain_id}, the endpoint serves {chain_id}",
    )
    return f"chain id {chain_id}"


def check_deployment(ctx: Context) -> str:
    deployment = ctx.client.deployment
    executor = deployment.address("OnchainExecutor")
    expect(
        ctx.receipt.executor.lower() == executor.lower(),
        f"executor {ctx.receipt.executor} is not this chain's aicommons executor",
    )
    expect(
        ctx.receipt.registry.lower() == deployment.address("ModelRegistry").lower(),
        f"registry {ctx.receipt.registry} is not this chain's aicommons registry",
    )
    return f"executor {executor}"


def check_transaction(ctx: Context) -> str:
    from web3.exceptions import TransactionNotFound

    receipt, w3 = ctx.receipt, ctx.client.w3
    try:
        tx_receipt = w3.eth.get_transaction_receipt(receipt.tx_hash)
        tx = w3.eth.get_transaction(receipt.tx_hash)
    except (TransactionNotFound, ValueError) as exc:
        raise CheckFailed(f"transaction {receipt.tx_hash} not found: {exc}") from None
    expect(tx_receipt["status"] == 1, "transaction reverted")
    expect(
        str(tx_receipt["to"]).lower() == receipt.executor.lower(),
        "transaction was not sent to the executor",
    )
    expect(
        int(tx_receipt["blockNumber"]) == receipt.block_number,
        f"transaction is in block {tx_receipt['blockNumber']}, not {receipt.block_number}",
    )
    expect(str(tx["from"]).lower() == receipt.caller.lower(), "caller is not the sender")
    if receipt.block_hash:
        expect(
            hex32(tx_receipt["blockHash"]) == receipt.block_hash.lower(),
            f"block {receipt.block_number} is not the block the receipt names (reorganised?)",
        )
    ctx.found["tx_receipt"] = tx_receipt
    return f"mined in block {receipt.block_number}"


def check_confirmations(ctx: Context) -> str:
    w3, receipt = ctx.client.w3, ctx.receipt
    # The canonical block at that height must still be the one that holds the transaction.
    canonical = w3.eth.get_block(receipt.block_number)
    expect(
        bytes(canonical["hash"]) == bytes(ctx.found["tx_receipt"]["blockHash"]),
        f"block {receipt.block_number} is no longer on the canonical chain",
    )
    depth = int(w3.eth.block_number) - receipt.block_number + 1
    expect(
        depth >= ctx.confirmations,
        f"{depth} confirmation(s), {ctx.confirmations} required: not final yet",
    )
    return f"{depth} confirmation(s) ({ctx.confirmations} required)"


def check_event(ctx: Context) -> str:
    receipt = ctx.receipt
    executor = ctx.client.contract("OnchainExecutor")
    events = [
        event
        for event in _inference_events(executor, ctx.found["tx_receipt"])
        if str(event["address"]).lower() == receipt.executor.lower()
    ]
    expect(len(events) == 1, f"{len(events)} Inference events from the executor")
    args = events[0]["args"]
    logged = {
        "model_id": hex32(args["model_id"]),
        "version_id": hex32(args["version_id"]),
        "caller": str(args["caller"]).lower(),
        "input_hash": hex32(args["input_hash"]),
        "output_hash": hex32(args["output_hash"]),
        "output": [int(v) for v in args["output"]],
        "label": int(args["label"]),
        "fee": int(args["fee"]),
    }
    claimed = {
        "model_id": hex32(keccak256(receipt.model.encode())),
        "version_id": receipt.version_id.lower(),
        "caller": receipt.caller.lower(),
        "input_hash": receipt.input_hash.lower(),
        "output_hash": receipt.output_hash.lower(),
        "output": receipt.output,
        "label": receipt.label,
        "fee": receipt.fee,
    }
    differing = [key for key in logged if logged[key] != claimed[key]]
    expect(not differing, f"event differs from receipt in: {', '.join(differing)}")
    return "Inference event matches every receipt field"


def _inference_events(executor: Any, tx_receipt: Any) -> list[Any]:
    """The executor's Inference events in a transaction; other contracts' logs are skipped
    quietly (web3 warns about every log it cannot decode, e.g. the token's Transfer)."""
    from web3.logs import DISCARD

    return list(executor.events.Inference().process_receipt(tx_receipt, errors=DISCARD))


def check_hashes(ctx: Context) -> str:
    receipt = ctx.receipt
    expect(
        hex32(input_hash(receipt.input)) == receipt.input_hash.lower(),
        "input does not hash to input_hash",
    )
    expect(
        hex32(output_hash(receipt.output)) == receipt.output_hash.lower(),
        "output does not hash to output_hash",
    )
    return "input and output hash to the logged hashes"


def check_registry(ctx: Context) -> str:
    receipt = ctx.receipt
    version_id = bytes.fromhex(receipt.version_id.removeprefix("0x"))
    version = ctx.client.registry.version(receipt.model, version_id)
    ctx.found["version"] = version
    return f"version of {receipt.model}, weights root {version.weights_root}"


def check_package(ctx: Context) -> str:
    ctx.found["package"] = ctx.client.storage.fetch_package(ctx.found["version"])
    return "package from storage hashes to the version id, weights root and program hash"


def check_reexecution(ctx: Context) -> str:
    receipt, package = ctx.receipt, ctx.found["package"]
    x = np.asarray(receipt.input, dtype=np.int64)
    expect(x.size == int(np.prod(package.input_shape)), "input has the wrong size for this model")
    expect(bool(np.all((x >= -128) & (x <= 127))), "input values are outside int8")
    x8 = x.astype(np.int8).reshape((1, *package.input_shape))
    output = [int(v) for v in package.run(x8).reshape(-1)]
    expect(output == receipt.output, "local re-execution gives a different output")
    label = int(np.argmax(np.asarray(output)))
    expect(label == receipt.label, f"argmax of the output is {label}, not {receipt.label}")
    return f"re-executed locally: identical {len(output)} outputs, label {label}"


CHECKS: tuple[tuple[str, Callable[[Context], str]], ...] = (
    ("format", check_format),
    ("chain", check_chain),
    ("deployment", check_deployment),
    ("transaction", check_transaction),
    ("confirmations", check_confirmations),
    ("event", check_event),
    ("hashes", check_hashes),
    ("registry", check_registry),
    ("package", check_package),
    ("reexecution", check_reexecution),
)
CHECK_NAMES = tuple(name for name, _ in CHECKS)


def verify_receipt(
    client: Client, receipt: Receipt, *, confirmations: int | None = None
) -> VerificationReport:
    """Check an on-chain inference receipt against the chain, registry, storage and a local
    re-execution; every check is reported by name.

    `confirmations` is the depth the transaction's block needs (default: per chain, see
    `required_confirmations`)."""
    if confirmations is not None and confirmations < 1:
        raise ClientError("confirmations must be at least 1 (the receipt's own block)")
    required = confirmations or required_confirmations(client.chain_id)
    ctx = Context(client, receipt, required)
    return run_checks([(name, lambda check=check: check(ctx)) for name, check in CHECKS])
