"""Fuzz the two servers anyone on the machine can reach (issue 14, Tests): malformed,
oversized and deeply nested requests at a running devnet (JSON-RPC) and a running storage node
(its HTTP API). Neither may crash or answer 5xx, and both must still answer correctly after:
a real eth_blockNumber and transfer on the devnet, a real download of a stored blob from the
node.

Both run as subprocesses, so a crash (SIGSEGV) shows as a dead process instead of killing the
test run. The example counts keep the whole file well under a minute.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
import pytest
from eth_account import Account
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aicommons.chain.devnet import DEV_ACCOUNTS, launch_devnet_process
from aicommons.chain.devnet.server import MAX_REQUEST_BYTES
from aicommons.storage.client import get_blob, put_file
from aicommons.storage.process import launch_node_process

pytestmark = pytest.mark.network

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- strategies -------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def bracket_bomb(depth: int, opener: str) -> bytes:
    """`depth` nested arrays or objects: 100,000 levels is the 200 KB body of issue 14."""
    closer = "]" if opener == "[" else "}"
    return (opener * depth + ("0" if opener == "[" else "") + closer * depth).encode()


ISSUE_BOMB = bracket_bomb(100_000, "[")
deep_bodies = st.builds(
    bracket_bomb,
    st.integers(min_value=65, max_value=5000) | st.sampled_from([50_000, 100_000, 120_000]),
    st.sampled_from(["[", '{"a":']),
)
# Over the devnet's bound by a little or by a lot: refused while streaming, never parsed.
oversized_bodies = st.integers(min_value=1, max_value=2 * 1024 * 1024).map(
    lambda extra: b" " * (MAX_REQUEST_BYTES + extra)
)
garbage_bodies = st.binary(max_size=2048)
hex_quantities = st.integers(min_value=0, max_value=2**256).map(hex)
hex_data = st.binary(max_size=64).map(lambda raw: "0x" + raw.hex())
param_values = json_values | hex_quantities | hex_data | st.sampled_from(["latest", "earliest"])

# Real methods with arbitrary params, and made-up ones. The clock methods (evm_increaseTime,
# evm_setNextBlockTimestamp, evm_mine) are left out on purpose: moving a development chain's
# clock near 2^64 is a legitimate (if silly) use of them, not a malformed request.
RPC_METHODS = [
    "eth_blockNumber",
    "eth_chainId",
    "eth_getBalance",
    "eth_getCode",
    "eth_getStorageAt",
    "eth_getTransactionCount",
    "eth_call",
    "eth_estimateGas",
    "eth_sendRawTransaction",
    "eth_sendTransaction",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getTransactionReceipt",
    "eth_getLogs",
    "eth_newFilter",
    "eth_getFilterChanges",
    "eth_feeHistory",
    "eth_sign",
    "web3_sha3",
    "evm_snapshot",
    "evm_revert",
]
call_objects = st.fixed_dictionaries(
    {},
    optional={
        "from": hex_data,
        "to": hex_data,
        "gas": hex_quantities,
        "data": hex_data,
        "value": hex_quantities,
        "fromBlock": hex_quantities,
        "toBlock": hex_quantities,
    },
)
rpc_requests = st.fixed_dictionaries(
    {"method": st.sampled_from(RPC_METHODS) | st.text(max_size=30)},
    optional={
        "jsonrpc": st.sampled_from(["2.0", "1.0"]) | json_values,
        "id": st.integers() | st.text(max_size=10) | st.none() | json_values,
        "params": st.lists(param_values | call_objects, max_size=4) | json_values,
    },
)
rpc_bodies = st.one_of(
    garbage_bodies,
    json_values.map(encode),
    rpc_requests.map(encode),
    st.lists(rpc_requests | json_values, max_size=30).map(encode),
    st.integers(min_value=1001, max_value=1500).map(
        lambda count: encode([{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}] * count)
    ),
    deep_bodies,
    oversized_bodies,
)

segments = st.text(alphabet=string.ascii_letters + string.digits + "-._~:", max_size=80) | (
    st.binary(min_size=32, max_size=32).map(lambda raw: "0x" + raw.hex())
)
node_bodies = st.one_of(
    garbage_bodies, json_values.map(encode), deep_bodies, oversized_bodies, st.just(b"")
)
upload_headers = st.dictionaries(
    st.sampled_from(["X-AIC-Upload", "Content-Type"]),
    st.text(string.ascii_letters + string.digits + "-_.:/;=", max_size=40),
)


@dataclass(frozen=True)
class NodeRequest:
    method: str
    path: str
    body: bytes = field(repr=False)
    headers: dict[str, str]

    def __repr__(self) -> str:
        shown = self.body[:60] + (b"..." if len(self.body) > 60 else b"")
        return f"{self.method} {self.path} {self.headers} {len(self.body)} bytes {shown!r}"


node_requests = st.one_of(
    st.builds(NodeRequest, st.just("POST"), st.just("/uploads"), node_bodies, upload_headers),
    st.builds(NodeRequest, st.just("POST"), st.just("/blobs"), node_bodies, upload_headers),
    st.builds(
        NodeRequest,
        st.just("PUT"),
        segments.map(lambda cid: f"/chunks/{cid}"),
        node_bodies,
        upload_headers,
    ),
    st.builds(
        NodeRequest,
        st.sampled_from(["GET", "DELETE", "PATCH"]),
        st.one_of(
            segments.map(lambda blob: f"/blobs/{blob}"),
            segments.map(lambda cid: f"/chunks/{cid}"),
            st.tuples(segments, segments).map(lambda pair: f"/roots/{pair[0]}/proofs/{pair[1]}"),
            segments.map(lambda anything: f"/{anything}"),
        ),
        st.just(b""),
        st.just({}),
    ),
)

# -- servers ----------------------------------------------------------------------------------


def _stop(process: Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=15)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Popen[bytes], str]]:
    process, url = launch_devnet_process(tmp_path_factory.mktemp("devnet"))
    yield process, url
    _stop(process)


def blob_content() -> bytes:
    """The blob stored before the fuzzing (1.2 MiB: two chunks)."""
    return bytes(range(256)) * 5000


@dataclass(frozen=True)
class StoredBlob:
    process: Popen[bytes]
    url: str
    blob_id: str


@pytest.fixture(scope="module")
def storage_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoredBlob]:
    directory = tmp_path_factory.mktemp("node")
    process, url = launch_node_process(directory / "store", log_path=directory / "node.log")
    source = directory / "blob.bin"
    source.write_bytes(blob_content())
    stored = put_file(source, [url], Account.create())
    yield StoredBlob(process, url, stored.blob_id)
    _stop(process)


def _rpc(url: str, method: str, params: list[Any]) -> Any:
    reply = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, timeout=60
    )
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert "result" in answer, answer
    return answer["result"]


# -- tests ------------------------------------------------------------------------------------


@FUZZ
@given(body=rpc_bodies)
@example(body=ISSUE_BOMB)
def test_devnet_survives_fuzzed_json_rpc(devnet: tuple[Popen[bytes], str], body: bytes) -> None:
    process, url = devnet
    try:
        reply = httpx.post(
            url, content=body, headers={"content-type": "application/json"}, timeout=60
        )
    except httpx.TransportError:
        # Only a refusal that closes the connection mid-upload may end like this.
        assert process.poll() is None, "the devnet died"
        assert len(body) > MAX_REQUEST_BYTES
    else:
        assert reply.status_code in (200, 413), (reply.status_code, reply.text[:200])
        if reply.status_code == 200 and reply.content:
            answer = reply.json()
            replies = answer if isinstance(answer, list) else [answer]
            assert all("result" in item or "error" in item for item in replies)
    assert process.poll() is None, "the devnet died"


def test_devnet_answers_correctly_after_the_fuzzing(devnet: tuple[Popen[bytes], str]) -> None:
    process, url = devnet
    head = int(_rpc(url, "eth_blockNumber", []), 16)
    assert int(_rpc(url, "eth_getBlockByNumber", ["latest", False])["number"], 16) == head
    sent = _rpc(
        url,
        "eth_sendTransaction",
        [{"from": DEV_ACCOUNTS[0].address, "to": DEV_ACCOUNTS[1].address, "value": "0x1"}],
    )
    assert _rpc(url, "eth_getTransactionReceipt", [sent])["status"] == "0x1"
    assert int(_rpc(url, "eth_blockNumber", []), 16) == head + 1
    assert process.poll() is None


@FUZZ
@given(request=node_requests)
@example(request=NodeRequest("POST", "/uploads", ISSUE_BOMB, {}))
@example(request=NodeRequest("POST", "/blobs", ISSUE_BOMB, {}))
def test_storage_node_survives_fuzzed_requests(
    storage_node: StoredBlob, request: NodeRequest
) -> None:
    try:
        reply = httpx.request(
            request.method,
            storage_node.url + request.path,
            content=request.body,
            headers=request.headers,
            timeout=60,
        )
    except httpx.TransportError:
        assert storage_node.process.poll() is None, "the storage node died"
        assert len(request.body) > MAX_REQUEST_BYTES, "the node dropped a small request"
    except httpx.InvalidURL:
        return  # a path httpx itself refuses to send
    else:
        # Never a server error; writes are refused (a read may be redirected, e.g. a trailing
        # slash, or name something that exists, e.g. /health).
        assert reply.status_code < 500, (request, reply.status_code, reply.text[:200])
        if request.method in ("POST", "PUT"):
            assert reply.status_code >= 400, (request, reply.status_code, reply.text[:200])
    assert storage_node.process.poll() is None, "the storage node died"


def test_storage_node_answers_correctly_after_the_fuzzing(
    storage_node: StoredBlob, tmp_path: Path
) -> None:
    assert httpx.get(f"{storage_node.url}/health", timeout=30).status_code == 200
    manifest = httpx.get(f"{storage_node.url}/blobs/{storage_node.blob_id}", timeout=30)
    assert manifest.status_code == 200
    target = tmp_path / "fetched.bin"
    get_blob(storage_node.blob_id, target, [storage_node.url])
    assert target.read_bytes() == blob_content()
    assert storage_node.process.poll() is None
