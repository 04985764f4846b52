"""Bounds on what a storage node reads and keeps: JSON depth and size, request bodies refused by
Content-Length before they are read, per-signer upload quotas, and collection of abandoned
uploads. Issue 14, items 2 and 3.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time

import httpx
import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storage_fixtures import grant_json
from typer.testing import CliRunner

from aicommons.cli import app
from aicommons.commit import cid_of
from aicommons.storage.auth import UPLOAD_TTL_SECONDS, sign_grant
from aicommons.storage.chunking import (
    CHUNK_SIZE,
    MANIFEST_BYTES_PER_CHUNK,
    BlobManifest,
    max_manifest_bytes,
)
from aicommons.storage.client import get_blob, partial_path, put_file
from aicommons.storage.errors import BlobTooLargeError, UploadQuotaError
from aicommons.storage.node import (
    ABANDONED_AFTER_SECONDS,
    UPLOAD_HEADER,
    NodePolicy,
    StorageNode,
    create_app,
)
from aicommons.storage.process import node_answers
from aicommons.storage.store import LocalStore, describe_file

NODE = "http://127.0.0.1:8470"
"""The origin of the in-process nodes below (no socket: any origin will do)."""


def in_process_node(store: LocalStore, policy: NodePolicy | None = None) -> StorageNode:
    return StorageNode(store, policy, origins=[NODE])


def grant(signer, max_bytes: int, **kwargs):
    return sign_grant(signer, node=NODE, max_bytes=max_bytes, **kwargs)


BRACKET_BOMB = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.network
def test_bracket_bomb_to_uploads_is_refused_and_the_node_keeps_answering(process_nodes) -> None:
    # A real node process: on the old code this body overflowed the C stack (SIGSEGV), which
    # only a separate process can show without taking the test run down with it.
    [(url, process)] = process_nodes("bomb")
    answer = httpx.post(
        f"{url}/uploads",
        content=BRACKET_BOMB,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= answer.status_code < 500, answer.text
    nested_but_small = b"[" * 2000 + b"]" * 2000  # under the size bound: the depth bound refuses
    answer = httpx.post(f"{url}/uploads", content=nested_but_small, timeout=30)
    assert answer.status_code == 400 and "nested" in answer.text
    assert process.poll() is None and node_answers(url)


GIB = 1 << 30


class AsgiCall:
    """Drive an ASGI app in-process with a body that is never sent: `reads` counts how often the
    app asked for body bytes (each ask would be 64 KiB of a 1 GiB upload)."""

    def __init__(self, app) -> None:
        self.app = app
        self.reads = 0

    def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes = b""):
        messages: list[dict] = []
        pieces = [body] if body else []

        async def receive() -> dict:
            if pieces:
                return {"type": "http.request", "body": pieces.pop(), "more_body": False}
            self.reads += 1
            if self.reads > 16:
                raise AssertionError("the app keeps reading a body it should have refused")
            return {"type": "http.request", "body": b"\0" * 65536, "more_body": True}

        async def send(message: dict) -> None:
            messages.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8470),
        }
        asyncio.run(self.app(scope, receive, send))
        start = next(m for m in messages if m["type"] == "http.response.start")
        bodies = [m.get("body", b"") for m in messages if m["type"] == "http.response.body"]
        body_out = b"".join(bodies)
        return start["status"], body_out


def test_a_1_gib_content_length_is_refused_before_any_body_is_read(tmp_path, signer) -> None:
    call = AsgiCall(create_app(LocalStore(tmp_path / "node"), origins=[NODE]))
    huge = {"Content-Length": str(GIB), "Content-Type": "application/json"}
    status, _ = call("POST", "/uploads", huge)
    assert status == 413 and call.reads == 0
    body = json.dumps(grant(signer, 10 * CHUNK_SIZE).to_json()).encode()
    status, answer = call("POST", "/uploads", {"Content-Length": str(len(body))}, body)
    assert status == 200, answer
    session = {UPLOAD_HEADER: json.loads(answer)["upload_id"]}
    status, _ = call("POST", "/blobs", {**huge, **session})
    assert status == 413 and call.reads == 0
    status, _ = call("PUT", f"/chunks/{cid_of(b'x')}", {**huge, **session})
    assert status == 413 and call.reads == 0
    status, _ = call("POST", "/uploads", {"Transfer-Encoding": "chunked"})
    assert status == 411 and call.reads == 0


def test_a_node_answers_413_to_a_huge_upload_without_waiting_for_its_body(thread_node) -> None:
    url, _ = thread_node("socket")
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as connection:
        connection.sendall(
            b"POST /uploads HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % GIB
        )
        connection.sendall(b"[" * 65536)  # a start, nothing like a gigabyte
        reply = connection.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert node_answers(url)


def test_quotas_per_signer_and_per_node(tmp_path, signer) -> None:
    policy = NodePolicy(
        max_sessions_per_signer=2,
        max_open_bytes_per_signer=3 * CHUNK_SIZE,
        max_open_sessions=3,
        max_open_bytes=4 * CHUNK_SIZE,
    )
    node = in_process_node(LocalStore(tmp_path / "node"), policy)
    first, _ = node.open_session(grant(signer, CHUNK_SIZE))
    node.open_session(grant(signer, CHUNK_SIZE))
    with pytest.raises(UploadQuotaError, match="2 open upload sessions"):
        node.open_session(grant(signer, 1))
    node.close(first)  # a stored blob ends its session
    with pytest.raises(UploadQuotaError, match="bytes of open uploads"):
        node.open_session(grant(signer, 2 * CHUNK_SIZE + 1))
    node.open_session(grant(signer, 2 * CHUNK_SIZE))
    other, third = Account.create(), Account.create()
    with pytest.raises(UploadQuotaError, match=f"at most {4 * CHUNK_SIZE} bytes"):
        node.open_session(grant(other, CHUNK_SIZE + 1))
    node.open_session(grant(other, 1))
    with pytest.raises(UploadQuotaError, match="as many open upload sessions"):
        node.open_session(grant(third, 1))
    # Expired sessions stop counting.
    later = time.time() + UPLOAD_TTL_SECONDS + 1
    node.open_session(grant(third, 1, now=later), now=later)


def test_default_policy_has_quotas_and_the_node_says_429(thread_node, signer) -> None:
    defaults = NodePolicy()
    assert defaults.max_sessions_per_signer <= 8
    assert defaults.max_open_bytes_per_signer <= 4 * defaults.max_upload_bytes
    assert defaults.max_open_sessions * defaults.max_upload_bytes > defaults.max_open_bytes
    url, _ = thread_node("defaults")
    codes = [
        httpx.post(f"{url}/uploads", json=grant_json(signer, url, 1)).status_code
        for _ in range(defaults.max_sessions_per_signer + 1)
    ]
    assert codes == [200] * defaults.max_sessions_per_signer + [429]


def test_put_file_closes_its_sessions(tmp_path, thread_node, signer) -> None:
    url, _ = thread_node("closing", policy=NodePolicy(max_sessions_per_signer=1))
    for round_number in range(3):
        (tmp_path / "in").write_bytes(os.urandom(1000 + round_number))
        put_file(tmp_path / "in", [url], signer)


def age(path, seconds: float) -> None:
    """Set a file's modification time `seconds` into the past."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_collection_removes_abandoned_chunks_and_keeps_referenced_ones(tmp_path) -> None:
    store = LocalStore(tmp_path / "store")
    (tmp_path / "blob").write_bytes(os.urandom(2 * CHUNK_SIZE + 3))
    held = store.put_file(tmp_path / "blob")
    abandoned, fresh = os.urandom(500), os.urandom(600)
    store.put_chunk(cid_of(abandoned), abandoned)
    store.put_chunk(cid_of(fresh), fresh)
    for path in (store.directory / "chunks").glob("*/*"):
        if path.name != cid_of(fresh):
            age(path, 7200)
    (store.directory / "tmp" / "crash.tmp").write_bytes(b"half a chunk")
    age(store.directory / "tmp" / "crash.tmp", 2 * 3600)
    report = store.collect_garbage(unreferenced_before=time.time() - 3600)
    assert (report.chunks_removed, report.bytes_removed, report.temps_removed) == (1, 500, 1)
    assert not store.has_chunk(cid_of(abandoned)) and store.has_chunk(cid_of(fresh))
    assert store.verify_all() == [] and store.read_manifest(held.blob_id) == held
    # A chunk an upload just relied on (already stored, so not sent again) is kept for a while.
    age(store.chunk_path(cid_of(fresh)), 7200)
    assert store.touch_chunk(cid_of(fresh))
    assert store.collect_garbage(unreferenced_before=time.time() - 3600).chunks_removed == 0
    # An unreadable manifest stops the collection rather than free what it may reference.
    age(store.chunk_path(cid_of(fresh)), 7200)
    store.manifest_path("0x" + "ab" * 32).write_bytes(b"{}")
    stopped = store.collect_garbage(unreferenced_before=time.time() - 3600)
    assert stopped.chunks_removed == 0 and stopped.stopped and store.has_chunk(cid_of(fresh))


