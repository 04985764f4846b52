"""The Ethereum JSON-RPC method table of the devnet: decodes requests, calls `DevnetChain`,
encodes results, and turns every failure into a JSON-RPC error object.

It must never let an exception escape as a transport error: a bad request gets an error reply.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

from aicommons import __version__
from aicommons.chain.devnet.accounts import DEV_ACCOUNTS
from aicommons.chain.devnet.node import (
    CHAIN_ID,
    MAX_TIMESTAMP,
    DevnetChain,
    DevnetError,
    InvalidParams,
    describe_mined_transaction,
    suggested_priority_fee,
)
from aicommons.chain.devnet.rpc_format import (
    LogQuery,
    address,
    data,
    format_block,
    format_log,
    format_receipt,
    format_transaction,
    parse_address,
    parse_block_selector,
    parse_call_request,
    parse_data,
    parse_hash,
    parse_log_query,
    parse_quantity,
    quantity,
    shown,
)

logger = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603
# eth_getLogs refuses wider ranges, like public nodes do, so one request cannot pin the chain.
MAX_LOG_RANGE_BLOCKS = 100_000
MAX_BATCH_REQUESTS = 1000
"""Longest JSON-RPC batch answered (geth's default); a longer one gets one error reply."""
CLIENT_VERSION = f"aicommons-devnet/{__version__}/py-evm"


class Lane(enum.IntEnum):
    """Where the server runs a method, so slow work never delays quick answers."""

    INLINE = 0
    """Constant time, no storage read, no lock: answered on the event loop at once."""
    READ = 1
    """Reads committed chain data; runs on the reader threads."""
    CALL = 2
    """Runs the EVM without mining (eth_call, eth_estimateGas); on its own few threads."""
    WRITE = 3
    """Changes the chain; one thread, since writes are serialised anyway."""


_Method = TypeVar("_Method", bound=Callable[..., Any])


def lane(chosen: Lane) -> Callable[[_Method], _Method]:
    """Mark an `rpc_*` method's lane (unmarked methods are `Lane.READ`)."""

    def mark(method: _Method) -> _Method:
        method.rpc_lane = chosen  # type: ignore[attr-defined]
        return method

    return mark


@dataclass
class _Filter:
    """A polling filter: what it watches and the last block already reported."""

    kind: str  # "logs", "blocks" or "pending"
    last_reported_block: int
    query: LogQuery | None = None


@dataclass
class FilterRegistry:
    """Installed eth_newFilter / eth_newBlockFilter filters (in memory, like any node)."""

    _filters: dict[int, _Filter] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self, installed: _Filter) -> str:
        with self._lock:
            filter_id = next(self._ids)
            self._filters[filter_id] = installed
            return quantity(filter_id)

    def get(self, filter_id: Any) -> _Filter:
        installed = self._filters.get(parse_quantity(filter_id, "filter id"))
        if installed is None:
            raise DevnetError("filter not found")
        return installed

    def remove(self, filter_id: Any) -> bool:
        with self._lock:
            return self._filters.pop(parse_quantity(filter_id, "filter id"), None) is not None

    def rewind(self, head: int) -> None:
        """After evm_revert: blocks past `head` are gone, so the blocks that replace them are
        reported again."""
        with self._lock:
            for installed in self._filters.values():
                installed.last_reported_block = min(installed.last_reported_block, head)


