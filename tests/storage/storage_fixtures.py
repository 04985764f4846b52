"""Helpers shared by the storage tests (imported by name: pytest puts this folder on the path)."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from aicommons.storage.auth import sign_grant


def grant_json(signer: LocalAccount, url: str, max_bytes: int, **kwargs) -> dict[str, object]:
    """A fresh signed upload grant for the node at `url`, as the JSON body of `POST /uploads`."""
    return sign_grant(signer, node=url, max_bytes=max_bytes, **kwargs).to_json()
