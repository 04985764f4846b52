"""The devnet speaks Ethereum JSON-RPC well enough for unmodified web3.py: identity, fees,
typed transactions, blocks, receipts, a Vyper contract with calls, reverts, logs and filters,
and clear errors for invalid transactions and malformed requests.

Client side is plain web3.py / httpx only; the project is used just to start the server.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import vyper
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from aicommons.chain.devnet import (
    DEV_ACCOUNTS,
    DevnetDataError,
    DevnetServer,
    launch_devnet_process,
)
from aicommons.chain.devnet.rpc import MAX_BATCH_REQUESTS
from aicommons.chain.devnet.server import MAX_REQUEST_BYTES

pytestmark = pytest.mark.network

SENDER = Account.from_key(DEV_ACCOUNTS[0].private_key)
RECIPIENT = DEV_ACCOUNTS[1].address
ETHER = 10**18

COUNTER_SOURCE = """\
# pragma version ~=0.4.3
event Stored:
    setter: indexed(address)
    value: indexed(uint256)
    note: String[32]

value: public(uint256)

@deploy
def __init__(initial: uint256):
    self.value = initial

@external
def store(new_value: uint256):
    assert new_value < 1000, "value too large"
    self.value = new_value
    log Stored(setter=msg.sender, value=new_value, note="stored")

@external
@view
def doubled() -> uint256:
    return self.value * 2
