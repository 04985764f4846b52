"""keccak-256, the EVM's hash, used for every aicommons commitment.

Ethereum's keccak-256 (original Keccak padding), not NIST SHA3-256; the two differ on every input.
"""

from __future__ import annotations

try:
    # safe-pysha3's C keccak (a declared dependency): ~9x faster a call than eth-hash's
    # pycryptodome backend, which matters for the Merkle roots of tensors with 10^5 rows
    # (a transformer's lookup tables and embeddings). The same function either way.
    from _pysha3 import keccak_256 as _native
except ImportError:  # pragma: no cover - safe-pysha3 is installed with aicommons
    _native = None

from eth_hash.auto import keccak as _keccak


def keccak256(data: bytes) -> bytes:
    """Return the 32-byte Ethereum keccak-256 digest of `data`."""
    if _native is not None:
        return _native(bytes(data)).digest()
    return _keccak(bytes(data))
