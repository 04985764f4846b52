# pragma version ~=0.4.3
"""
@title votes: balances with checkpointed, delegated voting power (ERC-5805, ERC-6372)
@notice A holder's tokens count as votes only once the holder delegates them, to itself or to
        anyone else (`delegate`, or `delegateBySig` with an EIP-712 signature). Every change of
        a delegate's votes and of the total supply is recorded with the time it happened, so
        `getPastVotes(account, t)` and `getPastTotalSupply(t)` answer for any past `t`: a governor
        that reads weights at a snapshot taken before voting opens cannot be swayed by tokens
        borrowed, bought or moved afterwards (the flash-loan lesson of Beanstalk, 2022).
        The clock is `block.timestamp` (ERC-6372 `CLOCK_MODE` "mode=timestamp"): periods mean
        the same number of seconds on every chain, whatever its block time, and the governor's
        periods and the timelock's delay share one unit (docs/governance.md says why).
@dev Use: `initializes: erc20[...]`, `initializes: votes[erc20 := erc20]`; the host routes every
     balance change through `votes._transfer`, `votes._mint` and `votes._burn` (never erc20's)
     and exports `votes.balanceOf`. This module keeps the balances itself, beside each account's
     vote state in one storage word, because a transfer then touches no slot that a plain
     ERC-20 transfer does not touch, except the delegates' histories (docs/governance.md,
     "Gas"); snekmate's erc20 keeps the total supply, allowances, permit, nonces and the
     EIP-712 domain, and its `balanceOf` map stays empty. The checks, revert reasons and
     `Transfer` events are erc20's. `delegateBySig` shares erc20's `nonces` with `permit`, so one
     signature nonce sequence covers both, as in OpenZeppelin's ERC20Votes + ERC20Permit.

     Storage. `_accounts[a]`, one word per address, low bits first:
       balance (90 bits) | latest checkpoint of a as a delegate: value (90) and key (36) |
       number of checkpoints of a (38) | delegation mode (2: none, self, other).
     With mode "other" the delegatee is in `_delegatee[a]`; "self" needs no address, so a
     transfer between self-delegated holders reads nothing but the two account words.
     A checkpoint is `key << 90 | value` (126 bits; key = the timestamp it was written at, good
     until 2^36 s, the year 4147; value = the votes from then on). Every checkpoint, the latest
     included, is also in `_history[a][i // 2]`, two to a word (checkpoint i in the low half
     when i is even, in the high half when odd), so every other checkpoint writes an already
     non-zero word. The zero address is never a delegate (votes moved to or from "no delegate"
     are not recorded): its trace holds the total supply.
     Widths: values fit 90 bits because the host caps its supply at MAX_SUPPLY = 2^90 - 1 (1.24e27,
     1.24 billion AIC at 18 decimals), and a balance or vote count never exceeds the supply;
     a trace has at most one checkpoint per key and keys are below 2^36, so the count fits 38.

     Invariants (tested against a Python model over long random sequences):
     - the latest checkpoint of delegate d = sum of balanceOf(h) over holders h with
       delegates(h) == d, or 0 without checkpoints; that of the zero address = totalSupply;
     - the latest checkpoint in `_accounts[d]` equals checkpoint count - 1 of `_history[d]`;
     - keys strictly increase along a trace; at most one checkpoint per key (a second change
       at the same timestamp overwrites the first: only the state at the end of a timestamp
       is observable, and only once the clock has moved past it);
     - the sum of all balances = erc20.totalSupply <= MAX_SUPPLY.
     Reverts: FutureLookup, SignatureExpired, InvalidNonce, VotesOverflow, ClockOverflow, erc20's
     transfer, mint and burn reasons, and snekmate ecdsa's reasons for a malformed signature.
"""

from ethereum.ercs import IERC20
from snekmate.tokens import erc20
from snekmate.utils import ecdsa

uses: erc20

_VALUE_BITS: constant(uint256) = 90
_VALUE_MASK: constant(uint256) = (1 << _VALUE_BITS) - 1
_KEY_LIMIT: constant(uint256) = 1 << 36
# A checkpoint, `key << 90 | value`, in a 128-bit half of a history word.
_CHECKPOINT_MASK: constant(uint256) = (1 << 126) - 1
_HALF_MASK: constant(uint256) = (1 << 128) - 1

# The account word: balance, latest checkpoint, checkpoint count, delegation mode.
_BALANCE_MASK: constant(uint256) = _VALUE_MASK
_LATEST_SHIFT: constant(uint256) = 90
_COUNT_SHIFT: constant(uint256) = 216
_COUNT_MASK: constant(uint256) = (1 << 38) - 1
_MODE_SHIFT: constant(uint256) = 254
# Everything a checkpoint write changes: the latest checkpoint and the count (bits 90..253).
_TRACE_MASK: constant(uint256) = ((1 << 164) - 1) << _LATEST_SHIFT
_MODE_MASK: constant(uint256) = 3 << _MODE_SHIFT

