"""Errors of the governance package: parameters, proposals and funding rounds it refuses.

All derive from `aicommons.errors.AicommonsError`; messages are one line.

    GovernanceError
    ├── ParameterError   a governance or economics parameter outside its range
    └── FundingError     a quadratic-funding input the formula cannot take
"""

from __future__ import annotations

from aicommons.errors import AicommonsError


class GovernanceError(AicommonsError):
    """Base class of the governance package's errors."""


class ParameterError(GovernanceError, ValueError):
    """A governance or economics parameter outside the range the contracts accept."""


class FundingError(GovernanceError, ValueError):
    """A quadratic-funding input the formula cannot take (negative amounts, bad caps)."""
