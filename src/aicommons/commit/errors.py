"""Errors of the commitment formats: values with no canonical form, bad proofs, unsafe JSON.

All derive from `aicommons.errors.AicommonsError` (and `ValueError`); messages are one line.
"""

from __future__ import annotations

from aicommons.errors import AicommonsError


class CommitError(AicommonsError, ValueError):
    """Base class of the commit package's errors."""


class CanonicalJsonError(CommitError):
    """A value that has no canonical JSON form (float, non-string key, unsupported type)."""


class MerkleError(CommitError):
    """A proof or tree request that cannot be answered (index out of range, bad lengths)."""


class JsonInputError(CommitError):
    """Untrusted JSON that is too large, nested too deeply, or not JSON at all."""
