"""Upload authorisation: an uploader signs (EIP-191) a byte budget, a nonce and an expiry time.

Pure message building and signature checks; the storage node holds the policy (allow-list, size
limit, used nonces). No anonymous writes: every stored byte is charged to a signed budget.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from aicommons.storage.errors import UploadAuthError

UPLOAD_TTL_SECONDS = 600
"""How long a signed upload grant stays usable; nodes refuse grants that expire later than this."""


@dataclass(frozen=True)
class UploadGrant:
    """The signed statement "this address may store up to `max_bytes` until `expires`"."""

    max_bytes: int
    nonce: str
    expires: int
    signature: str

    def message(self) -> str:
        return grant_message(self.max_bytes, self.nonce, self.expires)

    def to_json(self) -> dict[str, object]:
        return {
            "expires": self.expires,
            "max_bytes": self.max_bytes,
            "nonce": self.nonce,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, data: object) -> UploadGrant:
        if not isinstance(data, dict):
            raise UploadAuthError("upload grant is not a JSON object")
        try:
            return cls(
                int(data["max_bytes"]),
                str(data["nonce"]),
                int(data["expires"]),
                str(data["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UploadAuthError(f"upload grant is malformed: {exc}") from None


def grant_message(max_bytes: int, nonce: str, expires: int) -> str:
    """The exact text that is signed with EIP-191 `personal_sign`."""
    return (
        f"aicommons storage upload v1\nmax_bytes: {max_bytes}\nnonce: {nonce}\nexpires: {expires}"
    )


def sign_grant(
    account: LocalAccount, max_bytes: int, now: float | None = None, ttl: int = UPLOAD_TTL_SECONDS
) -> UploadGrant:
    """Sign a fresh grant for `max_bytes` bytes with a random nonce."""
    nonce = secrets.token_hex(16)
    expires = int(time.time() if now is None else now) + ttl
    signed = account.sign_message(encode_defunct(text=grant_message(max_bytes, nonce, expires)))
    return UploadGrant(max_bytes, nonce, expires, "0x" + bytes(signed.signature).hex())


def grant_signer(grant: UploadGrant, now: float | None = None) -> str:
    """Checksum address that signed `grant`, if it is well formed and current; else raise."""
    current = time.time() if now is None else now
    if grant.max_bytes < 0:
        raise UploadAuthError("upload grant has a negative byte budget")
    if not 16 <= len(grant.nonce) <= 64 or not grant.nonce.isalnum():
        raise UploadAuthError("upload grant nonce must be 16-64 letters or digits")
    if grant.expires <= current:
        raise UploadAuthError("upload grant has expired")
    if grant.expires > current + UPLOAD_TTL_SECONDS + 60:
        raise UploadAuthError(f"upload grant expires more than {UPLOAD_TTL_SECONDS}s ahead")
    try:
        return Account.recover_message(
            encode_defunct(text=grant.message()), signature=grant.signature
        )
    except Exception as exc:  # eth-account raises several unrelated types for a bad signature
        raise UploadAuthError(f"upload grant signature is invalid: {exc}") from None
