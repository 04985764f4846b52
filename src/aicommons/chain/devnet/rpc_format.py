"""Pure conversions between Ethereum JSON-RPC values (hex strings) and py-evm objects.

Nothing here touches the chain or the network; every function maps values and raises
`InvalidParams` (a ValueError) on malformed input rather than guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, LogAPI, ReceiptAPI, SignedTransactionAPI
from eth_bloom import BloomFilter
from eth_utils import to_checksum_address

from aicommons.chain.devnet.node import (
    CallRequest,
    InvalidParams,
    MinedTransaction,
    created_contract_address,
    describe_mined_transaction,
    effective_gas_price,
)

BLOCK_TAGS = ("latest", "pending", "safe", "finalized", "earliest")
_SHOWN_CHARS = 80


def shown(value: Any) -> str:
    """`repr(value)` cut to a few dozen characters: error messages name the bad value without
    echoing a megabyte of it back."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


# -- parsing ------------------------------------------------------------------------------------


def parse_quantity(value: Any, name: str = "quantity") -> int:
    """A JSON-RPC QUANTITY ("0x1a"); plain JSON integers are accepted too, as geth does."""
    if isinstance(value, bool):
        raise InvalidParams(f"invalid {name}: {shown(value)}")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value[:2] in ("0x", "0X") and len(value) > 2:
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise InvalidParams(f"invalid {name}: {shown(value)} (expected a 0x-prefixed hex number)")


def parse_data(value: Any, name: str = "data") -> bytes:
    """A JSON-RPC DATA string ("0x..." with an even number of hex digits)."""
    if isinstance(value, str) and value[:2] in ("0x", "0X") and len(value) % 2 == 0:
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise InvalidParams(f"invalid {name}: {shown(value)} (expected 0x-prefixed hex bytes)")


def parse_address(value: Any, name: str = "address") -> bytes:
    """A 20-byte address; checksums are not enforced (nodes accept any case)."""
    address = parse_data(value, name)
    if len(address) != 20:
        raise InvalidParams(f"invalid {name}: {shown(value)} (expected 20 bytes)")
    return address


def parse_hash(value: Any, name: str = "hash") -> bytes:
    """A 32-byte hash."""
    digest = parse_data(value, name)
    if len(digest) != 32:
        raise InvalidParams(f"invalid {name}: {shown(value)} (expected 32 bytes)")
    return digest


@dataclass(frozen=True)
class BlockSelector:
    """Which block a state query targets: a number, a tag, or (EIP-1898) a hash."""

    tag: str | int
    block_hash: bytes | None = None


def parse_block_selector(value: Any) -> BlockSelector:
    """ "latest" | "0x10" | {"blockNumber": "0x10"} | {"blockHash": "0x.."}; absent = latest.

    An EIP-1898 object holds a number or tag, never another object (no recursion on input)."""
    if isinstance(value, dict):
        if "blockHash" in value:
            return BlockSelector("latest", parse_hash(value["blockHash"], "blockHash"))
        if "blockNumber" not in value:
            raise InvalidParams("invalid block: expected blockNumber or blockHash")
        value = value["blockNumber"]
        if isinstance(value, dict | list):
            raise InvalidParams("invalid block: blockNumber must be a number or a tag")
    if value is None:
        return BlockSelector("latest")
    if isinstance(value, str) and value in BLOCK_TAGS:
        return BlockSelector(value)
    return BlockSelector(parse_quantity(value, "block number"))


def parse_call_request(value: Any) -> CallRequest:
    """The transaction object of eth_call / eth_estimateGas / eth_sendTransaction."""
    if not isinstance(value, dict):
        raise InvalidParams("invalid transaction object: expected a JSON object")

    def optional_quantity(key: str) -> int | None:
        return None if value.get(key) is None else parse_quantity(value[key], key)

    data_field = value.get("input", value.get("data"))
    return CallRequest(
        sender=parse_address(value["from"], "from") if value.get("from") else b"\x00" * 20,
        to=parse_address(value["to"], "to") if value.get("to") else b"",
        data=parse_data(data_field, "input") if data_field is not None else b"",
        value=optional_quantity("value") or 0,
        gas=optional_quantity("gas"),
        gas_price=optional_quantity("gasPrice"),
        max_fee_per_gas=optional_quantity("maxFeePerGas"),
        max_priority_fee_per_gas=optional_quantity("maxPriorityFeePerGas"),
        nonce=optional_quantity("nonce"),
    )


# -- formatting ---------------------------------------------------------------------------------


