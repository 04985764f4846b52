# pragma version ~=0.4.3
"""
@title Test harness exposing the merkle module's internal functions (tests only, never deployed)
"""
import merkle


@external
@pure
def verify_proof(
    root: bytes32, leaf_digest: bytes32, index: uint256, leaf_count: uint256, siblings: DynArray[bytes32, 64]
) -> bool:
    return merkle.verify_proof(root, leaf_digest, index, leaf_count, siblings)


@external
@pure
def node_hash(left: bytes32, right: bytes32) -> bytes32:
    return merkle.node_hash(left, right)


@external
@pure
def root_from_inner(leaf_count: uint256, inner_root: bytes32) -> bytes32:
    return merkle.root_from_inner(leaf_count, inner_root)


@external
@pure
def root_of_leaves(leaf_digests: DynArray[bytes32, 256], leaf_count: uint256) -> bytes32:
    height: uint256 = merkle.tree_depth(leaf_count)
    return merkle.root_from_inner(leaf_count, merkle.subtree_root(leaf_digests, height))


@external
@pure
def chunk_root(
    leaf_digests: DynArray[bytes32, 256], height: uint256, chunk_index: uint256, siblings: DynArray[bytes32, 64]
) -> bytes32:
    return merkle.climb(merkle.subtree_root(leaf_digests, height), chunk_index, siblings)
