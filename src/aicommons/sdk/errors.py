"""Errors of the SDK: requests the client refuses or the chain rejected, missing deployments,
unreadable receipts.

All derive from `aicommons.errors.AicommonsError`; messages are one line.
"""

from __future__ import annotations

from aicommons.errors import AicommonsError


class SdkError(AicommonsError):
    """Base class of the SDK's errors (requests it refuses, deployments, receipts)."""


class ClientError(SdkError, ValueError):
    """A request the client refuses or the chain rejected, with the reason in one line."""


class DeploymentError(SdkError, ValueError):
    """No usable deployment on this chain, or one whose contracts have vanished."""


class ReceiptError(SdkError, ValueError):
    """A receipt file that cannot be read or lacks required fields."""
