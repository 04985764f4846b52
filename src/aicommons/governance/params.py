"""The governance parameters a deployment starts with, for real networks and for the devnet.

Each field is what the Governor and Timelock constructors take (seconds, base units, basis
points); `check` refuses what the contracts would refuse, before any gas is spent. Pure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from aicommons.governance.errors import ParameterError

AIC = 10**18
"""One AIC in base units."""
DAY = 86_400
MAX_PERIOD = 2**32
"""Delays and periods must stay below this (governor_core.MAX_PERIOD)."""


@dataclass(frozen=True)
class GovernanceParams:
    """Timing, thresholds and quorum of the Governor and the Timelock.

    voting_delay: seconds from proposal to snapshot; voting_period: seconds of voting;
    proposal_threshold: votes (base units) a proposer needs one second before proposing;
    quorum_bps: For + Abstain needed, in basis points of the supply at the snapshot;
    late_quorum_extension: seconds of voting guaranteed after quorum is first reached;
    timelock_delay: seconds between queue and execute; grace_period: seconds after that during
    which a queued proposal may still run.
    """

    voting_delay: int
    voting_period: int
    proposal_threshold: int
    quorum_bps: int
    late_quorum_extension: int
    timelock_delay: int
    grace_period: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def with_changes(self, **changes: int) -> GovernanceParams:
        return replace(self, **changes).check()

    def check(self) -> GovernanceParams:
        """Return self if the contracts accept every value, else raise ParameterError."""
        for name in ("voting_delay", "late_quorum_extension", "timelock_delay", "grace_period"):
            value = getattr(self, name)
            if not 0 <= value < MAX_PERIOD:
                raise ParameterError(f"{name} {value} s is outside 0..{MAX_PERIOD - 1}")
        if not 0 < self.voting_period < MAX_PERIOD:
            raise ParameterError(
                f"voting_period {self.voting_period} s must be 1..{MAX_PERIOD - 1}"
            )
        if self.grace_period == 0:
            raise ParameterError("grace_period must be at least 1 s")
        if not 0 <= self.quorum_bps <= 10_000:
            raise ParameterError(f"quorum {self.quorum_bps} bps is outside 0..10000")
        if self.proposal_threshold < 0:
            raise ParameterError("proposal_threshold cannot be negative")
        return self


DEFAULT_PARAMS = GovernanceParams(
    voting_delay=1 * DAY,
    voting_period=7 * DAY,
    proposal_threshold=100_000 * AIC,
    quorum_bps=400,
    late_quorum_extension=2 * DAY,
    timelock_delay=2 * DAY,
    grace_period=14 * DAY,
)
"""Realistic defaults for a public network (OpenZeppelin's usual 1 day / 1 week / 4 %)."""

DEVNET_PARAMS = GovernanceParams(
    voting_delay=10,
    voting_period=60,
    proposal_threshold=1_000 * AIC,
    quorum_bps=400,
    late_quorum_extension=30,
    timelock_delay=30,
    grace_period=600,
)
"""`aic up`: every period a minute or less, so the whole lifecycle fits in a few minutes."""
