"""Deploy the governance contracts (Timelock, Governor, Treasury, FundingRound) around the
contract suite, in boa or over web3, and leave no admin key: the governor is the timelock's only
proposer and canceller, anyone may execute a ready batch, the deployer renounces its temporary
timelock admin role, and every owned suite contract is handed to the timelock.

A web3 deployment is two steps around `aicommons.chain.deploy.deploy_suite_web3`:
`deploy_timelock_and_treasury_web3` (the treasury must exist before the executor and the
market, which credit it) and `complete_governance_web3` (governor, funding rounds, hand-overs,
the genesis allocation). Never assumes a chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aicommons.chain.compile import DeployError, deploy_web3, load_boa
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
    treasury: str = ""
    funding_round: str = ""

    def contracts(self) -> dict[str, str]:
        """The suite names these contracts go under in a deployment file."""
        return {
            "Timelock": self.timelock,
            "Governor": self.governor,
            "Treasury": self.treasury,
            "FundingRound": self.funding_round,
        }


@dataclass(frozen=True)
class Allocation:
    """Part of the supply given to `account` at deployment (the rest goes to the treasury)."""

    account: str
    amount: int


HANDOVERS = {
    "ModelRegistry": "transfer_governance",
    "OnchainExecutor": "transfer_ownership",
    "StorageRegistry": "transfer_ownership",
    "ComputeMarket": "transfer_ownership",
    "DisputeGame": "transfer_ownership",
}
"""Owned suite contracts and the function that hands each to the timelock."""


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


def deploy_timelock_and_treasury_web3(
    w3: Any, account: Any, *, params: GovernanceParams
) -> tuple[str, str]:
    """The timelock (deployer as temporary admin) and the treasury it owns: (timelock,
    treasury) addresses, to pass as the suite's treasury before the suite is deployed."""
    params.check()
    deployer = getattr(account, "address", account)
    timelock = deploy_web3(w3, "Timelock", *timelock_args(params, deployer), account=account)
    treasury = deploy_web3(w3, "Treasury", timelock.address, account=account)
    return timelock.address, treasury.address


def complete_governance_web3(
    w3: Any,
    account: Any,
    *,
    token: str,
    registry: str,
    timelock: str,
    treasury: str,
    params: GovernanceParams,
    allocations: Sequence[Allocation],
    owned: Mapping[str, str],
) -> GovernanceAddresses:
    """After the suite: the governor and its timelock roles, the FundingRound, every `owned`
    contract (suite name -> address, see HANDOVERS) handed to the timelock, and the supply —
    which the deployer holds — given out: `allocations`, the rest to the treasury."""
    from aicommons.chain.compile import compile_contract

    deployer = getattr(account, "address", account)
    governor = deploy_web3(w3, "Governor", *governor_args(params, token, timelock), account=account)
    funding = deploy_web3(w3, "FundingRound", token, registry, treasury, account=account)
    timelock_contract = w3.eth.contract(address=timelock, abi=compile_contract("Timelock").abi)
    steps = [
        (
            timelock_contract.functions.grantRole(PROPOSER_ROLE, governor.address),
            "granting PROPOSER",
        ),
        (
            timelock_contract.functions.grantRole(CANCELLER_ROLE, governor.address),
            "granting CANCELLER",
        ),
        (
            timelock_contract.functions.renounceRole(DEFAULT_ADMIN_ROLE, deployer),
            "renouncing admin",
        ),
    ]
    for name, address in owned.items():
        contract = w3.eth.contract(address=address, abi=compile_contract(name).abi)
        steps.append(
            (getattr(contract.functions, HANDOVERS[name])(timelock), f"handing {name} over")
        )
    token_contract = w3.eth.contract(address=token, abi=compile_contract("CommonsToken").abi)
    held = int(token_contract.functions.balanceOf(deployer).call())
    given = sum(a.amount for a in allocations if a.account.lower() != deployer.lower())
    kept = sum(a.amount for a in allocations if a.account.lower() == deployer.lower())
    if given + kept > held:
        raise DeployError(f"allocations of {given + kept} exceed the {held} the deployer holds")
    for allocation in allocations:
        if allocation.account.lower() != deployer.lower() and allocation.amount:
            steps.append(
                (
                    token_contract.functions.transfer(allocation.account, allocation.amount),
                    f"allocating to {allocation.account}",
                )
            )
    if held - given - kept:
        steps.append(
            (
                token_contract.functions.transfer(treasury, held - given - kept),
                "funding the treasury",
            )
        )
    for function, what in steps:
        send_call(w3, account, function, f"governance setup: {what}")
    return GovernanceAddresses(timelock, governor.address, treasury, funding.address)


DEVELOPMENT_ACCOUNTS = 10
DEVELOPMENT_ALLOCATION = 50_000_000 * 10**18
"""Devnet genesis: each development account dev0..dev9 gets 5 % of the default supply (more
than the 4 % quorum, so one account can carry a vote) and delegates it to itself; the other
half of the supply goes to the treasury. DEVELOPMENT KEYS ONLY: their private keys are public."""


def development_allocations() -> list[Allocation]:
    from aicommons.chain.accounts import load_account

    return [
        Allocation(load_account(f"dev{index}", None).address, DEVELOPMENT_ALLOCATION)
        for index in range(DEVELOPMENT_ACCOUNTS)
    ]


def delegate_development_accounts(w3: Any, token: str) -> None:
    """Each development account delegates its tokens to itself (signed with its public key),
    so `aic up` users can vote at once."""
    from aicommons.chain.accounts import load_account
    from aicommons.chain.compile import compile_contract

    contract = w3.eth.contract(address=token, abi=compile_contract("CommonsToken").abi)
    for index in range(DEVELOPMENT_ACCOUNTS):
        account = load_account(f"dev{index}", None)
        send_call(
            w3, account, contract.functions.delegate(account.address), f"dev{index} delegating"
        )
