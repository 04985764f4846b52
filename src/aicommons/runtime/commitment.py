"""Tensor, weights and trace roots: how integer tensors become Merkle commitments.

Rows along the first axis are the leaves; a row's bytes are its elements in C order, each
big-endian two's complement of the dtype width. Must match docs/integer-semantics.md exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from aicommons.commit import merkle_root

COMMITTED_DTYPES = ("int8", "int16", "int32")
"""int16 from semantics version 2 on (2-byte leaves)."""


def tensor_rows(tensor: np.ndarray) -> list[bytes]:
    """Leaf data of a tensor: one big-endian byte string per row along the first axis."""
    if tensor.dtype.name not in COMMITTED_DTYPES:
        raise ValueError(f"only int8, int16 and int32 tensors are committed, got {tensor.dtype}")
    rows = tensor.reshape(1, -1) if tensor.ndim == 0 else tensor.reshape(tensor.shape[0], -1)
    big_endian = np.ascontiguousarray(rows, dtype=tensor.dtype.newbyteorder(">"))
    row_bytes = big_endian.shape[1] * tensor.dtype.itemsize
    blob = big_endian.tobytes()
    return [blob[i * row_bytes : (i + 1) * row_bytes] for i in range(big_endian.shape[0])]


def tensor_root(tensor: np.ndarray) -> bytes:
    """Merkle root over the tensor's rows."""
    return merkle_root(tensor_rows(tensor))


def weights_root(tensor_roots: Mapping[str, bytes]) -> bytes:
    """Merkle root over the tensor roots in order of tensor name (leaf data = the 32-byte root)."""
    return merkle_root([tensor_roots[name] for name in sorted(tensor_roots)])


def trace_root(values: Sequence[np.ndarray]) -> bytes:
    """One sample's trace root: leaves are the tensor roots of its input and each layer output."""
    return merkle_root([tensor_root(value) for value in values])
