# pragma version ~=0.4.3
"""
@title governor_core: the proposal lifecycle of OpenZeppelin's Governor, in Vyper
@notice Token holders propose a batch of calls, vote For, Against or Abstain with the votes
        they had delegated at the proposal's snapshot, and a proposal that reaches quorum with
        more For than Against is queued in the timelock and executed after its delay. States,
        as in OpenZeppelin: Pending (until the snapshot), Active (voting), Canceled, Defeated,
        Succeeded, Queued, Expired (queued but not run within the grace period), Executed.
@dev Vyper has no inheritance, so where OpenZeppelin's Governor calls virtual functions this
     module names its parts: `uses:` governor_votes (weights, quorum), governor_counting
     (tallies), governor_timelock (queue, execute) and governor_late_quorum (deadline
     extension). The host initializes all five and exports the external functions.
     Timing (seconds; the token's ERC-6372 clock is the block timestamp, like the timelock's):
     - propose at t: the proposer needs `proposalThreshold` votes at t - 1 (a past timepoint,
       so votes bought in the proposing block do not count); snapshot s = t + votingDelay;
       deadline d = s + votingPeriod (later if quorum is reached late);
     - weights and quorum are read at s, i.e. the state at the end of timestamp s; voting is
       open for timestamps in (s, d], when s is already in the past and can no longer change.
     Invariants: a proposal id is keccak256(abi_encode(targets, values, calldatas,
     keccak256(description))) and is created once; _closed[id] goes empty -> CANCELED or
     EXECUTED once; each account votes once per proposal.
     Reverts: BelowProposalThreshold, InvalidProposalLength, ProposalExists, UnknownProposal,
     ProposalNotActive, ProposalNotSucceeded, ProposalNotQueued, ProposalNotReady,
     ProposalExpired, ProposalNotPending, NotProposer, InvalidSignature, InvalidVotingDelay,
     InvalidVotingPeriod, and those of the modules it uses.
"""

from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator

import governor_counting
import governor_late_quorum
import governor_timelock
import governor_votes

initializes: eip712_domain_separator
uses: governor_votes
uses: governor_counting
uses: governor_timelock
uses: governor_late_quorum

MAX_ACTIONS: constant(uint256) = governor_timelock.MAX_ACTIONS
MAX_CALLDATA: constant(uint256) = governor_timelock.MAX_CALLDATA
MAX_DESCRIPTION: constant(uint256) = 2_048
MAX_REASON: constant(uint256) = 1_024
# Delays and periods fit the 48-bit fields below with room to add them.
MAX_PERIOD: constant(uint256) = 1 << 32

_MASK48: constant(uint256) = (1 << 48) - 1
_ADDRESS_MASK: constant(uint256) = (1 << 160) - 1

_BALLOT_TYPE_HASH: constant(bytes32) = keccak256(
    "Ballot(uint256 proposalId,uint8 support,address voter,uint256 nonce)"
)


flag ProposalState:
    PENDING
    ACTIVE
    CANCELED
    DEFEATED
    SUCCEEDED
    QUEUED
    EXPIRED
    EXECUTED


name: public(immutable(String[50]))
votingDelay: public(uint256)
votingPeriod: public(uint256)
proposalThreshold: public(uint256)
# Ballot signature nonces.
nonces: public(HashMap[address, uint256])

# proposer (low 160 bits) | snapshot (next 48) | voting period (top 48): one word a proposal.
_cores: HashMap[uint256, uint256]
# CANCELED or EXECUTED once this governor closes a proposal; empty while it is open.
_closed: HashMap[uint256, ProposalState]


event ProposalCreated:
    proposalId: indexed(uint256)
    proposer: indexed(address)
    targets: DynArray[address, MAX_ACTIONS]
    values: DynArray[uint256, MAX_ACTIONS]
    signatures: DynArray[String[1], MAX_ACTIONS]
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS]
    voteStart: uint256
    voteEnd: uint256
    description: String[MAX_DESCRIPTION]


event ProposalQueued:
    proposalId: indexed(uint256)
    etaSeconds: uint256


