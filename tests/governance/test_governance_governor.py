"""Governor + Timelock (titanoboa): OpenZeppelin's lifecycle, each refusal by name, the roles a
deployment leaves, late quorum, ballots by signature, expiry enforced inside the batch, and
flash-loan resistance.

The contract-level counterparts of the devnet CLI lifecycle tests.
"""

from __future__ import annotations

from pathlib import Path

import boa
import pytest
from eth_abi import encode
from eth_account import Account
from governance_fixtures import ZERO, publish_model, sign_typed

from aicommons.chain.compile import compile_source_file, load_boa
from aicommons.commit import keccak256
from aicommons.governance.deploy import (
    CANCELLER_ROLE,
    DEFAULT_ADMIN_ROLE,
    EXECUTOR_ROLE,
    PROPOSER_ROLE,
    deploy_governance_boa,
)
from aicommons.governance.params import AIC, GovernanceParams

HERE = Path(__file__).resolve().parent
SUPPLY = 10**9 * AIC
PARAMS = GovernanceParams(
    voting_delay=100,
    voting_period=1_000,
    proposal_threshold=1_000 * AIC,
    quorum_bps=400,
    late_quorum_extension=300,
    timelock_delay=600,
    grace_period=3_600,
)
QUORUM = SUPPLY * 400 // 10_000

# ProposalState flag bits, in declaration order.
PENDING, ACTIVE, CANCELED, DEFEATED, SUCCEEDED, QUEUED, EXPIRED, EXECUTED = (
    1 << i for i in range(8)
)
AGAINST, FOR, ABSTAIN = 0, 1, 2


