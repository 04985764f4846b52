"""Chunking, manifests, the local store and upload grants: formats and invariants, no network.

Checks the protocol choices of docs/storage.md against aicommons.commit directly.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from aicommons.commit import (
    MerkleTree,
    cid_of,
    cid_sha256_digest,
    keccak256,
    leaf_hash,
    merkle_root,
    verify_proof,
)
from aicommons.storage.auth import (
    CLOCK_SKEW_SECONDS,
    UPLOAD_TTL_SECONDS,
    UploadGrant,
    check_grant,
    node_origin,
    sign_grant,
)
from aicommons.storage.chunking import (
    CHUNK_SIZE,
    SEGMENT_SIZE,
    BlobManifest,
    ManifestError,
    chunk_root,
    describe_chunk,
    parse_manifest,
    storage_answer,
)
from aicommons.storage.cids import bytes_match_cid, fast_cid, sha256_of_cid
from aicommons.storage.errors import NodeConfigError, UploadAuthError
from aicommons.storage.node import StorageNode
from aicommons.storage.nonces import NONCE_LIFETIME_SECONDS
from aicommons.storage.store import ChunkCorruptError, LocalStore, describe_file


def write_random(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_chunk_root_is_merkle_root_over_16k_segments() -> None:
    chunk = os.urandom(3 * SEGMENT_SIZE + 5)
    segments = [chunk[i : i + SEGMENT_SIZE] for i in range(0, len(chunk), SEGMENT_SIZE)]
    assert len(segments) == 4
    assert chunk_root(chunk) == merkle_root(segments)
    info = describe_chunk(chunk)
    assert info.cid == cid_of(chunk) and info.cid.startswith("bafk")
    assert info.size == len(chunk)


@pytest.mark.parametrize(
    "size", [1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 5 * SEGMENT_SIZE + 3, CHUNK_SIZE]
)
def test_fast_chunk_root_matches_the_reference_merkle_tree(size: int) -> None:
    # chunk_root bypasses MerkleTree for speed; it must stay byte-identical to it.
    chunk = os.urandom(size)
    segments = [chunk[i : i + SEGMENT_SIZE] for i in range(0, len(chunk), SEGMENT_SIZE)]
    assert chunk_root(chunk) == merkle_root(segments)
    assert chunk_root(memoryview(chunk)) == merkle_root(segments)


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1])
def test_manifest_of_awkward_sizes(tmp_path: Path, size: int) -> None:
    data = write_random(tmp_path / "blob", size)
    manifest = describe_file(tmp_path / "blob", workers=2)
    chunks = [data[i : i + CHUNK_SIZE] for i in range(0, size, CHUNK_SIZE)]
    assert [c.cid for c in manifest.chunks] == [cid_of(c) for c in chunks]
    assert manifest.size == size
    assert manifest.root == merkle_root([chunk_root(c) for c in chunks])
    encoded = manifest.encode()
    assert parse_manifest(encoded) == manifest
    assert manifest.blob_id == "0x" + keccak256(encoded).hex()


def test_manifest_rejects_inconsistent_content(tmp_path: Path) -> None:
    write_random(tmp_path / "blob", CHUNK_SIZE + 10)
    manifest = describe_file(tmp_path / "blob")
    lying_size = manifest.encode().replace(b'"size":1048586', b'"size":1048587')
    with pytest.raises(ManifestError, match="sum of its chunk sizes"):
        parse_manifest(lying_size)
    other = BlobManifest(manifest.size, manifest.chunks, b"\x11" * 32)
    with pytest.raises(ManifestError, match="Merkle root"):
        parse_manifest(other.encode())
    with pytest.raises(ManifestError, match="canonical"):
        parse_manifest(manifest.encode().replace(b",", b", ", 1))


def test_manifest_refuses_a_cid_or_root_listed_with_two_partners(tmp_path: Path) -> None:
    data = write_random(tmp_path / "blob", 3 * CHUNK_SIZE)
    manifest = describe_file(tmp_path / "blob")
    first, second, third = manifest.chunks
    same_cid = (first, replace(second, cid=first.cid), third)
    with pytest.raises(ManifestError, match="listed twice unequal"):
        parse_manifest(BlobManifest.from_chunks(same_cid).encode())
    same_root = (first, replace(second, root=first.root), third)
    with pytest.raises(ManifestError, match="two CIDs"):
        parse_manifest(BlobManifest.from_chunks(same_root).encode())
    # Equal chunks are fine: same CID with the same root and size.
    repeated = data[:CHUNK_SIZE] * 2
    (tmp_path / "repeated").write_bytes(repeated)
    twice = describe_file(tmp_path / "repeated")
    assert twice.chunks[0] == twice.chunks[1] and parse_manifest(twice.encode()) == twice


def test_store_refuses_a_manifest_whose_cids_and_chunk_roots_disagree(tmp_path: Path) -> None:
    write_random(tmp_path / "blob", 2 * CHUNK_SIZE + 1)
    store = LocalStore(tmp_path / "store")
    honest = store.put_file(tmp_path / "blob")
    chunks = list(honest.chunks)
    chunks[0], chunks[1] = (
        replace(chunks[0], cid=honest.chunks[1].cid),
        replace(chunks[1], cid=honest.chunks[0].cid),
    )
    swapped = BlobManifest(honest.size, tuple(chunks), honest.root)
    assert parse_manifest(swapped.encode()) == swapped  # consistent with itself
    with pytest.raises(ManifestError, match="chunk root"):
        store.put_manifest(swapped.encode())
    assert not store.has_blob(swapped.blob_id)
    assert store.blob_for_root(honest.root) == honest.blob_id
    # Posting the honest manifest again changes nothing either.
    assert store.put_manifest(honest.encode()) == honest
    assert store.blob_for_root(honest.root) == honest.blob_id and store.verify_all() == []


def test_storage_answer_proves_the_seeded_segment_of_the_seeded_chunk(tmp_path: Path) -> None:
    data = write_random(tmp_path / "blob", 2 * CHUNK_SIZE + 3 * SEGMENT_SIZE + 7)
    manifest = describe_file(tmp_path / "blob")
    seed = (5 << 128) | 2
    chunk = data[2 * CHUNK_SIZE :]
    answer = storage_answer(manifest, 2, chunk, seed)
    assert answer.segment_proof.leaf_count == 4 and answer.segment_proof.index == 5 % 4
    assert answer.segment == chunk[SEGMENT_SIZE : 2 * SEGMENT_SIZE]
    assert verify_proof(answer.chunk_root, leaf_hash(answer.segment), answer.segment_proof)
    assert verify_proof(manifest.root, leaf_hash(answer.chunk_root), answer.chunk_proof)
    assert answer.chunk_proof.index == 2
    assert MerkleTree.from_leaves([c.root for c in manifest.chunks]).root == manifest.root


def test_store_put_get_and_verify_on_read(tmp_path: Path) -> None:
    data = write_random(tmp_path / "blob", 2 * CHUNK_SIZE + 1)
    store = LocalStore(tmp_path / "store")
    manifest = store.put_file(tmp_path / "blob")
    assert store.read_manifest(manifest.blob_id) == manifest
    assert store.blob_for_root(manifest.root) == manifest.blob_id
    assert b"".join(store.read_chunk(c.cid) for c in manifest.chunks) == data
    assert store.verify_all() == []
    victim = store.chunk_path(manifest.chunks[1].cid)
    corrupted = bytearray(victim.read_bytes())
    corrupted[1234] ^= 0x01
    victim.write_bytes(bytes(corrupted))
    with pytest.raises(ChunkCorruptError):
        store.read_chunk(manifest.chunks[1].cid)
    assert len(store.verify_all()) == 1


def test_store_refuses_wrong_bytes_and_incomplete_blobs(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    chunk = os.urandom(100)
    with pytest.raises(ChunkCorruptError):
        store.put_chunk(cid_of(b"other"), chunk)
    write_random(tmp_path / "blob", 10)
    manifest = describe_file(tmp_path / "blob")
    with pytest.raises(FileNotFoundError, match=manifest.chunks[0].cid):
        store.put_manifest(manifest.encode())
    assert not store.has_blob(manifest.blob_id)


NODE_A = "http://127.0.0.1:8470"
NODE_B = "http://storage.example.org"
ORIGINS_A = frozenset({NODE_A})


def test_upload_grant_signature_expiry_and_tampering() -> None:
    account = Account.create()
    grant = sign_grant(account, node=NODE_A + "/", max_bytes=1000, now=1_000_000)
    assert grant.node == NODE_A and grant.nonce.startswith("0x") and len(grant.nonce) == 66
    assert check_grant(grant, origins=ORIGINS_A, chain_id=None, now=1_000_010) == account.address
    assert UploadGrant.from_json(grant.to_json()) == grant
    with pytest.raises(UploadAuthError, match="expired"):
        check_grant(grant, origins=ORIGINS_A, chain_id=None, now=2_000_000)
    for changed in (
        replace(grant, max_bytes=10**12),
        replace(grant, nonce="0x" + "00" * 32),
        replace(grant, expires=grant.expires - 1),
    ):
        with pytest.raises(UploadAuthError, match="a field was changed"):
            check_grant(changed, origins=ORIGINS_A, chain_id=None, now=1_000_010)
    too_long = sign_grant(account, node=NODE_A, max_bytes=1, now=1_000_000, ttl=10**6)
    with pytest.raises(UploadAuthError, match="more than"):
        check_grant(too_long, origins=ORIGINS_A, chain_id=None, now=1_000_000)


def test_a_grant_is_bound_to_its_node_and_chain() -> None:
    account = Account.create()
    for_a = sign_grant(account, node=NODE_A, max_bytes=1000, chain_id=31337)
    # Node B refuses it outright, and relabelling it as B's breaks the signature (the domain's
    # salt is the keccak of the origin).
    with pytest.raises(UploadAuthError, match="is for node http://127.0.0.1:8470, not this node"):
        check_grant(for_a, origins=frozenset({NODE_B}), chain_id=31337)
    with pytest.raises(UploadAuthError, match="a field was changed"):
        check_grant(replace(for_a, node=NODE_B), origins=frozenset({NODE_B}), chain_id=31337)
    with pytest.raises(UploadAuthError, match="chain 31337, this node serves chain 1"):
        check_grant(for_a, origins=ORIGINS_A, chain_id=1)
    with pytest.raises(UploadAuthError, match="a field was changed"):
        check_grant(replace(for_a, chain_id=1), origins=ORIGINS_A, chain_id=1)
    assert check_grant(for_a, origins=ORIGINS_A, chain_id=31337) == account.address


def test_grant_is_plain_eip712_as_a_wallet_signs_it() -> None:
    """A grant signed with the three-part EIP-712 call (domain, types, message) that wallets
    mirror verifies at the node: the format in docs/storage.md is all a client needs."""
    account = Account.create()
    nonce, expires = "0x" + "5a" * 32, int(time.time()) + 60
    domain = {
        "name": "aicommons storage",
        "version": "2",
        "chainId": 31337,
        "salt": keccak256(NODE_A.encode()),
    }
    types = {
        "UploadGrant": [
            {"name": "node", "type": "string"},
            {"name": "maxBytes", "type": "uint256"},
            {"name": "nonce", "type": "bytes32"},
            {"name": "expires", "type": "uint256"},
        ]
    }
    message = {
        "node": NODE_A,
        "maxBytes": 4096,
        "nonce": bytes.fromhex(nonce[2:]),
        "expires": expires,
    }
    signed = account.sign_typed_data(domain, types, message)
    grant = UploadGrant.from_json(
        {
            "chain_id": 31337,
            "expires": expires,
            "max_bytes": 4096,
            "node": NODE_A,
            "nonce": nonce,
            "signature": "0x" + bytes(signed.signature).hex(),
            "signer": account.address,
        }
    )
    assert check_grant(grant, origins=ORIGINS_A, chain_id=31337) == account.address


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_bytes", "1000"), ("max_bytes", 1.5), ("expires", True), ("chain_id", "1"), ("nonce", 7)],
)
def test_grant_json_fields_are_checked_by_type(field: str, value: object) -> None:
    data = sign_grant(Account.create(), node=NODE_A, max_bytes=1000).to_json()
    with pytest.raises(UploadAuthError, match=field):
        UploadGrant.from_json({**data, field: value})
    with pytest.raises(UploadAuthError, match="exactly the fields"):
        UploadGrant.from_json({**data, "extra": 1})


def test_node_origins_are_normalised() -> None:
    assert node_origin("HTTP://LocalHost:80/x") == "http://localhost"
    assert node_origin("https://Example.org:8443") == "https://example.org:8443"
    assert node_origin("http://[::1]:8470/") == "http://[::1]:8470"
    with pytest.raises(NodeConfigError):
        node_origin("ftp://example.org")


def test_used_nonces_survive_a_restart_until_their_grants_expire(tmp_path: Path) -> None:
    account = Account.create()
    grant = sign_grant(account, node=NODE_A, max_bytes=10)
    first = StorageNode(LocalStore(tmp_path / "node"), origins=[NODE_A])
    first.open_session(grant)
    restarted = StorageNode(LocalStore(tmp_path / "node"), origins=[NODE_A])
    with pytest.raises(UploadAuthError, match="replayed"):
        restarted.open_session(grant)
    ledger = restarted.used_nonces
    assert ledger.forget_expired() == 0  # still current: kept
    assert ledger.forget_expired(now=time.time() + NONCE_LIFETIME_SECONDS + 1) == 1
    assert NONCE_LIFETIME_SECONDS > UPLOAD_TTL_SECONDS + CLOCK_SKEW_SECONDS


def test_fast_cid_path_agrees_with_multiformats() -> None:
    for size in (0, 1, 31, 1000, CHUNK_SIZE):
        data = os.urandom(size)
        cid = cid_of(data)
        assert fast_cid(data) == cid
        assert sha256_of_cid(cid) == cid_sha256_digest(cid)
        assert bytes_match_cid(cid, data) and not bytes_match_cid(cid, data + b"x")
    for bad in ("", "b", "bafk!", cid_of(b"x").upper(), "Q" + cid_of(b"x")[1:], cid_of(b"x")[:-1]):
        with pytest.raises(ValueError):
            sha256_of_cid(bad)


def test_store_put_chunk_parts_hashes_and_writes_the_pieces_in_order(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    chunk = os.urandom(CHUNK_SIZE)
    parts = [chunk[:5], chunk[5:70000], bytearray(chunk[70000:900001]), chunk[900001:]]
    with pytest.raises(ChunkCorruptError):
        store.put_chunk_parts(fast_cid(chunk), parts[::-1])
    assert not store.has_chunk(fast_cid(chunk))
    store.put_chunk_parts(fast_cid(chunk), parts)
    assert store.read_chunk(fast_cid(chunk)) == chunk
    assert list((tmp_path / "store" / "tmp").iterdir()) == []