def test_node_collects_an_abandoned_upload_once_its_session_expired(
    tmp_path, thread_node, signer
) -> None:
    url, node = thread_node(with_node=True)
    store = node.store
    (tmp_path / "blob").write_bytes(os.urandom(CHUNK_SIZE + 10))
    held = store.put_file(tmp_path / "blob")
    upload_id = httpx.post(f"{url}/uploads", json=grant_json(signer, url, 5000)).json()
    abandoned = os.urandom(4000)
    put = httpx.put(
        f"{url}/chunks/{cid_of(abandoned)}",
        content=abandoned,
        headers={UPLOAD_HEADER: upload_id["upload_id"]},
    )
    assert put.status_code == 201
    assert node.collect_garbage().chunks_removed == 0  # its session may still post a manifest
    later = time.time() + ABANDONED_AFTER_SECONDS + 1
    report = node.collect_garbage(now=later)
    assert report.chunks_removed == 1 and not node.sessions
    assert not store.has_chunk(cid_of(abandoned)) and store.verify_all() == []
    assert all(store.has_chunk(chunk.cid) for chunk in held.chunks)


def test_abandoned_chunks_outlive_every_session_that_could_reference_them() -> None:
    assert ABANDONED_AFTER_SECONDS > UPLOAD_TTL_SECONDS + 60