class RpcDispatcher:
    """Handles one decoded JSON-RPC payload (a request or a batch) against `chain`."""

    def __init__(self, chain: DevnetChain) -> None:
        self.chain = chain
        self.filters = FilterRegistry()
        self._methods: dict[str, Callable[..., Any]] = {
            name[len("rpc_") :]: getattr(self, name)
            for name in dir(self)
            if name.startswith("rpc_")
        }
        self._lanes: dict[str, Lane] = {
            name: getattr(method, "rpc_lane", Lane.READ) for name, method in self._methods.items()
        }

    def lane_of(self, payload: Any) -> Lane:
        """The lane `payload` runs in: a batch runs in the slowest lane of its requests, and
        anything answered with an immediate error (unknown method, too long) inline."""
        if isinstance(payload, list):
            if len(payload) > MAX_BATCH_REQUESTS:
                return Lane.INLINE
            return max((self.lane_of(request) for request in payload), default=Lane.INLINE)
        if isinstance(payload, dict) and isinstance(payload.get("method"), str):
            return self._lanes.get(payload["method"], Lane.INLINE)
        return Lane.INLINE

    # -- envelope -------------------------------------------------------------------------------

    def handle_payload(self, payload: Any) -> Any:
        """The reply to `payload`: a response object, a list of them, or None for notifications."""
        if isinstance(payload, list):
            if not payload:
                return _error_response(None, INVALID_REQUEST, "empty batch")
            if len(payload) > MAX_BATCH_REQUESTS:
                # As geth does: the whole batch is refused with one error, in a list.
                return [
                    _error_response(
                        None,
                        INVALID_REQUEST,
                        f"batch of {len(payload)} requests is too large (max {MAX_BATCH_REQUESTS})",
                    )
                ]
            replies = [self.handle_request(request) for request in payload]
            return [reply for reply in replies if reply is not None]
        return self.handle_request(payload)

    def handle_request(self, request: Any) -> dict[str, Any] | None:
        """The reply to one request object."""
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error_response(None, INVALID_REQUEST, "invalid request")
        request_id = request.get("id")
        if not _is_valid_id(request_id):
            # JSON-RPC 2.0: a string, a number or null; nothing nested is echoed back.
            return _error_response(None, INVALID_REQUEST, "invalid request id")
        method = self._methods.get(request["method"])
        if method is None:
            return _error_response(
                request_id, METHOD_NOT_FOUND, f"method {shown(request['method'])} not supported"
            )
        params = request.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            return _error_response(request_id, -32602, "params must be a list")
        reads = self._lanes[request["method"]] in (Lane.READ, Lane.CALL)
        try:
            # A reading request keeps the database open across its reads; a writing one must
            # not hold it while it waits for the write lock.
            with self.chain.reading() if reads else contextlib.nullcontext():
                result = method(*params)
        except TypeError as exc:
            # Wrong number of positional params for the method.
            if "positional argument" in str(exc):
                return _error_response(request_id, -32602, f"wrong number of params: {exc}")
            logger.exception("internal error in %s", request["method"])
            return _error_response(request_id, INTERNAL_ERROR, f"internal error: {exc!r}")
        except DevnetError as exc:
            return _error_response(request_id, exc.rpc_code, str(exc), exc.data)
        except KeyError as exc:
            return _error_response(request_id, -32602, f"missing field {exc}")
        except Exception as exc:  # a bug: report it to the client, keep serving
            logger.exception("internal error in %s", request["method"])
            return _error_response(request_id, INTERNAL_ERROR, f"internal error: {exc!r}")
        if "id" not in request:
            return None
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    # -- helpers --------------------------------------------------------------------------------

    def _header(self, block: Any) -> Any:
        selector = parse_block_selector(block)
        if selector.block_hash is not None:
            found = self.chain.block_by_hash(selector.block_hash)
            if found is None:
                raise InvalidParams(f"block {data(selector.block_hash)} not found")
            return found.header
        return self.chain.header_by_tag(selector.tag)

    def _block_number(self, tag: str | int, head: int) -> int:
        # Log ranges may name blocks past the head (a filter waiting for future blocks); like
        # geth, such a range simply ends at the head instead of failing.
        if isinstance(tag, int):
            return min(tag, head + 1)
        return self.chain.header_by_tag(tag).block_number

    def _logs(self, query: LogQuery, first: int | None = None) -> list[dict[str, Any]]:
        if query.block_hash is not None:
            block = self.chain.block_by_hash(query.block_hash)
            if block is None:
                raise InvalidParams(f"block {data(query.block_hash)} not found")
            return self._block_logs(block, query)
        head = self.chain.head().block_number
        start = first if first is not None else self._block_number(query.from_block.tag, head)
        end = self._block_number(query.to_block.tag, head)
        if end - start > MAX_LOG_RANGE_BLOCKS:
            raise InvalidParams(f"block range too wide (max {MAX_LOG_RANGE_BLOCKS} blocks)")
        logs: list[dict[str, Any]] = []
        for header in self.chain.headers_between(start, end):
            if not query.may_match_bloom(header.bloom):
                continue
            block = self.chain.block_by_number(header.block_number)
            if block is not None:
                logs.extend(self._block_logs(block, query))
        return logs

    def _block_logs(self, block: Any, query: LogQuery) -> list[dict[str, Any]]:
        matched = []
        log_index = 0
        for transaction_index, receipt in enumerate(self.chain.receipts_of(block)):
            mined_at = (block.header, transaction_index, block.transactions[transaction_index].hash)
            for log in receipt.logs:
                if query.matches(log):
                    matched.append(format_log(log, log_index, mined_at))
                log_index += 1
        return matched

    # -- identity -------------------------------------------------------------------------------

    @lane(Lane.INLINE)
    def rpc_web3_clientVersion(self) -> str:
        return CLIENT_VERSION

    def rpc_web3_sha3(self, value: Any) -> str:
        return data(keccak(parse_data(value)))

    @lane(Lane.INLINE)
    def rpc_net_version(self) -> str:
        return str(CHAIN_ID)

    @lane(Lane.INLINE)
    def rpc_net_listening(self) -> bool:
        return True

    @lane(Lane.INLINE)
    def rpc_net_peerCount(self) -> str:
        return quantity(0)

    @lane(Lane.INLINE)
    def rpc_eth_chainId(self) -> str:
        return quantity(CHAIN_ID)

    @lane(Lane.INLINE)
    def rpc_eth_syncing(self) -> bool:
        return False

    @lane(Lane.INLINE)
    def rpc_eth_mining(self) -> bool:
        return True

    @lane(Lane.INLINE)
    def rpc_eth_hashrate(self) -> str:
        return quantity(0)

    @lane(Lane.INLINE)
    def rpc_eth_accounts(self) -> list[str]:
        return [account.address for account in DEV_ACCOUNTS]

    @lane(Lane.INLINE)
    def rpc_eth_coinbase(self) -> str:
        return address(b"\x00" * 20)

    # -- fees -----------------------------------------------------------------------------------

    @lane(Lane.INLINE)
    def rpc_eth_gasPrice(self) -> str:
        return quantity(self.chain.pending_base_fee() + suggested_priority_fee())

    @lane(Lane.INLINE)
    def rpc_eth_maxPriorityFeePerGas(self) -> str:
        return quantity(suggested_priority_fee())

    @lane(Lane.INLINE)
    def rpc_eth_blobBaseFee(self) -> str:
        return quantity(1)

    def rpc_eth_feeHistory(
        self, block_count: Any, newest_block: Any, reward_percentiles: Any = None
    ) -> dict[str, Any]:
        count = parse_quantity(block_count, "blockCount")
        if count < 1 or count > 1024:
            raise InvalidParams("blockCount must be between 1 and 1024")
        newest = self._header(newest_block).block_number
        oldest = max(0, newest - count + 1)
        headers = list(self.chain.headers_between(oldest, newest))
        percentiles = reward_percentiles or []
        result: dict[str, Any] = {
            "oldestBlock": quantity(oldest),
            "baseFeePerGas": [quantity(h.base_fee_per_gas) for h in headers],
            "gasUsedRatio": [h.gas_used / h.gas_limit for h in headers],
        }
        # The next block's base fee closes the list, as the spec asks.
        next_base_fee = (
            self.chain.pending_base_fee()
            if newest == self.chain.head().block_number
            else self.chain.header_by_tag(newest + 1).base_fee_per_gas
        )
        result["baseFeePerGas"].append(quantity(next_base_fee))
        if percentiles:
            # Every devnet transaction tips the suggested fee, so each percentile is that tip.
            result["reward"] = [
                [quantity(suggested_priority_fee()) for _ in percentiles] for _ in headers
            ]
        return result

    # -- state ----------------------------------------------------------------------------------

    @lane(Lane.INLINE)
    def rpc_eth_blockNumber(self) -> str:
        return quantity(self.chain.head().block_number)

    def rpc_eth_getBalance(self, account: Any, block: Any = "latest") -> str:
        return quantity(self.chain.balance(parse_address(account), self._header(block)))

    def rpc_eth_getTransactionCount(self, account: Any, block: Any = "latest") -> str:
        return quantity(self.chain.nonce(parse_address(account), self._header(block)))

    def rpc_eth_getCode(self, account: Any, block: Any = "latest") -> str:
        return data(self.chain.code(parse_address(account), self._header(block)))

    def rpc_eth_getStorageAt(self, account: Any, slot: Any, block: Any = "latest") -> str:
        word = self.chain.storage_at(
            parse_address(account), parse_quantity(slot, "slot"), self._header(block)
        )
        return data(word.to_bytes(32, "big"))

    # -- execution ------------------------------------------------------------------------------

    @lane(Lane.CALL)
    def rpc_eth_call(self, request: Any, block: Any = "latest", *overrides: Any) -> str:
        if overrides and overrides[0]:
            raise InvalidParams("state overrides are not supported")
        return data(self.chain.call(parse_call_request(request), self._header(block)))

    @lane(Lane.CALL)
    def rpc_eth_estimateGas(self, request: Any, block: Any = "latest") -> str:
        return quantity(self.chain.estimate_gas(parse_call_request(request), self._header(block)))

    @lane(Lane.WRITE)
    def rpc_eth_sendRawTransaction(self, raw: Any) -> str:
        return data(self.chain.send_raw_transaction(parse_data(raw, "raw transaction")))

    @lane(Lane.WRITE)
    def rpc_eth_sendTransaction(self, request: Any) -> str:
        return data(self.chain.send_transaction(parse_call_request(request)))

    def rpc_eth_sign(self, account: Any, message: Any) -> str:
        signer = parse_address(account)
        for dev_account in DEV_ACCOUNTS:
            if parse_address(dev_account.address) == signer:
                signed = Account.sign_message(
                    encode_defunct(parse_data(message, "message")), dev_account.private_key
                )
                return data(signed.signature)
        raise DevnetError("unknown account: eth_sign only signs for development accounts")

    # -- blocks and transactions ----------------------------------------------------------------

    def rpc_eth_getBlockByNumber(self, block: Any, full_transactions: Any = False) -> Any:
        selector = parse_block_selector(block)
        if isinstance(selector.tag, int):
            found = self.chain.block_by_number(selector.tag)
        else:
            found = self.chain.block_by_number(self.chain.header_by_tag(selector.tag).block_number)
        if found is None:
            return None
        return format_block(found, self.chain.receipts_of(found), bool(full_transactions))

    def rpc_eth_getBlockByHash(self, block_hash: Any, full_transactions: Any = False) -> Any:
        found = self.chain.block_by_hash(parse_hash(block_hash, "block hash"))
        if found is None:
            return None
        return format_block(found, self.chain.receipts_of(found), bool(full_transactions))

    def rpc_eth_getBlockTransactionCountByNumber(self, block: Any) -> Any:
        found = self.chain.block_by_number(self._header(block).block_number)
        return None if found is None else quantity(len(found.transactions))

    def rpc_eth_getBlockTransactionCountByHash(self, block_hash: Any) -> Any:
        found = self.chain.block_by_hash(parse_hash(block_hash, "block hash"))
        return None if found is None else quantity(len(found.transactions))

    def rpc_eth_getTransactionByHash(self, transaction_hash: Any) -> Any:
        mined = self.chain.mined_transaction(parse_hash(transaction_hash, "transaction hash"))
        return None if mined is None else format_transaction(mined)

    def rpc_eth_getTransactionByBlockNumberAndIndex(self, block: Any, index: Any) -> Any:
        found = self.chain.block_by_number(self._header(block).block_number)
        return self._transaction_in(found, parse_quantity(index, "index"))

    def rpc_eth_getTransactionByBlockHashAndIndex(self, block_hash: Any, index: Any) -> Any:
        found = self.chain.block_by_hash(parse_hash(block_hash, "block hash"))
        return self._transaction_in(found, parse_quantity(index, "index"))

    def _transaction_in(self, block: Any, index: int) -> Any:
        if block is None or index >= len(block.transactions):
            return None
        receipts = self.chain.receipts_of(block)
        return format_transaction(describe_mined_transaction(block, receipts, index))

    def rpc_eth_getTransactionReceipt(self, transaction_hash: Any) -> Any:
        mined = self.chain.mined_transaction(parse_hash(transaction_hash, "transaction hash"))
        return None if mined is None else format_receipt(mined)

    def rpc_eth_getUncleCountByBlockNumber(self, block: Any) -> str:
        self._header(block)
        return quantity(0)

    # -- logs and filters -----------------------------------------------------------------------

    def rpc_eth_getLogs(self, criteria: Any = None) -> list[dict[str, Any]]:
        return self._logs(parse_log_query(criteria))

    def rpc_eth_newFilter(self, criteria: Any = None) -> str:
        query = parse_log_query(criteria)
        if query.block_hash is not None:
            raise InvalidParams("eth_newFilter does not take blockHash")
        # Changes are reported from the filter's fromBlock (which may lie in the future), or
        # from the next block for tags.
        from_tag = query.from_block.tag
        if isinstance(from_tag, int):
            start = from_tag - 1
        elif from_tag == "earliest":
            start = -1
        else:
            start = self.chain.head().block_number
        return self.filters.install(_Filter("logs", start, query))

    def rpc_eth_newBlockFilter(self) -> str:
        return self.filters.install(_Filter("blocks", self.chain.head().block_number))

    def rpc_eth_newPendingTransactionFilter(self) -> str:
        return self.filters.install(_Filter("pending", self.chain.head().block_number))

    def rpc_eth_uninstallFilter(self, filter_id: Any) -> bool:
        return self.filters.remove(filter_id)

    def rpc_eth_getFilterChanges(self, filter_id: Any) -> list[Any]:
        installed = self.filters.get(filter_id)
        head = self.chain.head().block_number
        start = installed.last_reported_block + 1
        installed.last_reported_block = max(installed.last_reported_block, head)
        if installed.kind == "pending" or start > head:
            # Automine: a transaction is never pending long enough to be reported.
            return []
        if installed.kind == "blocks":
            return [data(header.hash) for header in self.chain.headers_between(start, head)]
        assert installed.query is not None
        query = installed.query
        if isinstance(query.to_block.tag, int):
            head = min(head, query.to_block.tag)
        return [
            log for log in self._logs(query, first=start) if int(log["blockNumber"], 16) <= head
        ]

    def rpc_eth_getFilterLogs(self, filter_id: Any) -> list[dict[str, Any]]:
        installed = self.filters.get(filter_id)
        if installed.query is None:
            raise DevnetError("filter is not a log filter")
        return self._logs(installed.query)

    # -- development methods (hardhat / anvil / ganache) ---------------------------------------

    @lane(Lane.WRITE)
    def rpc_evm_snapshot(self) -> str:
        return quantity(self.chain.snapshot())

    @lane(Lane.WRITE)
    def rpc_evm_revert(self, snapshot_id: Any) -> bool:
        reverted = self.chain.revert(parse_quantity(snapshot_id, "snapshot id"))
        if reverted:
            self.filters.rewind(self.chain.head().block_number)
        return reverted

    @lane(Lane.WRITE)
    def rpc_evm_increaseTime(self, seconds: Any) -> str:
        # hardhat answers with the total offset in seconds, as a decimal string.
        return str(self.chain.increase_time(_parse_uint64(seconds, "seconds")))

    @lane(Lane.WRITE)
    def rpc_evm_setNextBlockTimestamp(self, timestamp: Any) -> str:
        return str(self.chain.set_next_block_timestamp(_parse_uint64(timestamp, "timestamp")))

    @lane(Lane.WRITE)
    def rpc_evm_mine(self, timestamp: Any = None) -> str:
        chosen = None if timestamp is None else _parse_uint64(timestamp, "timestamp")
        self.chain.mine(timestamp=chosen)
        return "0x0"


def _parse_uint64(value: Any, name: str) -> int:
    number = parse_quantity(value, name)
    if number > MAX_TIMESTAMP:
        raise InvalidParams(f"invalid {name}: {shown(value)} does not fit 64 bits")
    return number


def _is_valid_id(request_id: Any) -> bool:
    return request_id is None or (
        isinstance(request_id, str | int | float) and not isinstance(request_id, bool)
    )


def _error_response(
    request_id: Any, code: int, message: str, error_data: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if error_data is not None:
        error["data"] = error_data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}
