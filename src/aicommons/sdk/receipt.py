"""Inference receipts: the JSON a caller keeps, and the named checks that verify one.

A receipt is only a claim; `verify_receipt` re-derives every field from the chain, the registry,
storage and a local re-execution. It never trusts a receipt field it can recompute.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aicommons.commit.json_input import JsonInputError, read_json_file
from aicommons.sdk.errors import ReceiptError

RECEIPT_FORMAT = "aicommons-receipt/2"
"""Format 2 adds `block_hash`, so a verifier can tell a receipt from a block that was reorged."""
LEGACY_FORMATS = ("aicommons-receipt/1",)
"""Older formats still read (without a block hash)."""
RECEIPT_MAX_BYTES = 16 * 1024 * 1024
"""A receipt carries one input and one output; 16 MiB bounds even a large model's."""


@dataclass(frozen=True)
class Receipt:
    """What `aic infer` saves: enough to find the transaction and recompute everything."""

    chain_id: int
    executor: str
    registry: str
    tx_hash: str
    block_number: int
    model: str
    version_id: str
    caller: str
    input: list[int]
    input_hash: str
    output: list[int]
    output_hash: str
    label: int
    fee: int
    block_hash: str = ""
    format: str = RECEIPT_FORMAT

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.format in LEGACY_FORMATS:
            del data["block_hash"]
        return data

    def save(self, path: Path) -> None:
        from aicommons.fsutil import atomic_write_bytes

        atomic_write_bytes(path, (json.dumps(self.to_json(), indent=2) + "\n").encode())

    @classmethod
    def from_json(cls, data: Any) -> Receipt:
        if not isinstance(data, dict):
            raise ReceiptError("a receipt is a JSON object")
        expected = set(cls.__dataclass_fields__)
        optional = {"format", "block_hash"} if data.get("format") in LEGACY_FORMATS else {"format"}
        missing = sorted(expected - set(data) - optional)
        if missing:
            raise ReceiptError(f"receipt lacks field(s): {', '.join(missing)}")
        unknown = sorted(set(data) - expected)
        if unknown:
            raise ReceiptError(f"receipt has unknown field(s): {', '.join(unknown)}")
        try:
            return cls(
                chain_id=_as_int(data["chain_id"], "chain_id"),
                executor=_as_str(data["executor"], "executor"),
                registry=_as_str(data["registry"], "registry"),
                tx_hash=_as_str(data["tx_hash"], "tx_hash"),
                block_number=_as_int(data["block_number"], "block_number"),
                block_hash=_as_str(data.get("block_hash", ""), "block_hash"),
                model=_as_str(data["model"], "model"),
                version_id=_as_str(data["version_id"], "version_id"),
                caller=_as_str(data["caller"], "caller"),
                input=[_as_int(v, "input") for v in _as_list(data["input"], "input")],
                input_hash=_as_str(data["input_hash"], "input_hash"),
                output=[_as_int(v, "output") for v in _as_list(data["output"], "output")],
                output_hash=_as_str(data["output_hash"], "output_hash"),
                label=_as_int(data["label"], "label"),
                fee=_as_int(data["fee"], "fee"),
                format=_as_str(data.get("format", ""), "format"),
            )
        except TypeError as exc:
            raise ReceiptError(f"receipt field has the wrong type: {exc}") from exc

    @classmethod
    def load(cls, path: Path) -> Receipt:
        try:
            data = read_json_file(path, what="receipt", max_bytes=RECEIPT_MAX_BYTES)
        except OSError as exc:
            raise ReceiptError(f"cannot read receipt {path}: {exc.strerror}") from exc
        except JsonInputError as exc:
            raise ReceiptError(str(exc)) from None
        return cls.from_json(data)


MARKET_RECEIPT_FORMAT = "aicommons-market-receipt/1"
"""A compute-market result: the request transaction, the provider's EIP-712 signature, and
(once final) the finalise transaction."""


