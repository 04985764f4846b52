"""Errors of the chain package: keystores, compiling and deploying contracts, transactions,
the on-chain executor's limits and the devnet.

All derive from `aicommons.errors.AicommonsError`; messages are one line.
"""

from __future__ import annotations

from aicommons.errors import AicommonsError


class ChainError(AicommonsError):
    """Base class of the chain package's errors (contracts, transactions, devnet)."""


class KeystoreError(ChainError, ValueError):
    """A keystore operation that cannot succeed (bad name, duplicate, wrong password, bad key)."""


class ExecutorError(ChainError, ValueError):
    """A model or input the on-chain executor cannot take (shape, range or size limits)."""


class InputOutOfRange(ExecutorError):
    """An input value outside int8; the on-chain encoding (one byte per value) cannot carry it."""


class CompileError(ChainError, ValueError):
    """A contract source that is missing or does not compile."""


class DeployError(ChainError, ValueError):
    """A deployment transaction that failed or produced no contract."""


class TransactionFailed(ChainError, ValueError):
    """A call that would revert, could not be paid for, or reverted once mined."""


class DevnetError(ChainError, ValueError):
    """A request the chain refuses; `rpc_code` is the JSON-RPC error code it maps to."""

    rpc_code = -32000

    def __init__(self, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.data = data


class InvalidTransaction(DevnetError):
    """A transaction that cannot be included (bad nonce, funds, signature, chain id, fee)."""


class InvalidParams(DevnetError):
    """A request parameter that is malformed or names something that does not exist."""

    rpc_code = -32602


class HardhatNotInstalled(ChainError, ValueError):
    """node_modules/.bin/hardhat is missing: run `npm ci` in the repository (make test does)."""


class DevnetDataError(ChainError, ValueError):
    """The devnet data directory cannot be used (unwritable, corrupt, or from another chain)."""


class DevnetStartError(ChainError, ValueError):
    """The devnet could not start or did not answer in time (port taken, bad data dir...)."""