@pytest.mark.parametrize("chunks", [0, 1, 2, 37])
def test_manifest_size_bound_holds_for_real_manifests(tmp_path, chunks: int) -> None:
    size = max(0, chunks * CHUNK_SIZE - 7)
    (tmp_path / "blob").write_bytes(os.urandom(size))
    manifest = describe_file(tmp_path / "blob")
    assert len(manifest.chunks) == chunks
    encoded = manifest.encode()
    assert len(encoded) <= max_manifest_bytes(size)
    per_chunk = (len(encoded) - len(BlobManifest.from_chunks([]).encode())) / max(chunks, 1)
    assert per_chunk <= MANIFEST_BYTES_PER_CHUNK


def test_a_running_node_collects_on_its_own(tmp_path, thread_node) -> None:
    _, store = thread_node(policy=NodePolicy(gc_interval_seconds=0.05))
    orphan = os.urandom(100)
    store.put_chunk(cid_of(orphan), orphan)
    age(store.chunk_path(cid_of(orphan)), 2 * ABANDONED_AFTER_SECONDS)
    deadline = time.monotonic() + 30
    while store.has_chunk(cid_of(orphan)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not store.has_chunk(cid_of(orphan))


# -- downloads (item 11) ------------------------------------------------------------------------


def test_get_refuses_a_blob_over_the_limit_before_writing_anything(
    tmp_path, thread_node, signer
) -> None:
    url, _ = thread_node("big")
    (tmp_path / "small").write_bytes(os.urandom(3 * CHUNK_SIZE))
    (tmp_path / "large").write_bytes(os.urandom(20 * CHUNK_SIZE))
    small = put_file(tmp_path / "small", [url], signer).blob_id
    large = put_file(tmp_path / "large", [url], signer).blob_id
    target = tmp_path / "out"
    with pytest.raises(BlobTooLargeError, match="more than the download limit of 2097152"):
        get_blob(small, target, [url], max_bytes=2 * CHUNK_SIZE)
    # 20 chunks' manifest does not fit the bound of a 1000-byte blob: refused unread.
    with pytest.raises(BlobTooLargeError, match="manifest is longer than"):
        get_blob(large, target, [url], max_bytes=1000)
    assert not target.exists() and not partial_path(target, small).exists()
    assert not partial_path(target, large).exists()
    assert get_blob(small, target, [url], max_bytes=3 * CHUNK_SIZE).manifest.size == 3 * CHUNK_SIZE


def test_cli_get_has_a_size_limit(tmp_path, thread_node, signer) -> None:
    url, _ = thread_node("cli-limit")
    (tmp_path / "in").write_bytes(os.urandom(CHUNK_SIZE + 1))
    blob_id = put_file(tmp_path / "in", [url], signer).blob_id
    command = ["storage", "get", blob_id, "-o", str(tmp_path / "out"), "--node", url]
    refused = CliRunner().invoke(app, [*command, "--max-mb", "1"])
    assert refused.exit_code != 0 and isinstance(refused.exception, BlobTooLargeError)
    assert not (tmp_path / "out").exists()
    assert CliRunner().invoke(app, [*command, "--max-mb", "2"]).exit_code == 0


def endless_chunks(declare: bool):
    """ASGI wrapper: a node that answers every chunk GET with far more bytes than a chunk,
    announced in its Content-Length (`declare`) or streamed without one."""

    def wrap(app):
        async def wrapped(scope, receive, send):
            if scope["type"] != "http" or scope["method"] != "GET":
                return await app(scope, receive, send)
            if not scope["path"].startswith("/chunks/"):
                return await app(scope, receive, send)
            headers = [(b"content-type", b"application/octet-stream")]
            if declare:
                headers.append((b"content-length", b"%d" % (1 << 40)))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            piece = b"\0" * (1 << 16)
            for _ in range(4 if declare else 1024):  # 64 MiB streamed
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            if declare:
                await asyncio.sleep(3)  # then hang up: 1 TiB was never coming
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        return wrapped

    return wrap


@pytest.mark.parametrize("declare", [True, False])
def test_get_reads_no_more_of_a_chunk_reply_than_the_chunk_holds(
    tmp_path, thread_node, signer, declare: bool
) -> None:
    bad, _ = thread_node("endless", wrap=endless_chunks(declare))
    good, _ = thread_node("good")
    data = os.urandom(CHUNK_SIZE + 5)
    (tmp_path / "in").write_bytes(data)
    put = put_file(tmp_path / "in", [bad, good], signer)
    got = get_blob(put.blob_id, tmp_path / "out", [bad, good], parallel=1, timeout=20)
    assert (tmp_path / "out").read_bytes() == data
    problems = got.report.problems[bad]
    assert problems and all("more than the limit" in line for line in problems), problems


# -- fuzz (issue 14, tests) ---------------------------------------------------------------------

JSON_ATOMS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_ATOMS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=20,
)


