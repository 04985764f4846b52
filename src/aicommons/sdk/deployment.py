"""Deploy the contract suite to any EVM JSON-RPC endpoint and remember where it went.

A deployment file per chain (keyed by chain id and genesis hash, so two devnets never mix) lives
under `$AIC_HOME/deployments`. Deploying again where a live deployment exists is a no-op.
The suite is governed from the start: a Timelock owns the registry and the Treasury, a Governor
is its only proposer, and the deployer keeps no role (`aicommons.governance.deploy`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aicommons.chain.compile import compile_contract, deploy_web3
from aicommons.chain.deploy import MarketParams, deploy_suite_web3
from aicommons.chain.transact import send_call
from aicommons.commit.json_input import read_json_file
from aicommons.fsutil import atomic_write_bytes
from aicommons.governance.deploy import (
    Allocation,
    complete_governance_web3,
    delegate_development_accounts,
    deploy_timelock_and_treasury_web3,
    development_allocations,
)
from aicommons.governance.errors import ParameterError
from aicommons.governance.params import DEFAULT_PARAMS, DEVNET_PARAMS, GovernanceParams
from aicommons.home import state_dir
from aicommons.sdk.errors import DeploymentError

DEPLOYMENT_MAX_BYTES = 1024 * 1024
"""A deployment file names a handful of addresses; a megabyte is far more than one needs."""

# StorageRegistry terms for a new deployment (token units have 18 decimals).
STORAGE_STAKE = 1_000 * 10**18
"""Stake a storage provider locks per committed blob."""
STORAGE_CHALLENGE_BOND = 10 * 10**18
"""Bond a challenger posts; the provider earns it by answering correctly."""
STORAGE_SLASH_BPS = 5_000
STORAGE_CHALLENGER_SHARE_BPS = 5_000
STORAGE_RESPONSE_BLOCKS = 50
STORAGE_RELEASE_DELAY = 100
STORAGE_EPOCH_BLOCKS = 7_200
"""The storage reward's epoch: about a day of 12-second blocks (the registry counts blocks)."""
STORAGE_EPOCH_REWARD = 10**18 // 2
"""What a listed blob's commitment earns per epoch with a valid answer (0.5 AIC, the
economics simulation's default), from the reward pool the treasury funds by proposal."""


@dataclass(frozen=True)
class Deployment:
    """Where the suite lives on one chain."""

    chain_id: int
    genesis_hash: str
    block: int
    deployer: str
    treasury: str
    contracts: dict[str, str]

    def address(self, name: str) -> str:
        try:
            return self.contracts[name]
        except KeyError:
            raise DeploymentError(f"deployment has no {name} contract") from None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def chain_key(w3: Any) -> tuple[int, str]:
    """(chain id, genesis block hash): what identifies a chain, not just its id."""
    genesis = w3.eth.get_block(0)
    return int(w3.eth.chain_id), "0x" + bytes(genesis["hash"]).hex()


def deployment_path(chain_id: int, genesis_hash: str) -> Path:
    return state_dir("deployments") / f"{chain_id}-{genesis_hash.removeprefix('0x')[:16]}.json"


def load_deployment(w3: Any) -> Deployment:
    """The live deployment on `w3`'s chain; `DeploymentError` if none (run `aic deploy`)."""
    chain_id, genesis_hash = chain_key(w3)
    path = deployment_path(chain_id, genesis_hash)
    if not path.is_file():
        raise DeploymentError(f"no aicommons deployment on chain {chain_id}: run `aic deploy`")
    try:
        data = read_json_file(path, what="deployment file", max_bytes=DEPLOYMENT_MAX_BYTES)
        deployment = Deployment(**data)
    except (ValueError, TypeError, OSError) as exc:
        raise DeploymentError(f"deployment file {path} is unreadable: {exc}") from exc
    for name, address in deployment.contracts.items():
        if not w3.eth.get_code(address):
            raise DeploymentError(
                f"{name} at {address} has no code on chain {chain_id}: the chain was reset; "
                f"remove {path} and run `aic deploy`"
            )
    return deployment


def owned_contracts(addresses: Any, *, storage_registry: str = "") -> dict[str, str]:
    """The suite contracts with an owner, which the timelock must own: the registry, the
    executor (protocol share, treasury), the storage registry (terms, reward), and the compute
    market and its dispute game once the suite deploys them."""
    owned = {"ModelRegistry": addresses.registry, "OnchainExecutor": addresses.executor}
    if storage_registry:
        owned["StorageRegistry"] = storage_registry
    # The dispute game owns its verifier choice (new ops = a new verifier): governance too.
    for name, attribute in (("ComputeMarket", "market"), ("DisputeGame", "dispute_game")):
        address = getattr(addresses, attribute, "")
        if address:
            owned[name] = address
    return owned


