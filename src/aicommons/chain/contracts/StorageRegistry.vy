# pragma version ~=0.4.3
"""
@title StorageRegistry: staked storage providers and on-chain proofs of storage
@notice Providers stake CommonsToken and commit to hold blobs, each named by its Merkle root and
        chunk count (docs/storage.md). Anyone may challenge a commitment by posting a bond; the
        challenged chunk and the 16 KiB segment inside it come from the hash of a block mined
        after the challenge was opened, the provider and the root, so neither side can choose
        them. The provider answers with the segment's bytes, its proof inside the chunk and the
        chunk's proof inside the blob before the deadline block. A valid answer earns the
        challenger's bond; an invalid, wrong-chunk or missing answer slashes part of the
        commitment's stake to the challenger and the treasury and ends the commitment.
@dev Pull payments: every payout is credited to `withdrawable` and claimed with `withdraw`.
     Invariant: token.balanceOf(self) == total_free + total_locked + total_bonds +
     total_withdrawable.
"""

from ethereum.ercs import IERC20

import merkle

# Largest segment a provider sends on-chain (the protocol's SEGMENT_SIZE).
MAX_SEGMENT_BYTES: constant(uint256) = 16384
# Segments in a full 1 MiB chunk; a chunk's segment tree never has more leaves.
MAX_SEGMENTS: constant(uint256) = 64
# blockhash() only reaches 256 blocks back; the answer window must stay inside it.
MAX_RESPONSE_BLOCKS: constant(uint256) = 250
BPS: constant(uint256) = 10000
LOW_128: constant(uint256) = 2**128 - 1

OPEN: constant(uint8) = 1
PASSED: constant(uint8) = 2
SLASHED: constant(uint8) = 3


struct Commitment:
    provider: address
    root: bytes32
    leaf_count: uint256
    locked: uint256
    open_challenge: uint256
    release_block: uint256


struct Challenge:
    commitment: bytes32
    challenger: address
    bond: uint256
    reveal_block: uint256
    deadline: uint256
    state: uint8


event Staked:
    provider: indexed(address)
    amount: uint256


event Unstaked:
    provider: indexed(address)
    amount: uint256


event Withdrawn:
    account: indexed(address)
    amount: uint256


event Committed:
    provider: indexed(address)
    root: indexed(bytes32)
    leaf_count: uint256
    locked: uint256


event ReleaseRequested:
    provider: indexed(address)
    root: indexed(bytes32)
    release_block: uint256


event Released:
    provider: indexed(address)
    root: indexed(bytes32)
    unlocked: uint256


event ChallengeOpened:
    challenge_id: indexed(uint256)
    provider: indexed(address)
    root: indexed(bytes32)
    challenger: address
    bond: uint256
    reveal_block: uint256
    deadline: uint256


event ChallengePassed:
    challenge_id: indexed(uint256)
    provider: indexed(address)
    reward: uint256


event Slashed:
    challenge_id: indexed(uint256)
    provider: indexed(address)
    root: indexed(bytes32)
    amount: uint256
    to_challenger: uint256
    to_treasury: uint256
    missed: bool


token: public(immutable(IERC20))
treasury: public(immutable(address))
stake_per_commitment: public(immutable(uint256))
challenge_bond: public(immutable(uint256))
slash_bps: public(immutable(uint256))
challenger_share_bps: public(immutable(uint256))
response_blocks: public(immutable(uint256))
release_delay: public(immutable(uint256))

free_stake: public(HashMap[address, uint256])
locked_stake: public(HashMap[address, uint256])
withdrawable: public(HashMap[address, uint256])
commitments: public(HashMap[bytes32, Commitment])
challenges: public(HashMap[uint256, Challenge])
challenge_count: public(uint256)

total_free: public(uint256)
total_locked: public(uint256)
total_bonds: public(uint256)
total_withdrawable: public(uint256)


