"""Row-range proofs: `aicommons.market.rows` and tensor_commit.vy agree byte for byte.

Every range of random tensors proves and verifies in both; tampered rows, shifted ranges and
extra or missing siblings are refused in both.
"""

from __future__ import annotations

from pathlib import Path

import boa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aicommons.chain.compile import compile_source_file, load_boa
from aicommons.commit import merkle_root
from aicommons.market.rows import prove_rows, verify_rows
from aicommons.runtime import tensor_root, tensor_rows

HARNESS = Path(__file__).resolve().parent / "ops_harness.vy"


@pytest.fixture(scope="module")
def ops():
    with boa.env.anchor():
        yield load_boa(compile_source_file(HARNESS))


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 40),
    row_bytes=st.sampled_from([1, 4, 9]),
    data=st.data(),
)
def test_every_range_proves_in_python_and_vyper(ops, rows: int, row_bytes: int, data) -> None:
    # Distinct rows (the first byte is the index), so a shifted range really is other data.
    leaves = [
        bytes([i]) + data.draw(st.binary(min_size=row_bytes - 1, max_size=row_bytes - 1))
        for i in range(rows)
    ]
    root = merkle_root(leaves)
    first = data.draw(st.integers(0, rows - 1))
    count = data.draw(st.integers(1, rows - first))
    siblings = prove_rows(leaves, first, count)
    chunk = b"".join(leaves[first : first + count])
    assert verify_rows(root, leaves[first : first + count], first, rows, siblings)
    assert ops.verify_rows(root, chunk, row_bytes, first, rows, siblings)
    # A changed byte, a shifted range and a dropped sibling are refused by both.
    tampered = bytes([chunk[0] ^ 1]) + chunk[1:]
    assert not ops.verify_rows(root, tampered, row_bytes, first, rows, siblings)
    if first + count < rows:
        moved = prove_rows(leaves, first + 1, count)
        assert not verify_rows(root, leaves[first : first + count], first + 1, rows, moved)
        assert not _vyper_accepts(ops, root, chunk, row_bytes, first + 1, rows, moved)
    if siblings:
        assert not verify_rows(root, leaves[first : first + count], first, rows, siblings[:-1])
        assert not _vyper_accepts(ops, root, chunk, row_bytes, first, rows, siblings[:-1])


def _vyper_accepts(ops, *args) -> bool:
    """verify_rows's answer, counting a `RowsMismatch` revert (malformed proof) as a refusal."""
    try:
        return bool(ops.verify_rows(*args))
    except boa.BoaError as exc:
        assert "RowsMismatch" in str(exc)
        return False


def test_tensor_root_equals_runtime(ops) -> None:
    rng = np.random.default_rng(3)
    for shape, dtype in (
        ((1, 8, 8), np.int8),
        ((64,), np.int8),
        ((10,), np.int32),
        ((3, 5), np.int8),
    ):
        tensor = rng.integers(-100, 100, shape).astype(dtype)
        rows = tensor_rows(tensor)
        assert ops.tensor_root(b"".join(rows), len(rows)) == tensor_root(tensor)


def test_full_range_needs_no_siblings() -> None:
    leaves = [bytes([i]) for i in range(13)]
    assert prove_rows(leaves, 0, 13) == []
    assert verify_rows(merkle_root(leaves), leaves, 0, 13, [])
