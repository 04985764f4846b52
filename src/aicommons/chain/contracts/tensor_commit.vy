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

# Most rows a *partial* range may hold (a whole tensor is folded as a stream, any size).
MAX_RANGE_ROWS: constant(uint256) = 256
MAX_ROWS_BYTES: constant(uint256) = 32768  # a row of attention scores (int_ops.MAX_WIDE_BYTES)
# Two boundary siblings per level, and no committed tensor has more than 2**32 rows.
MAX_RANGE_SIBLINGS: constant(uint256) = 64
MAX_STREAM_HEIGHT: constant(uint256) = 33


@internal
@pure
def word_at(data: Bytes[MAX_ROWS_BYTES], offset: uint256) -> uint256:
    """
    @notice The 32 bytes of `data` from `offset` as a big-endian word, zero past the end.
    @dev No padded copy of `data`: near the end the last full word is shifted into place.
    """
    length: uint256 = len(data)
    if offset + 32 <= length:
        return extract32(data, offset, output_type=uint256)
    if length >= 32:
        return extract32(data, length - 32, output_type=uint256) << (8 * (offset + 32 - length))
    word: uint256 = 0
    for i: uint256 in range(32):
        if offset + i >= length:
            break
        word |= convert(convert(slice(data, offset + i, 1), bytes1), uint256) << (248 - 8 * i)
    return word


@internal
@pure
def row_leaf(data: Bytes[MAX_ROWS_BYTES], start: uint256, length: uint256) -> bytes32:
    """
    @notice Leaf hash of the row data[start : start + length]: keccak256(0x00 || row).
    @dev Rows of up to 32 bytes (int8 vectors, int32 channels) are cut from one word, so they
         never copy `data`.
    """
    if length <= 32:
        word: bytes32 = convert(self.word_at(data, start), bytes32)
        return keccak256(concat(b"\x00", slice(word, 0, length)))
    assert start + length <= len(data), "RowsMismatch"
    return keccak256(concat(b"\x00", slice(data, start, length)))


@internal
@pure
def full_inner(data: Bytes[MAX_ROWS_BYTES], row_bytes: uint256, count: uint256) -> bytes32:
    """
    @notice Inner root of the whole tree over `count` rows, folded as a stream: a stack of
            complete subtrees whose heights are the set bits of the rows folded so far (row r
            merges as many times as r has trailing ones); the last subtree is then raised to
            the top, pairing with the stacked subtree of each set bit of `count` or with
            padding. O(log n) memory, no copy of `data`.
    @dev Hot loop of every one-step (a dense input hashes fan-in rows): hashing is inlined and
         short rows (<= 32 bytes) are cut from one word instead of sliced from `data`.
    """
    length: uint256 = len(data)
    assert count * row_bytes == length and count > 0, "RowsMismatch"
    short_data: uint256 = 0  # all of `data` when it is shorter than a word, left-aligned
    if length < 32:
        short_data = self.word_at(data, 0)
    # One-byte rows (a dense layer's int8 input vector) have only 256 possible leaves: hash
    # each once and look the rest up (worth it from 256 rows on).
    table: bytes32[256] = empty(bytes32[256])
    use_table: bool = row_bytes == 1 and count >= 256
    if use_table:
        for v: uint256 in range(256):
            table[v] = keccak256(concat(b"\x00", convert(convert(v, uint8), bytes1)))
    stack: bytes32[MAX_STREAM_HEIGHT] = empty(bytes32[MAX_STREAM_HEIGHT])
    top: uint256 = 0
    word: uint256 = 0
    for r: uint256 in range(count, bound=MAX_ROWS_BYTES):
        start: uint256 = unsafe_mul(r, row_bytes)
        node: bytes32 = empty(bytes32)
        if use_table:
            if r & 31 == 0:
                word = self.word_at(data, start)
            node = table[(word >> unsafe_sub(248, unsafe_mul(8, r & 31))) & 255]
        elif row_bytes <= 32:
            if length < 32:
                word = short_data << unsafe_mul(8, start)
            elif unsafe_add(start, 32) <= length:
                word = extract32(data, start, output_type=uint256)
            else:
                word = extract32(data, length - 32, output_type=uint256) << unsafe_mul(
                    8, unsafe_sub(unsafe_add(start, 32), length)
                )
            if row_bytes == 1:
                node = keccak256(concat(b"\x00", convert(convert(word >> 248, uint8), bytes1)))
            else:
                node = keccak256(concat(b"\x00", slice(convert(word, bytes32), 0, row_bytes)))
        else:
            node = keccak256(concat(b"\x00", slice(data, start, row_bytes)))
        merges: uint256 = r
        for _: uint256 in range(MAX_STREAM_HEIGHT):
            if merges & 1 == 0:
                break
            top = unsafe_sub(top, 1)
            # 0x01 || left || right, cut from one 96-byte encoding (cheaper than concat).
            node = keccak256(slice(abi_encode(convert(1, uint256), stack[top], node), 31, 65))
            merges = merges >> 1
        stack[top] = node
        top = unsafe_add(top, 1)
    top -= 1
    node: bytes32 = stack[top]
    # The last subtree's height is the lowest set bit of count.
    height: uint256 = 0
    padding: bytes32 = empty(bytes32)
    for _: uint256 in range(MAX_STREAM_HEIGHT):
        if (count >> height) & 1 == 1:
            break
        padding = merkle.node_hash(padding, padding)
        height += 1
    for _: uint256 in range(height, merkle.tree_depth(count), bound=MAX_STREAM_HEIGHT):
        # The node holds the last real row, so it is a right child iff bit `height` of
        # count - 1 is set; its left sibling is then the stacked subtree of that bit.
        if ((count - 1) >> height) & 1 == 1:
            top -= 1
            node = merkle.node_hash(stack[top], node)
        else:
            node = merkle.node_hash(node, padding)
        padding = merkle.node_hash(padding, padding)
        height += 1
    return node


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
    if first == 0 and count == leaf_count:
        assert len(siblings) == 0, "RowsMismatch"
        return self.full_inner(data, row_bytes, count)
    assert count <= MAX_RANGE_ROWS, "RowsMismatch"
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
    return merkle.root_from_inner(rows, self.full_inner(data, len(data) // rows, rows))
