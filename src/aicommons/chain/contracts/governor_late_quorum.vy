# pragma version ~=0.4.3
"""
@title governor_late_quorum: a vote that reaches quorum late gets time for a response
       (OpenZeppelin's GovernorPreventLateQuorum)
@notice Without this, a large holder could wait until the last moment and swing a proposal
        past quorum when nobody can answer. The first vote that brings a proposal to quorum
        moves its deadline to at least that vote's time + `lateQuorumVoteExtension`.
@dev Use: `initializes: governor_late_quorum`; the governor calls `_tally_updated` after each
     counted vote and takes `_deadline(id, original)` as the proposal's deadline.
     Invariants: a proposal's extension is set at most once (at the vote that first reaches
     quorum); a deadline never moves earlier.
"""

lateQuorumVoteExtension: public(uint256)
_extended_deadlines: HashMap[uint256, uint256]


event ProposalExtended:
    proposalId: indexed(uint256)
    extendedDeadline: uint256


event LateQuorumVoteExtensionSet:
    oldVoteExtension: uint256
    newVoteExtension: uint256


@deploy
def __init__(vote_extension_: uint256):
    """
    @param vote_extension_ Seconds of voting guaranteed after quorum is first reached.
    """
    self._set_vote_extension(vote_extension_)


@internal
def _set_vote_extension(new_extension: uint256):
    log LateQuorumVoteExtensionSet(oldVoteExtension=self.lateQuorumVoteExtension, newVoteExtension=new_extension)
    self.lateQuorumVoteExtension = new_extension


@internal
@view
def _deadline(proposal_id: uint256, original: uint256) -> uint256:
    return max(original, self._extended_deadlines[proposal_id])


@internal
def _tally_updated(proposal_id: uint256, quorum_reached: bool, original: uint256):
    """
    @param quorum_reached Whether the proposal has reached quorum now, with the vote just cast.
    @param original The deadline the proposal was created with.
    """
    if self._extended_deadlines[proposal_id] != 0 or not quorum_reached:
        return
    extended: uint256 = block.timestamp + self.lateQuorumVoteExtension
    if extended > max(original, self._extended_deadlines[proposal_id]):
        log ProposalExtended(proposalId=proposal_id, extendedDeadline=extended)
    self._extended_deadlines[proposal_id] = extended
