"""`aicommons.Client`: one chain (and its storage nodes) as one account, with a service per
concern — `registry`, `storage`, `inference`, `tokens` — and `verify` for receipts.

The client only holds the connection, the account and the deployment; the services do the work
and check what they can before sending, so a bad request costs no gas. `publish`, `infer`,
`verify`, `transfer`, `models`, `model`, `resolve`, `version` and `fetch_package` on the client
itself delegate to the services and stay for one release.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aicommons.runtime import ModelPackage
from aicommons.sdk.deployment import Deployment, contract, load_deployment
from aicommons.sdk.errors import ClientError
from aicommons.sdk.inference import InferenceService
from aicommons.sdk.receipt import Receipt, VerificationReport
from aicommons.sdk.registry import RegistryService, model_id_of, parse_reference
from aicommons.sdk.storage import StorageService
from aicommons.sdk.tokens import TokensService
from aicommons.sdk.types import Attribution, ModelInfo, PublishResult, VersionInfo

DEV_CHAIN_IDS = (1337, 31337)
"""Chains whose accounts dev0..dev9 are the published development keys (our devnet; hardhat)."""

__all__ = [
    "DEV_CHAIN_IDS",
    "Attribution",
    "Client",
    "ClientError",
    "connect",
    "ModelInfo",
    "PublishResult",
    "VersionInfo",
    "model_id_of",
    "parse_reference",
]


class Client:
    """Talks to one chain (and its storage nodes) as one account.

    `account` is an eth-account `LocalAccount` (see `aicommons.chain.accounts.load_account`),
    or None for read-only use; `storage_nodes` are storage node base URLs.
    """

    def __init__(
        self,
        rpc_url: str,
        *,
        account: Any | None = None,
        storage_nodes: Sequence[str] = (),
        timeout: float = 300.0,
    ) -> None:
        from web3 import Web3
        from web3.providers.rpc import HTTPProvider

        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        try:
            self.chain_id = int(self.w3.eth.chain_id)
        except Exception as exc:  # requests/web3 raise many types for a dead endpoint
            raise ClientError(f"cannot reach JSON-RPC endpoint {rpc_url}: {exc}") from None
        self.rpc_url = rpc_url
        self.account = account
        self.storage_nodes = list(storage_nodes)
        self._deployment: Deployment | None = None
        self.registry = RegistryService(self)
        self.storage = StorageService(self)
        self.inference = InferenceService(self)
        self.tokens = TokensService(self)

    @property
    def deployment(self) -> Deployment:
        """This chain's aicommons deployment (loaded once; `DeploymentError` if none)."""
        if self._deployment is None:
            self._deployment = load_deployment(self.w3)
        return self._deployment

    def contract(self, name: str) -> Any:
        """A web3 contract object for suite member `name` (e.g. "ModelRegistry")."""
        return contract(self.w3, self.deployment, name)

    def verify(self, receipt: Receipt, *, confirmations: int | None = None) -> VerificationReport:
        """Check a receipt against the chain, the registry, storage and a local re-execution.

        `confirmations`: blocks needed on top of (and including) the receipt's block; the
        default depends on the chain (`aicommons.sdk.verify.required_confirmations`)."""
        from aicommons.sdk.verify import verify_receipt

        return verify_receipt(self, receipt, confirmations=confirmations)

    # -- delegators kept for one release ------------------------------------------------------

    def model_names(self) -> list[str]:
        return self.registry.model_names()

    def version(self, name: str, version_id: bytes) -> VersionInfo:
        return self.registry.version(name, version_id)

    def model(self, name: str) -> ModelInfo:
        return self.registry.model(name)

    def models(self) -> list[ModelInfo]:
        return self.registry.models()

    def resolve(self, reference: str) -> VersionInfo:
        return self.registry.resolve(reference)

    def fetch_package(self, version: VersionInfo) -> ModelPackage:
        return self.storage.fetch_package(version)

    def publish(
        self,
        package_path: Path | str,
        model: str,
        licence: str = "MIT",
        attribution: Sequence[Attribution] = (),
        fee: int = 0,
        onchain: bool = False,
    ) -> PublishResult:
        return self.registry.publish(
            package_path,
            model=model,
            licence=licence,
            attribution=attribution,
            fee=fee,
            onchain=onchain,
        )

    def infer(self, reference: str, x: np.ndarray) -> Receipt:
        return self.inference.infer(reference, x)

    def transfer(self, to: str, eth_wei: int = 0, tokens: int = 0) -> list[str]:
        return self.tokens.transfer(to, eth_wei=eth_wei, tokens=tokens)


def resolve_account(
    chain_id: int,
    name: str | None,
    *,
    password: Callable[[], str | None],
    require: bool,
) -> Any | None:
    """The account a client signs with, the one rule for the SDK and the CLI:

    - `name` is a keystore account (unlocked with `password()`, asked only when needed) or a
      development key `dev0`..`dev9`;
    - with no `name`, a development chain signs as `dev0`; on any other chain the client is
      read-only (None), or a `ClientError` when `require` is set.
    """
    from aicommons.chain.accounts import is_dev_account, load_account

    if name is None:
        if chain_id in DEV_CHAIN_IDS:
            name = "dev0"
        elif require:
            raise ClientError(f"chain {chain_id} is not a devnet: give an account (--account NAME)")
        else:
            return None
    return load_account(name, None if is_dev_account(name) else password())


def connect(
    *,
    account: str | None = None,
    password: str | None = None,
    rpc_url: str | None = None,
    storage_nodes: Sequence[str] | None = None,
    require_account: bool = False,
) -> Client:
    """A `Client` for the network `aic up` recorded under `$AIC_HOME` (or `rpc_url`), signing
    as `account` (see `resolve_account`; the keystore password is `password`, else
    `$AIC_PASSWORD`). Unlike the CLI it never guesses an endpoint: with no recorded network
    and no `rpc_url` it raises `ClientError`.
    """
    import os

    from aicommons.sdk.network import resolve_endpoint

    endpoint = resolve_endpoint(rpc_url, storage_nodes or ())
    if rpc_url is None and endpoint.network is None:
        raise ClientError(
            "no local network is recorded under $AIC_HOME (start one with `aic up`), "
            "and no rpc_url was given"
        )
    nodes = list(storage_nodes) if storage_nodes is not None else list(endpoint.storage_urls)
    client = Client(endpoint.rpc_url, storage_nodes=nodes)
    client.account = resolve_account(
        client.chain_id,
        account,
        password=lambda: password if password is not None else os.environ.get("AIC_PASSWORD"),
        require=require_account,
    )
    return client
