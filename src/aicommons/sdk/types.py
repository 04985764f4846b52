"""Frozen results the SDK returns: models, versions, attribution, publish outcomes.

Contract structs are decoded by field name (never `record[7]`), so a reordered struct in a
contract breaks loudly in one place. No I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


def decode_struct(outputs: Sequence[Mapping[str, Any]], values: Sequence[Any]) -> dict[str, Any]:
    """A contract call's result as a dict keyed by the ABI output names, nested structs too.

    `outputs` is the function's ABI `outputs`; a single struct output (what a public struct
    getter returns) is unpacked by its components' names.
    """
    if len(outputs) == 1 and outputs[0].get("components") and outputs[0]["type"] == "tuple":
        outputs = outputs[0]["components"]
    if len(outputs) != len(values):
        raise ValueError(f"ABI has {len(outputs)} outputs, the call returned {len(values)}")
    return {
        str(spec["name"]): _decode_value(spec, value)
        for spec, value in zip(outputs, values, strict=True)
    }


def _decode_value(spec: Mapping[str, Any], value: Any) -> Any:
    components = spec.get("components")
    if not components:
        return value
    if str(spec["type"]).endswith("[]"):
        return [decode_struct(components, item) for item in value]
    return decode_struct(components, value)


def hex32(data: bytes) -> str:
    return "0x" + bytes(data).hex()


@dataclass(frozen=True)
class Attribution:
    """One entry of a version's fee split: who, in which role, what share (basis points)."""

    account: str
    role: str
    share_bps: int


@dataclass(frozen=True)
class VersionInfo:
    """One version of a model as the registry records it (versions are keyed by model)."""

    model: str
    model_id: str
    version_id: str
    weights_root: str
    program_hash: str  # what the executor may run; 0x00.. for versions without on-chain mode
    fee: int
    modes: int
    licence: str
    locators: list[str]
    attribution: list[Attribution]
    publisher: str
    deprecated: bool
    canonical: bool
    onchain_ready: bool
    graph_root: str = "0x" + "00" * 32
    """The market's graph commitment the registry records (zero: the market cannot serve it)."""
    mode_names: list[str] = field(default_factory=list)
    """`modes` by name (`protocol.MODES`), e.g. ["onchain", "optimistic"]."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def version_bytes(self) -> bytes:
        return bytes.fromhex(self.version_id.removeprefix("0x"))

    @property
    def model_bytes(self) -> bytes:
        return bytes.fromhex(self.model_id.removeprefix("0x"))

    @property
    def key(self) -> tuple[bytes, bytes]:
        """(model_id, version_id): how the registry and the executor name this version."""
        return self.model_bytes, self.version_bytes


@dataclass(frozen=True)
class ModelInfo:
    name: str
    model_id: str
    versions: list[VersionInfo] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_id": self.model_id,
            "versions": [v.to_json() for v in self.versions],
        }


@dataclass(frozen=True)
class PublishResult:
    model: str
    version_id: str
    weights_root: str
    blob_id: str
    stored_on: list[str]
    onchain_upload_gas: int | None
    modes: list[str] = field(default_factory=list)
    graph_root: str | None = None
    """The graph commitment recorded for the market modes (None without them)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