@dataclass(frozen=True)
class MarketReceipt:
    """What `aic request` saves: the paid request, the signed result and its finalisation.

    `tx_hash`/`block_number`/`block_hash` are the request transaction (where the fee was
    escrowed); `finalise_tx` is empty while the result is pending. `output` holds the posted
    output's values (elements of the graph's output width); `signature` is the provider's
    EIP-712 `Result` (`aicommons.market.receipts`). `input` holds the request's input bytes
    as signed bytes (an int8 model: its values; a text model: each int32 token id's four
    big-endian bytes), exactly what `input_hash` hashes.
    """

    chain_id: int
    market: str
    registry: str
    request_id: int
    model: str
    version_id: str
    mode: str
    requester: str
    provider: str
    signature: str
    tx_hash: str
    block_number: int
    block_hash: str
    input: list[int]
    input_hash: str
    output: list[int]
    output_hash: str
    trace_root: str
    max_fee: int
    fee: int | None
    finalise_tx: str = ""
    format: str = MARKET_RECEIPT_FORMAT

    @property
    def pending(self) -> bool:
        return not self.finalise_tx

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        from aicommons.fsutil import atomic_write_bytes

        atomic_write_bytes(path, (json.dumps(self.to_json(), indent=2) + "\n").encode())

    @classmethod
    def from_json(cls, data: Any) -> MarketReceipt:
        if not isinstance(data, dict):
            raise ReceiptError("a receipt is a JSON object")
        expected = set(cls.__dataclass_fields__)
        missing = sorted(expected - set(data) - {"format", "finalise_tx"})
        if missing:
            raise ReceiptError(f"receipt lacks field(s): {', '.join(missing)}")
        unknown = sorted(set(data) - expected)
        if unknown:
            raise ReceiptError(f"receipt has unknown field(s): {', '.join(unknown)}")
        fee = data["fee"]
        strings = ("market", "registry", "model", "version_id", "mode", "requester", "provider")
        strings += ("signature", "tx_hash", "block_hash", "input_hash", "output_hash")
        return cls(
            chain_id=_as_int(data["chain_id"], "chain_id"),
            request_id=_as_int(data["request_id"], "request_id"),
            block_number=_as_int(data["block_number"], "block_number"),
            input=[_as_int(v, "input") for v in _as_list(data["input"], "input")],
            output=[_as_int(v, "output") for v in _as_list(data["output"], "output")],
            trace_root=_as_str(data["trace_root"], "trace_root"),
            max_fee=_as_int(data["max_fee"], "max_fee"),
            fee=None if fee is None else _as_int(fee, "fee"),
            finalise_tx=_as_str(data.get("finalise_tx", ""), "finalise_tx"),
            format=_as_str(data.get("format", ""), "format"),
            **{name: _as_str(data[name], name) for name in strings},
        )


def load_receipt(path: Path) -> Receipt | MarketReceipt:
    """An on-chain inference receipt or a market receipt, by its `format` field."""
    try:
        data = read_json_file(path, what="receipt", max_bytes=RECEIPT_MAX_BYTES)
    except OSError as exc:
        raise ReceiptError(f"cannot read receipt {path}: {exc.strerror}") from exc
    except JsonInputError as exc:
        raise ReceiptError(str(exc)) from None
    if isinstance(data, dict) and data.get("format") == MARKET_RECEIPT_FORMAT:
        return MarketReceipt.from_json(data)
    return Receipt.from_json(data)


def kept_receipt_path(receipt: Receipt | MarketReceipt) -> Path:
    """Where the SDK keeps every receipt it was paid for: `$AIC_HOME/receipts/<tx hash>.json`
    (a market receipt: its request transaction, updated in place once final)."""
    from aicommons.home import state_dir

    return state_dir("receipts") / f"{receipt.tx_hash}.json"


def keep_receipt(receipt: Receipt | MarketReceipt) -> Path:
    """Save `receipt` under `$AIC_HOME/receipts` (atomically); returns the path."""
    path = kept_receipt_path(receipt)
    receipt.save(path)
    return path


def _as_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ReceiptError(f"receipt field {name} must be a string, got {value!r}")
    return value


def _as_list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise ReceiptError(f"receipt field {name} must be a list of integers")
    return value


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReceiptError(f"receipt field {name} must hold integers, got {value!r}")
    return value


@dataclass(frozen=True)
class Check:
    """One named verification step and its verdict."""

    name: str
    ok: bool
    detail: str


@dataclass
class VerificationReport:
    """Every check in order; the receipt is valid only if all passed."""

    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.ok]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [asdict(check) for check in self.checks]}


class CheckFailed(Exception):
    """Raised inside a check to fail it with a reason (not a user-input error)."""


def run_checks(steps: list[tuple[str, Callable[[], str]]]) -> VerificationReport:
    """Run each named step; a step returns a detail string or raises to fail.

    Later steps usually need what earlier ones established, so after the first failure the rest
    are reported as not run rather than executed on untrusted data.
    """
    report = VerificationReport()
    failed_at: str | None = None
    for name, step in steps:
        if failed_at is not None:
            report.checks.append(Check(name, False, f"not run: check {failed_at!r} failed"))
            continue
        try:
            report.checks.append(Check(name, True, step()))
        except Exception as exc:  # a check fails on any error; the reason is the detail
            report.checks.append(Check(name, False, str(exc) or type(exc).__name__))
            failed_at = name
    return report