class World:
    """Token, registry with one model and two versions, timelock and governor; voters funded
    and self-delegated: alice 5 % of the supply (above quorum alone), bob 2 %, carol 1 %."""

    def __init__(self) -> None:
        self.deployer = boa.env.generate_address("deployer")
        self.treasury = boa.env.generate_address("treasury")
        self.token = load_boa("CommonsToken", self.treasury, SUPPLY, sender=self.deployer)
        self.registry = load_boa("ModelRegistry", sender=self.deployer)
        self.timelock, self.governor = deploy_governance_boa(
            self.token.address, params=PARAMS, sender=self.deployer
        )
        with boa.env.prank(self.deployer):
            self.registry.transfer_governance(self.timelock.address)
        self.maintainer = boa.env.generate_address("maintainer")
        self.model_id = keccak256(b"digits")
        self.versions = [keccak256(b"v1"), keccak256(b"v2")]
        for version in self.versions:
            publish_model(self.registry, self.maintainer, "digits", version)
        self.alice, self.bob, self.carol = (
            boa.env.generate_address(name) for name in ("alice", "bob", "carol")
        )
        for voter, share in ((self.alice, 500), (self.bob, 200), (self.carol, 100)):
            with boa.env.prank(self.treasury):
                self.token.transfer(voter, SUPPLY * share // 10_000)
            with boa.env.prank(voter):
                self.token.delegate(voter)
        boa.env.time_travel(seconds=1)

    def canonical_call(self, version: bytes) -> tuple[list, list, list]:
        data = self.registry.set_canonical.prepare_calldata(self.model_id, version)
        return [self.registry.address], [0], [data]

    def propose(self, actions, description: str = "set canonical", proposer=None) -> int:
        with boa.env.prank(proposer or self.alice):
            return self.governor.propose(*actions, description)

    def to_voting(self) -> None:
        boa.env.time_travel(seconds=PARAMS.voting_delay + 1)

    def to_end(self) -> None:
        boa.env.time_travel(seconds=PARAMS.voting_period + PARAMS.late_quorum_extension + 1)

    def vote(self, proposal_id: int, voter: str, support: int) -> None:
        with boa.env.prank(voter):
            self.governor.castVote(proposal_id, support)

    def queue(self, actions, description: str = "set canonical") -> None:
        self.governor.queue(*actions, keccak256(description.encode()))

    def execute(self, actions, description: str = "set canonical") -> None:
        self.governor.execute(*actions, keccak256(description.encode()))

    def passed(self, actions, description: str = "set canonical") -> int:
        """Propose and vote through to Succeeded."""
        proposal_id = self.propose(actions, description)
        self.to_voting()
        self.vote(proposal_id, self.alice, FOR)
        self.to_end()
        return proposal_id


@pytest.fixture(scope="module")
def shared_world():
    with boa.env.anchor():
        yield World()


@pytest.fixture
def world(shared_world):
    with boa.env.anchor():
        yield shared_world


def test_deployment_leaves_the_governor_as_the_only_proposer_and_no_admin(world):
    timelock, governor, deployer = world.timelock, world.governor, world.deployer
    assert timelock.hasRole(PROPOSER_ROLE, governor.address)
    assert timelock.hasRole(CANCELLER_ROLE, governor.address)
    assert timelock.hasRole(EXECUTOR_ROLE, ZERO)  # open
    for role in (PROPOSER_ROLE, CANCELLER_ROLE, EXECUTOR_ROLE, DEFAULT_ADMIN_ROLE):
        assert not timelock.hasRole(role, deployer)
    assert timelock.hasRole(DEFAULT_ADMIN_ROLE, timelock.address)
    assert not timelock.hasRole(DEFAULT_ADMIN_ROLE, governor.address)
    assert governor.timelock() == timelock.address
    assert governor.token() == world.token.address
    assert governor.CLOCK_MODE() == "mode=timestamp"
    assert governor.COUNTING_MODE() == "support=bravo&quorum=for,abstain"


def test_proposal_id_is_openzeppelins(world):
    actions = world.canonical_call(world.versions[1])
    expected = int.from_bytes(
        keccak256(
            encode(["address[]", "uint256[]", "bytes[]", "bytes32"], [*actions, keccak256(b"d")])
        ),
        "big",
    )
    assert world.governor.hashProposal(*actions, keccak256(b"d")) == expected
    assert world.propose(actions, "d") == expected


def test_full_lifecycle_sets_the_canonical_version(world):
    actions = world.canonical_call(world.versions[1])
    proposal_id = world.propose(actions)
    governor = world.governor
    snapshot = governor.proposalSnapshot(proposal_id)
    assert snapshot == governor.clock() + PARAMS.voting_delay
    assert governor.proposalDeadline(proposal_id) == snapshot + PARAMS.voting_period
    assert governor.state(proposal_id) == PENDING
    world.to_voting()
    assert governor.state(proposal_id) == ACTIVE
    world.vote(proposal_id, world.alice, FOR)
    world.vote(proposal_id, world.bob, AGAINST)
    with boa.env.prank(world.carol):
        governor.castVoteWithReason(proposal_id, ABSTAIN, "no opinion")
    assert governor.proposalVotes(proposal_id) == (
        SUPPLY * 2 // 100,
        SUPPLY * 5 // 100,
        SUPPLY // 100,
    )
    assert governor.hasVoted(proposal_id, world.alice)
    world.to_end()
    assert governor.state(proposal_id) == SUCCEEDED
    world.queue(actions)
    assert governor.state(proposal_id) == QUEUED
    eta = governor.proposalEta(proposal_id)
    assert eta == governor.clock() + PARAMS.timelock_delay
    with boa.reverts("ProposalNotReady"):  # execute before the delay is refused
        world.execute(actions)
    boa.env.time_travel(seconds=PARAMS.timelock_delay)
    world.execute(actions)
    assert governor.state(proposal_id) == EXECUTED
    assert world.registry.canonical(world.model_id) == world.versions[1]


def test_propose_below_threshold_counts_votes_one_second_before(world):
    actions = world.canonical_call(world.versions[1])
    dave = boa.env.generate_address("dave")
    with boa.env.prank(dave):
        world.token.delegate(dave)
    with boa.reverts("BelowProposalThreshold"):
        world.propose(actions, proposer=dave)
    # Tokens received in the proposing second do not count yet.
    with boa.env.prank(world.treasury):
        world.token.transfer(dave, PARAMS.proposal_threshold)
    with boa.reverts("BelowProposalThreshold"):
        world.propose(actions, proposer=dave)
    boa.env.time_travel(seconds=1)
    world.propose(actions, proposer=dave)


def test_bad_proposals_are_refused_by_name(world):
    actions = world.canonical_call(world.versions[1])
    with boa.reverts("InvalidProposalLength"):
        world.propose(([], [], []))
    with boa.reverts("InvalidProposalLength"):
        world.propose((actions[0], [0, 0], actions[2]))
    world.propose(actions)
    with boa.reverts("ProposalExists"):
        world.propose(actions)
    with boa.reverts("UnknownProposal"):
        world.governor.state(12345)


def test_votes_outside_the_period_and_twice_are_refused(world):
    proposal_id = world.propose(world.canonical_call(world.versions[1]))
    with boa.reverts("ProposalNotActive"):  # before the snapshot
        world.vote(proposal_id, world.alice, FOR)
    world.to_voting()
    world.vote(proposal_id, world.bob, FOR)
    with boa.reverts("AlreadyVoted"):
        world.vote(proposal_id, world.bob, AGAINST)
    with boa.reverts("InvalidVoteType"):
        world.vote(proposal_id, world.carol, 3)
    world.to_end()
    with boa.reverts("ProposalNotActive"):  # after the deadline
        world.vote(proposal_id, world.carol, FOR)


def test_defeated_without_quorum_or_majority(world):
    governor = world.governor
    first = world.propose(world.canonical_call(world.versions[1]), "low turnout")
    second = world.propose(world.canonical_call(world.versions[1]), "rejected")
    world.to_voting()
    world.vote(first, world.bob, FOR)  # 2 % < 4 % quorum
    world.vote(second, world.alice, AGAINST)
    world.vote(second, world.bob, FOR)
    world.to_end()
    assert governor.state(first) == DEFEATED
    assert governor.state(second) == DEFEATED
    with boa.reverts("ProposalNotSucceeded"):
        world.queue(world.canonical_call(world.versions[1]), "low turnout")


def test_abstain_counts_towards_quorum_only(world):
    proposal_id = world.propose(world.canonical_call(world.versions[1]))
    world.to_voting()
    world.vote(proposal_id, world.carol, FOR)  # 1 %
    world.vote(proposal_id, world.alice, ABSTAIN)  # 5 %: quorum, no majority change
    world.to_end()
    assert world.governor.state(proposal_id) == SUCCEEDED


def test_cancel_by_the_proposer_while_pending(world):
    actions = world.canonical_call(world.versions[1])
    proposal_id = world.propose(actions)
    description_hash = keccak256(b"set canonical")
    with boa.env.prank(world.bob), boa.reverts("NotProposer"):
        world.governor.cancel(*actions, description_hash)
    with boa.env.prank(world.alice):
        world.governor.cancel(*actions, description_hash)
    assert world.governor.state(proposal_id) == CANCELED
    world.to_voting()
    with boa.reverts("ProposalNotActive"):
        world.vote(proposal_id, world.alice, FOR)
    other = world.propose(actions, "second try")
    world.to_voting()
    with boa.env.prank(world.alice), boa.reverts("ProposalNotPending"):
        world.governor.cancel(*actions, keccak256(b"second try"))
    assert world.governor.state(other) == ACTIVE


def test_execute_unqueued_and_expired_are_refused(world):
    actions = world.canonical_call(world.versions[1])
    proposal_id = world.passed(actions)
    with boa.reverts("ProposalNotQueued"):
        world.execute(actions)
    world.queue(actions)
    with boa.reverts("ProposalNotSucceeded"):  # queue twice
        world.queue(actions)
    boa.env.time_travel(seconds=PARAMS.timelock_delay + PARAMS.grace_period)
    assert world.governor.state(proposal_id) == EXPIRED
    with boa.reverts("ProposalExpired"):
        world.execute(actions)


def _batch(world, proposal_id: int, actions) -> tuple[list, list, list]:
    guard = world.governor.check_executable.prepare_calldata(proposal_id)
    return [world.governor.address, *actions[0]], [0, *actions[1]], [guard, *actions[2]]


def _salt(world, proposal_id: int) -> bytes:
    return keccak256(encode(["address", "uint256"], [world.governor.address, proposal_id]))


def test_expiry_holds_even_when_the_batch_is_run_on_the_timelock(world):
    """The executor role is open: the guard call inside the batch enforces expiry anyway."""
    actions = world.canonical_call(world.versions[1])
    proposal_id = world.passed(actions)
    world.queue(actions)
    batch = _batch(world, proposal_id, actions)
    salt = _salt(world, proposal_id)
    boa.env.time_travel(seconds=PARAMS.timelock_delay + PARAMS.grace_period)
    with boa.reverts("ProposalExpired"):
        world.timelock.execute_batch(*batch, bytes(32), salt)
    assert world.registry.canonical(world.model_id) == bytes(32)


def test_a_batch_run_directly_on_the_timelock_counts_as_executed(world):
    actions = world.canonical_call(world.versions[1])
    proposal_id = world.passed(actions)
    world.queue(actions)
    boa.env.time_travel(seconds=PARAMS.timelock_delay)
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(stranger):
        world.timelock.execute_batch(
            *_batch(world, proposal_id, actions), bytes(32), _salt(world, proposal_id)
        )
    assert world.governor.state(proposal_id) == EXECUTED
    assert world.registry.canonical(world.model_id) == world.versions[1]
    with boa.reverts("ProposalNotQueued"):
        world.execute(actions)


def test_same_calls_with_another_description_get_their_own_timelock_operation(world):
    actions = world.canonical_call(world.versions[1])
    first = world.propose(actions, "first")
    second = world.propose(actions, "second")
    world.to_voting()
    for proposal_id in (first, second):
        world.vote(proposal_id, world.alice, FOR)
    world.to_end()
    world.queue(actions, "first")
    world.queue(actions, "second")  # a shared salt would collide here
    boa.env.time_travel(seconds=PARAMS.timelock_delay)
    world.execute(actions, "first")
    assert world.governor.state(second) == QUEUED


def test_late_quorum_extends_the_deadline(world):
    governor = world.governor
    proposal_id = world.propose(world.canonical_call(world.versions[1]))
    deadline = governor.proposalDeadline(proposal_id)
    world.to_voting()
    world.vote(proposal_id, world.bob, FOR)  # 2 %: no quorum yet
    assert governor.proposalDeadline(proposal_id) == deadline
    boa.env.time_travel(seconds=PARAMS.voting_period - 2)  # one second before the deadline
    world.vote(proposal_id, world.alice, FOR)  # quorum, late
    logs = [e for e in governor.get_logs() if type(e).__name__ == "ProposalExtended"]
    extended = governor.clock() + PARAMS.late_quorum_extension
    assert governor.proposalDeadline(proposal_id) == extended > deadline
    assert [(e.proposalId, e.extendedDeadline) for e in logs] == [(proposal_id, extended)]
    boa.env.time_travel(seconds=PARAMS.late_quorum_extension)
    assert governor.state(proposal_id) == ACTIVE  # the original deadline has passed
    world.vote(proposal_id, world.carol, AGAINST)  # others still have time to answer
    boa.env.time_travel(seconds=1)
    assert governor.state(proposal_id) == SUCCEEDED


BALLOT = [
    {"name": "proposalId", "type": "uint256"},
    {"name": "support", "type": "uint8"},
    {"name": "voter", "type": "address"},
    {"name": "nonce", "type": "uint256"},
]


def _ballot(governor, signer, proposal_id: int, support: int, nonce: int) -> bytes:
    message = {
        "proposalId": proposal_id,
        "support": support,
        "voter": signer.address,
        "nonce": nonce,
    }
    signed = sign_typed(
        signer,
        domain="aicommons Governor",
        contract=governor.address,
        primary="Ballot",
        fields=BALLOT,
        message=message,
    )
    return bytes(signed.signature)


def test_cast_vote_by_sig(world):
    signer = Account.from_key(b"\x22" * 32)
    with boa.env.prank(world.treasury):
        world.token.transfer(signer.address, SUPPLY // 10)
    with boa.env.prank(signer.address):
        world.token.delegate(signer.address)
    boa.env.time_travel(seconds=1)
    proposal_id = world.propose(world.canonical_call(world.versions[1]))
    world.to_voting()
    relayer = boa.env.generate_address("relayer")
    signature = _ballot(world.governor, signer, proposal_id, FOR, 0)
    with boa.env.prank(relayer):
        with boa.reverts("InvalidSignature"):  # signed by someone else
            world.governor.castVoteBySig(proposal_id, FOR, world.bob, signature)
        world.governor.castVoteBySig(proposal_id, FOR, signer.address, signature)
        with boa.reverts("InvalidSignature"):  # replay: the nonce moved on
            world.governor.castVoteBySig(proposal_id, FOR, signer.address, signature)
    assert world.governor.proposalVotes(proposal_id)[1] == SUPPLY // 10
    assert world.governor.nonces(signer.address) == 1


@pytest.fixture(scope="module")
def flash_voter_code():
    return compile_source_file(HERE / "flash_voter.vy")


def test_tokens_acquired_after_the_snapshot_add_no_weight(world, flash_voter_code):
    """A flash loan (borrow, delegate, vote, repay in one transaction) and a plain purchase
    after the snapshot both vote with zero weight."""
    governor, token = world.governor, world.token
    proposal_id = world.propose(world.canonical_call(world.versions[1]))
    world.to_voting()
    attacker = load_boa(flash_voter_code, token.address, governor.address)
    with boa.env.prank(world.treasury):
        token.approve(attacker.address, SUPPLY // 2)  # the "lender"
    assert attacker.borrow_and_vote(world.treasury, SUPPLY // 2, proposal_id) == 0
    assert token.balanceOf(attacker.address) == 0
    assert governor.hasVoted(proposal_id, attacker.address)
    buyer = boa.env.generate_address("buyer")
    with boa.env.prank(world.treasury):
        token.transfer(buyer, SUPPLY // 2)
    with boa.env.prank(buyer):
        token.delegate(buyer)
    boa.env.time_travel(seconds=1)
    world.vote(proposal_id, buyer, FOR)
    logs = [e for e in governor.get_logs() if type(e).__name__ == "VoteCast"]
    assert [(e.voter, e.weight) for e in logs] == [(buyer, 0)]
    assert governor.proposalVotes(proposal_id) == (0, 0, 0)


def test_governance_parameters_belong_to_the_timelock(world):
    governor = world.governor
    with boa.env.prank(world.deployer), boa.reverts("NotGovernance"):
        governor.setVotingPeriod(5)
    calls = [
        governor.updateQuorumNumerator.prepare_calldata(1_000),
        governor.setVotingDelay.prepare_calldata(50),
    ]
    actions = ([governor.address] * 2, [0, 0], calls)
    proposal_id = world.passed(actions, "raise quorum")
    snapshot = governor.proposalSnapshot(proposal_id)
    world.queue(actions, "raise quorum")
    boa.env.time_travel(seconds=PARAMS.timelock_delay)
    world.execute(actions, "raise quorum")
    assert governor.votingDelay() == 50
    assert governor.quorumNumerator() == 1_000
    # The quorum of an old snapshot is unchanged: the fraction is checkpointed.
    assert governor.quorum(snapshot) == QUORUM
    boa.env.time_travel(seconds=1)
    assert governor.quorum(governor.clock() - 1) == SUPPLY // 10


def test_the_timelock_batch_keeps_snekmates_ids_within_17_calls(world):
    """Timelock.vy bounds snekmate's batch entry points to 17 calls (gas): the operation id is
    still keccak256(abi_encode(targets, amounts, payloads, predecessor, salt)), a proposer is
    still required, and an 18-call batch does not decode."""
    timelock = world.timelock
    targets, amounts, payloads = [world.registry.address] * 2, [0, 0], [b"\x01", b"\x02\x03"]
    salt = keccak256(b"salt")
    expected = keccak256(
        encode(
            ["address[]", "uint256[]", "bytes[]", "bytes32", "bytes32"],
            [targets, amounts, payloads, bytes(32), salt],
        )
    )
    assert timelock.hash_operation_batch(targets, amounts, payloads, bytes(32), salt) == expected
    with boa.reverts("access_control: account is missing role"):
        timelock.schedule_batch(targets, amounts, payloads, bytes(32), salt, PARAMS.timelock_delay)
    kinds = ["address[]", "uint256[]", "bytes[]", "bytes32", "bytes32", "uint256"]
    selector = keccak256(f"schedule_batch({','.join(kinds)})".encode())[:4]

    def schedule(calls: int) -> bytes:
        arguments = [[world.registry.address] * calls, [0] * calls, [b""] * calls]
        return selector + encode(kinds, [*arguments, bytes(32), salt, 10**6])

    boa.env.raw_call(timelock.address, sender=world.governor.address, data=schedule(17))
    assert timelock.is_operation(
        timelock.hash_operation_batch(
            [world.registry.address] * 17, [0] * 17, [b""] * 17, bytes(32), salt
        )
    )
    with pytest.raises(Exception):  # noqa: B017 - an over-long array fails ABI decoding, no reason
        boa.env.raw_call(timelock.address, sender=world.governor.address, data=schedule(18))