@deploy
def __init__(
    token_: IERC20,
    treasury_: address,
    stake_per_commitment_: uint256,
    challenge_bond_: uint256,
    slash_bps_: uint256,
    challenger_share_bps_: uint256,
    response_blocks_: uint256,
    release_delay_: uint256,
):
    """
    @param token_ CommonsToken, staked and paid out.
    @param treasury_ Receives the treasury share of every slash.
    @param stake_per_commitment_ Stake locked per committed blob.
    @param challenge_bond_ Bond a challenger posts; paid to the provider on a valid answer.
    @param slash_bps_ Part of `stake_per_commitment_` slashed on a failed challenge (1..10000).
    @param challenger_share_bps_ Part of a slash paid to the challenger (rest: treasury).
    @param response_blocks_ Blocks after the reveal block within which the answer must land.
    @param release_delay_ Blocks between asking to release a commitment and releasing it, during
           which it can still be challenged (so a provider cannot front-run a challenge).
    """
    assert treasury_ != empty(address), "ZeroTreasury"
    assert stake_per_commitment_ > 0, "ZeroStake"
    assert slash_bps_ > 0 and slash_bps_ <= BPS, "BadSlashBps"
    assert challenger_share_bps_ <= BPS, "BadShareBps"
    assert response_blocks_ > 0 and response_blocks_ <= MAX_RESPONSE_BLOCKS, "BadResponseWindow"
    token = token_
    treasury = treasury_
    stake_per_commitment = stake_per_commitment_
    challenge_bond = challenge_bond_
    slash_bps = slash_bps_
    challenger_share_bps = challenger_share_bps_
    response_blocks = response_blocks_
    release_delay = release_delay_


@pure
@external
def commitment_key(provider: address, root: bytes32) -> bytes32:
    """
    @notice Storage key of `provider`'s commitment to `root`.
    """
    return keccak256(abi_encode(provider, root))


@external
def stake(amount: uint256):
    """
    @notice Add `amount` tokens to the caller's free stake (needs an allowance).
    """
    assert amount > 0, "ZeroAmount"
    self.free_stake[msg.sender] += amount
    self.total_free += amount
    log Staked(provider=msg.sender, amount=amount)
    assert extcall token.transferFrom(msg.sender, self, amount), "TransferFailed"


@external
def unstake(amount: uint256):
    """
    @notice Move `amount` of the caller's free (uncommitted) stake to their withdrawable balance.
    """
    assert amount > 0, "ZeroAmount"
    assert self.free_stake[msg.sender] >= amount, "InsufficientFreeStake"
    self.free_stake[msg.sender] -= amount
    self.total_free -= amount
    self._credit(msg.sender, amount)
    log Unstaked(provider=msg.sender, amount=amount)


@external
def withdraw():
    """
    @notice Transfer the caller's whole withdrawable balance to them.
    """
    amount: uint256 = self.withdrawable[msg.sender]
    assert amount > 0, "NothingToWithdraw"
    self.withdrawable[msg.sender] = 0
    self.total_withdrawable -= amount
    log Withdrawn(account=msg.sender, amount=amount)
    assert extcall token.transfer(msg.sender, amount), "TransferFailed"


@external
def commit(root: bytes32, leaf_count: uint256):
    """
    @notice Promise to hold the blob with Merkle root `root` over `leaf_count` chunks; locks
            `stake_per_commitment` of the caller's free stake.
    """
    assert leaf_count > 0 and leaf_count <= 2**64, "BadLeafCount"
    key: bytes32 = keccak256(abi_encode(msg.sender, root))
    assert self.commitments[key].provider == empty(address), "AlreadyCommitted"
    amount: uint256 = stake_per_commitment
    assert self.free_stake[msg.sender] >= amount, "InsufficientFreeStake"
    self.free_stake[msg.sender] -= amount
    self.total_free -= amount
    self.locked_stake[msg.sender] += amount
    self.total_locked += amount
    self.commitments[key] = Commitment(
        provider=msg.sender,
        root=root,
        leaf_count=leaf_count,
        locked=amount,
        open_challenge=0,
        release_block=0,
    )
    log Committed(provider=msg.sender, root=root, leaf_count=leaf_count, locked=amount)


