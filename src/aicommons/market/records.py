"""What the off-chain side knows about market requests, providers and disputes: frozen records
the SDK returns and the daemons act on, and the protocol's status and mode names.

Pure: no chain or file access. The names mirror ComputeMarket.vy (`request_status` codes, mode
codes), pinned against the contract by tests/market_flow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from aicommons.market.commitments import SIGNATURE_BYTES, BatchCommitment
from aicommons.market.commitments import PostedResult as CommittedResult

MODES: dict[str, int] = {"optimistic": 1, "redundant": 2}
"""Request modes by name, with ComputeMarket's code."""

STATUSES: dict[int, str] = {
    1: "open",
    2: "claimed",
    3: "posted",
    4: "disputed",
    5: "finalised",
    6: "overturned",
    7: "expired",
}
"""`request_status(id)` codes of ComputeMarket, by name."""

SETTLED = ("finalised", "overturned", "expired")
"""Statuses after which nothing more happens to a request."""


def mode_name(code: int) -> str:
    return next((name for name, value in MODES.items() if value == code), str(code))


def status_name(code: int) -> str:
    return STATUSES.get(code, str(code))


@dataclass(frozen=True)
class PostedResult:
    """One result inside a posted batch, with what proves it under the batch root."""

    request_id: int
    batch_id: int
    index: int
    provider: str
    output: bytes
    output_hash: str
    trace_root: str
    siblings: tuple[bytes, ...]
    window_ends: int
    block_number: int
    signature: str = ""
    """The provider's EIP-712 Result signature posted with it (0x-hex, 65 bytes)."""


@dataclass(frozen=True)
class MarketRequest:
    """A request as `aic request show` prints it: the on-chain record joined with its events.

    `status` is one of STATUSES' names; a request with a posted batch result still `claimed`
    on-chain is reported `posted` (a batch writes nothing per request on-chain).
    """

    id: int
    model: str
    version_id: str
    mode: str
    status: str
    requester: str
    provider: str | None
    providers: list[str]
    output: list[int] | None
    output_hash: str | None
    trace_root: str | None
    fee: int | None
    max_fee: int
    deadline: int
    window_ends: int | None
    input_hash: str
    request_tx: str
    finalise_tx: str | None = None
    disputes: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProviderInfo:
    """A provider's stake and earnings (AIC base units) and its offers."""

    address: str
    stake: int
    locked: int
    unbonding: int
    unbonding_until: int
    earned: int
    slashed: int
    owed: int
    offers: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MarketEvent:
    """One decoded log of the market contract, in chain order."""

    name: str
    args: dict[str, Any]
    block_number: int
    log_index: int
    tx_hash: str

    @property
    def order(self) -> tuple[int, int]:
        return self.block_number, self.log_index


def batch_results(event: MarketEvent) -> list[PostedResult]:
    """Every result of a BatchPosted event (outputs included), each with its proof under the
    batch root."""
    args = event.args
    outputs, offset = [], 0
    for size in args["output_sizes"]:
        outputs.append(bytes(args["outputs"][offset : offset + int(size)]))
        offset += int(size)
    signatures = bytes(args["signatures"])
    width = SIGNATURE_BYTES
    batch = BatchCommitment(
        [
            CommittedResult(int(request_id), bytes(root), output)
            for request_id, root, output in zip(
                args["request_ids"], args["trace_roots"], outputs, strict=True
            )
        ]
    )
    return [
        PostedResult(
            request_id=result.request_id,
            batch_id=int(args["batch_id"]),
            index=index,
            provider=str(args["provider"]),
            output=result.output,
            output_hash="0x" + result.output_hash.hex(),
            trace_root="0x" + result.trace_root.hex(),
            siblings=tuple(batch.proof(index).siblings),
            window_ends=int(args["window_ends"]),
            block_number=event.block_number,
            signature="0x" + signatures[index * width : (index + 1) * width].hex(),
        )
        for index, result in enumerate(batch.results)
    ]
