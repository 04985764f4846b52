"""Deploy the governance contracts (Timelock, Governor) next to a token, in boa or over web3,
and hand the timelock's roles to the governor: the governor is its only proposer and
canceller, anyone may execute a ready batch, and the deployer keeps no role.

One function per environment, mirroring `aicommons.chain.deploy`; never assumes a chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aicommons.chain.compile import deploy_web3, load_boa
from aicommons.chain.transact import send_call
from aicommons.commit import keccak256
from aicommons.governance.params import GovernanceParams

ZERO_ADDRESS = "0x" + "00" * 20
PROPOSER_ROLE = keccak256(b"PROPOSER_ROLE")
CANCELLER_ROLE = keccak256(b"CANCELLER_ROLE")
EXECUTOR_ROLE = keccak256(b"EXECUTOR_ROLE")
DEFAULT_ADMIN_ROLE = bytes(32)


def timelock_args(params: GovernanceParams, deployer: str) -> tuple[Any, ...]:
    """Timelock constructor: the delay, no proposer yet, the executor role open (zero address),
    the deployer as a temporary admin (it grants the governor its roles, then renounces)."""
    return (params.timelock_delay, [], [ZERO_ADDRESS], deployer)


def governor_args(params: GovernanceParams, token: str, timelock: str) -> tuple[Any, ...]:
    return (
        token,
        timelock,
        params.voting_delay,
        params.voting_period,
        params.proposal_threshold,
        params.quorum_bps,
        params.late_quorum_extension,
        params.grace_period,
    )


@dataclass(frozen=True)
class GovernanceAddresses:
    timelock: str
    governor: str


def deploy_governance_boa(token: str, *, params: GovernanceParams, sender: str) -> tuple[Any, Any]:
    """Deploy into the current titanoboa environment; returns (timelock, governor) handles."""
    import boa

    params.check()
    timelock = load_boa("Timelock", *timelock_args(params, sender), sender=sender)
    governor = load_boa("Governor", *governor_args(params, token, timelock.address), sender=sender)
    with boa.env.prank(sender):
        timelock.grantRole(PROPOSER_ROLE, governor.address)
        timelock.grantRole(CANCELLER_ROLE, governor.address)
        timelock.renounceRole(DEFAULT_ADMIN_ROLE, sender)
    return timelock, governor


def deploy_governance_web3(
    w3: Any, account: Any, token: str, *, params: GovernanceParams
) -> GovernanceAddresses:
    """Deploy over JSON-RPC from `account` (a LocalAccount, or an address the node unlocks)."""
    params.check()
    deployer = getattr(account, "address", account)
    timelock = deploy_web3(w3, "Timelock", *timelock_args(params, deployer), account=account)
    governor = deploy_web3(
        w3, "Governor", *governor_args(params, token, timelock.address), account=account
    )
    for function, what in (
        (timelock.functions.grantRole(PROPOSER_ROLE, governor.address), "granting PROPOSER"),
        (timelock.functions.grantRole(CANCELLER_ROLE, governor.address), "granting CANCELLER"),
        (timelock.functions.renounceRole(DEFAULT_ADMIN_ROLE, deployer), "renouncing admin"),
    ):
        send_call(w3, account, function, f"timelock setup: {what}")
    return GovernanceAddresses(timelock=timelock.address, governor=governor.address)
