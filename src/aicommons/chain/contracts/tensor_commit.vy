# pragma version ~=0.4.3
"""
@title Tensor roots over row bytes, and proofs that a range of rows sits under a tensor root
@notice A tensor root is the Merkle root (docs/commitments.md) over the tensor's rows; a row's
        leaf data is its bytes as committed (docs/integer-semantics.md "Commitments"). This
        module hashes rows given as one concatenated byte string and checks that rows
        [first, first + count) are exactly those under a root, given the siblings on the
        range's two boundaries. Byte-identical to `aicommons.market.rows` (tested both ways).
@dev A stateless module (`import tensor_commit`). Siblings are consumed level by level from
     the leaves up, at each level the left boundary's sibling before the right one; siblings
     that cover only padding are not sent (the contract knows the padding hash of each level).
     The full range [0, n) needs no siblings at all.
"""

import merkle

# Most rows one range may hold: a dense layer's input vector (one row per value) at the
# market's widest fan-in.
MAX_RANGE_ROWS: constant(uint256) = 4096
MAX_ROWS_BYTES: constant(uint256) = 32768
# Two boundary siblings per level, and no committed tensor has more than 2**32 rows.
MAX_RANGE_SIBLINGS: constant(uint256) = 64


@internal
@pure
def row_leaf(data: Bytes[MAX_ROWS_BYTES], start: uint256, length: uint256) -> bytes32:
    """
    @notice Leaf hash of the row data[start : start + length]: keccak256(0x00 || row).
    """
    return keccak256(concat(b"\x00", slice(data, start, length)))


@internal
@pure
def range_inner(
    data: Bytes[MAX_ROWS_BYTES],
    row_bytes: uint256,
    first: uint256,
    leaf_count: uint256,
    siblings: DynArray[bytes32, MAX_RANGE_SIBLINGS],
) -> bytes32:
    """
    @notice The inner root (before the count-binding root hash) of a tree of `leaf_count` rows
            whose rows first .. first + len(data) / row_bytes - 1 are `data`, with the range's
            boundary `siblings`. Reverts `RowsMismatch` on a malformed range or proof.
    """
    assert row_bytes > 0, "RowsMismatch"
    count: uint256 = len(data) // row_bytes
    assert count > 0 and count * row_bytes == len(data), "RowsMismatch"
    assert first + count <= leaf_count, "RowsMismatch"
    level: DynArray[bytes32, MAX_RANGE_ROWS] = []
    for r: uint256 in range(count, bound=MAX_RANGE_ROWS):
        level.append(self.row_leaf(data, r * row_bytes, row_bytes))
    position: uint256 = first  # index of level[0] within its level
    real: uint256 = leaf_count  # nodes of this level that cover at least one real row
    padding: bytes32 = empty(bytes32)
    used: uint256 = 0
    for _: uint256 in range(merkle.tree_depth(leaf_count), bound=merkle.MAX_DEPTH):
        written: uint256 = 0
        i: uint256 = 0
        if position % 2 == 1:
            # The range starts on a right child: its left sibling comes from the proof.
            assert used < len(siblings), "RowsMismatch"
            level[0] = merkle.node_hash(siblings[used], level[0])
            used += 1
            written = 1
            i = 1
        for _k: uint256 in range(MAX_RANGE_ROWS):
            if i >= count:
                break
            left: bytes32 = level[i]
            right: bytes32 = padding
            if i + 1 < count:
                right = level[i + 1]
            elif position + i + 1 < real:
                # The range ends on a left child whose right sibling holds real rows.
                assert used < len(siblings), "RowsMismatch"
                right = siblings[used]
                used += 1
            level[written] = merkle.node_hash(left, right)
            written += 1
            i += 2
        count = written
        position = position // 2
        real = (real + 1) // 2
        padding = merkle.node_hash(padding, padding)
    assert used == len(siblings), "RowsMismatch"
    return level[0]


@internal
@pure
def verify_rows(
    root: bytes32,
    data: Bytes[MAX_ROWS_BYTES],
    row_bytes: uint256,
    first: uint256,
    leaf_count: uint256,
    siblings: DynArray[bytes32, MAX_RANGE_SIBLINGS],
) -> bool:
    """
    @notice True iff `data` are rows first.. of the `leaf_count`-row tensor under `root`.
    """
    inner: bytes32 = self.range_inner(data, row_bytes, first, leaf_count, siblings)
    return merkle.root_from_inner(leaf_count, inner) == root


@internal
@pure
def tensor_root(data: Bytes[MAX_ROWS_BYTES], rows: uint256) -> bytes32:
    """
    @notice Root of a whole tensor given as its concatenated rows (all the same length).
    """
    assert rows > 0 and len(data) % rows == 0, "RowsMismatch"
    empty_proof: DynArray[bytes32, MAX_RANGE_SIBLINGS] = []
    return merkle.root_from_inner(rows, self.range_inner(data, len(data) // rows, 0, rows, empty_proof))
