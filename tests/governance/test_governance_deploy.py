"""A public-network deployment (`deploy_suite(..., development=False)`, what `aic deploy` does
off development chains) leaves no admin key: every owned contract belongs to the timelock, the
governor is its only proposer, the deployer holds no role, and the supply is where the
allocations said. Run against an in-process devnet standing in for a public chain."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aicommons.chain.accounts import load_account
from aicommons.chain.devnet import DevnetServer
from aicommons.governance.deploy import (
    CANCELLER_ROLE,
    DEFAULT_ADMIN_ROLE,
    EXECUTOR_ROLE,
    HANDOVERS,
    PROPOSER_ROLE,
    Allocation,
)
from aicommons.governance.params import AIC, DEFAULT_PARAMS
from aicommons.sdk.client import Client
from aicommons.sdk.deployment import deploy_suite
from aicommons.sdk.errors import DeploymentError

pytestmark = pytest.mark.network
ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, object]]:
    home = tmp_path_factory.mktemp("aic-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("AIC_HOME", str(home))
    devnet = DevnetServer(home / "devnet", port=0).start()
    try:
        client = Client(devnet.url, account=load_account("dev5", None))
        with pytest.raises(DeploymentError, match="--allocate"):
            deploy_suite(client.w3, client.account, development=False)
        founders = [Allocation(load_account("dev6", None).address, 30_000_000 * AIC)]
        deployment, created = deploy_suite(
            client.w3,
            client.account,
            development=False,
            allocations=founders,
            governance_overrides={"voting_period": 3 * 86_400},
        )
        assert created
        yield client, deployment
    finally:
        devnet.stop()
        patch.undo()


def test_no_admin_key_is_left(public):
    client, deployment = public
    deployer = client.account.address
    timelock = client.contract("Timelock")
    governor = client.contract("Governor")
    assert client.contract("ModelRegistry").functions.governance().call() == timelock.address
    assert client.contract("Treasury").functions.governance().call() == timelock.address
    for owned in ("ComputeMarket", "DisputeGame", "OnchainExecutor", "StorageRegistry"):
        assert client.contract(owned).functions.owner().call() == timelock.address, owned
    # Every owned contract the deployment names is in the hand-over table, so none is missed.
    for name in deployment.contracts:
        abi_names = {e.get("name") for e in client.contract(name).abi}
        if abi_names & {"owner", "governance"} and name not in ("Governor", "Timelock"):
            assert name in HANDOVERS or name == "Treasury", name
    assert governor.functions.timelock().call() == timelock.address
    for role in (PROPOSER_ROLE, CANCELLER_ROLE, EXECUTOR_ROLE, DEFAULT_ADMIN_ROLE):
        assert not timelock.functions.hasRole(role, deployer).call()
    assert timelock.functions.hasRole(PROPOSER_ROLE, governor.address).call()
    assert timelock.functions.hasRole(CANCELLER_ROLE, governor.address).call()
    assert timelock.functions.hasRole(EXECUTOR_ROLE, ZERO).call()
    assert timelock.functions.hasRole(DEFAULT_ADMIN_ROLE, timelock.address).call()
    # The executor and the storage registry pay the treasury contract, not the deployer.
    assert client.contract("OnchainExecutor").functions.treasury().call() == deployment.treasury
    assert client.contract("StorageRegistry").functions.treasury().call() == deployment.treasury
    assert deployment.treasury == client.contract("Treasury").address


def test_realistic_periods_and_the_allocation(public):
    client, deployment = public
    governor = client.contract("Governor")
    assert governor.functions.votingDelay().call() == DEFAULT_PARAMS.voting_delay
    assert governor.functions.votingPeriod().call() == 3 * 86_400  # the override
    assert client.contract("Timelock").functions.get_minimum_delay().call() == (
        DEFAULT_PARAMS.timelock_delay
    )
    token = client.contract("CommonsToken")
    founder = load_account("dev6", None).address
    supply = token.functions.totalSupply().call()
    assert token.functions.balanceOf(founder).call() == 30_000_000 * AIC
    assert token.functions.balanceOf(client.account.address).call() == 0
    assert token.functions.balanceOf(deployment.treasury).call() == supply - 30_000_000 * AIC
    # Off development chains nobody's votes are delegated for them.
    assert client.governance.voting_power(founder) == (0, ZERO)