def deploy_suite(
    w3: Any,
    account: Any,
    *,
    development: bool | None = None,
    governance: GovernanceParams | None = None,
    governance_overrides: Mapping[str, int] | None = None,
    allocations: Sequence[Allocation] | None = None,
    market_params: MarketParams | None = None,
) -> tuple[Deployment, bool]:
    """Deploy the suite and its governance unless a live deployment exists.

    `development` (default: a development chain id, 1337 or 31337) selects `DEVNET_PARAMS` and
    gives dev0..dev9 their genesis allocation, delegated; otherwise `DEFAULT_PARAMS`, and
    `allocations` must name who holds votes first (the rest of the supply goes to the
    treasury). `governance_overrides` changes single fields of the chosen parameters. Either
    way the timelock ends up owning every owned contract and the deployer no role.
    `market_params` sets the compute market's parameters (default: the devnet's short periods).

    Returns the deployment and whether anything was deployed. The file is written only after
    every contract is deployed, so a failure midway leaves no deployment that looks complete.
    """
    try:
        return load_deployment(w3), False
    except DeploymentError as exc:
        if "has no code" in str(exc):
            raise
    chain_id, genesis_hash = chain_key(w3)
    if development is None:
        from aicommons.sdk.client import DEV_CHAIN_IDS

        development = chain_id in DEV_CHAIN_IDS
    params = governance or (DEVNET_PARAMS if development else DEFAULT_PARAMS)
    try:
        params = params.with_changes(**(governance_overrides or {}))
    except ParameterError as exc:
        raise DeploymentError(str(exc)) from None
    if allocations is None:
        if not development:
            raise DeploymentError(
                f"chain {chain_id} is not a development chain: name who holds votes first "
                "(aic deploy --allocate ADDRESS:AIC); the rest of the supply goes to the treasury"
            )
        allocations = development_allocations()
    deployer = account.address
    timelock, treasury = deploy_timelock_and_treasury_web3(w3, account, params=params)
    addresses = deploy_suite_web3(
        w3, account, treasury, holder=deployer, market_params=market_params
    )
    storage_registry = deploy_web3(
        w3,
        "StorageRegistry",
        addresses.token,
        treasury,
        STORAGE_STAKE,
        STORAGE_CHALLENGE_BOND,
        STORAGE_SLASH_BPS,
        STORAGE_CHALLENGER_SHARE_BPS,
        STORAGE_RESPONSE_BLOCKS,
        STORAGE_RELEASE_DELAY,
        account=account,
    )
    send_call(
        w3,
        account,
        storage_registry.functions.set_reward(STORAGE_EPOCH_BLOCKS, STORAGE_EPOCH_REWARD),
        "setting the storage reward",
    )
    governed = complete_governance_web3(
        w3,
        account,
        token=addresses.token,
        registry=addresses.registry,
        timelock=timelock,
        treasury=treasury,
        params=params,
        allocations=allocations,
        owned=owned_contracts(addresses, storage_registry=storage_registry.address),
    )
    if development:
        delegate_development_accounts(w3, addresses.token)
    deployment = Deployment(
        chain_id=chain_id,
        genesis_hash=genesis_hash,
        block=int(w3.eth.block_number),
        deployer=deployer,
        treasury=treasury,
        contracts={
            "CommonsToken": addresses.token,
            "ModelRegistry": addresses.registry,
            "OnchainExecutor": addresses.executor,
            "StorageRegistry": storage_registry.address,
            "ComputeMarket": addresses.market,
            "DisputeGame": addresses.dispute_game,
            "RedundantMode": addresses.redundant_mode,
            "OneStepVerifier": addresses.verifier,
            **governed.contracts(),
        },
    )
    atomic_write_bytes(
        deployment_path(chain_id, genesis_hash),
        (json.dumps(deployment.to_json(), indent=2) + "\n").encode(),
    )
    return deployment, True


def contract(w3: Any, deployment: Deployment, name: str) -> Any:
    """A web3 contract object for suite member `name` (ABI from the compile cache)."""
    return w3.eth.contract(address=deployment.address(name), abi=compile_contract(name).abi)