event ProposalExecuted:
    proposalId: indexed(uint256)


event ProposalCanceled:
    proposalId: indexed(uint256)


event VoteCast:
    voter: indexed(address)
    proposalId: indexed(uint256)
    support: uint8
    weight: uint256
    reason: String[MAX_REASON]


event VotingDelaySet:
    oldVotingDelay: uint256
    newVotingDelay: uint256


event VotingPeriodSet:
    oldVotingPeriod: uint256
    newVotingPeriod: uint256


event ProposalThresholdSet:
    oldProposalThreshold: uint256
    newProposalThreshold: uint256


@deploy
def __init__(name_: String[50], voting_delay_: uint256, voting_period_: uint256, proposal_threshold_: uint256):
    """
    @param name_ The governor's name, also its EIP-712 signing domain (version "1").
    @param voting_delay_ Seconds from proposal to snapshot.
    @param voting_period_ Seconds of voting after the snapshot.
    @param proposal_threshold_ Votes a proposer needs (base units).
    """
    name = name_
    eip712_domain_separator.__init__(name_, "1")
    self._set_voting_delay(voting_delay_)
    self._set_voting_period(voting_period_)
    self._set_proposal_threshold(proposal_threshold_)


@external
@pure
def version() -> String[1]:
    """
    @return The governor's version, "1".
    """
    return "1"


@external
@pure
def hashProposal(
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
    descriptionHash: bytes32,
) -> uint256:
    """
    @notice The id of a proposal, as OpenZeppelin computes it.
    @return uint256(keccak256(abi_encode(targets, values, calldatas, descriptionHash))).
    """
    return self._hash_proposal(targets, values, calldatas, descriptionHash)


@external
@view
def state(proposalId: uint256) -> ProposalState:
    """
    @param proposalId An existing proposal.
    @return Its state, one bit of the ProposalState flag.
    """
    return self._state(proposalId)


@external
@view
def proposalSnapshot(proposalId: uint256) -> uint256:
    """
    @return The timepoint whose end fixes weights and quorum (zero for an unknown proposal).
    """
    return (self._cores[proposalId] >> 160) & _MASK48


@external
@view
def proposalDeadline(proposalId: uint256) -> uint256:
    """
    @return The last timestamp at which votes are accepted, including a late-quorum extension.
    """
    return self._deadline(proposalId)


@external
@view
def proposalProposer(proposalId: uint256) -> address:
    """
    @return Who proposed it (zero for an unknown proposal).
    """
    return convert(self._cores[proposalId] & _ADDRESS_MASK, address)


@external
@view
def check_executable(proposalId: uint256):
    """
    @notice The guard at the front of every queued batch: refuses once the proposal's grace
            period has passed, so an expired proposal cannot run, whoever executes the batch.
    @param proposalId A queued proposal.
    """
    eta: uint256 = governor_timelock._eta(proposalId)
    assert eta != 0, "ProposalNotQueued"
    assert block.timestamp < eta + governor_timelock.gracePeriod, "ProposalExpired"


@external
def propose(
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
    description: String[MAX_DESCRIPTION],
) -> uint256:
    """
    @notice Propose that the timelock makes these calls.
    @param targets The contracts to call (1 to 16).
    @param values Ether to send with each call.
    @param calldatas The ABI-encoded calls.
    @param description What and why, for voters; part of the proposal id.
    @return The proposal id.
    """
    now: uint256 = block.timestamp
    threshold: uint256 = self.proposalThreshold
    if threshold > 0:
        assert governor_votes._get_votes(msg.sender, now - 1) >= threshold, "BelowProposalThreshold"
    count: uint256 = len(targets)
    assert count > 0 and len(values) == count and len(calldatas) == count, "InvalidProposalLength"
    proposal_id: uint256 = self._hash_proposal(targets, values, calldatas, keccak256(description))
    assert self._cores[proposal_id] == 0, "ProposalExists"
    snapshot: uint256 = now + self.votingDelay
    period: uint256 = self.votingPeriod
    self._cores[proposal_id] = convert(msg.sender, uint256) | snapshot << 160 | period << 208
    signatures: DynArray[String[1], MAX_ACTIONS] = []
    for _: uint256 in range(count, bound=MAX_ACTIONS):
        signatures.append("")
    log ProposalCreated(
        proposalId=proposal_id,
        proposer=msg.sender,
        targets=targets,
        values=values,
        signatures=signatures,
        calldatas=calldatas,
        voteStart=snapshot,
        voteEnd=snapshot + period,
        description=description,
    )
    return proposal_id


