"""Errors the runtime raises for bad packages, models, calibration data and inputs.

All derive from `aicommons.errors.AicommonsError` (and `ValueError`) with one-line messages
naming what failed, so the CLI prints them as one line; nothing here may carry a traceback-only
explanation.
"""

from __future__ import annotations

from aicommons.errors import AicommonsError


class ModelError(AicommonsError, ValueError):
    """Base class of every expected runtime failure."""


class PackageError(ModelError):
    """A package file that is truncated, tampered with or violates the integer semantics."""


class OnnxImportError(ModelError):
    """An ONNX model that cannot be imported (unsupported op or structure)."""


class CalibrationError(ModelError):
    """Missing, empty or malformed calibration data."""


class InputError(ModelError):
    """An inference input with the wrong shape, dtype or non-finite values."""


class ManifestError(PackageError):
    """A manifest field of the wrong type or range; the message names the field path."""


class OutputPathError(ModelError):
    """An output path that would overwrite one of the command's own inputs."""


class CheckpointError(ModelError):
    """A checkpoint directory with a missing, unreadable, unsupported or mismatched file."""
