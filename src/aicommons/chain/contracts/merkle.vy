# pragma version ~=0.4.3
"""
@title Position-aware keccak Merkle proofs (the aicommons commitment format)
@notice Verifies that a leaf sits at a given index of a tree built by `aicommons.commit.merkle`:
        leaves are hashed as keccak256(0x00 || data), inner nodes as keccak256(0x01 || a || b),
        and the root is keccak256(0x02 || uint256(leaf_count) || inner_root), so a proof shows
        *which* leaf it is and a padding slot can never be proven. snekmate's sorted-pair
        verifier cannot bind the index, which storage challenges and weight uploads need.
        Byte-identical to docs/commitments.md; tested against docs/test-vectors/commitments.json.
@dev A stateless module: import it and call its internal functions (no `initializes` needed).
"""

# Deepest tree a proof may describe: 2**64 leaves is beyond any tensor or blob we commit.
MAX_DEPTH: constant(uint256) = 64


@internal
@pure
def node_hash(left: bytes32, right: bytes32) -> bytes32:
    """
    @notice Hash of an inner node: keccak256(0x01 || left || right).
    """
    return keccak256(concat(b"\x01", left, right))


@internal
@pure
def root_from_inner(leaf_count: uint256, inner_root: bytes32) -> bytes32:
    """
    @notice The published root, binding the leaf count: keccak256(0x02 || uint256(n) || inner).
    """
    return keccak256(concat(b"\x02", convert(leaf_count, bytes32), inner_root))


@internal
@pure
def leaf_hash_bytes32(data: bytes32) -> bytes32:
    """
    @notice Leaf hash of a 32-byte leaf (e.g. a tensor root inside a weights root).
    """
    return keccak256(concat(b"\x00", data))


@internal
@pure
def tree_depth(leaf_count: uint256) -> uint256:
    """
    @notice ceil(log2(leaf_count)); 0 for zero or one leaf.
    """
    depth: uint256 = 0
    if leaf_count <= 1:
        return 0
    remaining: uint256 = leaf_count - 1
    for _: uint256 in range(256):
        if remaining == 0:
            break
        remaining = remaining >> 1
        depth += 1
    return depth


@internal
@pure
def verify_proof(
    root: bytes32,
    leaf_digest: bytes32,
    index: uint256,
    leaf_count: uint256,
    siblings: DynArray[bytes32, MAX_DEPTH],
) -> bool:
    """
    @notice True iff `leaf_digest` (a leaf hash) is leaf number `index` of the tree under `root`.
    @dev Siblings run from the leaf level upwards; bit k of `index` set means the running node
         is the right child at level k. Rejects index >= leaf_count and a wrong sibling count.
    """
    if index >= leaf_count:
        return False
    if len(siblings) != self.tree_depth(leaf_count):
        return False
    return self.root_from_inner(leaf_count, self.climb(leaf_digest, index, siblings)) == root


# Most leaves hashed together in one call (one tensor chunk); bounds the memory a call reserves.
MAX_CHUNK_LEAVES: constant(uint256) = 256


@internal
@pure
def subtree_root(leaf_digests: DynArray[bytes32, MAX_CHUNK_LEAVES], height: uint256) -> bytes32:
    """
    @notice Root of the aligned subtree of 2**height leaf slots whose first slots hold
            `leaf_digests`; slots past the end are padding (the empty slot, 32 zero bytes).
    @dev Odd ends of a level are paired with the hash of an all-padding subtree of that level,
         which is exactly what padding the leaf level to a power of two produces.
    """
    assert len(leaf_digests) <= 1 << height, "ChunkTooLarge"
    level: DynArray[bytes32, MAX_CHUNK_LEAVES] = leaf_digests
    width: uint256 = len(level)
    padding: bytes32 = empty(bytes32)
    if width == 0:
        level.append(padding)
        width = 1
    for _: uint256 in range(height, bound=MAX_DEPTH):
        half: uint256 = (width + 1) // 2
        for i: uint256 in range(half, bound=MAX_CHUNK_LEAVES):
            right: bytes32 = padding
            if 2 * i + 1 < width:
                right = level[2 * i + 1]
            level[i] = self.node_hash(level[2 * i], right)
        padding = self.node_hash(padding, padding)
        width = half
    return level[0]


@internal
@pure
def climb(node: bytes32, index: uint256, siblings: DynArray[bytes32, MAX_DEPTH]) -> bytes32:
    """
    @notice Fold `node` (at position `index` of its level) up through `siblings` to the inner root.
    """
    current: bytes32 = node
    position: uint256 = index
    for sibling: bytes32 in siblings:
        if position & 1 == 1:
            current = self.node_hash(sibling, current)
        else:
            current = self.node_hash(current, sibling)
        position = position >> 1
    return current