@external
def castVote(proposalId: uint256, support: uint8) -> uint256:
    """
    @notice Vote 0 Against, 1 For or 2 Abstain with the caller's votes at the snapshot.
    @return The weight counted.
    """
    return self._cast_vote(proposalId, msg.sender, support, "")


@external
def castVoteWithReason(proposalId: uint256, support: uint8, reason: String[MAX_REASON]) -> uint256:
    """
    @notice `castVote`, with a reason logged in `VoteCast`.
    @return The weight counted.
    """
    return self._cast_vote(proposalId, msg.sender, support, reason)


@external
def castVoteBySig(proposalId: uint256, support: uint8, voter: address, signature: Bytes[65]) -> uint256:
    """
    @notice Cast `voter`'s vote from an EIP-712 `Ballot(proposalId, support, voter, nonce)`
            signature in the governor's domain; anyone may submit it.
    @param voter The signer, whose votes count.
    @param signature 65-byte (r, s, v) or 64-byte EIP-2098 signature by `voter`.
    @return The weight counted.
    """
    nonce: uint256 = self.nonces[voter]
    digest: bytes32 = eip712_domain_separator._hash_typed_data_v4(
        keccak256(abi_encode(_BALLOT_TYPE_HASH, proposalId, support, voter, nonce))
    )
    signer: address = ecdsa._recover_sig(digest, signature)
    assert signer != empty(address) and signer == voter, "InvalidSignature"
    self.nonces[voter] = nonce + 1
    return self._cast_vote(proposalId, voter, support, "")


@external
def queue(
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
    descriptionHash: bytes32,
) -> uint256:
    """
    @notice Schedule a succeeded proposal in the timelock; anyone may call it.
    @return The proposal id.
    """
    proposal_id: uint256 = self._hash_proposal(targets, values, calldatas, descriptionHash)
    assert self._validate_state(proposal_id, ProposalState.SUCCEEDED), "ProposalNotSucceeded"
    eta: uint256 = governor_timelock._queue(proposal_id, targets, values, calldatas)
    log ProposalQueued(proposalId=proposal_id, etaSeconds=eta)
    return proposal_id


@external
@payable
def execute(
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
    descriptionHash: bytes32,
) -> uint256:
    """
    @notice Run a queued proposal whose delay has passed, through the timelock; anyone may.
    @return The proposal id.
    """
    proposal_id: uint256 = self._hash_proposal(targets, values, calldatas, descriptionHash)
    current: ProposalState = self._state(proposal_id)
    assert current != ProposalState.EXPIRED, "ProposalExpired"
    assert current in ProposalState.QUEUED, "ProposalNotQueued"
    assert block.timestamp >= governor_timelock._eta(proposal_id), "ProposalNotReady"
    # Effects before the interaction: the calls below may call back into the governor.
    self._closed[proposal_id] = ProposalState.EXECUTED
    log ProposalExecuted(proposalId=proposal_id)
    governor_timelock._execute(proposal_id, targets, values, calldatas, msg.value)
    return proposal_id


@external
def cancel(
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
    descriptionHash: bytes32,
) -> uint256:
    """
    @notice The proposer withdraws its proposal before voting opens.
    @return The proposal id.
    """
    proposal_id: uint256 = self._hash_proposal(targets, values, calldatas, descriptionHash)
    assert self._validate_state(proposal_id, ProposalState.PENDING), "ProposalNotPending"
    assert msg.sender == convert(self._cores[proposal_id] & _ADDRESS_MASK, address), "NotProposer"
    self._closed[proposal_id] = ProposalState.CANCELED
    log ProposalCanceled(proposalId=proposal_id)
    return proposal_id


