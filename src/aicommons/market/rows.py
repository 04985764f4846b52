"""Proofs that a range of rows sits under a tensor root: the boundary-sibling format the
contracts check (`tensor_commit.vy`), built and verified in pure Python.

Siblings go level by level from the leaves up, the left boundary's before the right one's, and
siblings covering only padding are left out. Must stay byte-identical to tensor_commit.vy.
"""

from __future__ import annotations

from collections.abc import Sequence

from aicommons.commit import EMPTY_SLOT, leaf_hash, node_hash, root_from_inner
from aicommons.commit.merkle import tree_depth
from aicommons.market.errors import CommitmentError


def _levels(rows: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the padded tree, leaves first (padding slots are EMPTY_SLOT)."""
    depth = tree_depth(len(rows))
    level = [leaf_hash(row) for row in rows] + [EMPTY_SLOT] * ((1 << depth) - len(rows))
    levels = [level]
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        levels.append(level)
    return levels


def prove_rows(rows: Sequence[bytes], first: int, count: int) -> list[bytes]:
    """Boundary siblings proving rows[first : first + count] against the root of `rows`."""
    if count < 1 or first < 0 or first + count > len(rows):
        raise CommitmentError(f"rows {first}..{first + count - 1} outside a {len(rows)}-row tensor")
    levels = _levels(rows)
    siblings: list[bytes] = []
    start, end, real = first, first + count, len(rows)  # end is exclusive
    for level in levels[:-1]:
        if start % 2 == 1:
            siblings.append(level[start - 1])
        if end % 2 == 1 and end < real:
            siblings.append(level[end])
        start, end, real = start // 2, (end + 1) // 2, (real + 1) // 2
    return siblings


def rows_inner(
    range_rows: Sequence[bytes], first: int, leaf_count: int, siblings: Sequence[bytes]
) -> bytes:
    """Inner root from rows first.. of a `leaf_count`-row tree and their boundary siblings."""
    count = len(range_rows)
    if count < 1 or first < 0 or first + count > leaf_count:
        raise CommitmentError("row range outside the tensor")
    level = [leaf_hash(row) for row in range_rows]
    position, real, padding, used = first, leaf_count, EMPTY_SLOT, 0
    for _ in range(tree_depth(leaf_count)):
        merged: list[bytes] = []
        i = 0
        if position % 2 == 1:
            if used >= len(siblings):
                raise CommitmentError("too few siblings")
            merged.append(node_hash(siblings[used], level[0]))
            used, i = used + 1, 1
        while i < len(level):
            if i + 1 < len(level):
                right = level[i + 1]
            elif position + i + 1 < real:
                if used >= len(siblings):
                    raise CommitmentError("too few siblings")
                right = siblings[used]
                used += 1
            else:
                right = padding
            merged.append(node_hash(level[i], right))
            i += 2
        level, position, real = merged, position // 2, (real + 1) // 2
        padding = node_hash(padding, padding)
    if used != len(siblings):
        raise CommitmentError("too many siblings")
    return level[0]


def verify_rows(
    root: bytes, range_rows: Sequence[bytes], first: int, leaf_count: int, siblings: Sequence[bytes]
) -> bool:
    """True iff `range_rows` are rows first.. of the `leaf_count`-row tensor under `root`."""
    try:
        inner = rows_inner(range_rows, first, leaf_count, siblings)
    except CommitmentError:
        return False
    return root_from_inner(leaf_count, inner) == root


def inner_node(rows: Sequence[bytes], level: int, index: int) -> bytes:
    """The node at `level` (0 = leaves) and `index` of the padded tree over `rows`."""
    levels = _levels(rows)
    if not 0 <= level < len(levels) or not 0 <= index < len(levels[level]):
        raise CommitmentError(f"no node at level {level}, index {index} of a {len(rows)}-row tree")
    return levels[level][index]