def quantity(value: int) -> str:
    """An int as a JSON-RPC QUANTITY."""
    return hex(value)


def data(value: bytes) -> str:
    """Bytes as JSON-RPC DATA."""
    return "0x" + bytes(value).hex()


def address(value: bytes) -> str:
    """An address in checksum form (what geth and hardhat return)."""
    return to_checksum_address(value)


def topic(value: int) -> str:
    """A log topic (py-evm keeps them as ints) as 32-byte DATA."""
    return data(value.to_bytes(32, "big"))


def format_header(header: BlockHeaderAPI) -> dict[str, Any]:
    """The header fields of a block object, including the London..Prague additions."""
    formatted: dict[str, Any] = {
        "number": quantity(header.block_number),
        "hash": data(header.hash),
        "parentHash": data(header.parent_hash),
        "nonce": data(header.nonce),
        "mixHash": data(header.mix_hash),
        "sha3Uncles": data(header.uncles_hash),
        "logsBloom": data(header.bloom.to_bytes(256, "big")),
        "transactionsRoot": data(header.transaction_root),
        "stateRoot": data(header.state_root),
        "receiptsRoot": data(header.receipt_root),
        "miner": address(header.coinbase),
        "difficulty": quantity(header.difficulty),
        "totalDifficulty": quantity(header.difficulty),
        "extraData": data(header.extra_data),
        "gasLimit": quantity(header.gas_limit),
        "gasUsed": quantity(header.gas_used),
        "timestamp": quantity(header.timestamp),
        "baseFeePerGas": quantity(header.base_fee_per_gas),
    }
    optional_fields = {
        "withdrawalsRoot": ("withdrawals_root", data),
        "blobGasUsed": ("blob_gas_used", quantity),
        "excessBlobGas": ("excess_blob_gas", quantity),
        "parentBeaconBlockRoot": ("parent_beacon_block_root", data),
        "requestsHash": ("requests_hash", data),
    }
    for json_name, (attribute, formatter) in optional_fields.items():
        field_value = getattr(header, attribute, None)
        if field_value is not None:
            formatted[json_name] = formatter(field_value)
    return formatted


def format_block(
    block: BlockAPI, receipts: tuple[ReceiptAPI, ...], full_transactions: bool
) -> dict[str, Any]:
    """A block object as eth_getBlockByNumber returns it."""
    formatted = format_header(block.header)
    formatted["size"] = quantity(len(rlp.encode(block)))
    formatted["uncles"] = []
    formatted["withdrawals"] = []
    if full_transactions:
        formatted["transactions"] = [
            format_transaction(describe_mined_transaction(block, receipts, index))
            for index in range(len(block.transactions))
        ]
    else:
        formatted["transactions"] = [data(tx.hash) for tx in block.transactions]
    return formatted


def format_transaction(mined: MinedTransaction) -> dict[str, Any]:
    """A transaction object as eth_getTransactionByHash returns it."""
    transaction: SignedTransactionAPI = mined.transaction
    type_id = getattr(transaction, "type_id", None) or 0
    formatted: dict[str, Any] = {
        "hash": data(transaction.hash),
        "type": quantity(type_id),
        "blockHash": data(mined.header.hash),
        "blockNumber": quantity(mined.header.block_number),
        "transactionIndex": quantity(mined.index),
        "from": address(transaction.sender),
        "to": address(transaction.to) if transaction.to else None,
        "nonce": quantity(transaction.nonce),
        "value": quantity(transaction.value),
        "gas": quantity(transaction.gas),
        "input": data(transaction.data),
        "gasPrice": quantity(effective_gas_price(transaction, mined.header)),
        "r": quantity(transaction.r),
        "s": quantity(transaction.s),
    }
    if type_id == 0:
        formatted["v"] = quantity(transaction.v)
        if getattr(transaction, "chain_id", None) is not None:
            formatted["chainId"] = quantity(transaction.chain_id)
        return formatted
    formatted["chainId"] = quantity(transaction.chain_id)
    formatted["v"] = quantity(transaction.y_parity)
    formatted["yParity"] = quantity(transaction.y_parity)
    formatted["accessList"] = [
        {"address": address(entry_address), "storageKeys": [topic(key) for key in keys]}
        for entry_address, keys in transaction.access_list
    ]
    if type_id >= 2:
        formatted["maxFeePerGas"] = quantity(transaction.max_fee_per_gas)
        formatted["maxPriorityFeePerGas"] = quantity(transaction.max_priority_fee_per_gas)
    return formatted


