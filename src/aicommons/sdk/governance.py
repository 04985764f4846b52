"""`client.governance`: delegation, proposals through the Governor and Timelock, and
quadratic-funding rounds.

Each transaction goes through `Service._transact`, which simulates it first: a vote twice, a
proposal below the threshold, an execute before its delay or a contribution after the end is
refused with the contract's revert name before any gas is spent. Proposal actions are read
back from the `ProposalCreated` log, so `queue`/`execute` take only the proposal id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aicommons.governance.economics import (
    ComputeTerms,
    EconomicsReport,
    StorageTerms,
    Workload,
    simulate,
)
from aicommons.governance.proposals import (
    Action,
    ProposalError,
    description_hash,
    encode_call,
    parse_call,
    parse_time,
    state_name,
    support_code,
)
from aicommons.sdk._service import Service
from aicommons.sdk.errors import ClientError
from aicommons.sdk.registry import model_id_of
from aicommons.sdk.types import hex32

ZERO_ADDRESS = "0x" + "00" * 20
ROUND_STATES = ("scheduled", "open", "ended", "finalised")


def parse_proposal_id(text: str) -> int:
    """A proposal id as `aic gov` prints it (decimal) or as hex (0x...)."""
    value = text.strip()
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        raise ClientError(f"proposal id {text!r} is neither decimal nor 0x-hex") from None


@dataclass(frozen=True)
class ProposalInfo:
    """A proposal as the Governor and its creation log describe it. `quorum` is None until the
    snapshot has passed (the supply it is a fraction of is not fixed before)."""

    id: int
    state: str
    proposer: str
    description: str
    for_votes: int
    against_votes: int
    abstain_votes: int
    quorum: int | None
    snapshot: int
    deadline: int
    eta: int
    actions: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "state": self.state,
            "for": str(self.for_votes),
            "against": str(self.against_votes),
            "abstain": str(self.abstain_votes),
            "quorum": None if self.quorum is None else str(self.quorum),
            "snapshot": self.snapshot,
            "deadline": self.deadline,
            "eta": self.eta,
            "proposer": self.proposer,
            "description": self.description,
            "actions": self.actions,
        }


@dataclass(frozen=True)
class ProjectInfo:
    """One model's figures in a round (amounts in base units)."""

    model: str
    model_id: str
    total: int
    contributors: int
    sqrt_sum: int
    eligible_total: int
    raw: int
    match: int
    claimed: bool

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("total", "sqrt_sum", "eligible_total", "raw", "match"):
            data[key] = str(data[key])
        return data


@dataclass(frozen=True)
class RoundInfo:
    round: int
    state: str
    funder: str
    pool: int
    start: int
    end: int
    cap_bps: int
    eligibility: str
    projects: list[ProjectInfo]

    def to_json(self) -> dict[str, Any]:
        return {
            "round": self.round,
            "state": self.state,
            "funder": self.funder,
            "pool": str(self.pool),
            "start": self.start,
            "end": self.end,
            "cap_bps": self.cap_bps,
            "eligibility": self.eligibility,
            "projects": [p.to_json() for p in self.projects],
        }


def default_economics(
    *, compute: ComputeTerms | None = None, workload: Workload | None = None
) -> tuple[ComputeTerms, StorageTerms, Workload]:
    """The terms a new deployment uses: storage terms from `sdk.deployment` (the constants
    `deploy_suite` passes to StorageRegistry), the market's from its `Params` defaults (given,
    until the market is deployed by the suite), and the default workload."""
    from aicommons.sdk import deployment

    storage = StorageTerms(
        stake_per_commitment=deployment.STORAGE_STAKE,
        challenge_bond=deployment.STORAGE_CHALLENGE_BOND,
        slash_bps=deployment.STORAGE_SLASH_BPS,
        challenger_share_bps=deployment.STORAGE_CHALLENGER_SHARE_BPS,
        epoch_reward=deployment.STORAGE_EPOCH_REWARD,
    )
    return compute or ComputeTerms(), storage, workload or Workload()