"""


@pytest.fixture(scope="module")
def devnet_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = launch_devnet_process(tmp_path_factory.mktemp("devnet"))
    yield url
    process.terminate()
    assert process.wait(timeout=15) == 0


@pytest.fixture(scope="module")
def web3(devnet_url: str) -> Web3:
    return Web3(Web3.HTTPProvider(devnet_url))


@pytest.fixture(scope="module")
def counter(web3: Web3) -> object:
    compiled = vyper.compile_code(COUNTER_SOURCE, output_formats=["abi", "bytecode"])
    factory = web3.eth.contract(abi=compiled["abi"], bytecode=compiled["bytecode"])
    deployment = factory.constructor(7).build_transaction(
        {"from": SENDER.address, "nonce": web3.eth.get_transaction_count(SENDER.address)}
    )
    receipt = _send_signed(web3, deployment)
    assert receipt["status"] == 1
    return web3.eth.contract(address=receipt["contractAddress"], abi=compiled["abi"])


def _send_signed(web3: Web3, transaction: dict) -> dict:
    signed = SENDER.sign_transaction(transaction)
    transaction_hash = web3.eth.send_raw_transaction(signed.raw_transaction)
    return dict(web3.eth.wait_for_transaction_receipt(transaction_hash, timeout=10))


def _transfer(web3: Web3, value: int = 1, **overrides: object) -> dict:
    transaction = {
        "to": RECIPIENT,
        "value": value,
        "nonce": web3.eth.get_transaction_count(SENDER.address, "pending"),
        "chainId": 1337,
        "gas": 21_000,
        "maxFeePerGas": 2 * web3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
        "maxPriorityFeePerGas": web3.eth.max_priority_fee,
    }
    transaction.update(overrides)
    return transaction


def test_identity_and_fee_methods(web3: Web3) -> None:
    assert web3.eth.chain_id == 1337
    assert web3.net.version == "1337"
    assert web3.client_version.startswith("aicommons-devnet/")
    assert web3.eth.syncing is False
    assert web3.eth.accounts == [account.address for account in DEV_ACCOUNTS]
    assert web3.eth.accounts[0] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    base_fee = web3.eth.get_block("latest")["baseFeePerGas"]
    assert web3.eth.max_priority_fee == 10**9
    assert web3.eth.gas_price >= base_fee
    history = web3.eth.fee_history(1, "latest", [50])
    assert len(history["baseFeePerGas"]) == 2
    assert history["reward"] == [[10**9]]
    raw = httpx.post(
        web3.provider.endpoint_uri,
        json={"jsonrpc": "2.0", "id": 1, "method": "eth_mining", "params": []},
    ).json()
    assert raw["result"] is True


def test_eip1559_transfer_is_mined_in_its_own_block(web3: Web3) -> None:
    start_block = web3.eth.block_number
    recipient_before = web3.eth.get_balance(RECIPIENT)
    nonce_before = web3.eth.get_transaction_count(SENDER.address)
    receipt = _send_signed(web3, _transfer(web3, value=ETHER))

    assert receipt["status"] == 1
    assert receipt["blockNumber"] == start_block + 1 == web3.eth.block_number
    assert receipt["gasUsed"] == 21_000 and receipt["type"] == 2
    assert web3.eth.get_balance(RECIPIENT) == recipient_before + ETHER
    assert web3.eth.get_balance(RECIPIENT, start_block) == recipient_before
    assert web3.eth.get_transaction_count(SENDER.address) == nonce_before + 1
    assert web3.eth.get_transaction_count(SENDER.address, "pending") == nonce_before + 1

    block = web3.eth.get_block(receipt["blockNumber"], full_transactions=True)
    assert block["hash"] == receipt["blockHash"]
    assert web3.eth.get_block(block["hash"])["number"] == block["number"]
    assert block["transactions"][0]["hash"] == receipt["transactionHash"]
    assert block["gasUsed"] == 21_000 and block["gasLimit"] == 30_000_000
    fetched = web3.eth.get_transaction(receipt["transactionHash"])
    assert fetched["from"] == SENDER.address and fetched["value"] == ETHER
    assert fetched["maxPriorityFeePerGas"] == 10**9
    assert receipt["effectiveGasPrice"] == block["baseFeePerGas"] + 10**9


def test_legacy_and_access_list_transactions(web3: Web3) -> None:
    gas_price = web3.eth.gas_price
    legacy = _transfer(web3)
    for key in ("maxFeePerGas", "maxPriorityFeePerGas"):
        del legacy[key]
    legacy["gasPrice"] = gas_price
    legacy_receipt = _send_signed(web3, legacy)
    assert legacy_receipt["status"] == 1 and legacy_receipt["type"] == 0

    access_list = _transfer(web3, type=1, accessList=[], gasPrice=gas_price, gas=30_000)
    for key in ("maxFeePerGas", "maxPriorityFeePerGas"):
        del access_list[key]
    access_receipt = _send_signed(web3, access_list)
    assert access_receipt["status"] == 1 and access_receipt["type"] == 1
    assert web3.eth.get_transaction(access_receipt["transactionHash"])["accessList"] == []


def test_send_transaction_signs_for_development_accounts(web3: Web3) -> None:
    sender = DEV_ACCOUNTS[2].address
    before = web3.eth.get_balance(RECIPIENT)
    transaction_hash = web3.eth.send_transaction({"from": sender, "to": RECIPIENT, "value": 5})
    assert web3.eth.wait_for_transaction_receipt(transaction_hash)["status"] == 1
    assert web3.eth.get_balance(RECIPIENT) == before + 5
    stranger = Account.create().address
    with pytest.raises(Web3RPCError, match="unknown account"):
        web3.eth.send_transaction(
            {"from": stranger, "to": RECIPIENT, "value": 5, "gas": 21_000, "gasPrice": 10**9}
        )


def test_vyper_contract_call_estimate_storage_and_revert(web3: Web3, counter: object) -> None:
    assert counter.functions.value().call() == 7
    assert counter.functions.doubled().call() == 14
    assert len(web3.eth.get_code(counter.address)) > 0
    assert web3.eth.get_code(RECIPIENT) == b""
    assert int.from_bytes(web3.eth.get_storage_at(counter.address, 0)) == 7

    block_before = web3.eth.block_number
    store = counter.functions.store(42).build_transaction(
        {"from": SENDER.address, "nonce": web3.eth.get_transaction_count(SENDER.address)}
    )
    assert 21_000 < store["gas"] < 200_000
    assert _send_signed(web3, store)["status"] == 1
    assert counter.functions.value().call() == 42
    assert counter.functions.value().call(block_identifier=block_before) == 7
    assert int.from_bytes(web3.eth.get_storage_at(counter.address, 0)) == 42

    with pytest.raises(ContractLogicError, match="value too large"):
        counter.functions.store(5000).call({"from": SENDER.address})
    with pytest.raises(ContractLogicError, match="value too large"):
        counter.functions.store(5000).estimate_gas({"from": SENDER.address})
    raw = httpx.post(
        web3.provider.endpoint_uri,
        json={
            "jsonrpc": "2.0",
            "id": 9,
            "method": "eth_call",
            "params": [
                {"to": counter.address, "data": counter.encode_abi("store", args=[5000])},
                "latest",
            ],
        },
    ).json()
    assert raw["error"]["code"] == 3
    assert raw["error"]["data"].startswith("0x08c379a0")  # Error(string)


def test_logs_and_filters(web3: Web3, counter: object) -> None:
    first_block = web3.eth.block_number + 1
    log_filter = counter.events.Stored.create_filter(from_block=first_block)
    latest_filter = counter.events.Stored.create_filter(from_block="latest")
    block_filter = web3.eth.filter("latest")
    for value in (1, 2, 3):
        transaction = counter.functions.store(value).build_transaction(
            {"from": SENDER.address, "nonce": web3.eth.get_transaction_count(SENDER.address)}
        )
        assert _send_signed(web3, transaction)["status"] == 1

    changes = log_filter.get_new_entries()
    assert [entry["args"]["value"] for entry in changes] == [1, 2, 3]
    assert changes[0]["args"]["note"] == "stored" and changes[0]["blockNumber"] == first_block
    assert log_filter.get_new_entries() == []
    assert [e["args"]["value"] for e in log_filter.get_all_entries()] == [1, 2, 3]
    assert [e["args"]["value"] for e in latest_filter.get_new_entries()] == [1, 2, 3]
    # Like geth, eth_getFilterLogs re-resolves "latest" now: only the newest block's log.
    assert [e["args"]["value"] for e in latest_filter.get_all_entries()] == [3]
    new_blocks = block_filter.get_new_entries()
    assert len(new_blocks) == 3
    assert new_blocks[0] == web3.eth.get_block(first_block)["hash"]

    by_topic = counter.events.Stored.get_logs(from_block=first_block, argument_filters={"value": 2})
    assert [entry["args"]["value"] for entry in by_topic] == [2]
    raw_logs = web3.eth.get_logs(
        {"address": counter.address, "fromBlock": first_block, "toBlock": "latest"}
    )
    assert len(raw_logs) == 3
    beyond_head = {"address": counter.address, "fromBlock": first_block, "toBlock": 10**6}
    assert web3.eth.get_logs(beyond_head) == raw_logs
    assert web3.eth.get_logs({"fromBlock": 10**6, "toBlock": 10**6 + 5}) == []
    assert web3.eth.get_logs({"blockHash": raw_logs[1]["blockHash"]})[0]["logIndex"] == 0
    assert web3.eth.get_logs({"address": RECIPIENT, "fromBlock": 0}) == []
    receipt_logs = web3.eth.get_transaction_receipt(raw_logs[2]["transactionHash"])["logs"]
    assert receipt_logs[0]["topics"] == raw_logs[2]["topics"]

    assert web3.eth.uninstall_filter(log_filter.filter_id) is True
    with pytest.raises(Web3RPCError, match="filter not found"):
        web3.eth.get_filter_changes(log_filter.filter_id)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nonce": 0}, "nonce too low"),
        ({"nonce": 10**6}, "nonce too high"),
        ({"value": 10**30}, "insufficient funds"),
        ({"chainId": 1}, "invalid chain id"),
        ({"gas": 20_000}, "intrinsic gas too low"),
        ({"maxFeePerGas": 1, "maxPriorityFeePerGas": 1}, "below the block base fee"),
    ],
)
def test_invalid_transactions_are_rejected_without_state_change(
    web3: Web3, overrides: dict, message: str
) -> None:
    if web3.eth.get_transaction_count(SENDER.address) == 0:
        _send_signed(web3, _transfer(web3))  # so that nonce 0 is "too low"
    block_before = web3.eth.block_number
    nonce_before = web3.eth.get_transaction_count(SENDER.address)
    signed = SENDER.sign_transaction(_transfer(web3, **overrides))
    with pytest.raises(Web3RPCError, match=message):
        web3.eth.send_raw_transaction(signed.raw_transaction)
    assert web3.eth.block_number == block_before
    assert web3.eth.get_transaction_count(SENDER.address) == nonce_before


def test_bad_signature_and_garbage_are_rejected(web3: Web3) -> None:
    block_before = web3.eth.block_number
    raw = bytearray(SENDER.sign_transaction(_transfer(web3)).raw_transaction)
    raw[-40] ^= 0xFF  # corrupt the signature's r value
    with pytest.raises(Web3RPCError, match="signature|invalid transaction"):
        web3.eth.send_raw_transaction(bytes(raw))
    with pytest.raises(Web3RPCError, match="cannot decode"):
        web3.eth.send_raw_transaction(b"\x02\x01\x02")
    assert web3.eth.block_number == block_before


def _rpc(url: str, payload: object) -> httpx.Response:
    return httpx.post(url, json=payload, timeout=10)


def test_malformed_requests_get_json_rpc_errors(devnet_url: str) -> None:
    unknown = _rpc(devnet_url, {"jsonrpc": "2.0", "id": 1, "method": "eth_nope", "params": []})
    assert unknown.status_code == 200 and unknown.json()["error"]["code"] == -32601
    for params in (["0x1234"], ["not-hex", "latest"], [], [1, 2, 3, 4]):
        reply = _rpc(
            devnet_url, {"jsonrpc": "2.0", "id": 2, "method": "eth_getBalance", "params": params}
        ).json()
        assert reply["error"]["code"] == -32602, params
    future = _rpc(
        devnet_url,
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": [RECIPIENT, "0xffff"]},
    ).json()
    assert "not found" in future["error"]["message"]
    not_json = httpx.post(
        devnet_url, content=b"{oops", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 200 and not_json.json()["error"]["code"] == -32700
    assert _rpc(devnet_url, "just a string").json()["error"]["code"] == -32600
    missing_block = _rpc(
        devnet_url,
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "eth_getBlockByNumber",
            "params": ["0xffffff", False],
        },
    ).json()
    assert missing_block["result"] is None
    batch = _rpc(
        devnet_url,
        [
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
            {"jsonrpc": "2.0", "id": 2, "method": "eth_nope"},
            {"jsonrpc": "2.0", "id": 3, "method": "net_version"},
        ],
    ).json()
    assert [reply.get("result") for reply in batch] == ["0x539", None, "1337"]
    assert batch[1]["error"]["code"] == -32601


def test_devnet_binds_localhost_only(devnet_url: str) -> None:
    assert devnet_url.startswith("http://127.0.0.1:")


def test_cli_rejects_a_taken_port_with_one_line(tmp_path: Path, devnet_url: str) -> None:
    aic = Path(sys.executable).with_name("aic")
    port = devnet_url.rsplit(":", 1)[1]
    result = subprocess.run(
        [str(aic), "devnet", "--data", str(tmp_path / "fresh"), "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unusable_data_dirs_are_one_line_value_errors(tmp_path: Path) -> None:
    corrupt_dir = tmp_path / "corrupt"
    corrupt_dir.mkdir()
    (corrupt_dir / "chain.sqlite3").write_bytes(b"this is not a database" * 100)
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    cases = [(corrupt_dir, "not a database"), (a_file / "sub", "cannot create devnet data dir")]
    for data_dir, message in cases:
        with pytest.raises(DevnetDataError, match=message) as raised:
            DevnetServer(data_dir, port=0)
        assert isinstance(raised.value, ValueError)  # the CLI prints these as one line
        assert "\n" not in str(raised.value)


def _block_number(url: str) -> int:
    reply = _rpc(url, {"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []})
    return int(reply.json()["result"], 16)


def _raw_http(url: str, head: bytes, body_chunks: Iterator[bytes] = iter(())) -> bytes:
    """Send `head` (request line and headers) and then `body_chunks` over one socket; return
    what the server answered. A server that waits for a body it should have refused makes the
    read time out (socket.timeout), which fails the test."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head)
        try:
            for chunk in body_chunks:
                connection.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest was sent: what we want
        answer = b""
        while b"\r\n\r\n" not in answer:
            received = connection.recv(65536)
            if not received:
                break
            answer += received
        return answer


