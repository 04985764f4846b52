"""Pure parts of the devnet: JSON-RPC value parsing, log matching, revert decoding, the durable
key-value store, the development accounts, the data-dir default, and the in-process server.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from eth.rlp.logs import Log
from eth_abi import encode as abi_encode
from web3 import Web3

from aicommons.chain.devnet import DEV_ACCOUNTS, DevnetServer, default_data_dir
from aicommons.chain.devnet.node import InvalidParams, revert_reason
from aicommons.chain.devnet.rpc import RpcDispatcher
from aicommons.chain.devnet.rpc_format import (
    parse_address,
    parse_block_selector,
    parse_data,
    parse_log_query,
    parse_quantity,
)
from aicommons.chain.devnet.store import CommittedView, SqliteKeyValueStore

EMITTER = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
TOPIC_A = 0xAA
TOPIC_B = 0xBB


def test_quantities_and_data_are_strict_hex() -> None:
    assert parse_quantity("0x1a") == 26
    assert parse_quantity(7) == 7
    assert parse_data("0x") == b""
    assert parse_data("0x00ff") == b"\x00\xff"
    for bad in ("12", "0x", "0xzz", -1, True, None):
        with pytest.raises(InvalidParams):
            parse_quantity(bad)
    for bad in ("0x0", "ff", 5):
        with pytest.raises(InvalidParams):
            parse_data(bad)
    with pytest.raises(InvalidParams, match="20 bytes"):
        parse_address("0x1234")


def test_block_selectors() -> None:
    assert parse_block_selector(None).tag == "latest"
    assert parse_block_selector("pending").tag == "pending"
    assert parse_block_selector("0x10").tag == 16
    assert parse_block_selector({"blockNumber": "0x2"}).tag == 2
    assert parse_block_selector({"blockHash": "0x" + "11" * 32}).block_hash == b"\x11" * 32
    with pytest.raises(InvalidParams):
        parse_block_selector("newest")
    # EIP-1898 objects hold a number or tag; nesting them is refused, not followed.
    for nested in ({"blockNumber": {"blockNumber": "0x2"}}, {"blockNumber": ["0x2"]}):
        with pytest.raises(InvalidParams, match="number or a tag"):
            parse_block_selector(nested)


def test_bad_values_are_named_without_being_echoed_whole() -> None:
    with pytest.raises(InvalidParams) as raised:
        parse_quantity("0x" + "z" * 1_000_000)
    assert len(str(raised.value)) < 200
    assert "invalid quantity: '0xzzz" in str(raised.value)


def test_log_query_matches_address_and_topic_positions() -> None:
    log = Log(EMITTER, [TOPIC_A, TOPIC_B], b"")
    topic_a = "0x" + TOPIC_A.to_bytes(32).hex()
    topic_b = "0x" + TOPIC_B.to_bytes(32).hex()
    address = "0x" + EMITTER.hex()
    assert parse_log_query({}).matches(log)
    assert parse_log_query({"address": address, "topics": [topic_a]}).matches(log)
    assert parse_log_query({"address": [address], "topics": [None, [topic_a, topic_b]]}).matches(
        log
    )
    assert not parse_log_query({"topics": [topic_b]}).matches(log)
    assert not parse_log_query({"topics": [topic_a, topic_b, topic_a]}).matches(log)
    assert not parse_log_query({"address": "0x" + "00" * 20}).matches(log)
    with pytest.raises(InvalidParams, match="blockHash"):
        parse_log_query({"blockHash": "0x" + "11" * 32, "fromBlock": "0x1"})


def test_log_query_bloom_precheck() -> None:
    from eth_bloom import BloomFilter

    bloom = BloomFilter()
    bloom.add(EMITTER)
    bloom.add(TOPIC_A.to_bytes(32))
    address = "0x" + EMITTER.hex()
    assert parse_log_query({"address": address}).may_match_bloom(int(bloom))
    assert not parse_log_query({"address": "0x" + "01" * 20}).may_match_bloom(int(bloom))
    other_topic = "0x" + (0xCC).to_bytes(32).hex()
    assert not parse_log_query({"topics": [other_topic]}).may_match_bloom(int(bloom))


def test_revert_reason_decodes_error_string_only() -> None:
    payload = bytes.fromhex("08c379a0") + abi_encode(["string"], ["value too large"])
    assert revert_reason(payload) == "value too large"
    assert revert_reason(b"") is None
    assert revert_reason(bytes.fromhex("deadbeef")) is None
    assert revert_reason(bytes.fromhex("08c379a0") + b"\x01") is None


def test_store_commits_atomically_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "kv.sqlite3"
    store = SqliteKeyValueStore(path)
    store.check_integrity()
    store[b"a"] = b"1"
    store[b"b"] = b"2"
    assert store[b"a"] == b"1"  # staged writes are readable before commit
    store.commit()
    del store[b"a"]
    store[b"c"] = b"3"  # never committed: lost on close, like a crash before commit
    store.close()

    reopened = SqliteKeyValueStore(path)
    assert reopened[b"a"] == b"1" and reopened[b"b"] == b"2"
    assert not reopened.exists(b"c")
    with pytest.raises(KeyError):
        reopened[b"missing"]
    reopened.close()


def test_store_reverts_to_a_snapshot_exactly_and_consumes_later_ones(tmp_path: Path) -> None:
    store = SqliteKeyValueStore(tmp_path / "kv.sqlite3")
    store[b"kept"] = b"0"
    store[b"k"] = b"v1"
    store.commit()  # no snapshot open yet: nothing is logged
    first = store.open_snapshot()
    store[b"k"] = b"v2"
    store[b"new"] = b"n"
    del store[b"kept"]
    store.stage_meta("clock", "10")
    store.commit()
    assert store.committed(b"k") == b"v2"  # readers see commits only
    store[b"uncommitted"] = b"x"
    assert not CommittedView(store).exists(b"uncommitted")
    second = store.open_snapshot()
    store[b"k"] = b"v3"
    store.stage_meta("clock", "20")
    store.commit()
    third = store.open_snapshot()
    assert first < second < third

    assert store.revert_to_snapshot(second)
    assert store[b"k"] == b"v2" and store.read_meta("clock") == "10"
    assert not store.revert_to_snapshot(third)  # later snapshots are consumed with it
    assert store.revert_to_snapshot(first)
    assert store[b"k"] == b"v1" and store[b"kept"] == b"0"
    assert not store.exists(b"new") and not store.exists(b"uncommitted")
    assert store.read_meta("clock") is None
    assert not store.revert_to_snapshot(first)
    assert store.open_snapshot() > third  # ids are never handed out twice
    with pytest.raises(TypeError):
        CommittedView(store)[b"k"] = b"written by a reader"
    store.close()


def test_dev_accounts_are_the_standard_test_mnemonic_accounts() -> None:
    assert len(DEV_ACCOUNTS) == 10
    assert DEV_ACCOUNTS[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert DEV_ACCOUNTS[9].address == "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"
    assert DEV_ACCOUNTS[0].private_key.startswith("0xac0974bec39a17e3")


def test_default_data_dir_follows_aic_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIC_HOME", "/somewhere/aic")
    assert default_data_dir() == Path("/somewhere/aic/devnet")
    monkeypatch.delenv("AIC_HOME")
    assert default_data_dir() == Path.home() / ".aicommons" / "devnet"


def test_in_process_server_serves_and_stops(tmp_path: Path) -> None:
    with DevnetServer(tmp_path / "chain", port=0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        web3 = Web3(Web3.HTTPProvider(server.url))
        assert web3.eth.chain_id == 1337
        assert web3.eth.get_balance(DEV_ACCOUNTS[5].address) == 10_000 * 10**18
    with DevnetServer(tmp_path / "chain", port=0) as reopened:
        assert Web3(Web3.HTTPProvider(reopened.url)).eth.block_number == 0


def test_docs_list_exactly_the_methods_the_devnet_serves() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "devnet.md").read_text()
    documented = set(re.findall(r"`((?:eth|net|web3|evm)_[A-Za-z0-9]+)`", docs))
    served = {name[len("rpc_") :] for name in dir(RpcDispatcher) if name.startswith("rpc_")}
    assert documented == served