_MODE_NONE: constant(uint256) = 0
_MODE_SELF: constant(uint256) = 1
_MODE_OTHER: constant(uint256) = 2

# The largest total supply whose every balance and vote count fits its field.
MAX_SUPPLY: constant(uint256) = _VALUE_MASK

# A binary search over fewer than 2**38 checkpoints never needs more steps.
_MAX_SEARCH_STEPS: constant(uint256) = 40

_DELEGATION_TYPE_HASH: constant(bytes32) = keccak256(
    "Delegation(address delegatee,uint256 nonce,uint256 expiry)"
)

_accounts: HashMap[address, uint256]
# The delegatee of an account whose mode is "other" (empty otherwise).
_delegatee: HashMap[address, address]
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
def balanceOf(account: address) -> uint256:
    """
    @param account A holder.
    @return Its balance in base units.
    """
    return self._accounts[account] & _BALANCE_MASK


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
    return self._delegate_of(account, self._accounts[account])


@external
@view
def getVotes(account: address) -> uint256:
    """
    @param account A delegate.
    @return Its current votes: the balances of every holder that delegates to it (0 for the
            zero address, which is never a delegate).
    """
    if account == empty(address):
        return 0
    return (self._accounts[account] >> _LATEST_SHIFT) & _VALUE_MASK


@external
@view
def getPastVotes(account: address, timepoint: uint256) -> uint256:
    """
    @notice The votes `account` had at the end of `timepoint` (a past timestamp).
    @param account A delegate (the zero address always had 0).
    @param timepoint A timestamp strictly before the current block's.
    @return Its votes then.
    """
    assert timepoint < block.timestamp, "FutureLookup"
    if account == empty(address):
        return 0
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
def _transfer(owner: address, to: address, amount: uint256):
    """
    @dev erc20's `_transfer` on this module's balances, then the votes follow: `amount` moves
         from the delegate of `owner` to the delegate of `to`. When a delegate is `owner` or
         `to` itself (self-delegation, the common case), its checkpoint goes into the account
         word already being rewritten, so each account word is stored once.
    @param owner Whose tokens, not the zero address.
    @param to The receiver, not the zero address.
    @param amount In base units, at most `owner`'s balance.
    """
    assert owner != empty(address), "erc20: transfer from the zero address"
    assert to != empty(address), "erc20: transfer to the zero address"
    owner_word: uint256 = self._accounts[owner]
    assert owner_word & _BALANCE_MASK >= amount, "erc20: transfer amount exceeds balance"
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)
    if owner == to or amount == 0:
        return
    # The balance is the low field: no borrow (checked above), no carry (the sum of all
    # balances is the supply, at most MAX_SUPPLY).
    owner_word = unsafe_sub(owner_word, amount)
    to_word: uint256 = unsafe_add(self._accounts[to], amount)
    source: address = self._delegate_of(owner, owner_word)
    destination: address = self._delegate_of(to, to_word)
    before: uint256 = 0
    after: uint256 = 0
    if source != destination:
        if source == owner:
            owner_word, before, after = self._push(owner, owner_word, amount, False)
        elif source == to:
            to_word, before, after = self._push(to, to_word, amount, False)
        elif source != empty(address):
            before, after = self._write(source, amount, False)
        if source != empty(address):
            log DelegateVotesChanged(delegate=source, previousVotes=before, newVotes=after)
        if destination == to:
            to_word, before, after = self._push(to, to_word, amount, True)
        elif destination == owner:
            owner_word, before, after = self._push(owner, owner_word, amount, True)
        elif destination != empty(address):
            before, after = self._write(destination, amount, True)
        if destination != empty(address):
            log DelegateVotesChanged(delegate=destination, previousVotes=before, newVotes=after)
    self._accounts[owner] = owner_word
    self._accounts[to] = to_word


@internal
def _mint(owner: address, amount: uint256):
    """
    @dev erc20's `_mint` on this module's balances; records the new supply and moves the votes
         to `owner`'s delegate. The caller keeps the supply at most MAX_SUPPLY.
    """
    assert owner != empty(address), "erc20: mint to the zero address"
    erc20.totalSupply += amount
    assert erc20.totalSupply <= MAX_SUPPLY, "VotesOverflow"
    owner_word: uint256 = self._accounts[owner]
    self._accounts[owner] = unsafe_add(owner_word, amount)
    log IERC20.Transfer(sender=empty(address), receiver=owner, value=amount)
    self._write(empty(address), amount, True)
    self._move_votes(empty(address), self._delegate_of(owner, owner_word), amount)


