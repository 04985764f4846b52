# pragma version ~=0.4.3
"""
@title governor_votes: voting weight and quorum from an ERC-5805 token (OpenZeppelin's
       GovernorVotes + GovernorVotesQuorumFraction)
@notice An account's weight in a proposal is its delegated votes at the proposal's snapshot,
        read from the token's checkpoints; the quorum is a fraction (basis points) of the
        token's total supply at the same snapshot. The fraction itself is checkpointed, so
        changing it never changes the quorum of a proposal whose snapshot has passed.
@dev Use: `initializes: governor_votes`, `governor_votes.__init__(token, quorum_bps)`; the
     governance-only setter lives in the host, which calls `_update_quorum_numerator`.
     Invariants: quorum history keys strictly increase (one entry per timestamp, the last
     change in a timestamp wins); quorum_numerator <= QUORUM_DENOMINATOR.
     Reverts: ZeroAddress, UnsupportedClock, InvalidQuorumFraction, FutureLookup (from the token).
"""

interface IVotes:
    def clock() -> uint48: view
    def CLOCK_MODE() -> String[14]: view
    def getVotes(account: address) -> uint256: view
    def getPastVotes(account: address, timepoint: uint256) -> uint256: view
    def getPastTotalSupply(timepoint: uint256) -> uint256: view


# Quorum fractions are in basis points of the past total supply.
QUORUM_DENOMINATOR: constant(uint256) = 10_000
_MAX_SEARCH_STEPS: constant(uint256) = 64
_LOW_MASK: constant(uint256) = (1 << 128) - 1

token: public(immutable(IVotes))

# (timestamp << 128 | numerator) entries, oldest first.
_quorum_history: HashMap[uint256, uint256]
_quorum_history_length: uint256


event QuorumNumeratorUpdated:
    oldQuorumNumerator: uint256
    newQuorumNumerator: uint256


@deploy
def __init__(token_: address, quorum_numerator_: uint256):
    """
    @param token_ The ERC-5805 votes token (CommonsToken).
    @param quorum_numerator_ Quorum in basis points of the past total supply.
    """
    assert token_ != empty(address), "ZeroAddress"
    token = IVotes(token_)
    # The governor and the timelock count in seconds: the token must too.
    assert staticcall token.CLOCK_MODE() == "mode=timestamp", "UnsupportedClock"
    self._update_quorum_numerator(quorum_numerator_)


@external
@view
def clock() -> uint48:
    """
    @return The token's clock (ERC-6372): the block timestamp.
    """
    return staticcall token.clock()


@external
@view
def CLOCK_MODE() -> String[14]:
    """
    @return The token's clock mode, "mode=timestamp".
    """
    return staticcall token.CLOCK_MODE()


@external
@view
def getVotes(account: address, timepoint: uint256) -> uint256:
    """
    @param account A voter.
    @param timepoint A past timestamp.
    @return `account`'s voting weight at `timepoint`.
    """
    return self._get_votes(account, timepoint)


@external
@view
def quorum(timepoint: uint256) -> uint256:
    """
    @param timepoint A past timestamp (a proposal's snapshot).
    @return The For + Abstain weight a proposal with that snapshot needs.
    """
    return self._quorum(timepoint)


@external
@view
def quorumNumerator() -> uint256:
    """
    @return The current quorum fraction, in basis points.
    """
    return self._quorum_history[self._quorum_history_length - 1] & _LOW_MASK


@external
@view
def quorumNumeratorAt(timepoint: uint256) -> uint256:
    """
    @param timepoint A timestamp.
    @return The quorum fraction in force at the end of `timepoint`, in basis points.
    """
    return self._quorum_numerator_at(timepoint)


@external
@pure
def quorumDenominator() -> uint256:
    """
    @return 10000: quorum fractions are basis points.
    """
    return QUORUM_DENOMINATOR


@internal
@view
def _get_votes(account: address, timepoint: uint256) -> uint256:
    return staticcall token.getPastVotes(account, timepoint)


@internal
@view
def _quorum(timepoint: uint256) -> uint256:
    supply: uint256 = staticcall token.getPastTotalSupply(timepoint)
    return supply * self._quorum_numerator_at(timepoint) // QUORUM_DENOMINATOR


@internal
def _update_quorum_numerator(new_numerator: uint256):
    assert new_numerator <= QUORUM_DENOMINATOR, "InvalidQuorumFraction"
    length: uint256 = self._quorum_history_length
    old_numerator: uint256 = 0
    if length > 0:
        last: uint256 = self._quorum_history[length - 1]
        old_numerator = last & _LOW_MASK
        if last >> 128 == block.timestamp:
            length -= 1
    self._quorum_history[length] = block.timestamp << 128 | new_numerator
    self._quorum_history_length = length + 1
    log QuorumNumeratorUpdated(oldQuorumNumerator=old_numerator, newQuorumNumerator=new_numerator)


@internal
@view
def _quorum_numerator_at(timepoint: uint256) -> uint256:
    """
    @dev The last entry with key <= timepoint (the constructor's entry is the oldest; before it
         there was no governor, so asking is meaningless and gets the oldest value).
    """
    length: uint256 = self._quorum_history_length
    last: uint256 = self._quorum_history[length - 1]
    if last >> 128 <= timepoint:
        return last & _LOW_MASK
    # Find the first entry after `timepoint` in [low, high); the answer is the one before it.
    low: uint256 = 0
    high: uint256 = length - 1
    for _: uint256 in range(_MAX_SEARCH_STEPS):
        if low >= high:
            break
        middle: uint256 = (low + high) // 2
        if self._quorum_history[middle] >> 128 > timepoint:
            high = middle
        else:
            low = middle + 1
    if low == 0:
        return self._quorum_history[0] & _LOW_MASK
    return self._quorum_history[low - 1] & _LOW_MASK
