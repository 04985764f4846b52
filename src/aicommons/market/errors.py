"""Errors of the compute-market package: commitments, dispute arguments and contract calls.

All derive from `aicommons.errors.AicommonsError`; messages are one line naming the rule broken.
"""

from __future__ import annotations

from aicommons.errors import AicommonsError


class MarketError(AicommonsError, ValueError):
    """Base class of the market package's errors."""


class NotDisputable(MarketError):
    """A graph the on-chain one-step check cannot evaluate (an op or a size beyond its limits)."""


class CommitmentError(MarketError):
    """Arguments that do not fit a commitment (a row range outside a tensor, a bad index...)."""


class DisputeError(MarketError):
    """A dispute move that cannot be made (the traces agree, the node is not on the path...)."""


# -- off-chain flows (provider, watcher, requests, receipts) ------------------------------------


class SignatureError(MarketError):
    """A signed result that is malformed or was not signed by the account it names."""


class ServeError(MarketError):
    """A version a provider refuses to serve (package or graph root differ from the registry)."""


class InputMismatch(MarketError):
    """A request's storage-blob input whose bytes do not hash to the request's input hash or
    root: such a request is never served (and is refunded at its deadline)."""
