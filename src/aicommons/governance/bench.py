"""`aic bench governance`: the gas of votes, proposals and funding rounds, measured in a fresh
in-process titanoboa EVM. Measures and prints; never asserts a target.

Gas is whole-transaction gas (21 000 + calldata + execution), each call measured as the first
of its own transaction: titanoboa otherwise keeps every account and slot warm between calls
and prices a rewrite of an already written slot as a dirty one, which flatters storage-heavy
code. So every measurement here resets access lists and commits the journal first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aicommons.chain.compile import compile_source_file, load_boa
from aicommons.chain.gasbench import calldata_gas
from aicommons.commit import keccak256
from aicommons.governance.deploy import deploy_governance_boa
from aicommons.governance.params import AIC, GovernanceParams

BENCH_CONTRACTS = Path(__file__).resolve().parent / "bench_contracts"
SUPPLY = 10**9 * AIC
BENCH_PARAMS = GovernanceParams(
    voting_delay=60,
    voting_period=600,
    proposal_threshold=1_000 * AIC,
    quorum_bps=400,
    late_quorum_extension=120,
    timelock_delay=300,
    grace_period=3_600,
)
TRANSFERS = 16
"""Transfers averaged per token, each in a new block (a new second): an even number, so the
votes token's two-checkpoints-a-word cycle (one transfer opens a word, the next fills its free
half) is counted fairly."""

KEYS = (
    "transfer_gas_plain",
    "transfer_gas_with_votes",
    "delegate_gas",
    "propose_gas",
    "vote_gas",
    "queue_gas",
    "execute_gas",
    "contribute_gas",
    "finalise_gas_10_models",
    "finalise_gas_100_models",
)


def transaction_gas(contract: Any, function: str, *args: Any, sender: str) -> int:
    """Whole-transaction gas of `contract.function(*args)` sent by `sender`, as the first call
    of a fresh transaction. Commits titanoboa's journal: never call it under `boa.env.anchor()`."""
    import boa

    bound = getattr(contract, function)
    data = bound.prepare_calldata(*args)
    boa.env._reset_access_counters()
    boa.env.evm.vm.state.lock_changes()
    with boa.env.prank(sender):
        bound(*args)
    return calldata_gas(data) + int(contract._computation.get_gas_used())


def _transfers(token: Any, first: str, second: str) -> list[int]:
    import boa

    gas = []
    for index in range(TRANSFERS):
        boa.env.time_travel(seconds=12)
        sender, receiver = (first, second) if index % 2 == 0 else (second, first)
        gas.append(transaction_gas(token, "transfer", receiver, 10**18 + index, sender=sender))
    return gas


def _token_figures() -> dict[str, int]:
    """Transfers back and forth between two holders, each in a new block: on the plain token,
    on CommonsToken with neither holder delegated, with both self-delegated (the headline
    figure), and with each delegating to a third account."""
    import boa

    holder = boa.env.generate_address("holder")
    alice, bob = boa.env.generate_address("alice"), boa.env.generate_address("bob")
    plain = load_boa(compile_source_file(BENCH_CONTRACTS / "plain_token.vy"), holder, SUPPLY)
    token = load_boa("CommonsToken", holder, SUPPLY)
    for contract in (plain, token):
        with boa.env.prank(holder):
            contract.transfer(alice, 10**24)
            contract.transfer(bob, 10**24)
    undelegated = _transfers(token, alice, bob)
    boa.env.time_travel(seconds=12)
    delegate = transaction_gas(token, "delegate", alice, sender=alice)
    with boa.env.prank(bob):
        token.delegate(bob)
    plain_gas, votes_gas = _transfers(plain, alice, bob), _transfers(token, alice, bob)
    for account, delegatee in ((alice, "carol"), (bob, "dave")):
        with boa.env.prank(account):
            token.delegate(boa.env.generate_address(delegatee))
    to_others = _transfers(token, alice, bob)
    return {
        "transfer_gas_plain": sum(plain_gas) // len(plain_gas),
        "transfer_gas_with_votes": sum(votes_gas) // len(votes_gas),
        "transfer_gas_with_votes_max": max(votes_gas),
        "transfer_gas_with_votes_undelegated": sum(undelegated) // len(undelegated),
        "transfer_gas_with_votes_delegated_to_others": sum(to_others) // len(to_others),
        "delegate_gas": delegate,
    }


