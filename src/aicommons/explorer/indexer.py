"""The indexer: follows every contract of a deployment through `eth_getLogs` into the SQLite index.

Generic by construction: each log is decoded with its contract's ABI (`compile_contract(name)`),
so a new contract or event needs page views, never indexer code. It fetches logs in block ranges,
resumes after the last committed batch, and survives reorganisations: it keeps block hashes and,
when the chain disagrees with one, rewinds to the newest block both agree on and re-indexes.
It only reads the chain; it never sends a transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address
from eth_utils.abi import collapse_if_tuple, event_abi_to_log_topic

from aicommons.explorer.errors import IndexerError
from aicommons.explorer.store import EventIndex, NewEvent
from aicommons.home import state_dir

logger = logging.getLogger(__name__)

DEFAULT_BATCH_BLOCKS = 2_000
"""Blocks per `eth_getLogs` request (public nodes refuse much wider ranges)."""
RPC_BATCH = 500
"""Blocks fetched per JSON-RPC batch request when reading block hashes and timestamps."""
_STATIC_TOPIC_TYPES = ("address", "bool", "uint", "int", "bytes")
"""Indexed argument types whose topic holds the value itself (dynamic ones hold its hash)."""


@dataclass(frozen=True)
class SyncStats:
    """What one `sync` did: events stored, blocks scanned, reorganisations undone, time taken."""

    events: int
    blocks: int
    rewound_events: int
    seconds: float
    indexed_to: int | None

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class _Reorganised(Exception):
    """The chain changed under a batch; the caller re-checks ancestry and retries."""


@dataclass(frozen=True)
class EventDecoder:
    """Decodes one event's logs from its ABI entry into a dict of JSON values by name."""

    contract: str
    name: str
    inputs: tuple[Mapping[str, Any], ...]

    def decode(self, codec: Any, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        indexed = [spec for spec in self.inputs if spec.get("indexed")]
        unindexed = [spec for spec in self.inputs if not spec.get("indexed")]
        if len(topics) != len(indexed) + 1:
            raise ValueError(f"{self.name}: {len(topics) - 1} topics for {len(indexed)} indexed")
        values: dict[str, Any] = {}
        for spec, topic in zip(indexed, topics[1:], strict=True):
            kind = collapse_if_tuple(dict(spec))
            static = kind.startswith(_STATIC_TOPIC_TYPES) and kind not in ("bytes", "string")
            if static and "[" not in kind:
                values[spec["name"]] = _jsonable(spec, codec.decode([kind], bytes(topic))[0])
            else:  # a dynamic indexed value is logged as its keccak hash
                values[spec["name"]] = "0x" + bytes(topic).hex()
        decoded = codec.decode([collapse_if_tuple(dict(spec)) for spec in unindexed], bytes(data))
        for spec, value in zip(unindexed, decoded, strict=True):
            values[spec["name"]] = _jsonable(spec, value)
        return {spec["name"]: values[spec["name"]] for spec in self.inputs}


def _jsonable(spec: Mapping[str, Any], value: Any) -> Any:
    """An ABI value as JSON: bytes as 0x hex, addresses checksummed, structs as dicts by name."""
    kind = str(spec["type"])
    if kind.endswith("]"):
        inner = dict(spec, type=kind[: kind.rindex("[")])
        return [_jsonable(inner, item) for item in value]
    if kind == "tuple":
        return {
            str(part["name"]): _jsonable(part, item)
            for part, item in zip(spec["components"], value, strict=True)
        }
    if kind == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return value


Decoders = dict[tuple[str, bytes], EventDecoder]
"""(contract name, topic0) → decoder: two contracts may log one signature with different
arguments indexed (ERC-20 and ERC-721 `Transfer`), so a decoder belongs to its contract."""


def decoders_for(abis: Mapping[str, Sequence[Mapping[str, Any]]]) -> Decoders:
    """A decoder for every event of every named contract ABI."""
    decoders: Decoders = {}
    for contract, abi in abis.items():
        for entry in abi:
            if entry.get("type") == "event":
                decoders[(contract, event_abi_to_log_topic(dict(entry)))] = EventDecoder(
                    contract, str(entry["name"]), tuple(entry.get("inputs", ()))
                )
    return decoders


def decode_log(
    decoders: Decoders, names: Mapping[str, str], codec: Any, log: Mapping[str, Any]
) -> NewEvent:
    """One log as an event to store. A log the ABI cannot decode (an unknown topic, or one the
    deployed contract logs differently from the source compiled here) is kept raw — its topics
    and data, with the reason — rather than stopping the index."""
    address = str(log["address"]).lower()
    contract = names.get(address)
    if contract is None:
        raise IndexerError(f"log from {log['address']}, which is not in the deployment")
    topics = [bytes(topic) for topic in log["topics"]]
    data = bytes(log["data"])
    decoder = decoders.get((contract, topics[0])) if topics else None
    name = decoder.name if decoder else ("0x" + topics[0].hex() if topics else "anonymous")
    try:
        if decoder is None:
            raise ValueError("no event of this contract's ABI has this topic")
        args = decoder.decode(codec, topics, data)
    except Exception as exc:  # eth_abi raises several types for data of the wrong shape
        args = {
            "undecoded": (str(exc) or type(exc).__name__)[:200],
            "topics": ["0x" + t.hex() for t in topics],
            "data": "0x" + data.hex(),
        }
    return NewEvent(
        block_number=int(log["blockNumber"]),
        block_hash="0x" + bytes(log["blockHash"]).hex(),
        tx_hash="0x" + bytes(log["transactionHash"]).hex(),
        log_index=int(log["logIndex"]),
        contract=contract,
        event=name,
        args=args,
    )


def index_path(chain_id: int, genesis_hash: str) -> Path:
    """Where a chain's index lives: `$AIC_HOME/explorer/<chain id>-<genesis prefix>.sqlite`."""
    return state_dir("explorer") / f"{chain_id}-{genesis_hash.removeprefix('0x')[:16]}.sqlite"


class Indexer:
    """Follows one deployment's logs into an `EventIndex`."""

    def __init__(
        self,
        w3: Any,
        deployment: Any,
        index: EventIndex,
        *,
        batch_blocks: int = DEFAULT_BATCH_BLOCKS,
    ) -> None:
        from aicommons.chain.compile import compile_contract

        self.w3 = w3
        self.deployment = deployment
        self.index = index
        self.batch_blocks = batch_blocks
        self.names = {address.lower(): name for name, address in deployment.contracts.items()}
        self.decoders = decoders_for(
            {name: compile_contract(name).abi for name in deployment.contracts}
        )
        self._prepare()

    def _prepare(self) -> None:
        """Start afresh when the index describes another deployment (the chain was reset)."""
        contracts = sorted(self.deployment.contracts.items())
        fingerprint = ",".join(f"{name}={address.lower()}" for name, address in contracts)
        if self.index.meta("deployment") != fingerprint:
            self.index.reset()
            self.index.set_meta(
                {
                    "deployment": fingerprint,
                    "chain_id": str(self.deployment.chain_id),
                    "start_block": str(self._first_code_block()),
                }
            )

    @property
    def start_block(self) -> int:
        return int(self.index.meta("start_block") or 0)

    def _first_code_block(self) -> int:
        """The first block in which any deployed contract has code (constructors log too)."""
        upper = int(self.deployment.block)
        first = upper
        for address in self.deployment.contracts.values():
            lo, hi = 0, upper
            while lo < hi:  # the first block whose state holds the code
                mid = (lo + hi) // 2
                if self.w3.eth.get_code(address, block_identifier=mid):
                    hi = mid
                else:
                    lo = mid + 1
            first = min(first, lo)
        return first

    # -- following the chain ------------------------------------------------------------------

    def sync(self, *, max_blocks: int | None = None) -> SyncStats:
        """Index up to the current head (or `max_blocks` more blocks); returns what it did."""
        started = time.perf_counter()
        added = scanned = rewound = 0
        for _attempt in range(8):
            try:
                rewound += self._rewind_if_reorganised()
                head = int(self.w3.eth.block_number)
                top = self.index.indexed_to()
                start = self.start_block if top is None else top + 1
                if max_blocks is not None:
                    head = min(head, start + max_blocks - 1)
                while start <= head:
                    end = min(head, start + self.batch_blocks - 1)
                    added += self._index_range(start, end)
                    scanned += end - start + 1
                    start = end + 1
                break
            except _Reorganised:
                continue
        return SyncStats(
            added, scanned, rewound, time.perf_counter() - started, self.index.indexed_to()
        )

    def run(self, stop: threading.Event, *, poll_s: float = 1.0) -> None:
        """Follow the chain until `stop` is set; a failing endpoint is retried, not fatal."""
        while not stop.is_set():
            try:
                self.sync()
            except Exception as exc:  # an unreachable node must not kill the server's indexer
                logger.warning("explorer indexer: %s", (str(exc) or repr(exc)).splitlines()[0])
            stop.wait(poll_s)

    def _block_hash(self, number: int) -> str | None:
        from web3.exceptions import BlockNotFound

        try:
            block = self.w3.eth.get_block(number)
        except BlockNotFound:
            return None
        return None if block is None else "0x" + bytes(block["hash"]).hex()

    def _rewind_if_reorganised(self) -> int:
        """Compare stored block hashes (newest first) with the chain; rewind to the newest one
        that still matches. Returns the number of events dropped."""
        top = self.index.indexed_to()
        if top is None:
            return 0
        ancestor = self.start_block - 1
        for number, stored in self.index.stored_blocks(below_or_at=top):
            if self._block_hash(number) == stored:
                ancestor = number
                break
        if ancestor >= top:
            return 0
        dropped = self.index.rewind(ancestor)
        logger.info("explorer indexer: reorganisation, rewound to block %d", ancestor)
        return dropped

    def _blocks(self, numbers: Sequence[int]) -> dict[int, tuple[str, int]]:
        """(hash, timestamp) of each block, fetched in JSON-RPC batches."""
        found: dict[int, tuple[str, int]] = {}
        for offset in range(0, len(numbers), RPC_BATCH):
            chunk = numbers[offset : offset + RPC_BATCH]
            if len(chunk) == 1:
                blocks = [self.w3.eth.get_block(chunk[0])]
            else:
                with self.w3.batch_requests() as batch:
                    for number in chunk:
                        batch.add(self.w3.eth.get_block(number))
                    blocks = batch.execute()
            for number, block in zip(chunk, blocks, strict=True):
                if block is None or isinstance(block, Exception):
                    raise _Reorganised()
                found[number] = ("0x" + bytes(block["hash"]).hex(), int(block["timestamp"]))
        return found

    def _index_range(self, start: int, end: int) -> int:
        tip_before = self._blocks([end])[end]
        logs = self.w3.eth.get_logs(
            {
                "fromBlock": start,
                "toBlock": end,
                "address": [to_checksum_address(a) for a in self.names],
            }
        )
        events = [self._decode(log) for log in logs]
        wanted = sorted({event.block_number for event in events} | {end})
        blocks = self._blocks(wanted)
        if blocks[end] != tip_before:
            raise _Reorganised()
        for event in events:
            if blocks[event.block_number][0] != event.block_hash:
                raise _Reorganised()
        return self.index.append(
            events,
            [(number, block_hash, ts) for number, (block_hash, ts) in blocks.items()],
            indexed_to=end,
        )

    def _decode(self, log: Mapping[str, Any]) -> NewEvent:
        return decode_log(self.decoders, self.names, self.w3.codec, log)


def open_index(w3: Any, deployment: Any) -> tuple[Indexer, EventIndex]:
    """The index of `deployment`'s chain under $AIC_HOME and an indexer that fills it."""
    from aicommons.sdk.deployment import chain_key

    chain_id, genesis_hash = chain_key(w3)
    index = EventIndex(index_path(chain_id, genesis_hash))
    return Indexer(w3, deployment, index), index
