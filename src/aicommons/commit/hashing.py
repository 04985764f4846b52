"""keccak-256, the EVM's hash, used for every aicommons commitment.

Ethereum's keccak-256 (original Keccak padding), not NIST SHA3-256; the two differ on every input.
"""

from __future__ import annotations

from eth_hash.auto import keccak as _keccak


def keccak256(data: bytes) -> bytes:
    """Return the 32-byte Ethereum keccak-256 digest of `data`."""
    return _keccak(bytes(data))