@st.composite
def hostile_bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["nested", "bytes", "json", "grant-like", "empty"]))
    if kind == "nested":
        depth = draw(st.integers(1, 150_000))
        opener = draw(st.sampled_from([b"[", b'{"a":']))
        return opener * depth + draw(st.sampled_from([b"", b"]" * depth]))
    if kind == "bytes":
        return draw(st.binary(max_size=5000))
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    if kind == "grant-like":
        fields = ["chain_id", "expires", "max_bytes", "node", "nonce", "signature", "signer"]
        return json.dumps({name: draw(JSON_VALUES) for name in fields}).encode()
    return b""


TARGETS = [
    ("POST", "/uploads"),
    ("POST", "/blobs"),
    ("PUT", f"/chunks/{cid_of(b'fuzz')}"),
    ("PUT", "/chunks/not-a-cid"),
    ("GET", "/blobs/0x1234"),
    ("GET", "/chunks/../../etc/passwd"),
    ("GET", "/roots/0xzz/proofs/-1"),
    ("GET", "/node"),
]


def test_fuzzed_requests_never_break_a_node(tmp_path, thread_node, signer) -> None:
    url, _ = thread_node("fuzzed")
    session = httpx.post(f"{url}/uploads", json=grant_json(signer, url, 10_000)).json()
    statuses: list[int] = []

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(target=st.sampled_from(TARGETS), body=hostile_bodies(), authed=st.booleans())
    def hit(target: tuple[str, str], body: bytes, authed: bool) -> None:
        method, path = target
        headers = {UPLOAD_HEADER: session["upload_id"]} if authed else {}
        answer = httpx.request(method, url + path, content=body, headers=headers, timeout=30)
        statuses.append(answer.status_code)
        assert answer.status_code < 500, (method, path, body[:80], answer.text[:200])

    hit()
    assert any(400 <= code < 500 for code in statuses)
    # Still a working node afterwards: a real round trip.
    data = os.urandom(CHUNK_SIZE + 3)
    (tmp_path / "in").write_bytes(data)
    put = put_file(tmp_path / "in", [url], signer)
    get_blob(put.blob_id, tmp_path / "out", [url])
    assert (tmp_path / "out").read_bytes() == data
