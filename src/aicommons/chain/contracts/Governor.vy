# pragma version ~=0.4.3
"""
@title Governor: token-weighted proposals, queued and executed through the Timelock
@notice OpenZeppelin's Governor lifecycle and parameters over CommonsToken's votes: a holder
        with `proposalThreshold` votes proposes calls; after `votingDelay` seconds the votes of
        that instant are fixed and voting runs `votingPeriod` seconds (longer if quorum comes
        late); For + Abstain must reach `quorumNumerator` basis points of the supply at the
        snapshot, and For must beat Against; then anyone queues the proposal in the timelock
        and, after its delay and within the grace period, anyone executes it.
@dev The parts, as OpenZeppelin splits them: governor_core (lifecycle, EIP-712 ballots),
     governor_votes (GovernorVotes + GovernorVotesQuorumFraction), governor_counting
     (GovernorCountingSimple), governor_timelock (GovernorTimelockControl),
     governor_late_quorum (GovernorPreventLateQuorum). The setters below are governance-only:
     the timelock calls them when a proposal to change them is executed.
     Reverts: NotGovernance and those of the modules.
"""

from snekmate.utils import eip712_domain_separator

import governor_core
import governor_counting
import governor_late_quorum
import governor_timelock
import governor_votes

initializes: governor_votes
initializes: governor_counting
initializes: governor_timelock
initializes: governor_late_quorum
initializes: governor_core[
    governor_votes := governor_votes,
    governor_counting := governor_counting,
    governor_timelock := governor_timelock,
    governor_late_quorum := governor_late_quorum,
]

exports: (
    governor_core.name,
    governor_core.version,
    governor_core.votingDelay,
    governor_core.votingPeriod,
    governor_core.proposalThreshold,
    governor_core.nonces,
    governor_core.hashProposal,
    governor_core.state,
    governor_core.proposalSnapshot,
    governor_core.proposalDeadline,
    governor_core.proposalProposer,
    governor_core.check_executable,
    governor_core.propose,
    governor_core.castVote,
    governor_core.castVoteWithReason,
    governor_core.castVoteBySig,
    governor_core.queue,
    governor_core.execute,
    governor_core.cancel,
    governor_core.eip712_domain_separator.eip712Domain,
    governor_votes.token,
    governor_votes.clock,
    governor_votes.CLOCK_MODE,
    governor_votes.getVotes,
    governor_votes.quorum,
    governor_votes.quorumNumerator,
    governor_votes.quorumNumeratorAt,
    governor_votes.quorumDenominator,
    governor_counting.COUNTING_MODE,
    governor_counting.hasVoted,
    governor_counting.proposalVotes,
    governor_timelock.timelock,
    governor_timelock.gracePeriod,
    governor_timelock.proposalEta,
    governor_timelock.proposalNeedsQueuing,
    governor_late_quorum.lateQuorumVoteExtension,
)

_NAME: constant(String[50]) = "aicommons Governor"


@deploy
def __init__(
    token_: address,
    timelock_: address,
    voting_delay_: uint256,
    voting_period_: uint256,
    proposal_threshold_: uint256,
    quorum_numerator_: uint256,
    late_quorum_extension_: uint256,
    grace_period_: uint256,
):
    """
    @param token_ CommonsToken (ERC-5805 votes, timestamp clock).
    @param timelock_ The Timelock this governor proposes to (it must make the governor its only
           proposer and canceller).
    @param voting_delay_ Seconds from proposal to snapshot.
    @param voting_period_ Seconds of voting.
    @param proposal_threshold_ Votes needed to propose (base units).
    @param quorum_numerator_ Quorum in basis points of the supply at the snapshot.
    @param late_quorum_extension_ Seconds of voting guaranteed after quorum is first reached.
    @param grace_period_ Seconds a queued proposal stays executable after its eta.
    """
    governor_votes.__init__(token_, quorum_numerator_)
    governor_timelock.__init__(timelock_, grace_period_)
    governor_late_quorum.__init__(late_quorum_extension_)
    governor_core.__init__(_NAME, voting_delay_, voting_period_, proposal_threshold_)


@external
def setVotingDelay(newVotingDelay: uint256):
    """
    @notice Governance only: seconds from proposal to snapshot, for new proposals.
    """
    governor_timelock._check_governance()
    governor_core._set_voting_delay(newVotingDelay)


@external
def setVotingPeriod(newVotingPeriod: uint256):
    """
    @notice Governance only: seconds of voting, for new proposals.
    """
    governor_timelock._check_governance()
    governor_core._set_voting_period(newVotingPeriod)


@external
def setProposalThreshold(newProposalThreshold: uint256):
    """
    @notice Governance only: votes needed to propose.
    """
    governor_timelock._check_governance()
    governor_core._set_proposal_threshold(newProposalThreshold)


@external
def updateQuorumNumerator(newQuorumNumerator: uint256):
    """
    @notice Governance only: the quorum in basis points, for snapshots from now on.
    """
    governor_timelock._check_governance()
    governor_votes._update_quorum_numerator(newQuorumNumerator)


@external
def setLateQuorumVoteExtension(newVoteExtension: uint256):
    """
    @notice Governance only: seconds of voting guaranteed after quorum is first reached.
    """
    governor_timelock._check_governance()
    governor_late_quorum._set_vote_extension(newVoteExtension)


@external
def setGracePeriod(newGracePeriod: uint256):
    """
    @notice Governance only: how long a queued proposal stays executable after its eta.
    """
    governor_timelock._check_governance()
    governor_timelock._set_grace_period(newGracePeriod)
