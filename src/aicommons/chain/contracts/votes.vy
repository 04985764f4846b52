# pragma version ~=0.4.3
"""
@title votes: checkpointed, delegated voting power for snekmate's erc20 (ERC-5805, ERC-6372)
@notice A holder's tokens count as votes only once the holder delegates them, to itself or to
        anyone else (`delegate`, or `delegateBySig` with an EIP-712 signature). Every change of
        a delegate's votes and of the total supply is recorded with the time it happened, so
        `getPastVotes(account, t)` and `getPastTotalSupply(t)` answer for any past `t`: a governor
        that reads weights at a snapshot taken before voting opens cannot be swayed by tokens
        borrowed, bought or moved afterwards (the flash-loan lesson of Beanstalk, 2022).
        The clock is `block.timestamp` (ERC-6372 `CLOCK_MODE` "mode=timestamp"): periods mean
        the same number of seconds on every chain, whatever its block time, and the governor's
        periods and the timelock's delay share one unit (docs/governance.md says why).
@dev Use: `initializes: erc20[...]`, `initializes: votes[erc20 := erc20]`, and call
     `votes._after_token_transfer(owner, to, amount)` after every `erc20._transfer`, `_mint` and
     `_burn` of the host (snekmate 0.1.2's own hooks are empty and cannot be overridden, so the
     host exports wrappers of `transfer`, `transferFrom`, `burn`, `burn_from` that call it).
     `delegateBySig` shares erc20's `nonces` with `permit`, so one signature nonce sequence
     covers both, as in OpenZeppelin's ERC20Votes + ERC20Permit.

     Storage. A checkpoint is 128 bits: `key << 92 | value`, key = the timestamp it was
     written at (36 bits, good until the year 4147), value = votes from then on (92 bits).
     Two checkpoints share a storage word (the older one in the low half), which halves the
     cost of history; a delegate's words live in `_history[owner][0..words)`, where `words`
     sits in the top 96 bits of `_accounts[owner]` next to the account's own delegatee (low
     160 bits), so a transfer between self-delegated holders reads no separate counter.
     The zero address is never a delegate (votes moved to or from "no delegate" are simply
     not recorded), so its trace holds the total supply.

     Invariants (tested against a Python model over long random sequences):
     - the latest checkpoint of delegate d = sum of balanceOf[h] over holders h with
       delegates(h) == d, or 0 without checkpoints; that of the zero address = totalSupply;
     - keys strictly increase along a trace; at most one checkpoint per key (a second change
       at the same timestamp overwrites the first: only the state at the end of a timestamp
       is observable, and only once the clock has moved past it);
     - every value fits 92 bits (the host caps its supply at MAX_SUPPLY).
     Reverts: FutureLookup, SignatureExpired, InvalidNonce, VotesOverflow, ClockOverflow, and
     snekmate ecdsa's reasons for a malformed signature.
"""

from snekmate.tokens import erc20
from snekmate.utils import ecdsa

uses: erc20

# A checkpoint: key (timestamp) in the top 36 of 128 bits, value in the low 92.
_VALUE_BITS: constant(uint256) = 92
_VALUE_MASK: constant(uint256) = (1 << _VALUE_BITS) - 1
_KEY_LIMIT: constant(uint256) = 1 << 36
_HALF_MASK: constant(uint256) = (1 << 128) - 1
_ADDRESS_MASK: constant(uint256) = (1 << 160) - 1
_ONE_WORD: constant(uint256) = 1 << 160

# The largest total supply whose every vote count fits a checkpoint.
MAX_SUPPLY: constant(uint256) = _VALUE_MASK

# Binary search over at most 2**96 words (the counter's width) never needs more steps.
_MAX_SEARCH_STEPS: constant(uint256) = 96

_DELEGATION_TYPE_HASH: constant(bytes32) = keccak256(
    "Delegation(address delegatee,uint256 nonce,uint256 expiry)"
)

# delegatee (low 160 bits) | number of history words of this address as a delegate (top 96).
_accounts: HashMap[address, uint256]
# (delegate, word index) -> two checkpoints; the zero address holds the total supply's.
_history: HashMap[address, HashMap[uint256, uint256]]


