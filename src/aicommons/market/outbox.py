"""Where a provider publishes its signed results and a requester finds them: one small JSON
file per (chain, market, request, provider) under `$AIC_HOME/market/signed`.

A requester trusts nothing it reads here: a signature is used only if it recovers to the
provider the chain names for the request. Files are written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from aicommons.commit import JsonInputError, read_json_file
from aicommons.fsutil import atomic_write_bytes
from aicommons.home import state_dir
from aicommons.market.errors import SignatureError
from aicommons.market.receipts import ResultStatement, result_signer

SIGNED_MAX_BYTES = 4096


def _path(*, chain_id: int, market: str, request_id: int, provider: str) -> Path:
    folder = state_dir("market", "signed", f"{chain_id}-{market.lower()}")
    return folder / f"{request_id}-{provider.lower()}.json"


def publish_signature(
    statement: ResultStatement, signature: str, *, chain_id: int, market: str, provider: str
) -> Path:
    """Write the provider's signed statement where requesters look for it."""
    path = _path(
        chain_id=chain_id, market=market, request_id=statement.request_id, provider=provider
    )
    payload = {"provider": provider, "signature": signature, **statement.__dict__}
    atomic_write_bytes(path, json.dumps(payload).encode())
    return path


def find_signature(
    *, chain_id: int, market: str, request_id: int, provider: str, statement: ResultStatement
) -> str | None:
    """The provider's signature of exactly `statement`, or None when it published none (or one
    that does not recover to `provider`)."""
    path = _path(chain_id=chain_id, market=market, request_id=request_id, provider=provider)
    try:
        data = read_json_file(path, what="signed result", max_bytes=SIGNED_MAX_BYTES)
    except (OSError, JsonInputError):
        return None
    signature = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(signature, str):
        return None
    try:
        signer = result_signer(statement, signature, chain_id=chain_id, market=market)
    except SignatureError:
        return None
    return signature if signer.lower() == provider.lower() else None