@external
def request_release(root: bytes32):
    """
    @notice Announce the end of the caller's commitment to `root`; it stays challengeable for
            `release_delay` blocks, after which `release` unlocks its stake.
    """
    key: bytes32 = keccak256(abi_encode(msg.sender, root))
    assert self.commitments[key].provider != empty(address), "NotCommitted"
    assert self.commitments[key].release_block == 0, "ReleaseRequested"
    release_block: uint256 = block.number + release_delay
    self.commitments[key].release_block = release_block
    log ReleaseRequested(provider=msg.sender, root=root, release_block=release_block)


@external
def release(root: bytes32):
    """
    @notice End the caller's commitment to `root` once its release delay has passed and no
            challenge is open; unlocks its stake.
    """
    key: bytes32 = keccak256(abi_encode(msg.sender, root))
    commitment: Commitment = self.commitments[key]
    assert commitment.provider != empty(address), "NotCommitted"
    assert commitment.release_block != 0, "ReleaseNotRequested"
    assert block.number >= commitment.release_block, "ReleaseNotDue"
    assert commitment.open_challenge == 0, "ChallengeOpen"
    self._end_commitment(key, commitment)
    log Released(provider=msg.sender, root=root, unlocked=commitment.locked)


@external
def open_challenge(provider: address, root: bytes32) -> uint256:
    """
    @notice Challenge `provider` to prove it holds `root`; the caller posts `challenge_bond`.
    @dev The chunk asked for is fixed by the hash of block `reveal_block` (the next block), which
         nobody knows when this transaction is sent.
    @return The challenge id.
    """
    key: bytes32 = keccak256(abi_encode(provider, root))
    commitment: Commitment = self.commitments[key]
    assert commitment.provider != empty(address), "NotCommitted"
    assert commitment.open_challenge == 0, "ChallengeOpen"
    challenge_id: uint256 = self.challenge_count + 1
    self.challenge_count = challenge_id
    reveal_block: uint256 = block.number + 1
    deadline: uint256 = reveal_block + response_blocks
    bond: uint256 = challenge_bond
    self.challenges[challenge_id] = Challenge(
        commitment=key,
        challenger=msg.sender,
        bond=bond,
        reveal_block=reveal_block,
        deadline=deadline,
        state=OPEN,
    )
    self.commitments[key].open_challenge = challenge_id
    self.total_bonds += bond
    log ChallengeOpened(
        challenge_id=challenge_id,
        provider=provider,
        root=root,
        challenger=msg.sender,
        bond=bond,
        reveal_block=reveal_block,
        deadline=deadline,
    )
    if bond > 0:
        assert extcall token.transferFrom(msg.sender, self, bond), "TransferFailed"
    return challenge_id


@view
@external
def challenge_seed(challenge_id: uint256) -> uint256:
    """
    @notice The challenge's random seed, once its reveal block is mined (and for 256 blocks).
    """
    return self._seed(challenge_id)


@view
@external
def challenge_chunk_index(challenge_id: uint256) -> uint256:
    """
    @notice The chunk the provider must prove: low 128 bits of the seed modulo the chunk count.
    """
    challenge: Challenge = self.challenges[challenge_id]
    return (self._seed(challenge_id) & LOW_128) % self.commitments[challenge.commitment].leaf_count


