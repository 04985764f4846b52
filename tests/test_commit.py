"""aicommons.commit: keccak, canonical JSON, CIDs and Merkle proofs against published vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicommons.commit import (
    CanonicalJsonError,
    MerkleError,
    MerkleProof,
    MerkleTree,
    canonical_json,
    cid_of,
    cid_sha256_digest,
    keccak256,
    leaf_hash,
    merkle_root,
    verify_proof,
)
from aicommons.commit.cid import sha256
from aicommons.commit.merkle import EMPTY_SLOT, node_hash, root_from_inner

VECTORS = json.loads(
    (Path(__file__).resolve().parent.parent / "docs/test-vectors/commitments.json").read_text()
)


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def test_keccak_vectors_are_ethereum_keccak() -> None:
    for vector in VECTORS["keccak256"]:
        assert keccak256(_hex(vector["input"])) == _hex(vector["keccak256"])
    # The empty-input digest every EVM tool knows (it is not SHA3-256's a7ffc6f8...).
    assert keccak256(b"").hex().startswith("c5d2460186f7233c")


def test_canonical_json_vectors() -> None:
    for vector in VECTORS["canonical_json"]:
        assert canonical_json(vector["value"]).decode() == vector["canonical"]


@pytest.mark.parametrize("bad", [1.5, {"a": float("nan")}, {1: "x"}, {"s": {1, 2}}])
def test_canonical_json_refuses_ambiguous_values(bad: object) -> None:
    with pytest.raises(CanonicalJsonError):
        canonical_json(bad)


def test_cid_vectors_and_digest_roundtrip() -> None:
    for vector in VECTORS["cid"]:
        data = _hex(vector["input"])
        assert cid_of(data) == vector["cid"]
        assert cid_sha256_digest(vector["cid"]) == sha256(data)
    with pytest.raises(ValueError, match="not a valid CID"):
        cid_sha256_digest("not-a-cid")


def test_merkle_vectors_roots_and_proofs() -> None:
    for vector in VECTORS["merkle"]:
        leaves = [_hex(leaf) for leaf in vector["leaves"]]
        tree = MerkleTree.from_leaves(leaves)
        assert tree.root == _hex(vector["root"])
        for index, proof_json in enumerate(vector["proofs"]):
            proof = MerkleProof.from_json(proof_json)
            assert tree.prove(index) == proof
            assert verify_proof(tree.root, leaf_hash(leaves[index]), proof)


def test_merkle_rejects_wrong_index_leaf_root_and_count() -> None:
    leaves = [f"row-{i}".encode() for i in range(6)]
    tree = MerkleTree.from_leaves(leaves)
    proof = tree.prove(2)
    good = leaf_hash(leaves[2])
    assert verify_proof(tree.root, good, proof)
    assert not verify_proof(tree.root, leaf_hash(leaves[3]), proof)
    assert not verify_proof(tree.root, good, MerkleProof(3, 6, proof.siblings))
    assert not verify_proof(tree.root, good, MerkleProof(2, 5, proof.siblings))
    assert not verify_proof(tree.root, good, MerkleProof(2, 6, proof.siblings[:-1]))
    assert not verify_proof(keccak256(b"other"), good, proof)
    with pytest.raises(MerkleError):
        tree.prove(6)


@pytest.mark.parametrize(("leaf_count", "index"), [(6, 6), (6, 7), (5, 5), (3, 3)])
def test_a_padding_slot_cannot_be_proven_even_with_its_true_siblings(
    leaf_count: int, index: int
) -> None:
    """Slots at index >= leaf_count hold EMPTY_SLOT. Their siblings are built here by hand, so
    the proof hashes up to the published root: only the index check can refuse it."""
    leaves = [leaf_hash(f"row-{i}".encode()) for i in range(leaf_count)]
    depth = max(leaf_count - 1, 0).bit_length()
    level = leaves + [EMPTY_SLOT] * ((1 << depth) - leaf_count)
    siblings, position = [], index
    while len(level) > 1:
        siblings.append(level[position ^ 1])
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        position >>= 1
    root = MerkleTree(leaves).root
    proof = MerkleProof(index, leaf_count, tuple(siblings))
    # The proof is sound in every respect but the index: it rebuilds the root's inner node.
    node, position = EMPTY_SLOT, index
    for sibling in siblings:
        node = node_hash(sibling, node) if position & 1 else node_hash(node, sibling)
        position >>= 1
    assert root_from_inner(leaf_count, node) == root
    assert not verify_proof(root, EMPTY_SLOT, proof)


def test_root_commits_to_leaf_count_and_separates_leaves_from_nodes() -> None:
    assert merkle_root([]) != merkle_root([b""])
    assert merkle_root([b"a", b"b"]) != merkle_root([b"a", b"b", b""])
    # A two-leaf tree's inner node must not verify as a single leaf of a one-leaf tree.
    assert merkle_root([b"a", b"b"]) != merkle_root([keccak256(b"\x01") + b"a"])


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=40), st.data())
def test_every_proof_verifies_and_no_other_leaf_does(
    leaves: list[bytes], data: st.DataObject
) -> None:
    tree = MerkleTree.from_leaves(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = tree.prove(index)
    assert verify_proof(tree.root, leaf_hash(leaves[index]), proof)
    other = data.draw(st.binary(max_size=40))
    if other != leaves[index]:
        assert not verify_proof(tree.root, leaf_hash(other), proof)
