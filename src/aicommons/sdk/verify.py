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

from aicommons.chain.executor import encode_input, input_hash, output_hash
from aicommons.commit import keccak256
from aicommons.sdk.errors import ClientError
from aicommons.sdk.receipt import (
    MARKET_RECEIPT_FORMAT,
    RECEIPT_FORMAT,
    CheckFailed,
    MarketReceipt,
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
    receipt: Receipt | MarketReceipt
    confirmations: int
    found: dict[str, Any] = field(default_factory=dict)
    allow_pending: bool = False


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


# -- market receipts ---------------------------------------------------------------------------


def check_market_format(ctx: Context) -> str:
    expect(
        ctx.receipt.format == MARKET_RECEIPT_FORMAT, f"format {ctx.receipt.format!r} is not known"
    )
    return MARKET_RECEIPT_FORMAT


def check_market_deployment(ctx: Context) -> str:
    receipt, deployment = ctx.receipt, ctx.client.deployment
    market = deployment.address("ComputeMarket")
    expect(
        receipt.market.lower() == market.lower(),
        f"market {receipt.market} is not this chain's aicommons market",
    )
    expect(
        receipt.registry.lower() == deployment.address("ModelRegistry").lower(),
        f"registry {receipt.registry} is not this chain's aicommons registry",
    )
    return f"market {market}"


def check_market_transaction(ctx: Context) -> str:
    """The request transaction: mined, successful, sent by the requester to the market."""
    from web3.exceptions import TransactionNotFound

    receipt, w3 = ctx.receipt, ctx.client.w3
    try:
        tx_receipt = w3.eth.get_transaction_receipt(receipt.tx_hash)
        tx = w3.eth.get_transaction(receipt.tx_hash)
    except (TransactionNotFound, ValueError) as exc:
        raise CheckFailed(f"transaction {receipt.tx_hash} not found: {exc}") from None
    expect(tx_receipt["status"] == 1, "request transaction reverted")
    expect(
        str(tx_receipt["to"]).lower() == receipt.market.lower(),
        "request transaction was not sent to the market",
    )
    expect(
        int(tx_receipt["blockNumber"]) == receipt.block_number,
        f"transaction is in block {tx_receipt['blockNumber']}, not {receipt.block_number}",
    )
    expect(
        hex32(tx_receipt["blockHash"]) == receipt.block_hash.lower(),
        f"block {receipt.block_number} is not the block the receipt names (reorganised?)",
    )
    expect(str(tx["from"]).lower() == receipt.requester.lower(), "requester is not the sender")
    ctx.found["tx_receipt"] = tx_receipt
    return f"request mined in block {receipt.block_number}"


def check_market_request(ctx: Context) -> str:
    """The RequestCreated event of the transaction names this request, version and input."""
    from web3.logs import DISCARD

    receipt = ctx.receipt
    market = ctx.client.contract("ComputeMarket")
    events = list(
        market.events.RequestCreated().process_receipt(ctx.found["tx_receipt"], errors=DISCARD)
    )
    events = [e for e in events if int(e["args"]["request_id"]) == receipt.request_id]
    expect(len(events) == 1, f"the transaction created no request {receipt.request_id}")
    args = events[0]["args"]
    logged = {
        "version_id": hex32(args["version_id"]),
        "input_hash": hex32(args["input_hash"]),
        "max_fee": int(args["max_fee"]),
        "requester": str(args["requester"]).lower(),
    }
    claimed = {
        "version_id": receipt.version_id.lower(),
        "input_hash": receipt.input_hash.lower(),
        "max_fee": receipt.max_fee,
        "requester": receipt.requester.lower(),
    }
    differing = [key for key in logged if logged[key] != claimed[key]]
    expect(not differing, f"RequestCreated differs from the receipt in: {', '.join(differing)}")
    expect(
        hex32(input_hash(receipt.input)) == receipt.input_hash.lower(),
        "input does not hash to input_hash",
    )
    # The bytes the request committed to: its calldata, or its storage blob (whose hash the
    # request logs), either way the receipt's input values, proven above to hash to it.
    ctx.found["request_input"] = encode_input(receipt.input)
    return f"request {receipt.request_id} for version {receipt.version_id[:10]}…"


def _market_statement(receipt: MarketReceipt) -> Any:
    from aicommons.market.receipts import ResultStatement

    return ResultStatement(
        request_id=receipt.request_id,
        version_id=receipt.version_id,
        input_hash=receipt.input_hash,
        output_hash=receipt.output_hash,
        trace_root=receipt.trace_root,
    )


def check_market_signature(ctx: Context) -> str:
    """The provider's EIP-712 Result recovers to the provider, who claimed the request. The
    provider posts it with the result (BatchPosted / Revealed), so a receipt rebuilt from chain
    data on any machine (`client.market.receipt_of`) carries it."""
    from aicommons.market.receipts import result_signer

    receipt = ctx.receipt
    expect(bool(receipt.provider), "no provider has answered yet")
    expect(bool(receipt.signature), "the receipt carries no provider signature")
    signer = result_signer(
        _market_statement(receipt),
        receipt.signature,
        chain_id=receipt.chain_id,
        market=receipt.market,
    )
    expect(
        signer.lower() == receipt.provider.lower(),
        f"the result is signed by {signer}, not the provider {receipt.provider}",
    )
    claims = ctx.client.market.events(
        names=("Claimed",), filters={"request_id": receipt.request_id}
    )
    claimants = {str(e.args["provider"]).lower() for e in claims}
    expect(receipt.provider.lower() in claimants, "the provider never claimed this request")
    return f"signed by provider {signer}"


def check_market_finalisation(ctx: Context) -> str:
    """ResultFinalised for the request, with this provider, output and trace root; a pending
    result fails unless pending receipts are allowed."""
    receipt = ctx.receipt
    events = ctx.client.market.events(
        names=("ResultFinalised",), filters={"request_id": receipt.request_id}
    )
    if not events:
        status = ctx.client.market.status(receipt.request_id)
        if ctx.allow_pending and status in ("claimed", "posted", "disputed"):
            ctx.found["pending"] = True
            return f"pending ({status}); allowed"
        raise CheckFailed(f"the request is {status}, not finalised")
    args = events[0].args
    logged = {
        "provider": str(args["provider"]).lower(),
        "output_hash": hex32(args["output_hash"]),
        "trace_root": hex32(args["trace_root"]),
        "version_id": hex32(args["version_id"]),
    }
    claimed = {
        "provider": receipt.provider.lower(),
        "output_hash": receipt.output_hash.lower(),
        "trace_root": receipt.trace_root.lower(),
        "version_id": receipt.version_id.lower(),
    }
    differing = [key for key in logged if logged[key] != claimed[key]]
    expect(not differing, f"ResultFinalised differs from the receipt in: {', '.join(differing)}")
    if receipt.finalise_tx:
        expect(
            events[0].tx_hash == receipt.finalise_tx.lower(),
            "the request was finalised in another transaction than the receipt names",
        )
    expect(receipt.fee == int(args["fee"]), f"fee {receipt.fee} is not the paid {args['fee']}")
    ctx.found["output_bytes"] = bytes(args["output"])
    return f"finalised in {events[0].tx_hash}"


def check_market_disputes(ctx: Context) -> str:
    """No dispute on the request was won by a challenger (the request is not overturned)."""
    receipt = ctx.receipt
    status = ctx.client.market.status(receipt.request_id)
    expect(status != "overturned", "the result was overturned by a dispute")
    resolved = ctx.client.market.events(
        names=("DisputeResolved",), filters={"request_id": receipt.request_id}
    )
    lost = [e for e in resolved if str(e.args["winner"]).lower() != receipt.provider.lower()]
    expect(not lost, f"the provider lost dispute {lost[0].args['dispute_id'] if lost else ''}")
    return f"{len(resolved)} dispute(s), none lost by the provider"


def check_market_reexecution(ctx: Context) -> str:
    """Re-execute the request's input: the same output bytes and the same trace root."""
    from aicommons.commit import keccak256
    from aicommons.market.dispute import TraceCommitments
    from aicommons.market.graph import graph_commitment
    from aicommons.market.inputs import sample_from_bytes

    receipt, package = ctx.receipt, ctx.found["package"]
    sample = sample_from_bytes(package, ctx.found["request_input"])
    graph = graph_commitment(package)
    mine = TraceCommitments.from_trace(package, package.trace(sample), 0, graph)
    output = b"".join(mine.rows[graph.header.output_leaf])
    expect(
        hex32(keccak256(output)) == receipt.output_hash.lower(), "re-execution gives another output"
    )
    expect(
        hex32(mine.trace_root) == receipt.trace_root.lower(),
        "re-execution gives another trace root",
    )
    width = graph.header.output_bytes
    values = [
        int.from_bytes(output[i : i + width], "big", signed=True)
        for i in range(0, len(output), width)
    ]
    expect(values == receipt.output, "the receipt's output values differ from re-execution")
    return f"re-executed locally: identical {len(values)} outputs and trace root"


MARKET_CHECKS: tuple[tuple[str, Callable[[Context], str]], ...] = (
    ("format", check_market_format),
    ("chain", check_chain),
    ("deployment", check_market_deployment),
    ("transaction", check_market_transaction),
    ("confirmations", check_confirmations),
    ("request", check_market_request),
    ("signature", check_market_signature),
    ("finalisation", check_market_finalisation),
    ("disputes", check_market_disputes),
    ("registry", check_registry),
    ("package", check_package),
    ("reexecution", check_market_reexecution),
)
MARKET_CHECK_NAMES = tuple(name for name, _ in MARKET_CHECKS)


def verify_market_receipt(
    client: Client,
    receipt: MarketReceipt,
    *,
    confirmations: int | None = None,
    allow_pending: bool = False,
) -> VerificationReport:
    """Check a market receipt by name: chain, request transaction, the provider's signature,
    finalisation (a pending result fails unless `allow_pending`), no lost dispute, registry,
    storage and a bit-exact re-execution of output and trace root."""
    if confirmations is not None and confirmations < 1:
        raise ClientError("confirmations must be at least 1 (the receipt's own block)")
    required = confirmations or required_confirmations(client.chain_id)
    ctx = Context(client, receipt, required, allow_pending=allow_pending)
    return run_checks([(name, lambda check=check: check(ctx)) for name, check in MARKET_CHECKS])
