"""Errors of the explorer: requests for things the index does not hold, and input it refuses.

All derive from `aicommons.errors.AicommonsError`; the web app maps each class to one HTTP
status in a single exception handler (`app.error_status`), so routes never catch errors.
"""

from __future__ import annotations

from aicommons.errors import AicommonsError


class ExplorerError(AicommonsError):
    """Base class of the explorer's errors."""


class NotFound(ExplorerError, LookupError):
    """A model, version, transaction, request or proposal the index does not know (404)."""


class BadRequest(ExplorerError, ValueError):
    """A malformed id, query or upload (400)."""


class PayloadTooLarge(BadRequest):
    """An upload larger than the explorer accepts (413)."""


class IndexerError(ExplorerError):
    """The indexer cannot follow this chain (no deployment, an endpoint that refuses logs)."""
