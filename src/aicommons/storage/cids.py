"""Fast path for the one CID kind storage uses (CIDv1, raw, sha2-256, base32) on hot loops.

multiformats type-checks every call (~2-3 ms of GIL per chunk): hashlib + stdlib base32 with the
prefix taken from multiformats instead, checked against `commit.cid_of` at import and in tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from multiformats import CID

from aicommons.commit import cid_of

_PROBE = b"aicommons storage cid probe"
# The binary CID is prefix || digest; the prefix (version, codec, hash code, length) comes from
# the library so that nothing about the encoding is written down here by hand.
_PREFIX = bytes(CID.decode(cid_of(_PROBE))).removesuffix(hashlib.sha256(_PROBE).digest())


def cid_from_sha256(digest: bytes) -> str:
    """The base32 CIDv1 (raw) naming the bytes whose sha2-256 is `digest`."""
    return "b" + base64.b32encode(_PREFIX + digest).decode("ascii").lower().rstrip("=")


def fast_cid(data: bytes | memoryview) -> str:
    """Same result as `aicommons.commit.cid_of(data)`; hashlib releases the GIL while hashing."""
    return cid_from_sha256(hashlib.sha256(data).digest())


def sha256_of_cid(cid: str) -> bytes:
    """The sha2-256 digest a storage CID names; ValueError if it is not one."""
    if not cid.startswith("b") or not cid[1:].isalnum():
        raise ValueError(f"not a base32 raw sha2-256 CIDv1: {cid!r}")
    body = cid[1:].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except (binascii.Error, ValueError):
        raise ValueError(f"not a base32 raw sha2-256 CIDv1: {cid!r}") from None
    if len(raw) != len(_PREFIX) + 32 or not raw.startswith(_PREFIX):
        raise ValueError(f"not a base32 raw sha2-256 CIDv1: {cid!r}")
    if cid_from_sha256(raw[len(_PREFIX) :]) != cid:
        raise ValueError(f"CID {cid!r} is not in canonical base32 form")
    return raw[len(_PREFIX) :]


def bytes_match_cid(cid: str, data: bytes | memoryview) -> bool:
    """True iff `data` is what `cid` names."""
    return hashlib.sha256(data).digest() == sha256_of_cid(cid)


if fast_cid(_PROBE) != cid_of(_PROBE) or len(_PREFIX) != 4:
    raise ImportError("storage CID fast path disagrees with multiformats; refusing to run")
