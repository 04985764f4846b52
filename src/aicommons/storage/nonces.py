"""Used upload-grant nonces, kept in the node's directory until every grant that could carry
them has expired, so a grant opens at most one session, across restarts and crashes.

One empty file per (signer, nonce), created exclusively and made durable (file and directory
fsynced) before the node answers. Never forgets a nonce whose grant may still be current.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from aicommons.commit import keccak256
from aicommons.fsutil import fsync_directory
from aicommons.storage.auth import CLOCK_SKEW_SECONDS, UPLOAD_TTL_SECONDS
from aicommons.storage.errors import UploadAuthError

NONCE_LIFETIME_SECONDS = UPLOAD_TTL_SECONDS + CLOCK_SKEW_SECONDS + 60
"""How long a used nonce is remembered: a grant accepted at time t expires before
t + UPLOAD_TTL_SECONDS + CLOCK_SKEW_SECONDS (the node refuses later expiries), plus a minute."""


class UsedNonces:
    """The set of (signer, nonce) pairs this node has accepted, as files under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, signer: str, nonce: str) -> Path:
        return self.directory / keccak256(f"{signer.lower()}:{nonce}".encode()).hex()

    def claim(self, signer: str, nonce: str) -> None:
        """Record the pair durably; `UploadAuthError` if it was recorded before (a replay)."""
        path = self._path(signer, nonce)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise UploadAuthError("upload grant was already used (replayed nonce)") from None
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_directory(self.directory)

    def forget_expired(self, now: float | None = None) -> int:
        """Delete the records older than NONCE_LIFETIME_SECONDS; return how many went."""
        cutoff = (time.time() if now is None else now) - NONCE_LIFETIME_SECONDS
        removed = 0
        for path in self.directory.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed
