"""Commitments: keccak-256, canonical JSON, position-aware Merkle trees and content ids (CIDs).

These formats are part of the protocol (the Vyper contracts re-implement them byte for byte), so
this package is pure and imports nothing else of aicommons. See docs/commitments.md.
"""

from aicommons.commit.canonical import CanonicalJsonError, canonical_json
from aicommons.commit.cid import cid_of, cid_sha256_digest
from aicommons.commit.errors import CommitError, JsonInputError
from aicommons.commit.hashing import keccak256
from aicommons.commit.json_input import parse_json, read_json_file
from aicommons.commit.merkle import (
    EMPTY_SLOT,
    MerkleError,
    MerkleProof,
    MerkleTree,
    leaf_hash,
    merkle_root,
    node_hash,
    root_from_inner,
    verify_proof,
)

__all__ = [
    "EMPTY_SLOT",
    "CanonicalJsonError",
    "CommitError",
    "JsonInputError",
    "MerkleError",
    "MerkleProof",
    "MerkleTree",
    "canonical_json",
    "cid_of",
    "cid_sha256_digest",
    "keccak256",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "parse_json",
    "read_json_file",
    "root_from_inner",
    "verify_proof",
]