@external
def answer(
    challenge_id: uint256,
    chunk_root: bytes32,
    chunk_siblings: DynArray[bytes32, merkle.MAX_DEPTH],
    segment: Bytes[MAX_SEGMENT_BYTES],
    segment_count: uint256,
    segment_siblings: DynArray[bytes32, merkle.MAX_DEPTH],
) -> bool:
    """
    @notice The provider's answer: the challenged chunk's segment root with its proof under the
            blob root, and the challenged segment's bytes with its proof under the chunk root.
    @dev A wrong answer does not revert: it slashes, so a provider cannot probe for free.
    @return True if the answer was valid (bond paid to the provider), False if it was slashed.
    """
    challenge: Challenge = self.challenges[challenge_id]
    assert challenge.state == OPEN, "NotOpen"
    commitment: Commitment = self.commitments[challenge.commitment]
    assert msg.sender == commitment.provider, "NotProvider"
    assert block.number > challenge.reveal_block, "TooEarly"
    assert block.number <= challenge.deadline, "TooLate"
    seed: uint256 = self._seed(challenge_id)
    chunk_index: uint256 = (seed & LOW_128) % commitment.leaf_count
    valid: bool = merkle.verify_proof(
        commitment.root,
        merkle.leaf_hash_bytes32(chunk_root),
        chunk_index,
        commitment.leaf_count,
        chunk_siblings,
    )
    if valid:
        valid = segment_count > 0 and segment_count <= MAX_SEGMENTS and len(segment) > 0
    if valid:
        # The segment count is bound by the chunk root (its root commits to the leaf count).
        valid = merkle.verify_proof(
            chunk_root,
            keccak256(concat(b"\x00", segment)),
            (seed >> 128) % segment_count,
            segment_count,
            segment_siblings,
        )
    if not valid:
        self._slash(challenge_id, challenge, commitment, False)
        return False
    self.challenges[challenge_id].state = PASSED
    self.commitments[challenge.commitment].open_challenge = 0
    self.total_bonds -= challenge.bond
    self._credit(commitment.provider, challenge.bond)
    log ChallengePassed(
        challenge_id=challenge_id, provider=commitment.provider, reward=challenge.bond
    )
    return True


@external
def slash_missed(challenge_id: uint256):
    """
    @notice Anyone may slash a provider that let a challenge's deadline pass unanswered.
    """
    challenge: Challenge = self.challenges[challenge_id]
    assert challenge.state == OPEN, "NotOpen"
    assert block.number > challenge.deadline, "DeadlineNotPassed"
    self._slash(challenge_id, challenge, self.commitments[challenge.commitment], True)


@view
@internal
def _seed(challenge_id: uint256) -> uint256:
    challenge: Challenge = self.challenges[challenge_id]
    assert challenge.state != 0, "UnknownChallenge"
    assert block.number > challenge.reveal_block, "TooEarly"
    commitment: Commitment = self.commitments[challenge.commitment]
    return convert(
        keccak256(
            abi_encode(
                blockhash(challenge.reveal_block), commitment.provider, commitment.root, challenge_id
            )
        ),
        uint256,
    )


@internal
def _credit(account: address, amount: uint256):
    self.withdrawable[account] += amount
    self.total_withdrawable += amount


@internal
def _end_commitment(key: bytes32, commitment: Commitment):
    """Return what is still locked for the commitment to the provider's free stake."""
    self.locked_stake[commitment.provider] -= commitment.locked
    self.total_locked -= commitment.locked
    self.free_stake[commitment.provider] += commitment.locked
    self.total_free += commitment.locked
    self.commitments[key] = empty(Commitment)


@internal
def _slash(challenge_id: uint256, challenge: Challenge, commitment: Commitment, missed: bool):
    amount: uint256 = min(commitment.locked, stake_per_commitment * slash_bps // BPS)
    to_challenger: uint256 = amount * challenger_share_bps // BPS
    to_treasury: uint256 = amount - to_challenger
    self.challenges[challenge_id].state = SLASHED
    self.locked_stake[commitment.provider] -= amount
    self.total_locked -= amount
    self.total_bonds -= challenge.bond
    self._credit(challenge.challenger, to_challenger + challenge.bond)
    self._credit(treasury, to_treasury)
    remaining: Commitment = commitment
    remaining.locked = commitment.locked - amount
    remaining.open_challenge = 0
    # A provider that failed a challenge no longer counts as holding the blob.
    self._end_commitment(challenge.commitment, remaining)
    log Slashed(
        challenge_id=challenge_id,
        provider=commitment.provider,
        root=commitment.root,
        amount=amount,
        to_challenger=to_challenger,
        to_treasury=to_treasury,
        missed=missed,
    )