@internal
@pure
def _hash_proposal(
    targets: DynArray[address, MAX_ACTIONS],
    values: DynArray[uint256, MAX_ACTIONS],
    calldatas: DynArray[Bytes[MAX_CALLDATA], MAX_ACTIONS],
    description_hash: bytes32,
) -> uint256:
    return convert(keccak256(abi_encode(targets, values, calldatas, description_hash)), uint256)


@internal
@view
def _deadline(proposal_id: uint256) -> uint256:
    core: uint256 = self._cores[proposal_id]
    snapshot: uint256 = (core >> 160) & _MASK48
    if snapshot == 0:
        return 0
    return governor_late_quorum._deadline(proposal_id, snapshot + (core >> 208))


@internal
@view
def _state(proposal_id: uint256) -> ProposalState:
    core: uint256 = self._cores[proposal_id]
    assert core != 0, "UnknownProposal"
    closed: ProposalState = self._closed[proposal_id]
    if closed != empty(ProposalState):
        return closed
    snapshot: uint256 = (core >> 160) & _MASK48
    now: uint256 = block.timestamp
    if snapshot >= now:
        return ProposalState.PENDING
    if governor_late_quorum._deadline(proposal_id, snapshot + (core >> 208)) >= now:
        return ProposalState.ACTIVE
    reached: bool = governor_counting._quorum_reached(proposal_id, governor_votes._quorum(snapshot))
    if not reached or not governor_counting._vote_succeeded(proposal_id):
        return ProposalState.DEFEATED
    eta: uint256 = governor_timelock._eta(proposal_id)
    if eta == 0:
        return ProposalState.SUCCEEDED
    # Queued: the timelock has the last word (its executor role is open, so a batch may run
    # without this governor).
    if governor_timelock._operation_done(proposal_id):
        return ProposalState.EXECUTED
    if not governor_timelock._operation_pending(proposal_id):
        return ProposalState.CANCELED
    if now >= eta + governor_timelock.gracePeriod:
        return ProposalState.EXPIRED
    return ProposalState.QUEUED


@internal
@view
def _validate_state(proposal_id: uint256, allowed: ProposalState) -> bool:
    """
    @dev OpenZeppelin's `_validateStateBitmap`: whether the proposal's state is one of `allowed`.
    """
    return self._state(proposal_id) in allowed


@internal
def _cast_vote(proposal_id: uint256, account: address, support: uint8, reason: String[MAX_REASON]) -> uint256:
    assert self._validate_state(proposal_id, ProposalState.ACTIVE), "ProposalNotActive"
    core: uint256 = self._cores[proposal_id]
    snapshot: uint256 = (core >> 160) & _MASK48
    weight: uint256 = governor_votes._get_votes(account, snapshot)
    governor_counting._count_vote(proposal_id, account, support, weight)
    governor_late_quorum._tally_updated(
        proposal_id,
        governor_counting._quorum_reached(proposal_id, governor_votes._quorum(snapshot)),
        snapshot + (core >> 208),
    )
    log VoteCast(voter=account, proposalId=proposal_id, support=support, weight=weight, reason=reason)
    return weight


@internal
def _set_voting_delay(new_delay: uint256):
    assert new_delay < MAX_PERIOD, "InvalidVotingDelay"
    log VotingDelaySet(oldVotingDelay=self.votingDelay, newVotingDelay=new_delay)
    self.votingDelay = new_delay


@internal
def _set_voting_period(new_period: uint256):
    assert new_period > 0 and new_period < MAX_PERIOD, "InvalidVotingPeriod"
    log VotingPeriodSet(oldVotingPeriod=self.votingPeriod, newVotingPeriod=new_period)
    self.votingPeriod = new_period


@internal
def _set_proposal_threshold(new_threshold: uint256):
    log ProposalThresholdSet(oldProposalThreshold=self.proposalThreshold, newProposalThreshold=new_threshold)
    self.proposalThreshold = new_threshold
