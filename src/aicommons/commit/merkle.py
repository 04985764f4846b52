"""Position-aware keccak Merkle trees: build, prove, verify (the format the contracts check).

Leaves and inner nodes are domain-separated and the root commits to the leaf count, so a proof
says *which* leaf it is for. Must stay byte-identical to chain/contracts/merkle.vy and docs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aicommons.commit.errors import MerkleError
from aicommons.commit.hashing import keccak256

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
ROOT_PREFIX = b"\x02"
EMPTY_SLOT = bytes(32)
"""Hash standing in for the missing leaves that pad a level to a power of two."""


def leaf_hash(data: bytes) -> bytes:
    """Hash of one leaf: keccak256(0x00 || data)."""
    return keccak256(LEAF_PREFIX + bytes(data))


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an inner node: keccak256(0x01 || left || right)."""
    return keccak256(NODE_PREFIX + left + right)


def root_from_inner(leaf_count: int, inner_root: bytes) -> bytes:
    """The published root: keccak256(0x02 || uint256(leaf_count) || inner_root)."""
    return keccak256(ROOT_PREFIX + leaf_count.to_bytes(32, "big") + inner_root)


def tree_depth(leaf_count: int) -> int:
    """Number of levels above the leaves: ceil(log2(leaf_count)), 0 for 0 or 1 leaf."""
    return max(leaf_count - 1, 0).bit_length()


@dataclass(frozen=True)
class MerkleProof:
    """Siblings from the leaf level up; bit k of `index` set means the node is a right child."""

    index: int
    leaf_count: int
    siblings: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "leaf_count": self.leaf_count,
            "siblings": ["0x" + s.hex() for s in self.siblings],
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> MerkleProof:
        siblings = tuple(bytes.fromhex(str(s).removeprefix("0x")) for s in data["siblings"])  # type: ignore[union-attr]
        return cls(int(data["index"]), int(data["leaf_count"]), siblings)  # type: ignore[arg-type]


class MerkleTree:
    """A tree over leaf hashes, keeping every level so proofs cost O(log n)."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        for position, digest in enumerate(leaf_hashes):
            if len(digest) != 32:
                raise MerkleError(f"leaf hash {position} is {len(digest)} bytes, expected 32")
        self.leaf_count = len(leaf_hashes)
        depth = tree_depth(self.leaf_count)
        level = list(leaf_hashes) + [EMPTY_SLOT] * ((1 << depth) - self.leaf_count)
        if not level:
            level = [EMPTY_SLOT]
        self._levels: list[list[bytes]] = [level]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            self._levels.append(level)
        self.root = root_from_inner(self.leaf_count, level[0])

    @classmethod
    def from_leaves(cls, leaves: Sequence[bytes]) -> MerkleTree:
        """Build from raw leaf data (each hashed with `leaf_hash`)."""
        return cls([leaf_hash(leaf) for leaf in leaves])

    def prove(self, index: int) -> MerkleProof:
        if not 0 <= index < self.leaf_count:
            raise MerkleError(f"leaf index {index} out of range for {self.leaf_count} leaves")
        siblings = []
        position = index
        for level in self._levels[:-1]:
            siblings.append(level[position ^ 1])
            position >>= 1
        return MerkleProof(index, self.leaf_count, tuple(siblings))


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root over raw leaf data."""
    return MerkleTree.from_leaves(leaves).root


def verify_proof(root: bytes, leaf_digest: bytes, proof: MerkleProof) -> bool:
    """True iff `leaf_digest` (a `leaf_hash`) sits at `proof.index` under `root`."""
    if not 0 <= proof.index < proof.leaf_count:
        return False
    if len(proof.siblings) != tree_depth(proof.leaf_count):
        return False
    node = leaf_digest
    position = proof.index
    for sibling in proof.siblings:
        node = node_hash(sibling, node) if position & 1 else node_hash(node, sibling)
        position >>= 1
    return root_from_inner(proof.leaf_count, node) == root