def run_economics(*, epochs: int = 10_000, seed: int = 0) -> EconomicsReport:
    """`aic bench economics`: the simulation under the default terms."""
    compute, storage, workload = default_economics()
    return simulate(compute, storage, workload, epochs=epochs, seed=seed)


class GovernanceService(Service):
    """Votes, proposals and funding rounds, as the client's account."""

    # -- votes ---------------------------------------------------------------------------

    def delegate(self, delegatee: str | None = None) -> str:
        """Give the account's votes to `delegatee` (default: itself); returns the tx hash."""
        from web3 import Web3

        account = self._require_account()
        target = delegatee or account.address
        if not Web3.is_address(target):
            raise ClientError(f"{target!r} is not an address")
        token = self._contract("CommonsToken")
        receipt = self._transact(
            token.functions.delegate(Web3.to_checksum_address(target)), "delegating votes"
        )
        return hex32(receipt["transactionHash"])

    def voting_power(self, account: str) -> tuple[int, str]:
        """(current votes of `account`, the address its own tokens are delegated to)."""
        token = self._contract("CommonsToken")
        return int(token.functions.getVotes(account).call()), str(
            token.functions.delegates(account).call()
        )

    # -- proposals -----------------------------------------------------------------------

    def _abis(self) -> dict[str, Any]:
        from aicommons.chain.compile import compile_contract

        return {name: compile_contract(name).abi for name in self.deployment.contracts}

    def parse_actions(self, specs: Sequence[str]) -> list[Action]:
        """`TARGET:FUNCTION:ARGS` specs (TARGET a contract of this deployment) as actions."""
        if not specs:
            raise ClientError("a proposal needs at least one --call TARGET:FUNCTION:ARGS")
        abis = self._abis()
        try:
            return [parse_call(s, contracts=self.deployment.contracts, abis=abis) for s in specs]
        except ProposalError as exc:
            raise ClientError(str(exc)) from None

    def canonical_action(self, reference: str) -> Action:
        """The action that makes `MODEL@VERSION` its model's canonical version."""
        if "@" not in reference:
            raise ClientError("propose-canonical takes MODEL@VERSION")
        version = self._client.registry.resolve(reference)
        model_id = model_id_of(version.model)
        calldata, _ = encode_call(
            self._abis()["ModelRegistry"],
            "set_canonical",
            [hex32(model_id), version.version_id],
        )
        return Action(
            self.deployment.address("ModelRegistry"),
            0,
            calldata,
            f"ModelRegistry.set_canonical({version.model}, {version.version_id})",
        )

    def propose(self, actions: Sequence[Action], description: str) -> int:
        """Propose `actions`; returns the proposal id."""
        if not description.strip():
            raise ClientError("a proposal needs a --description")
        governor = self._contract("Governor")
        targets = [a.target for a in actions]
        values = [a.value for a in actions]
        calldatas = [a.calldata for a in actions]
        proposal_id = int(
            governor.functions.hashProposal(
                targets, values, calldatas, description_hash(description)
            ).call()
        )
        self._transact(
            governor.functions.propose(targets, values, calldatas, description),
            "proposing",
        )
        return proposal_id

    def _created(self, proposal_id: int) -> Any:
        governor = self._contract("Governor")
        events = governor.events.ProposalCreated().get_logs(
            from_block=self.deployment.block, argument_filters={"proposalId": proposal_id}
        )
        if not events:
            raise ClientError(f"no proposal {proposal_id} (see `aic gov list`)")
        return events[0]["args"]

    def _call_args(self, proposal_id: int) -> tuple[list, list, list, bytes]:
        args = self._created(proposal_id)
        return (
            list(args["targets"]),
            [int(v) for v in args["values"]],
            [bytes(c) for c in args["calldatas"]],
            description_hash(str(args["description"])),
        )

    def vote(self, proposal_id: int, choice: str, *, reason: str | None = None) -> str:
        """Vote for, against or abstain; returns the tx hash."""
        try:
            support = support_code(choice)
        except ProposalError as exc:
            raise ClientError(str(exc)) from None
        governor = self._contract("Governor")
        call = (
            governor.functions.castVoteWithReason(proposal_id, support, reason)
            if reason
            else governor.functions.castVote(proposal_id, support)
        )
        receipt = self._transact(call, f"voting on proposal {proposal_id}")
        return hex32(receipt["transactionHash"])

    def queue(self, proposal_id: int) -> str:
        governor = self._contract("Governor")
        receipt = self._transact(
            governor.functions.queue(*self._call_args(proposal_id)),
            f"queueing proposal {proposal_id}",
        )
        return hex32(receipt["transactionHash"])

    def execute(self, proposal_id: int) -> str:
        governor = self._contract("Governor")
        receipt = self._transact(
            governor.functions.execute(*self._call_args(proposal_id)),
            f"executing proposal {proposal_id}",
        )
        return hex32(receipt["transactionHash"])

    def cancel(self, proposal_id: int) -> str:
        governor = self._contract("Governor")
        receipt = self._transact(
            governor.functions.cancel(*self._call_args(proposal_id)),
            f"cancelling proposal {proposal_id}",
        )
        return hex32(receipt["transactionHash"])

    def proposal(self, proposal_id: int) -> ProposalInfo:
        args = self._created(proposal_id)
        governor = self._contract("Governor")
        against, for_votes, abstain = governor.functions.proposalVotes(proposal_id).call()
        snapshot = int(governor.functions.proposalSnapshot(proposal_id).call())
        now = self.chain_time()
        quorum = int(governor.functions.quorum(snapshot).call()) if snapshot < now else None
        return ProposalInfo(
            id=proposal_id,
            state=state_name(int(governor.functions.state(proposal_id).call())),
            proposer=str(args["proposer"]),
            description=str(args["description"]),
            for_votes=int(for_votes),
            against_votes=int(against),
            abstain_votes=int(abstain),
            quorum=quorum,
            snapshot=snapshot,
            deadline=int(governor.functions.proposalDeadline(proposal_id).call()),
            eta=int(governor.functions.proposalEta(proposal_id).call()),
            actions=[
                {"target": str(t), "value": str(v), "calldata": "0x" + bytes(c).hex()}
                for t, v, c in zip(args["targets"], args["values"], args["calldatas"], strict=True)
            ],
        )

    def proposals(self) -> list[ProposalInfo]:
        governor = self._contract("Governor")
        events = governor.events.ProposalCreated().get_logs(from_block=self.deployment.block)
        return [self.proposal(int(event["args"]["proposalId"])) for event in events]

    # -- funding rounds ------------------------------------------------------------------

    def _approve(self, spender: str, amount: int) -> None:
        account = self._require_account()
        tokens = self._client.tokens
        balance = tokens.balance(account.address)
        if balance < amount:
            raise ClientError(f"insufficient CommonsToken balance: have {balance}, need {amount}")
        if tokens.allowance(account.address, spender) < amount:
            tokens.approve(spender, amount)

    def _dry_run(self, function: Any, what: str) -> None:
        """Simulate a call that will pull tokens: refuse with the contract's reason unless the
        only problem is the allowance still to be given (so no approval is left behind by a
        call that was going to fail anyway)."""
        from web3.exceptions import ContractLogicError

        from aicommons.chain.transact import revert_reason

        try:
            function.call({"from": self._require_account().address})
        except ContractLogicError as exc:
            reason = revert_reason(exc)
            if "allowance" not in reason and "balance" not in reason:
                raise ClientError(f"{what} would revert: {reason}") from None

    def chain_time(self) -> int:
        """The latest block's timestamp: the clock of the token, governor and rounds."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def _when(self, value: int | str) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_time(value, now=self.chain_time())
        except ProposalError as exc:
            raise ClientError(str(exc)) from None

    def open_round(
        self,
        *,
        pool: int,
        start: int | str,
        end: int | str,
        cap_bps: int = 0,
        eligibility: str | None = None,
    ) -> int:
        """Open a round funded by the account with `pool`; returns the round id. `start` and
        `end` are unix times, or relative to the chain's time like "+90s" or "+2d"."""
        from web3.logs import DISCARD

        start, end = self._when(start), self._when(end)
        funding = self._contract("FundingRound")
        call = funding.functions.new_round(pool, start, end, cap_bps, eligibility or ZERO_ADDRESS)
        self._dry_run(call, "opening a round")
        self._approve(funding.address, pool)
        receipt = self._transact(call, "opening a round")
        events = funding.events.RoundOpened().process_receipt(receipt, errors=DISCARD)
        return int(events[0]["args"]["round_id"])

    def contribute(self, round_id: int, model: str, amount: int) -> str:
        """Give `amount` to model `model` (a name) in a round; returns the tx hash."""
        funding = self._contract("FundingRound")
        call = funding.functions.contribute(round_id, model_id_of(model), amount)
        self._dry_run(call, f"contributing to {model!r}")
        self._approve(funding.address, amount)
        receipt = self._transact(call, f"contributing to {model!r} in round {round_id}")
        return hex32(receipt["transactionHash"])

    def finalise(self, round_id: int) -> str:
        funding = self._contract("FundingRound")
        receipt = self._transact(
            funding.functions.finalise(round_id), f"finalising round {round_id}"
        )
        return hex32(receipt["transactionHash"])

    def round(self, round_id: int) -> RoundInfo:
        funding = self._contract("FundingRound")
        record = self._call_struct("FundingRound", "rounds", round_id)
        if not record["pool"]:
            raise ClientError(f"no funding round {round_id}")
        names = {hex32(model_id_of(name)): name for name in self._client.registry.model_names()}
        projects = []
        for model_id in funding.functions.projects(round_id).call():
            total, people, sqrt_sum, eligible, raw, match, claimed = funding.functions.project(
                round_id, model_id
            ).call()
            key = hex32(model_id)
            projects.append(
                ProjectInfo(
                    names.get(key, key), key, total, people, sqrt_sum, eligible, raw, match, claimed
                )
            )
        now = self.chain_time()
        if record["finalised"]:
            state = "finalised"
        elif now >= record["end"]:
            state = "ended"
        elif now >= record["start"]:
            state = "open"
        else:
            state = "scheduled"
        return RoundInfo(
            round=round_id,
            state=state,
            funder=str(record["funder"]),
            pool=int(record["pool"]),
            start=int(record["start"]),
            end=int(record["end"]),
            cap_bps=int(record["cap_bps"]),
            eligibility=str(record["eligibility"]),
            projects=projects,
        )

    def claim(self, round_id: int | None = None, model: str | None = None) -> int:
        """Collect what funding rounds owe the account: release the projects of finalised
        rounds whose canonical version pays the account (or the one `model` named), then
        withdraw. Returns the amount withdrawn. Nothing owed: the contract's NothingToWithdraw;
        a project released before: AlreadyClaimed."""
        account = self._require_account()
        funding = self._contract("FundingRound")
        if model is not None:
            if round_id is None:
                raise ClientError("give the ROUND a model was funded in")
            self._transact(
                funding.functions.claim(round_id, model_id_of(model)),
                f"claiming {model!r} in round {round_id}",
            )
        else:
            rounds = (
                [round_id] if round_id else range(1, funding.functions.round_count().call() + 1)
            )
            for number in rounds:
                self._release_mine(funding, number, account.address)
        owed = int(funding.functions.owed(account.address).call())
        self._transact(funding.functions.withdraw(), "withdrawing funding payouts")
        return owed

    def _release_mine(self, funding: Any, round_id: int, account: str) -> None:
        if not self._call_struct("FundingRound", "rounds", round_id)["finalised"]:
            return
        registry = self._contract("ModelRegistry")
        for model_id in funding.functions.projects(round_id).call():
            if funding.functions.project(round_id, model_id).call()[6]:
                continue
            version = registry.functions.canonical(model_id).call()
            if bytes(version) == bytes(32):
                continue
            payees = {
                str(entry[0]).lower()
                for entry in registry.functions.attribution(model_id, version).call()
            }
            if account.lower() in payees:
                self._transact(
                    funding.functions.claim(round_id, model_id),
                    f"claiming {hex32(model_id)} in round {round_id}",
                )
