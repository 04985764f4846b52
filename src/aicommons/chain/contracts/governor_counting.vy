# pragma version ~=0.4.3
"""
@title governor_counting: For / Against / Abstain tallies (OpenZeppelin's GovernorCountingSimple)
@notice One vote per account and proposal, with the account's whole weight. A proposal
        succeeds when For > Against; For and Abstain both count towards the quorum, so
        abstaining still says "this vote is legitimate".
@dev Use: `initializes: governor_counting`; the governor calls `_count_vote` once per vote and
     asks `_quorum_reached` / `_vote_succeeded` when a vote has ended.
     Invariants: has_voted[id][a] flips false -> true once; each tally only grows, by the
     weight of one account's vote.
     Reverts: AlreadyVoted, InvalidVoteType.
"""

# Support values, as in Compound Bravo and OpenZeppelin.
VOTE_AGAINST: constant(uint8) = 0
VOTE_FOR: constant(uint8) = 1
VOTE_ABSTAIN: constant(uint8) = 2


struct ProposalVotes:
    against_votes: uint256
    for_votes: uint256
    abstain_votes: uint256


_votes: HashMap[uint256, ProposalVotes]
_has_voted: HashMap[uint256, HashMap[address, bool]]


@external
@pure
def COUNTING_MODE() -> String[64]:
    """
    @notice How votes are counted, in the format of OpenZeppelin's IGovernor.
    @return "support=bravo&quorum=for,abstain".
    """
    return "support=bravo&quorum=for,abstain"


@external
@view
def hasVoted(proposalId: uint256, account: address) -> bool:
    """
    @param proposalId The proposal.
    @param account A voter.
    @return Whether `account` has voted on it.
    """
    return self._has_voted[proposalId][account]


@external
@view
def proposalVotes(proposalId: uint256) -> (uint256, uint256, uint256):
    """
    @param proposalId The proposal.
    @return (against, for, abstain) weights so far.
    """
    tally: ProposalVotes = self._votes[proposalId]
    return tally.against_votes, tally.for_votes, tally.abstain_votes


@internal
def _count_vote(proposal_id: uint256, account: address, support: uint8, weight: uint256):
    assert support <= VOTE_ABSTAIN, "InvalidVoteType"
    assert not self._has_voted[proposal_id][account], "AlreadyVoted"
    self._has_voted[proposal_id][account] = True
    if support == VOTE_AGAINST:
        self._votes[proposal_id].against_votes += weight
    elif support == VOTE_FOR:
        self._votes[proposal_id].for_votes += weight
    else:
        self._votes[proposal_id].abstain_votes += weight


@internal
@view
def _quorum_reached(proposal_id: uint256, quorum: uint256) -> bool:
    tally: ProposalVotes = self._votes[proposal_id]
    return quorum <= tally.for_votes + tally.abstain_votes


@internal
@view
def _vote_succeeded(proposal_id: uint256) -> bool:
    tally: ProposalVotes = self._votes[proposal_id]
    return tally.for_votes > tally.against_votes
