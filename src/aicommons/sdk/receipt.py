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

RECEIPT_FORMAT = "aicommons-receipt/1"
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
    format: str = RECEIPT_FORMAT

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        from aicommons.fsutil import atomic_write_bytes

        atomic_write_bytes(path, (json.dumps(self.to_json(), indent=2) + "\n").encode())

    @classmethod
    def from_json(cls, data: Any) -> Receipt:
        if not isinstance(data, dict):
            raise ReceiptError("a receipt is a JSON object")
        expected = set(cls.__dataclass_fields__)
        missing = sorted(expected - set(data) - {"format"})
        if missing:
            raise ReceiptError(f"receipt lacks field(s): {', '.join(missing)}")
        unknown = sorted(set(data) - expected)
        if unknown:
            raise ReceiptError(f"receipt has unknown field(s): {', '.join(unknown)}")
        try:
            return cls(
                chain_id=_as_int(data["chain_id"], "chain_id"),
                executor=str(data["executor"]),
                registry=str(data["registry"]),
                tx_hash=str(data["tx_hash"]),
                block_number=_as_int(data["block_number"], "block_number"),
                model=str(data["model"]),
                version_id=str(data["version_id"]),
                caller=str(data["caller"]),
                input=[_as_int(v, "input") for v in data["input"]],
                input_hash=str(data["input_hash"]),
                output=[_as_int(v, "output") for v in data["output"]],
                output_hash=str(data["output_hash"]),
                label=_as_int(data["label"], "label"),
                fee=_as_int(data["fee"], "fee"),
                format=str(data.get("format", "")),
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