def _governor_figures() -> dict[str, int]:
    import boa

    deployer = boa.env.generate_address("deployer")
    token = load_boa("CommonsToken", deployer, SUPPLY)
    _, governor = deploy_governance_boa(token.address, params=BENCH_PARAMS, sender=deployer)
    voters = [boa.env.generate_address(f"voter{i}") for i in range(3)]
    for voter in voters:
        with boa.env.prank(deployer):
            token.transfer(voter, SUPPLY // 20)
        with boa.env.prank(voter):
            token.delegate(voter)
    boa.env.time_travel(seconds=1)
    actions = ([governor.address], [0], [governor.setVotingDelay.prepare_calldata(30)])
    description = "bench: shorten the voting delay"
    propose = transaction_gas(governor, "propose", *actions, description, sender=voters[0])
    proposal_id = governor.hashProposal(*actions, keccak256(description.encode()))
    boa.env.time_travel(seconds=BENCH_PARAMS.voting_delay + 1)
    vote = transaction_gas(governor, "castVote", proposal_id, 1, sender=voters[1])
    with boa.env.prank(voters[0]):
        governor.castVote(proposal_id, 1)
    boa.env.time_travel(seconds=BENCH_PARAMS.voting_period + BENCH_PARAMS.late_quorum_extension)
    description_hash = keccak256(description.encode())
    queue = transaction_gas(governor, "queue", *actions, description_hash, sender=voters[2])
    boa.env.time_travel(seconds=BENCH_PARAMS.timelock_delay)
    execute = transaction_gas(governor, "execute", *actions, description_hash, sender=voters[2])
    return {"propose_gas": propose, "vote_gas": vote, "queue_gas": queue, "execute_gas": execute}


def _funding_world(models: int) -> tuple[Any, Any, list[bytes], list[str], str]:
    """A token, registry and FundingRound with `models` registered models and six funded,
    approving contributors; returns (token, funding, model ids, contributors, funder)."""
    import boa

    deployer = boa.env.generate_address("deployer")
    token = load_boa("CommonsToken", deployer, SUPPLY)
    registry = load_boa("ModelRegistry", sender=deployer)
    treasury = boa.env.generate_address("treasury")
    funding = load_boa("FundingRound", token.address, registry.address, treasury)
    model_ids = []
    with boa.env.prank(deployer):
        for index in range(models):
            slug = f"bench-model-{index}"
            model_ids.append(registry.register_model(slug, []))
    people = [boa.env.generate_address(f"contributor{i}") for i in range(6)]
    for account in [deployer, *people]:
        with boa.env.prank(deployer):
            if account != deployer:
                token.transfer(account, SUPPLY // 10)
        with boa.env.prank(account):
            token.approve(funding.address, 2**256 - 1)
    return token, funding, model_ids, people, deployer


def _finalise_gas(models: int) -> int:
    """A round over `models` models, each backed by three contributors with amounts that make
    the raw matches unequal, and a 5 % cap, so finalise shares capped excess again."""
    import boa

    _, funding, model_ids, people, funder = _funding_world(models)
    now = boa.env.evm.patch.timestamp
    with boa.env.prank(funder):
        round_id = funding.new_round(10**6 * AIC, now, now + 600, 500, "0x" + "00" * 20)
    for index, model_id in enumerate(model_ids):
        for offset in range(3):
            with boa.env.prank(people[(index + offset) % len(people)]):
                funding.contribute(round_id, model_id, (index + 1) * (offset + 1) * AIC)
    boa.env.time_travel(seconds=600)
    return transaction_gas(funding, "finalise", round_id, sender=funder)


def _contribute_gas() -> int:
    """A new contributor's gift to a model that already has backers (the common case)."""
    import boa

    _, funding, model_ids, people, funder = _funding_world(1)
    now = boa.env.evm.patch.timestamp
    with boa.env.prank(funder):
        round_id = funding.new_round(10**6 * AIC, now, now + 600, 0, "0x" + "00" * 20)
    with boa.env.prank(people[0]):
        funding.contribute(round_id, model_ids[0], AIC)
    boa.env.time_travel(seconds=12)
    return transaction_gas(funding, "contribute", round_id, model_ids[0], 5 * AIC, sender=people[1])


def run_governance_bench() -> dict[str, Any]:
    """Every figure of `KEYS`, plus the votes token's worst and undelegated transfers and the
    ratios the targets are stated in (transfer with votes / plain; finalise gas per model)."""
    import boa

    figures: dict[str, Any] = {}
    with boa.swap_env(boa.Env()):
        figures.update(_token_figures())
    with boa.swap_env(boa.Env()):
        figures.update(_governor_figures())
    with boa.swap_env(boa.Env()):
        figures["contribute_gas"] = _contribute_gas()
    for models in (10, 100):
        with boa.swap_env(boa.Env()):
            figures[f"finalise_gas_{models}_models"] = _finalise_gas(models)
    figures["transfer_votes_ratio"] = round(
        figures["transfer_gas_with_votes"] / figures["transfer_gas_plain"], 3
    )
    for models in (10, 100):
        figures[f"finalise_gas_per_model_{models}"] = (
            figures[f"finalise_gas_{models}_models"] // models
        )
    return {key: figures[key] for key in (*KEYS, *sorted(set(figures) - set(KEYS)))}
