"""IPFS-compatible content ids: CIDv1, raw codec, sha2-256, base32 text form.

The same bytes can be pinned on IPFS or Filecoin unchanged. Encoding is delegated to the
multiformats library rather than written by hand.
"""

from __future__ import annotations

import hashlib

from multiformats import CID, multihash


def cid_of(data: bytes) -> str:
    """Return the CIDv1 (raw, sha2-256, base32 `bafk...`) of `data`."""
    return str(CID("base32", 1, "raw", multihash.digest(bytes(data), "sha2-256")))


def cid_sha256_digest(cid: str) -> bytes:
    """Return the sha2-256 digest a raw CIDv1 names; `ValueError` for any other kind of CID."""
    try:
        parsed = CID.decode(cid)
    except Exception as exc:  # multiformats raises several unrelated types for bad text
        raise ValueError(f"not a valid CID: {cid!r}") from exc
    if parsed.version != 1 or parsed.codec.name != "raw" or parsed.hashfun.name != "sha2-256":
        raise ValueError(f"CID {cid} is not CIDv1 raw sha2-256")
    return bytes(parsed.raw_digest)


def sha256(data: bytes) -> bytes:
    """sha2-256 digest, the hash inside every aicommons CID."""
    return hashlib.sha256(data).digest()
