"""merkle.vy agrees byte for byte with aicommons.commit.merkle and the published test vectors.

Covers proofs (valid, tampered, wrong index, padding slots) and whole/partial subtree roots.
"""

from __future__ import annotations

import json
from pathlib import Path

import boa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aicommons.chain.compile import compile_source_file, load_boa
from aicommons.commit import MerkleTree, leaf_hash, node_hash, root_from_inner
from aicommons.commit.merkle import tree_depth

VECTORS = Path(__file__).resolve().parents[2] / "docs" / "test-vectors" / "commitments.json"
HARNESS = Path(__file__).resolve().parent / "merkle_harness.vy"


@pytest.fixture(scope="module")
def merkle_contract():
    with boa.env.anchor():
        yield load_boa(compile_source_file(HARNESS))


def test_vectors_verify_and_roots_match(merkle_contract) -> None:
    cases = json.loads(VECTORS.read_text())["merkle"]
    assert cases, "the vector file has merkle cases"
    for case in cases:
        leaves = [bytes.fromhex(leaf.removeprefix("0x")) for leaf in case["leaves"]]
        root = bytes.fromhex(case["root"].removeprefix("0x"))
        digests = [leaf_hash(leaf) for leaf in leaves]
        if len(digests) <= 256:
            assert merkle_contract.root_of_leaves(digests, len(digests)) == root
        for proof, digest in zip(case["proofs"], digests, strict=True):
            siblings = [bytes.fromhex(s.removeprefix("0x")) for s in proof["siblings"]]
            assert merkle_contract.verify_proof(
                root, digest, proof["index"], proof["leaf_count"], siblings
            )


def test_node_and_root_hashes_match_python(merkle_contract) -> None:
    left, right = b"\x01" * 32, b"\xfe" * 32
    assert merkle_contract.node_hash(left, right) == node_hash(left, right)
    assert merkle_contract.root_from_inner(7, left) == root_from_inner(7, left)


@settings(max_examples=40, deadline=None)
@given(
    leaves=st.lists(st.binary(min_size=0, max_size=40), min_size=1, max_size=40),
    data=st.data(),
)
def test_random_trees_prove_and_reject(merkle_contract, leaves: list[bytes], data) -> None:
    tree = MerkleTree.from_leaves(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    proof = tree.prove(index)
    digest = leaf_hash(leaves[index])
    siblings = list(proof.siblings)
    assert merkle_contract.verify_proof(tree.root, digest, index, len(leaves), siblings)
    assert merkle_contract.root_of_leaves([leaf_hash(x) for x in leaves], len(leaves)) == tree.root
    # Another leaf's data, a claimed padding slot, a wrong count or a dropped sibling all fail.
    assert not merkle_contract.verify_proof(
        tree.root, leaf_hash(leaves[index] + b"x"), index, len(leaves), siblings
    )
    assert not merkle_contract.verify_proof(tree.root, digest, len(leaves), len(leaves), siblings)
    assert not merkle_contract.verify_proof(tree.root, digest, index, len(leaves) + 1, siblings)
    if siblings:
        assert not merkle_contract.verify_proof(
            tree.root, digest, index, len(leaves), siblings[:-1]
        )
        assert not merkle_contract.verify_proof(
            tree.root, leaf_hash(b"not a leaf"), index, len(leaves), siblings
        )


@settings(max_examples=25, deadline=None)
@given(leaf_count=st.integers(1, 70), height=st.integers(0, 4), data=st.data())
def test_aligned_chunks_climb_to_the_inner_root(
    merkle_contract, leaf_count: int, height: int, data
) -> None:
    leaves = [i.to_bytes(2, "big") for i in range(leaf_count)]
    tree = MerkleTree.from_leaves(leaves)
    size = 1 << height
    assume(height <= tree_depth(leaf_count))  # a chunk taller than the tree is no subtree of it
    chunk_count = -(-leaf_count // size)
    chunk = data.draw(st.integers(0, chunk_count - 1))
    rows = [leaf_hash(x) for x in leaves[chunk * size : (chunk + 1) * size]]
    # Siblings of the chunk's subtree node: the leaf proof's siblings above `height`.
    siblings = list(tree.prove(chunk * size).siblings)[height:]
    inner = merkle_contract.chunk_root(rows, height, chunk, siblings)
    assert root_from_inner(leaf_count, inner) == tree.root
