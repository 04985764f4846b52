"""Deploy the aicommons contract suite (token, registry, executor) to boa or any web3 endpoint.

One function per environment, returning the three addresses; never assumes a particular chain.
Governance (the registry owner) is the deploying account until it transfers the role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aicommons.chain.compile import DeployError, deploy_web3, load_boa

DEFAULT_SUPPLY = 10**9 * 10**18
"""One billion AIC (18 decimals), all to the treasury."""
DEFAULT_PROTOCOL_SHARE_BPS = 500


@dataclass(frozen=True)
class SuiteAddresses:
    """Where the suite lives on one chain."""

    token: str
    registry: str
    executor: str

    def to_json(self) -> dict[str, str]:
        return {"token": self.token, "registry": self.registry, "executor": self.executor}


def _check_share(protocol_share_bps: int) -> None:
    if not 0 <= protocol_share_bps <= 10_000:
        raise DeployError(f"protocol share {protocol_share_bps} bps is outside 0..10000")


def deploy_suite_boa(
    treasury: str,
    *,
    supply: int = DEFAULT_SUPPLY,
    protocol_share_bps: int = DEFAULT_PROTOCOL_SHARE_BPS,
    sender: str | None = None,
    holder: str | None = None,
) -> tuple[Any, Any, Any]:
    """Deploy into the current titanoboa environment; returns (token, registry, executor).
    The supply is minted to `holder` (default: the treasury)."""
    _check_share(protocol_share_bps)
    token = load_boa("CommonsToken", holder or treasury, supply, sender=sender)
    registry = load_boa("ModelRegistry", sender=sender)
    executor = load_boa(
        "OnchainExecutor",
        registry.address,
        token.address,
        treasury,
        protocol_share_bps,
        sender=sender,
    )
    return token, registry, executor


def deploy_suite_web3(
    w3: Any,
    account: Any,
    treasury: str,
    *,
    supply: int = DEFAULT_SUPPLY,
    protocol_share_bps: int = DEFAULT_PROTOCOL_SHARE_BPS,
    holder: str | None = None,
) -> SuiteAddresses:
    """Deploy over JSON-RPC from `account` (a LocalAccount, or an address the node unlocks).
    The supply is minted to `holder` (default: the treasury), e.g. the deployer, which then
    gives out the genesis allocation (`aicommons.governance.deploy`)."""
    _check_share(protocol_share_bps)
    token = deploy_web3(w3, "CommonsToken", holder or treasury, supply, account=account)
    registry = deploy_web3(w3, "ModelRegistry", account=account)
    executor = deploy_web3(
        w3,
        "OnchainExecutor",
        registry.address,
        token.address,
        treasury,
        protocol_share_bps,
        account=account,
    )
    return SuiteAddresses(token.address, registry.address, executor.address)