def test_bracket_bomb_gets_an_error_and_the_devnet_keeps_answering(devnet_url: str) -> None:
    # Issue 14 item 2: 100,000 '[' then 100,000 ']' overflowed the C stack (SIGSEGV).
    before = _block_number(devnet_url)
    bomb = b"[" * 100_000 + b"]" * 100_000
    reply = httpx.post(
        devnet_url, content=bomb, headers={"content-type": "application/json"}, timeout=30
    )
    assert reply.status_code == 200
    assert reply.json()["error"]["code"] == -32700
    assert _block_number(devnet_url) == before


def test_oversized_body_is_refused_by_content_length_before_it_is_read(devnet_url: str) -> None:
    host = devnet_url.removeprefix("http://")
    head = (
        f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_REQUEST_BYTES + 1}\r\n\r\n"
    ).encode()
    # No body is sent at all: only a server that refuses by the header answers in time.
    assert _raw_http(devnet_url, head).startswith(b"HTTP/1.1 413")
    assert _block_number(devnet_url) >= 0


def test_oversized_chunked_body_is_refused_while_streaming(devnet_url: str) -> None:
    host = devnet_url.removeprefix("http://")
    head = (
        f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = 1024 * 1024
    chunks = (
        b"%x\r\n" % piece + b" " * piece + b"\r\n" for _ in range(MAX_REQUEST_BYTES // piece + 2)
    )
    assert _raw_http(devnet_url, head, chunks).startswith(b"HTTP/1.1 413")
    assert _block_number(devnet_url) >= 0


def test_batches_are_bounded_and_ids_are_scalars(devnet_url: str) -> None:
    call = {"jsonrpc": "2.0", "method": "eth_chainId", "params": []}
    longest = [{**call, "id": index} for index in range(MAX_BATCH_REQUESTS)]
    assert len(_rpc(devnet_url, longest).json()) == MAX_BATCH_REQUESTS
    refused = _rpc(devnet_url, [*longest, {**call, "id": "one too many"}]).json()
    assert len(refused) == 1
    assert refused[0]["error"]["code"] == -32600
    assert "too large" in refused[0]["error"]["message"]
    nested_id = _rpc(devnet_url, {**call, "id": [[[1]]]}).json()
    assert nested_id["id"] is None and nested_id["error"]["code"] == -32600
    for scalar in ("a", 7, None):
        assert _rpc(devnet_url, {**call, "id": scalar}).json()["id"] == scalar
