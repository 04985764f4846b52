"""Upload authorisation: an uploader signs (EIP-712) a byte budget for one node, with a nonce and
an expiry time.

Pure message building and signature checks; the storage node holds the policy (allow-list,
quotas, used nonces). No anonymous writes: every stored byte is charged to a signed budget, and
a grant names the node it is for (its URL origin, and chain id if the node has one), so no other
node accepts it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import is_checksum_address

from aicommons.commit import keccak256
from aicommons.storage.errors import NodeConfigError, UploadAuthError

UPLOAD_TTL_SECONDS = 600
"""How long a signed upload grant stays usable; nodes refuse grants that expire later than this."""
CLOCK_SKEW_SECONDS = 60
"""How far a grant's expiry may lie beyond now + UPLOAD_TTL_SECONDS (client clocks run ahead)."""
GRANT_DOMAIN_NAME = "aicommons storage"
GRANT_VERSION = "2"
GRANT_TYPES: dict[str, list[dict[str, str]]] = {
    "UploadGrant": [
        {"name": "node", "type": "string"},
        {"name": "maxBytes", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
        {"name": "expires", "type": "uint256"},
    ]
}
MAX_GRANT_BYTES = 1 << 40
"""Largest byte budget a grant may carry (far above any node's limit; keeps integers sane)."""


def node_origin(url: str) -> str:
    """The origin (`scheme://host[:port]`, lower case, default port dropped) of a node URL:
    what a grant names as its node. `NodeConfigError` if `url` is not an http(s) URL."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise NodeConfigError(f"node URL {url!r} is not an http(s) URL")
    try:
        port = parts.port
    except ValueError:
        raise NodeConfigError(f"node URL {url!r} has an invalid port") from None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == {"http": 80, "https": 443}[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def grant_domain(node: str, chain_id: int | None) -> dict[str, Any]:
    """The EIP-712 domain of grants for the node at origin `node` (on chain `chain_id`): the
    salt is keccak-256 of the origin, so a signature for one node never verifies for another."""
    domain: dict[str, Any] = {
        "name": GRANT_DOMAIN_NAME,
        "version": GRANT_VERSION,
        "salt": keccak256(node.encode("utf-8")),
    }
    if chain_id is not None:
        domain["chainId"] = chain_id
    return domain


@dataclass(frozen=True)
class UploadGrant:
    """The signed statement "`signer` may store up to `max_bytes` on `node` until `expires`"."""

    node: str
    chain_id: int | None
    signer: str
    max_bytes: int
    nonce: str
    expires: int
    signature: str

    def typed_data(self) -> dict[str, Any]:
        """The EIP-712 message (`encode_typed_data(full_message=...)`) the signer signed."""
        return grant_typed_data(
            node=self.node,
            chain_id=self.chain_id,
            max_bytes=self.max_bytes,
            nonce=self.nonce,
            expires=self.expires,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "chain_id": self.chain_id,
            "expires": self.expires,
            "max_bytes": self.max_bytes,
            "node": self.node,
            "nonce": self.nonce,
            "signature": self.signature,
            "signer": self.signer,
        }

    @classmethod
    def from_json(cls, data: object) -> UploadGrant:
        """A grant from its JSON form, every field checked by type (no coercion)."""
        if not isinstance(data, dict):
            raise UploadAuthError("upload grant is not a JSON object")
        expected = {"chain_id", "expires", "max_bytes", "node", "nonce", "signature", "signer"}
        if set(data) != expected:
            raise UploadAuthError(f"upload grant must have exactly the fields {sorted(expected)}")
        for name in ("max_bytes", "expires"):
            if type(data[name]) is not int or not 0 <= data[name] < 2**64:
                raise UploadAuthError(f"upload grant {name} is not an integer in 0..2^64-1")
        chain_id = data["chain_id"]
        if chain_id is not None and (type(chain_id) is not int or not 0 < chain_id < 2**64):
            raise UploadAuthError("upload grant chain_id is not null or a positive integer")
        for name in ("node", "nonce", "signature", "signer"):
            if not isinstance(data[name], str):
                raise UploadAuthError(f"upload grant {name} is not a string")
        return cls(
            node=data["node"],
            chain_id=chain_id,
            signer=data["signer"],
            max_bytes=data["max_bytes"],
            nonce=data["nonce"],
            expires=data["expires"],
            signature=data["signature"],
        )


def grant_typed_data(
    *, node: str, chain_id: int | None, max_bytes: int, nonce: str, expires: int
) -> dict[str, Any]:
    """The full EIP-712 message of a grant (types, primary type, domain, message)."""
    domain = grant_domain(node, chain_id)
    domain_types = [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
    ]
    if chain_id is not None:
        domain_types.append({"name": "chainId", "type": "uint256"})
    domain_types.append({"name": "salt", "type": "bytes32"})
    return {
        "types": {"EIP712Domain": domain_types, **GRANT_TYPES},
        "primaryType": "UploadGrant",
        "domain": domain,
        "message": {
            "node": node,
            "maxBytes": max_bytes,
            "nonce": bytes.fromhex(nonce.removeprefix("0x")),
            "expires": expires,
        },
    }


def sign_grant(
    account: LocalAccount,
    *,
    node: str,
    max_bytes: int,
    chain_id: int | None = None,
    now: float | None = None,
    ttl: int = UPLOAD_TTL_SECONDS,
) -> UploadGrant:
    """Sign a fresh grant for `max_bytes` bytes on the node at URL (or origin) `node`, with a
    random 32-byte nonce, valid for `ttl` seconds."""
    origin = node_origin(node)
    nonce = "0x" + secrets.token_hex(32)
    expires = int(time.time() if now is None else now) + ttl
    message = grant_typed_data(
        node=origin, chain_id=chain_id, max_bytes=max_bytes, nonce=nonce, expires=expires
    )
    signed = account.sign_message(encode_typed_data(full_message=message))
    return UploadGrant(
        node=origin,
        chain_id=chain_id,
        signer=account.address,
        max_bytes=max_bytes,
        nonce=nonce,
        expires=expires,
        signature="0x" + bytes(signed.signature).hex(),
    )


def check_grant(
    grant: UploadGrant,
    *,
    origins: frozenset[str],
    chain_id: int | None,
    now: float | None = None,
) -> str:
    """The checksum address that signed `grant` for the node at one of `origins` on chain
    `chain_id`, if the grant is well formed and current; else `UploadAuthError` naming why."""
    current = time.time() if now is None else now
    if grant.node not in origins:
        raise UploadAuthError(
            f"upload grant is for node {grant.node}, not this node ({', '.join(sorted(origins))})"
        )
    if grant.chain_id != chain_id:
        raise UploadAuthError(
            f"upload grant is for chain {grant.chain_id}, this node serves chain {chain_id}"
        )
    if not 0 <= grant.max_bytes <= MAX_GRANT_BYTES:
        raise UploadAuthError(f"upload grant budget is not 0..{MAX_GRANT_BYTES} bytes")
    nonce = grant.nonce
    if len(nonce) != 66 or not nonce.startswith("0x") or nonce[2:] != nonce[2:].lower():
        raise UploadAuthError("upload grant nonce is not 0x + 64 lower-case hex digits")
    try:
        bytes.fromhex(nonce[2:])
    except ValueError:
        raise UploadAuthError("upload grant nonce is not 0x + 64 lower-case hex digits") from None
    if grant.expires <= current:
        raise UploadAuthError("upload grant has expired")
    if grant.expires > current + UPLOAD_TTL_SECONDS + CLOCK_SKEW_SECONDS:
        raise UploadAuthError(f"upload grant expires more than {UPLOAD_TTL_SECONDS}s ahead")
    if not is_checksum_address(grant.signer):
        raise UploadAuthError("upload grant signer is not a checksum address")
    try:
        recovered = Account.recover_message(
            encode_typed_data(full_message=grant.typed_data()), signature=grant.signature
        )
    except Exception as exc:  # eth-account raises several unrelated types for a bad signature
        raise UploadAuthError(f"upload grant signature is invalid: {exc}") from None
    if recovered != grant.signer:
        raise UploadAuthError("upload grant signature is not the signer's (a field was changed)")
    return recovered