event DelegateChanged:
    delegator: indexed(address)
    fromDelegate: indexed(address)
    toDelegate: indexed(address)


event DelegateVotesChanged:
    delegate: indexed(address)
    previousVotes: uint256
    newVotes: uint256


@external
@view
def clock() -> uint48:
    """
    @notice ERC-6372: the current timepoint, the block's timestamp.
    @return The block timestamp as uint48.
    """
    return convert(block.timestamp, uint48)


@external
@view
def CLOCK_MODE() -> String[14]:
    """
    @notice ERC-6372: how `clock` counts.
    @return "mode=timestamp".
    """
    return "mode=timestamp"


@external
@view
def delegates(account: address) -> address:
    """
    @param account A holder.
    @return The address `account`'s votes go to (zero: not delegated, the tokens do not vote).
    """
    return self._delegates(account)


@external
@view
def getVotes(account: address) -> uint256:
    """
    @param account A delegate.
    @return Its current votes: the balances of every holder that delegates to it.
    """
    return self._latest(account)


@external
@view
def getPastVotes(account: address, timepoint: uint256) -> uint256:
    """
    @notice The votes `account` had at the end of `timepoint` (a past timestamp).
    @param account A delegate.
    @param timepoint A timestamp strictly before the current block's.
    @return Its votes then.
    """
    assert timepoint < block.timestamp, "FutureLookup"
    return self._lookup(account, timepoint)


@external
@view
def getPastTotalSupply(timepoint: uint256) -> uint256:
    """
    @notice The total supply at the end of `timepoint`, delegated or not.
    @param timepoint A timestamp strictly before the current block's.
    @return The total supply then.
    """
    assert timepoint < block.timestamp, "FutureLookup"
    return self._lookup(empty(address), timepoint)


@external
def delegate(delegatee: address):
    """
    @notice Give all of the caller's votes, now and as its balance changes, to `delegatee`
            (the caller itself to vote directly; the zero address to stop voting).
    @param delegatee Who votes with the caller's tokens.
    """
    self._delegate(msg.sender, delegatee)


@external
def delegateBySig(delegatee: address, nonce: uint256, expiry: uint256, v: uint8, r: bytes32, s: bytes32):
    """
    @notice `delegate` on behalf of the signer of an EIP-712 `Delegation(delegatee, nonce,
            expiry)` in the token's domain; anyone may submit it.
    @param delegatee Who votes with the signer's tokens.
    @param nonce The signer's current `nonces` value (shared with `permit`).
    @param expiry The last timestamp at which the signature is accepted.
    @param v The signature's recovery byte.
    @param r The signature's r.
    @param s The signature's s.
    """
    assert block.timestamp <= expiry, "SignatureExpired"
    struct_hash: bytes32 = keccak256(abi_encode(_DELEGATION_TYPE_HASH, delegatee, nonce, expiry))
    digest: bytes32 = erc20.eip712_domain_separator._hash_typed_data_v4(struct_hash)
    # ecdsa refuses malleable and invalid signatures, so the signer is never the zero address.
    signer: address = ecdsa._recover_vrs(
        digest, convert(v, uint256), convert(r, uint256), convert(s, uint256)
    )
    assert nonce == erc20.nonces[signer], "InvalidNonce"
    erc20.nonces[signer] = nonce + 1
    self._delegate(signer, delegatee)


@internal
def _after_token_transfer(owner: address, to: address, amount: uint256):
    """
    @dev Call after every balance change of the host's erc20: moves `amount` votes from the
         delegate of `owner` to the delegate of `to`, and records mints (`owner` zero) and burns
         (`to` zero) in the total-supply trace.
    @param owner Tokens left this holder (zero: minted).
    @param to Tokens reached this holder (zero: burned).
    @param amount How many.
    """
    if owner == empty(address):
        self._write(empty(address), amount, True)
    if to == empty(address):
        self._write(empty(address), amount, False)
    self._move_votes(self._delegates(owner), self._delegates(to), amount)