def format_log(
    log: LogAPI, log_index: int, mined_at: tuple[BlockHeaderAPI, int, bytes]
) -> dict[str, Any]:
    """A log object; `mined_at` is (block header, transaction index, transaction hash)."""
    header, transaction_index, transaction_hash = mined_at
    return {
        "address": address(log.address),
        "topics": [topic(value) for value in log.topics],
        "data": data(log.data),
        "blockNumber": quantity(header.block_number),
        "blockHash": data(header.hash),
        "blockTimestamp": quantity(header.timestamp),
        "transactionHash": data(transaction_hash),
        "transactionIndex": quantity(transaction_index),
        "logIndex": quantity(log_index),
        "removed": False,
    }


def format_receipt(mined: MinedTransaction) -> dict[str, Any]:
    """A receipt object as eth_getTransactionReceipt returns it."""
    transaction = mined.transaction
    mined_at = (mined.header, mined.index, transaction.hash)
    contract = created_contract_address(mined)
    return {
        "transactionHash": data(transaction.hash),
        "transactionIndex": quantity(mined.index),
        "blockHash": data(mined.header.hash),
        "blockNumber": quantity(mined.header.block_number),
        "from": address(transaction.sender),
        "to": address(transaction.to) if transaction.to else None,
        "cumulativeGasUsed": quantity(mined.receipt.gas_used),
        "gasUsed": quantity(mined.gas_used),
        "effectiveGasPrice": quantity(effective_gas_price(transaction, mined.header)),
        "contractAddress": address(contract) if contract is not None else None,
        "logs": [
            format_log(log, mined.first_log_index + offset, mined_at)
            for offset, log in enumerate(mined.receipt.logs)
        ],
        "logsBloom": data(mined.receipt.bloom.to_bytes(256, "big")),
        "status": quantity(1 if mined.receipt.state_root == b"\x01" else 0),
        "type": quantity(getattr(transaction, "type_id", None) or 0),
    }


# -- log queries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogQuery:
    """The criteria of eth_getLogs / eth_newFilter, decoded: addresses (any of), and per topic
    position either None (anything) or the set of accepted values."""

    addresses: frozenset[bytes]
    topics: tuple[frozenset[int] | None, ...]
    from_block: BlockSelector
    to_block: BlockSelector
    block_hash: bytes | None

    def matches(self, log: LogAPI) -> bool:
        """Whether `log` satisfies every criterion."""
        if self.addresses and log.address not in self.addresses:
            return False
        if len(self.topics) > len(log.topics):
            return False
        return all(
            accepted is None or log.topics[position] in accepted
            for position, accepted in enumerate(self.topics)
        )

    def may_match_bloom(self, bloom_value: int) -> bool:
        """A cheap pre-check on a block's bloom: False means no log of the block can match."""
        bloom = BloomFilter(bloom_value)
        if self.addresses and not any(item in bloom for item in self.addresses):
            return False
        for accepted in self.topics:
            if accepted is not None and not any(
                value.to_bytes(32, "big") in bloom for value in accepted
            ):
                return False
        return True


def parse_log_query(value: Any) -> LogQuery:
    """The filter object of eth_getLogs / eth_newFilter."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidParams("invalid filter: expected a JSON object")
    raw_addresses = value.get("address")
    if raw_addresses is None:
        addresses: frozenset[bytes] = frozenset()
    elif isinstance(raw_addresses, list):
        addresses = frozenset(parse_address(item) for item in raw_addresses)
    else:
        addresses = frozenset({parse_address(raw_addresses)})
    raw_topics = value.get("topics") or []
    if not isinstance(raw_topics, list):
        raise InvalidParams("invalid filter: topics must be a list")
    topics: list[frozenset[int] | None] = []
    for entry in raw_topics:
        if entry is None:
            topics.append(None)
        elif isinstance(entry, list):
            topics.append(frozenset(int.from_bytes(parse_hash(item, "topic")) for item in entry))
        else:
            topics.append(frozenset({int.from_bytes(parse_hash(entry, "topic"))}))
    block_hash = value.get("blockHash")
    if block_hash is not None and ("fromBlock" in value or "toBlock" in value):
        raise InvalidParams("invalid filter: blockHash excludes fromBlock/toBlock")
    return LogQuery(
        addresses=addresses,
        topics=tuple(topics),
        from_block=parse_block_selector(value.get("fromBlock")),
        to_block=parse_block_selector(value.get("toBlock")),
        block_hash=parse_hash(block_hash, "blockHash") if block_hash is not None else None,
    )
