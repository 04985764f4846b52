"""Storage nodes over HTTP with the client: round trips, corrupt and dead nodes, missing chunks,
resume, upload authorisation, and the CLI. Nodes listen on free 127.0.0.1 ports.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from storage_fixtures import grant_json
from typer.testing import CliRunner

from aicommons.cli import app, main
from aicommons.commit import MerkleProof, cid_of, leaf_hash, verify_proof
from aicommons.storage.auth import sign_grant
from aicommons.storage.chunking import CHUNK_SIZE
from aicommons.storage.client import (
    BlobUnavailableError,
    StorageClientError,
    get_blob,
    partial_path,
    put_file,
)
from aicommons.storage.node import NodePolicy
from aicommons.storage.store import LocalStore


def random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1])
def test_round_trip_awkward_sizes(tmp_path, thread_node, signer, size) -> None:
    nodes = [thread_node("a")[0], thread_node("b")[0]]
    data = random_file(tmp_path / "in", size)
    put = put_file(tmp_path / "in", nodes, signer)
    assert put.stored_on == nodes and not put.report.problems
    got = get_blob(put.blob_id, tmp_path / "out", nodes)
    assert (tmp_path / "out").read_bytes() == data
    assert got.manifest == put.manifest and not got.report.problems
    assert not partial_path(tmp_path / "out", put.blob_id).exists()


def flip_chunk_bytes(app):
    """ASGI wrapper: a node that serves every chunk with one byte flipped."""

    async def wrapped(scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/chunks/"):
            return await app(scope, receive, send)

        async def corrupting_send(message):
            if message["type"] == "http.response.body" and message.get("body"):
                body = bytearray(message["body"])
                body[len(body) // 2] ^= 0x40
                message = {**message, "body": bytes(body)}
            await send(message)

        return await app(scope, receive, corrupting_send)

    return wrapped


def test_flipped_byte_detected_and_refetched(tmp_path, thread_node, signer) -> None:
    bad_url, _ = thread_node("bad", wrap=flip_chunk_bytes)
    good_url, _ = thread_node("good")
    data = random_file(tmp_path / "in", 3 * CHUNK_SIZE + 17)
    put = put_file(tmp_path / "in", [bad_url, good_url], signer)
    got = get_blob(put.blob_id, tmp_path / "out", [bad_url, good_url])
    assert (tmp_path / "out").read_bytes() == data
    assert list(got.report.problems) == [bad_url]
    assert "corrupt" in got.report.problems[bad_url][0]


def test_node_refuses_to_serve_its_own_corrupt_chunk(tmp_path, thread_node, signer) -> None:
    (url_a, store_a), (url_b, _) = thread_node("a"), thread_node("b")
    data = random_file(tmp_path / "in", 2 * CHUNK_SIZE)
    put = put_file(tmp_path / "in", [url_a, url_b], signer)
    victim = store_a.chunk_path(put.manifest.chunks[0].cid)
    damaged = bytearray(victim.read_bytes())
    damaged[0] ^= 1
    victim.write_bytes(bytes(damaged))
    assert httpx.get(f"{url_a}/chunks/{put.manifest.chunks[0].cid}").status_code == 500
    got = get_blob(put.blob_id, tmp_path / "out", [url_a, url_b])
    assert (tmp_path / "out").read_bytes() == data
    assert "HTTP 500" in got.report.problems[url_a][0]


def test_chunk_missing_everywhere_names_cids_and_leaves_no_file(
    tmp_path, thread_node, signer
) -> None:
    (url_a, store_a), (url_b, store_b) = thread_node("a"), thread_node("b")
    random_file(tmp_path / "in", 3 * CHUNK_SIZE)
    put = put_file(tmp_path / "in", [url_a, url_b], signer)
    lost = put.manifest.chunks[1].cid
    store_a.chunk_path(lost).unlink()
    store_b.chunk_path(lost).unlink()
    with pytest.raises(BlobUnavailableError, match=lost) as raised:
        get_blob(put.blob_id, tmp_path / "out", [url_a, url_b])
    assert raised.value.missing == [lost]
    assert not (tmp_path / "out").exists()


def test_interrupted_download_resumes_from_verified_chunks(tmp_path, thread_node, signer) -> None:
    (url_a, store_a), (url_b, _) = thread_node("a"), thread_node("b")
    data = random_file(tmp_path / "in", 4 * CHUNK_SIZE + 3)
    put = put_file(tmp_path / "in", [url_a, url_b], signer)
    store_a.chunk_path(put.manifest.chunks[2].cid).unlink()
    with pytest.raises(BlobUnavailableError):
        get_blob(put.blob_id, tmp_path / "out", [url_a])
    assert not (tmp_path / "out").exists()
    assert partial_path(tmp_path / "out", put.blob_id).exists()
    fetched: list[int] = []
    got = get_blob(put.blob_id, tmp_path / "out", [url_b], on_progress=fetched.append)
    assert got.resumed_bytes == 4 * CHUNK_SIZE + 3 - CHUNK_SIZE
    assert fetched[1:] == [CHUNK_SIZE]  # first call reports the resumed bytes, then one chunk
    assert (tmp_path / "out").read_bytes() == data
    assert not partial_path(tmp_path / "out", put.blob_id).exists()


def test_uploads_need_an_allowed_signer_within_the_size_limit(
    tmp_path, thread_node, signer
) -> None:
    policy = NodePolicy(
        max_upload_bytes=2 * CHUNK_SIZE, allowed=frozenset({signer.address.lower()})
    )
    url, store = thread_node("guarded", policy=policy)
    random_file(tmp_path / "small", 1000)
    random_file(tmp_path / "big", 2 * CHUNK_SIZE + 1)
    with pytest.raises(StorageClientError, match="allow-list"):
        put_file(tmp_path / "small", [url], Account.create())
    with pytest.raises(StorageClientError, match="exceeds this node's limit"):
        put_file(tmp_path / "big", [url], signer)
    anonymous = httpx.put(f"{url}/chunks/{'b' + 'a' * 58}", content=b"x")
    assert anonymous.status_code == 403
    grant = sign_grant(signer, node=url, max_bytes=10)
    assert httpx.post(f"{url}/uploads", json=grant.to_json()).status_code == 200
    replay = httpx.post(f"{url}/uploads", json=grant.to_json())
    assert replay.status_code == 403 and "replayed" in replay.text
    put = put_file(tmp_path / "small", [url], signer)
    assert store.has_blob(put.blob_id) and store.verify_all() == []


def test_upload_budget_is_enforced_per_grant(tmp_path, thread_node, signer) -> None:
    url, store = thread_node("n")
    upload_id = httpx.post(f"{url}/uploads", json=grant_json(signer, url, 300)).json()
    headers = {"X-AIC-Upload": upload_id["upload_id"]}
    first, second, third = os.urandom(100), os.urandom(200), os.urandom(1)

    ok = httpx.put(f"{url}/chunks/{cid_of(first)}", content=first, headers=headers)
    assert ok.status_code == 201 and ok.json()["remaining"] == 200
    # Bytes that do not hash to the CID they are sent under: charged, refused, refunded.
    lying = httpx.put(f"{url}/chunks/{cid_of(second)}", content=second[:100], headers=headers)
    assert lying.status_code == 422 and "do not match" in lying.text
    assert not store.has_chunk(cid_of(second))
    # The refund is exact: the 200 bytes left still fit, and not one byte more.
    fits = httpx.put(f"{url}/chunks/{cid_of(second)}", content=second, headers=headers)
    assert fits.status_code == 201 and fits.json()["remaining"] == 0
    over = httpx.put(f"{url}/chunks/{cid_of(third)}", content=third, headers=headers)
    assert over.status_code == 403 and "exhausted" in over.text
    assert not store.has_chunk(cid_of(third))


def test_cli_put_and_get_with_keystore(tmp_path, thread_node, monkeypatch) -> None:
    url, _ = thread_node("cli")
    account = Account.create()
    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "pw", kdf="pbkdf2", iterations=2)))
    data = random_file(tmp_path / "in", CHUNK_SIZE + 5)
    monkeypatch.setenv("AIC_PASSWORD", "pw")
    runner = CliRunner()
    put = runner.invoke(
        app, ["storage", "put", str(tmp_path / "in"), "--node", url, "--keystore", str(keystore)]
    )
    assert put.exit_code == 0, put.output
    blob_id = put.stdout.strip().splitlines()[-1]
    get = runner.invoke(
        app, ["storage", "get", blob_id, "-o", str(tmp_path / "out"), "--node", url]
    )
    assert get.exit_code == 0, get.output
    assert (tmp_path / "out").read_bytes() == data
    monkeypatch.setenv("AIC_PASSWORD", "wrong")
    refused = runner.invoke(
        app, ["storage", "put", str(tmp_path / "in"), "--node", url, "--keystore", str(keystore)]
    )
    assert refused.exit_code != 0


@pytest.mark.network
def test_one_of_two_nodes_killed_mid_download(tmp_path, process_nodes, signer) -> None:
    (url_a, process_a), (url_b, _) = process_nodes("a", "b")
    data = random_file(tmp_path / "in", 8 * CHUNK_SIZE)
    put = put_file(tmp_path / "in", [url_a, url_b], signer)
    assert put.stored_on == [url_a, url_b]
    done: list[int] = []

    def kill_after_first(size: int) -> None:
        done.append(size)
        if len(done) == 1:
            process_a.send_signal(signal.SIGKILL)
            process_a.wait(timeout=10)

    got = get_blob(
        put.blob_id,
        tmp_path / "out",
        [url_a, url_b],
        parallel=2,
        on_progress=kill_after_first,
    )
    assert process_a.returncode == -signal.SIGKILL
    assert (tmp_path / "out").read_bytes() == data
    assert url_a in got.report.problems and url_b not in got.report.problems


def test_node_serves_chunk_proofs_under_the_blob_root(tmp_path, thread_node, signer) -> None:
    url, _ = thread_node("proofs")
    random_file(tmp_path / "in", 3 * CHUNK_SIZE + 1)
    put = put_file(tmp_path / "in", [url], signer)
    root_hex = "0x" + put.manifest.root.hex()
    for index, chunk in enumerate(put.manifest.chunks):
        answer = httpx.get(f"{url}/roots/{root_hex}/proofs/{index}").json()
        assert answer["cid"] == chunk.cid and answer["chunk_root"] == "0x" + chunk.root.hex()
        proof = MerkleProof.from_json(answer["proof"])
        assert verify_proof(put.manifest.root, leaf_hash(chunk.root), proof)
        assert proof.index == index and proof.leaf_count == 4
    assert httpx.get(f"{url}/roots/0x{'00' * 32}/proofs/0").status_code == 404
    assert httpx.get(f"{url}/roots/{root_hex}/proofs/4").status_code == 400


def test_cli_verify_reports_a_damaged_store(tmp_path) -> None:
    random_file(tmp_path / "in", CHUNK_SIZE + 3)
    store = LocalStore(tmp_path / "store")
    manifest = store.put_file(tmp_path / "in")
    runner = CliRunner()
    ok = runner.invoke(app, ["storage", "verify", "--dir", str(tmp_path / "store")])
    assert ok.exit_code == 0 and "1 blob(s)" in ok.stdout
    store.chunk_path(manifest.chunks[1].cid).write_bytes(b"not the chunk")
    bad = runner.invoke(app, ["storage", "verify", "--dir", str(tmp_path / "store")])
    assert bad.exit_code != 0


def test_putting_a_stored_blob_again_costs_no_budget(tmp_path, thread_node, signer) -> None:
    url, store = thread_node("dedupe")
    random_file(tmp_path / "in", 3 * CHUNK_SIZE)
    first = put_file(tmp_path / "in", [url], signer)
    second = put_file(tmp_path / "in", [url], signer)
    assert second.blob_id == first.blob_id and not second.report.problems
    assert sorted(store.chunk_cids()) == sorted(c.cid for c in first.manifest.chunks)
    # A grant of 0 bytes is enough when every chunk is already there.
    grant = httpx.post(f"{url}/uploads", json=grant_json(signer, url, 0)).json()
    headers = {"X-AIC-Upload": grant["upload_id"]}
    chunk = (tmp_path / "in").read_bytes()[:CHUNK_SIZE]
    again = httpx.put(
        f"{url}/chunks/{first.manifest.chunks[0].cid}", content=chunk, headers=headers
    )
    assert again.status_code == 200 and again.json()["stored"] is False


def test_a_grant_for_one_node_is_refused_by_another(tmp_path, thread_node, signer) -> None:
    """Issue 14 item 5: node A replays the grant a client sent it to node B, which allows that
    client. B must refuse it: the grant names A's origin, inside its signature."""
    url_a, _ = thread_node("a")
    only_signer = NodePolicy(allowed=frozenset({signer.address.lower()}))
    url_b, store_b = thread_node("b", policy=only_signer)
    sent_to_a = grant_json(signer, url_a, CHUNK_SIZE)
    assert httpx.post(f"{url_a}/uploads", json=sent_to_a).status_code == 200
    replayed = httpx.post(f"{url_b}/uploads", json=sent_to_a)
    assert replayed.status_code == 403 and "not this node" in replayed.text
    relabelled = httpx.post(f"{url_b}/uploads", json={**sent_to_a, "node": url_b})
    assert relabelled.status_code == 403 and "a field was changed" in relabelled.text
    assert httpx.post(f"{url_b}/uploads", json=grant_json(signer, url_b, 10)).status_code == 200
    assert list(store_b.chunk_cids()) == []


def test_clients_sign_for_the_origin_they_use(tmp_path, thread_node, signer) -> None:
    url, _ = thread_node("named")
    identity = httpx.get(f"{url}/node").json()
    assert url in identity["origins"] and identity["chain_id"] is None
    random_file(tmp_path / "in", 1000)
    by_name = url.replace("127.0.0.1", "localhost")
    assert put_file(tmp_path / "in", [by_name], signer).stored_on == [by_name]
    renamed, _ = thread_node("renamed", public_urls=("https://storage.example.org",))
    with pytest.raises(StorageClientError, match="use one of those URLs"):
        put_file(tmp_path / "in", [renamed], signer)


def test_serve_on_every_interface_needs_the_public_url(tmp_path, monkeypatch, capsys) -> None:
    command = ["aic", "storage", "serve", "--dir", str(tmp_path / "s"), "--host", "0.0.0.0"]
    monkeypatch.setattr(sys, "argv", command)
    with pytest.raises(SystemExit) as exited:
        main()
    err = capsys.readouterr().err
    assert exited.value.code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.strip()] == [
        "error: a node bound to 0.0.0.0 needs --public-url (the URL clients use to reach it)"
    ]