@internal
def _delegate(account: address, delegatee: address):
    slot: uint256 = self._accounts[account]
    previous: address = convert(slot & _ADDRESS_MASK, address)
    self._accounts[account] = (slot & ~_ADDRESS_MASK) | convert(delegatee, uint256)
    log DelegateChanged(delegator=account, fromDelegate=previous, toDelegate=delegatee)
    self._move_votes(previous, delegatee, erc20.balanceOf[account])


@internal
def _move_votes(source: address, destination: address, amount: uint256):
    if source == destination or amount == 0:
        return
    before: uint256 = 0
    after: uint256 = 0
    if source != empty(address):
        before, after = self._write(source, amount, False)
        log DelegateVotesChanged(delegate=source, previousVotes=before, newVotes=after)
    if destination != empty(address):
        before, after = self._write(destination, amount, True)
        log DelegateVotesChanged(delegate=destination, previousVotes=before, newVotes=after)


@internal
def _write(owner: address, amount: uint256, increase: bool) -> (uint256, uint256):
    """
    @dev Add (or take) `amount` to the latest value of `owner`'s trace, as of now: overwrite
         the latest checkpoint if it was written at this timestamp, else append one (in the free
         high half of the last word, or in a new word).
    @return (the value before, the value after).
    """
    now: uint256 = block.timestamp
    assert now < _KEY_LIMIT, "ClockOverflow"
    account: uint256 = self._accounts[owner]
    words: uint256 = account >> 160
    word: uint256 = 0
    high: uint256 = 0
    last: uint256 = 0
    if words != 0:
        word = self._history[owner][words - 1]
        high = word >> 128
        last = high if high != 0 else word & _HALF_MASK
    before: uint256 = last & _VALUE_MASK
    after: uint256 = before + amount if increase else before - amount
    assert after <= _VALUE_MASK, "VotesOverflow"
    entry: uint256 = now << _VALUE_BITS | after
    if words != 0 and last >> _VALUE_BITS == now:
        # Same timestamp: replace the latest checkpoint in place.
        if high != 0:
            self._history[owner][words - 1] = entry << 128 | (word & _HALF_MASK)
        else:
            self._history[owner][words - 1] = entry
    elif words != 0 and high == 0:
        self._history[owner][words - 1] = entry << 128 | word
    else:
        self._history[owner][words] = entry
        self._accounts[owner] = account + _ONE_WORD
    return before, after


@internal
@view
def _delegates(account: address) -> address:
    return convert(self._accounts[account] & _ADDRESS_MASK, address)


@internal
@view
def _latest(owner: address) -> uint256:
    words: uint256 = self._accounts[owner] >> 160
    if words == 0:
        return 0
    word: uint256 = self._history[owner][words - 1]
    high: uint256 = word >> 128
    if high != 0:
        return high & _VALUE_MASK
    return word & _VALUE_MASK


@internal
@view
def _lookup(owner: address, timepoint: uint256) -> uint256:
    """
    @dev The value of the last checkpoint with key <= timepoint, 0 if none. Checks the last
         word first (a governor asks about a snapshot that has just passed), then binary
         searches for the last word whose older checkpoint is not after `timepoint`.
    """
    words: uint256 = self._accounts[owner] >> 160
    if words == 0:
        return 0
    word: uint256 = self._history[owner][words - 1]
    if (word & _HALF_MASK) >> _VALUE_BITS > timepoint:
        # Invariant of the search: the answer word is in [low, high); word `high` starts after.
        low: uint256 = 0
        high: uint256 = words - 1
        for _: uint256 in range(_MAX_SEARCH_STEPS):
            if low >= high:
                break
            middle: uint256 = unsafe_add(low, high) // 2
            if (self._history[owner][middle] & _HALF_MASK) >> _VALUE_BITS > timepoint:
                high = middle
            else:
                low = middle + 1
        if low == 0:
            return 0
        word = self._history[owner][low - 1]
    newer: uint256 = word >> 128
    if newer != 0 and newer >> _VALUE_BITS <= timepoint:
        return newer & _VALUE_MASK
    return word & _VALUE_MASK
