"""A JSON-RPC client for the development methods the devnet shares with hardhat and anvil:
snapshot and revert the chain, move its clock, mine blocks.

For development chains only (real networks do not have these methods). Replies are untrusted
JSON: parsed with a size and nesting bound, and a node's error is one line.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from aicommons.chain.errors import DevnetError
from aicommons.commit.json_input import JsonInputError, parse_json

MAX_REPLY_BYTES = 16 * 1024 * 1024
MINED_PER_REQUEST = 1000
"""evm_mine calls sent in one JSON-RPC batch (the devnet's batch limit, like geth's)."""
_ids = itertools.count(1)


def _send(url: str, payload: Any, timeout_s: float) -> Any:
    try:
        response = httpx.post(url, json=payload, timeout=timeout_s)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise DevnetError(f"cannot reach JSON-RPC endpoint {url}: {exc}") from None
    try:
        return parse_json(response.content, what=f"reply of {url}", max_bytes=MAX_REPLY_BYTES)
    except JsonInputError as exc:
        raise DevnetError(f"{exc} (HTTP {response.status_code})") from None


def _result(url: str, method: str, reply: Any) -> Any:
    if not isinstance(reply, dict):
        raise DevnetError(f"{url} answered {method} with no JSON-RPC reply object")
    error = reply.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        raise DevnetError(f"{method} refused by {url}: {message}")
    if "result" not in reply:
        raise DevnetError(f"{url} answered {method} with neither result nor error")
    return reply["result"]


def rpc_request(
    url: str, method: str, params: Sequence[Any] = (), *, timeout_s: float = 60.0
) -> Any:
    """The result of one JSON-RPC request; `DevnetError` with the node's message if refused."""
    payload = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": list(params)}
    return _result(url, method, _send(url, payload, timeout_s))


def snapshot(url: str) -> str:
    """evm_snapshot: the id (a quantity such as "0x1") to revert to later."""
    return str(rpc_request(url, "evm_snapshot"))


def revert(url: str, snapshot_id: str) -> bool:
    """evm_revert: True if the chain went back to `snapshot_id` (which, and every later
    snapshot, is consumed); False if there is no such snapshot."""
    return bool(rpc_request(url, "evm_revert", [snapshot_id]))


def increase_time(url: str, seconds: int) -> int:
    """evm_increaseTime: move the clock of future blocks; returns the total offset (s)."""
    return int(rpc_request(url, "evm_increaseTime", [seconds]))


def set_next_block_timestamp(url: str, timestamp: int) -> None:
    """evm_setNextBlockTimestamp: the next block gets exactly `timestamp`."""
    rpc_request(url, "evm_setNextBlockTimestamp", [timestamp])


def mine(url: str, timestamp: int | None = None) -> None:
    """evm_mine: one empty block, at `timestamp` if given."""
    rpc_request(url, "evm_mine", [] if timestamp is None else [timestamp])


@dataclass(frozen=True)
class ChainPosition:
    """Where a chain's head is: its number and timestamp (seconds since 1970)."""

    block_number: int
    timestamp: int


def position(url: str) -> ChainPosition:
    """The latest block's number and timestamp."""
    block = rpc_request(url, "eth_getBlockByNumber", ["latest", False])
    if not isinstance(block, dict):
        raise DevnetError(f"{url} has no latest block")
    try:
        return ChainPosition(int(block["number"], 16), int(block["timestamp"], 16))
    except (KeyError, TypeError, ValueError):
        raise DevnetError(f"{url} answered eth_getBlockByNumber with a malformed block") from None


def advance(url: str, *, seconds: int = 0, blocks: int = 1) -> ChainPosition:
    """Move a development chain `seconds` ahead, then mine `blocks` empty blocks (the first
    of them carries the new time); returns where the head is then."""
    if seconds < 0 or blocks < 0:
        raise DevnetError("seconds and blocks must not be negative")
    if seconds == 0 and blocks == 0:
        raise DevnetError("nothing to do: give seconds and/or blocks")
    if seconds:
        increase_time(url, seconds)
    remaining = blocks
    while remaining:
        count = min(remaining, MINED_PER_REQUEST)
        batch = [
            {"jsonrpc": "2.0", "id": next(_ids), "method": "evm_mine", "params": []}
            for _ in range(count)
        ]
        replies = _send(url, batch, timeout_s=60.0 + count)
        if isinstance(replies, dict):  # one error for the whole batch
            _result(url, "evm_mine", replies)
        if not isinstance(replies, list) or len(replies) != count:
            raise DevnetError(f"{url} did not answer each of {count} evm_mine requests")
        for reply in replies:
            _result(url, "evm_mine", reply)
        remaining -= count
    return position(url)