@internal
def _burn(owner: address, amount: uint256):
    """
    @dev erc20's `_burn` on this module's balances; records the new supply and takes the votes
         from `owner`'s delegate.
    """
    assert owner != empty(address), "erc20: burn from the zero address"
    owner_word: uint256 = self._accounts[owner]
    assert owner_word & _BALANCE_MASK >= amount, "erc20: burn amount exceeds balance"
    self._accounts[owner] = unsafe_sub(owner_word, amount)
    erc20.totalSupply = unsafe_sub(erc20.totalSupply, amount)
    log IERC20.Transfer(sender=owner, receiver=empty(address), value=amount)
    self._write(empty(address), amount, False)
    self._move_votes(self._delegate_of(owner, owner_word), empty(address), amount)


@internal
def _delegate(account: address, delegatee: address):
    word: uint256 = self._accounts[account]
    previous: address = self._delegate_of(account, word)
    mode: uint256 = _MODE_OTHER
    if delegatee == empty(address):
        mode = _MODE_NONE
    elif delegatee == account:
        mode = _MODE_SELF
    if mode == _MODE_OTHER:
        self._delegatee[account] = delegatee
    elif word >> _MODE_SHIFT == _MODE_OTHER:
        self._delegatee[account] = empty(address)
    self._accounts[account] = (word & ~_MODE_MASK) | mode << _MODE_SHIFT
    log DelegateChanged(delegator=account, fromDelegate=previous, toDelegate=delegatee)
    self._move_votes(previous, delegatee, word & _BALANCE_MASK)


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
    @dev `_push` on the stored account word of `owner`.
    @return (the value before, the value after).
    """
    word: uint256 = 0
    before: uint256 = 0
    after: uint256 = 0
    word, before, after = self._push(owner, self._accounts[owner], amount, increase)
    self._accounts[owner] = word
    return before, after


@internal
def _push(owner: address, word: uint256, amount: uint256, increase: bool) -> (uint256, uint256, uint256):
    """
    @dev Add (or take) `amount` to the latest value of `owner`'s trace, as of now: overwrite
         the latest checkpoint if it was written at this timestamp, else append checkpoint
         number `count` (a new word's low half when `count` is even, else the high half of
         the last word). Writes the history; the caller stores the returned account word.
    @param word `owner`'s account word as it stands (its trace fields are the stored ones).
    @return (the new account word, the value before, the value after).
    """
    now: uint256 = block.timestamp
    assert now < _KEY_LIMIT, "ClockOverflow"
    latest: uint256 = (word >> _LATEST_SHIFT) & _CHECKPOINT_MASK
    count: uint256 = (word >> _COUNT_SHIFT) & _COUNT_MASK
    before: uint256 = latest & _VALUE_MASK
    after: uint256 = before + amount if increase else before - amount
    assert after <= _VALUE_MASK, "VotesOverflow"
    entry: uint256 = now << _VALUE_BITS | after
    index: uint256 = count
    if count != 0 and latest >> _VALUE_BITS == now:
        index = count - 1
    else:
        count += 1
    if index & 1 == 0:
        # The low half of word index // 2, whose high half is still empty.
        self._history[owner][index >> 1] = entry
    else:
        half: uint256 = self._history[owner][index >> 1] & _HALF_MASK
        self._history[owner][index >> 1] = entry << 128 | half
    return (word & ~_TRACE_MASK) | entry << _LATEST_SHIFT | count << _COUNT_SHIFT, before, after


@internal
@view
def _delegate_of(account: address, word: uint256) -> address:
    """
    @dev The delegatee of `account`, whose account word is `word`.
    """
    mode: uint256 = word >> _MODE_SHIFT
    if mode == _MODE_SELF:
        return account
    if mode == _MODE_OTHER:
        return self._delegatee[account]
    return empty(address)


@internal
@view
def _checkpoint(owner: address, index: uint256) -> uint256:
    return (self._history[owner][index >> 1] >> ((index & 1) << 7)) & _CHECKPOINT_MASK


@internal
@view
def _lookup(owner: address, timepoint: uint256) -> uint256:
    """
    @dev The value of the last checkpoint with key <= timepoint, 0 if none. The latest
         checkpoint is in the account word (a governor asks about a snapshot that has just
         passed); otherwise a binary search of the history for the first key after `timepoint`.
    """
    word: uint256 = self._accounts[owner]
    count: uint256 = (word >> _COUNT_SHIFT) & _COUNT_MASK
    if count == 0:
        return 0
    latest: uint256 = (word >> _LATEST_SHIFT) & _CHECKPOINT_MASK
    if latest >> _VALUE_BITS <= timepoint:
        return latest & _VALUE_MASK
    # Invariant: the first checkpoint with key > timepoint has its index in [low, high].
    low: uint256 = 0
    high: uint256 = count - 1
    for _: uint256 in range(_MAX_SEARCH_STEPS):
        if low >= high:
            break
        middle: uint256 = unsafe_add(low, high) >> 1
        if self._checkpoint(owner, middle) >> _VALUE_BITS > timepoint:
            high = middle
        else:
            low = middle + 1
    if low == 0:
        return 0
    return self._checkpoint(owner, low - 1) & _VALUE_MASK
