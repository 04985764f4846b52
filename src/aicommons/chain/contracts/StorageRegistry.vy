# pragma version ~=0.4.3
"""
@title StorageRegistry: staked storage providers and on-chain proofs of storage
@notice Providers stake CommonsToken and commit to hold blobs, each named by its Merkle root and
        chunk count (docs/storage.md). Anyone may challenge a commitment, any number of times at
        once, by posting a bond and the hash of a secret. Once the block after the opening one is
        mined, the challenger reveals the secret; the challenge's seed is the hash of that
        block, the secret, the provider, the root and the challenge id, so neither the provider
        nor the builder of that block (who do not know the secret) nor the challenger (who
        committed to it before the block existed) chooses the challenged chunk and segment
        alone. The provider answers with the segment's bytes, its proof inside the chunk and the
        chunk's proof inside the blob before the deadline block. A valid answer earns the
        challenger's bond; an invalid, wrong-chunk or missing answer slashes part of the
        commitment's stake to the challenger and the treasury and marks it failed; a failed
        commitment closes (its remaining stake unlocked) once no challenge on it is open.
        Storage is paid for: a valid answer on a root governance lists (`rewarded_roots`, the
        blobs of registered versions) also earns the provider `epoch_reward`, at most once per
        commitment in any `epoch_blocks` consecutive blocks (an epoch), from a `reward_pool` that the treasury
        funds from the protocol share (`fund_rewards`, by proposal; docs/economics.md).
        The terms, the treasury, the reward and its roots are the owner's (the timelock after
        deployment); a change applies to commitments, challenges and answers made afterwards
        (a slash takes the current `stake_per_commitment * slash_bps`, at most what is locked).
@dev Pull payments through the shared `payouts` module (`owed`, `withdraw`).
     Invariants: token.balanceOf(self) == total_free + total_locked + total_bonds +
     reward_pool + payouts.total_owed; total_locked == sum of every open commitment's `locked`;
     total_bonds == sum of the bonds of challenges in COMMITTED or REVEALED.
     A self-challenge is a strict loss (docs/storage.md): a challenger never receives the whole
     slash (challenger_share_bps < 10000) and never stops another challenge from being opened.
     Reverts use named reasons listed in docs/contracts.md.
"""

from snekmate.auth import ownable

import merkle
import payouts

initializes: ownable
initializes: payouts

exports: (
    payouts.token,
    payouts.owed,
    payouts.total_owed,
    payouts.withdraw,
    ownable.owner,
    ownable.transfer_ownership,
)

# Largest segment a provider sends on-chain (the protocol's SEGMENT_SIZE).
MAX_SEGMENT_BYTES: constant(uint256) = 16384
# Segments in a full 1 MiB chunk; a chunk's segment tree never has more leaves.
MAX_SEGMENTS: constant(uint256) = 64
# blockhash() only reaches 256 blocks back; the reveal window must stay inside it.
MAX_RESPONSE_BLOCKS: constant(uint256) = 250
BPS: constant(uint256) = 10000
# Until governance sets it: about a day of 12-second blocks.
DEFAULT_EPOCH_BLOCKS: constant(uint256) = 7200
LOW_128: constant(uint256) = 2**128 - 1


flag Phase:
    # Opened: the challenger's secret is still hidden (only its hash is on-chain).
    COMMITTED
    # The secret is revealed and the seed fixed: the provider must answer by the deadline.
    REVEALED
    PASSED
    SLASHED
    # The challenger never revealed: the bond goes to the provider.
    EXPIRED


struct Commitment:
    provider: address
    root: bytes32
    leaf_count: uint256
    locked: uint256
    open_challenges: uint256
    failed: bool
    release_block: uint256


struct Challenge:
    commitment: bytes32
    challenger: address
    bond: uint256
    secret_hash: bytes32
    # The block whose hash goes into the seed.
    reveal_block: uint256
    seed: uint256
    # The last block of the current phase: for the reveal (COMMITTED), then for the answer.
    deadline: uint256
    leaf_count: uint256
    phase: Phase


event Staked:
    provider: indexed(address)
    amount: uint256


event Unstaked:
    provider: indexed(address)
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
    reveal_deadline: uint256


event ChallengeRevealed:
    challenge_id: indexed(uint256)
    provider: indexed(address)
    root: indexed(bytes32)
    seed: uint256
    deadline: uint256


event ChallengeExpired:
    challenge_id: indexed(uint256)
    provider: indexed(address)
    bond: uint256


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


event CommitmentClosed:
    provider: indexed(address)
    root: indexed(bytes32)
    unlocked: uint256


event TermsSet:
    owner: indexed(address)
    stake_per_commitment: uint256
    challenge_bond: uint256
    slash_bps: uint256
    challenger_share_bps: uint256
    response_blocks: uint256
    release_delay: uint256


event TreasurySet:
    owner: indexed(address)
    treasury: indexed(address)


event RewardSet:
    owner: indexed(address)
    epoch_blocks: uint256
    epoch_reward: uint256


event RewardedRootSet:
    owner: indexed(address)
    root: indexed(bytes32)
    rewarded: bool


event RewardsFunded:
    funder: indexed(address)
    amount: uint256


event EpochRewarded:
    provider: indexed(address)
    root: indexed(bytes32)
    amount: uint256
    next_block: uint256


treasury: public(address)
stake_per_commitment: public(uint256)
challenge_bond: public(uint256)
slash_bps: public(uint256)
challenger_share_bps: public(uint256)
response_blocks: public(uint256)
release_delay: public(uint256)

# The storage reward: per commitment, for a valid answer at least `epoch_blocks` blocks after
# its last rewarded one, for roots governance lists, from `reward_pool`.
epoch_blocks: public(uint256)
epoch_reward: public(uint256)
reward_pool: public(uint256)
rewarded_roots: public(HashMap[bytes32, bool])
# Commitment key -> the first block at which it may be rewarded again.
next_reward_block: public(HashMap[bytes32, uint256])

free_stake: public(HashMap[address, uint256])
locked_stake: public(HashMap[address, uint256])
commitments: public(HashMap[bytes32, Commitment])
challenges: public(HashMap[uint256, Challenge])
challenge_count: public(uint256)

total_free: public(uint256)
total_locked: public(uint256)
total_bonds: public(uint256)


@deploy
def __init__(
    token_: address,
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
    @param slash_bps_ Part of `stake_per_commitment_` slashed per failed challenge (1..10000).
    @param challenger_share_bps_ Part of a slash paid to the challenger (0..9999, the rest to
           the treasury): below 10000 so that challenging yourself always costs.
    @param response_blocks_ Blocks the challenger has to reveal its secret, and then the
           provider to answer (1..250, so the reveal block's hash is readable at reveal time).
    @param release_delay_ Blocks between asking to release a commitment and releasing it, during
           which it can still be challenged (so a provider cannot front-run a challenge).
    """
    ownable.__init__()
    payouts.__init__(token_)
    self._set_treasury(treasury_)
    self._set_terms(
        stake_per_commitment_,
        challenge_bond_,
        slash_bps_,
        challenger_share_bps_,
        response_blocks_,
        release_delay_,
    )
    self._set_reward(DEFAULT_EPOCH_BLOCKS, 0)


@external
def set_terms(
    stake_per_commitment_: uint256,
    challenge_bond_: uint256,
    slash_bps_: uint256,
    challenger_share_bps_: uint256,
    response_blocks_: uint256,
    release_delay_: uint256,
):
    """
    @notice The owner (the timelock) replaces the terms, checked as the constructor checks them;
            they apply to commitments, challenges and slashes from now on (a challenge keeps its
            bond and its deadlines).
    """
    self._check_owner()
    self._set_terms(
        stake_per_commitment_,
        challenge_bond_,
        slash_bps_,
        challenger_share_bps_,
        response_blocks_,
        release_delay_,
    )


@external
def set_treasury(treasury_: address):
    """
    @notice The owner (the timelock) names who receives the treasury share of slashes from now
            on (what the old one is owed stays its to withdraw).
    """
    self._check_owner()
    self._set_treasury(treasury_)


@external
def set_reward(epoch_blocks_: uint256, epoch_reward_: uint256):
    """
    @notice The owner (the timelock) sets the storage reward: `epoch_reward_` for a valid
            answer, at most once per commitment in `epoch_blocks_` blocks (at least 1). A
            commitment already rewarded keeps the next block it was given.
    """
    self._check_owner()
    self._set_reward(epoch_blocks_, epoch_reward_)


@external
def set_rewarded_root(root: bytes32, rewarded: bool):
    """
    @notice The owner (the timelock) lists (or unlists) a blob whose storage earns the reward,
            such as a registered version's weights, so nobody farms rewards with junk blobs.
    """
    self._check_owner()
    self.rewarded_roots[root] = rewarded
    log RewardedRootSet(owner=msg.sender, root=root, rewarded=rewarded)


@external
def fund_rewards(amount: uint256):
    """
    @notice Add `amount` tokens to the reward pool (needs an allowance); anyone may, the
            treasury does by proposal (`Treasury.fund_storage_rewards`).
    """
    assert amount > 0, "ZeroAmount"
    self.reward_pool += amount
    log RewardsFunded(funder=msg.sender, amount=amount)
    assert extcall payouts.token.transferFrom(msg.sender, self, amount), "TransferFailed"


@pure
@external
def commitment_key(provider: address, root: bytes32) -> bytes32:
    """
    @notice Storage key of `provider`'s commitment to `root`.
    """
    return keccak256(abi_encode(provider, root))


@pure
@external
def secret_hash(secret: bytes32, challenger: address) -> bytes32:
    """
    @notice What `open_challenge` takes for a challenger's secret: keccak256(abi_encode(secret,
            challenger)). The address is inside so a copied hash is useless to anyone else.
    """
    return keccak256(abi_encode(secret, challenger))


@external
def stake(amount: uint256):
    """
    @notice Add `amount` tokens to the caller's free stake (needs an allowance).
    """
    assert amount > 0, "ZeroAmount"
    self.free_stake[msg.sender] += amount
    self.total_free += amount
    log Staked(provider=msg.sender, amount=amount)
    assert extcall payouts.token.transferFrom(msg.sender, self, amount), "TransferFailed"


@external
def unstake(amount: uint256):
    """
    @notice Move `amount` of the caller's free (uncommitted) stake to what it is owed.
    """
    assert amount > 0, "ZeroAmount"
    assert self.free_stake[msg.sender] >= amount, "InsufficientFreeStake"
    self.free_stake[msg.sender] -= amount
    self.total_free -= amount
    payouts._credit(msg.sender, amount, empty(bytes32))
    log Unstaked(provider=msg.sender, amount=amount)


@external
def commit(root: bytes32, leaf_count: uint256):
    """
    @notice Promise to hold the blob with Merkle root `root` over `leaf_count` chunks; locks
            `stake_per_commitment` of the caller's free stake.
    """
    assert leaf_count > 0 and leaf_count <= 2**64, "InvalidLeafCount"
    key: bytes32 = keccak256(abi_encode(msg.sender, root))
    assert self.commitments[key].provider == empty(address), "AlreadyCommitted"
    amount: uint256 = self.stake_per_commitment
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
        open_challenges=0,
        failed=False,
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
    commitment: Commitment = self.commitments[key]
    assert commitment.provider != empty(address), "NotCommitted"
    assert not commitment.failed, "CommitmentFailed"
    assert commitment.release_block == 0, "ReleaseRequested"
    release_block: uint256 = block.number + self.release_delay
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
    assert commitment.open_challenges == 0, "ChallengeOpen"
    self._end_commitment(key, commitment)
    log Released(provider=msg.sender, root=root, unlocked=commitment.locked)


@external
def open_challenge(provider: address, root: bytes32, secret_hash: bytes32) -> uint256:
    """
    @notice Challenge `provider` to prove it holds `root`; the caller posts `challenge_bond` and
            `secret_hash` = keccak256(abi_encode(secret, caller)) of a random 32-byte secret it
            reveals with `reveal_challenge` after the next block is mined. Any number of
            challenges may be open on one commitment, until it closes.
    @return The challenge id.
    """
    key: bytes32 = keccak256(abi_encode(provider, root))
    commitment: Commitment = self.commitments[key]
    assert commitment.provider != empty(address), "NotCommitted"
    challenge_id: uint256 = self.challenge_count + 1
    self.challenge_count = challenge_id
    reveal_block: uint256 = block.number + 1
    reveal_deadline: uint256 = reveal_block + self.response_blocks
    bond: uint256 = self.challenge_bond
    self.challenges[challenge_id] = Challenge(
        commitment=key,
        challenger=msg.sender,
        bond=bond,
        secret_hash=secret_hash,
        reveal_block=reveal_block,
        seed=0,
        deadline=reveal_deadline,
        leaf_count=commitment.leaf_count,
        phase=Phase.COMMITTED,
    )
    self.commitments[key].open_challenges = commitment.open_challenges + 1
    self.total_bonds += bond
    log ChallengeOpened(
        challenge_id=challenge_id,
        provider=provider,
        root=root,
        challenger=msg.sender,
        bond=bond,
        reveal_block=reveal_block,
        reveal_deadline=reveal_deadline,
    )
    if bond > 0:
        assert extcall payouts.token.transferFrom(msg.sender, self, bond), "TransferFailed"
    return challenge_id


@external
def reveal_challenge(challenge_id: uint256, secret: bytes32) -> uint256:
    """
    @notice Reveal the challenger's secret (anyone who knows it may), after the reveal block is
            mined and at most `response_blocks` after it; fixes the seed and starts the
            provider's `response_blocks` to answer.
    @return The seed.
    """
    challenge: Challenge = self._expect(challenge_id, Phase.COMMITTED)
    assert block.number > challenge.reveal_block, "TooEarly"
    assert block.number <= challenge.deadline, "TooLate"
    revealed: bytes32 = keccak256(abi_encode(secret, challenge.challenger))
    assert revealed == challenge.secret_hash, "WrongSecret"
    commitment: Commitment = self.commitments[challenge.commitment]
    seed: uint256 = convert(
        keccak256(
            abi_encode(
                blockhash(challenge.reveal_block),
                secret,
                commitment.provider,
                commitment.root,
                challenge_id,
            )
        ),
        uint256,
    )
    deadline: uint256 = block.number + self.response_blocks
    self.challenges[challenge_id].seed = seed
    self.challenges[challenge_id].deadline = deadline
    self.challenges[challenge_id].phase = Phase.REVEALED
    log ChallengeRevealed(
        challenge_id=challenge_id,
        provider=commitment.provider,
        root=commitment.root,
        seed=seed,
        deadline=deadline,
    )
    return seed


@external
def expire_challenge(challenge_id: uint256):
    """
    @notice Anyone may end a challenge whose secret was not revealed in time; its bond goes to
            the provider (who had to stand ready to answer).
    """
    challenge: Challenge = self._expect(challenge_id, Phase.COMMITTED)
    assert block.number > challenge.deadline, "RevealWindowOpen"
    commitment: Commitment = self.commitments[challenge.commitment]
    self.challenges[challenge_id].phase = Phase.EXPIRED
    self.total_bonds -= challenge.bond
    self._pay(commitment.provider, challenge.bond, commitment.root)
    log ChallengeExpired(
        challenge_id=challenge_id, provider=commitment.provider, bond=challenge.bond
    )
    self._challenge_settled(challenge.commitment)


@view
@external
def challenge_seed(challenge_id: uint256) -> uint256:
    """
    @notice The challenge's random seed, once its secret is revealed.
    """
    challenge: Challenge = self.challenges[challenge_id]
    assert challenge.phase in (Phase.REVEALED | Phase.PASSED | Phase.SLASHED), "NotRevealed"
    return challenge.seed


@view
@external
def challenge_chunk_index(challenge_id: uint256) -> uint256:
    """
    @notice The chunk the provider must prove: low 128 bits of the seed modulo the chunk count.
    """
    challenge: Challenge = self.challenges[challenge_id]
    assert challenge.phase in (Phase.REVEALED | Phase.PASSED | Phase.SLASHED), "NotRevealed"
    return (challenge.seed & LOW_128) % challenge.leaf_count


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
    challenge: Challenge = self._expect(challenge_id, Phase.REVEALED)
    commitment: Commitment = self.commitments[challenge.commitment]
    assert msg.sender == commitment.provider, "NotProvider"
    assert block.number <= challenge.deadline, "TooLate"
    seed: uint256 = challenge.seed
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
        self._slash(challenge_id, challenge, False)
        return False
    self.challenges[challenge_id].phase = Phase.PASSED
    self.total_bonds -= challenge.bond
    self._pay(commitment.provider, challenge.bond, commitment.root)
    log ChallengePassed(
        challenge_id=challenge_id, provider=commitment.provider, reward=challenge.bond
    )
    self._reward_epoch(challenge.commitment, commitment)
    self._challenge_settled(challenge.commitment)
    return True


@external
def slash_missed(challenge_id: uint256):
    """
    @notice Anyone may slash a provider that let a revealed challenge's deadline pass unanswered.
    """
    challenge: Challenge = self._expect(challenge_id, Phase.REVEALED)
    assert block.number > challenge.deadline, "DeadlineNotPassed"
    self._slash(challenge_id, challenge, True)


@view
@internal
def _expect(challenge_id: uint256, allowed: Phase) -> Challenge:
    """The challenge, if it is in one of the `allowed` phases (an unknown id is in none)."""
    challenge: Challenge = self.challenges[challenge_id]
    assert challenge.phase in allowed, "WrongPhase"
    return challenge


@internal
def _pay(account: address, amount: uint256, root: bytes32):
    """Owe `amount` to `account` for the commitment to `root` (nothing to log when zero)."""
    if amount > 0:
        payouts._credit(account, amount, root)


@internal
def _end_commitment(key: bytes32, commitment: Commitment):
    """Return what is still locked for the commitment to the provider's free stake."""
    self.locked_stake[commitment.provider] -= commitment.locked
    self.total_locked -= commitment.locked
    self.free_stake[commitment.provider] += commitment.locked
    self.total_free += commitment.locked
    self.commitments[key] = empty(Commitment)


@internal
def _challenge_settled(key: bytes32):
    """One challenge on the commitment is over; a failed commitment closes with its last one."""
    commitment: Commitment = self.commitments[key]
    commitment.open_challenges -= 1
    self.commitments[key].open_challenges = commitment.open_challenges
    if commitment.failed and commitment.open_challenges == 0:
        # A provider that failed a challenge no longer counts as holding the blob.
        self._end_commitment(key, commitment)
        log CommitmentClosed(
            provider=commitment.provider, root=commitment.root, unlocked=commitment.locked
        )


@internal
def _slash(challenge_id: uint256, challenge: Challenge, missed: bool):
    """Take one slash from the commitment (what is left of it, at most), pay the challenger its
    share plus its bond and the treasury the rest, and mark the commitment failed."""
    commitment: Commitment = self.commitments[challenge.commitment]
    amount: uint256 = min(commitment.locked, self.stake_per_commitment * self.slash_bps // BPS)
    to_challenger: uint256 = amount * self.challenger_share_bps // BPS
    to_treasury: uint256 = amount - to_challenger
    self.challenges[challenge_id].phase = Phase.SLASHED
    self.commitments[challenge.commitment].locked = commitment.locked - amount
    self.commitments[challenge.commitment].failed = True
    self.locked_stake[commitment.provider] -= amount
    self.total_locked -= amount
    self.total_bonds -= challenge.bond
    self._pay(challenge.challenger, to_challenger + challenge.bond, commitment.root)
    self._pay(self.treasury, to_treasury, commitment.root)
    log Slashed(
        challenge_id=challenge_id,
        provider=commitment.provider,
        root=commitment.root,
        amount=amount,
        to_challenger=to_challenger,
        to_treasury=to_treasury,
        missed=missed,
    )
    self._challenge_settled(challenge.commitment)


@internal
def _reward_epoch(key: bytes32, commitment: Commitment):
    """After a valid answer: the epoch reward, if the root is listed, the commitment was not
    rewarded in the last `epoch_blocks` blocks and the pool holds a whole reward (never a part
    of one)."""
    reward: uint256 = self.epoch_reward
    if reward == 0 or not self.rewarded_roots[commitment.root] or self.reward_pool < reward:
        return
    if block.number < self.next_reward_block[key]:
        return
    next_block: uint256 = block.number + self.epoch_blocks
    self.next_reward_block[key] = next_block
    self.reward_pool -= reward
    self._pay(commitment.provider, reward, commitment.root)
    log EpochRewarded(
        provider=commitment.provider, root=commitment.root, amount=reward, next_block=next_block
    )


@internal
@view
def _check_owner():
    assert msg.sender == ownable.owner, "NotGovernance"


@internal
def _set_terms(
    stake_per_commitment_: uint256,
    challenge_bond_: uint256,
    slash_bps_: uint256,
    challenger_share_bps_: uint256,
    response_blocks_: uint256,
    release_delay_: uint256,
):
    assert stake_per_commitment_ > 0, "ZeroStake"
    assert slash_bps_ > 0 and slash_bps_ <= BPS, "InvalidSlashBps"
    assert challenger_share_bps_ < BPS, "InvalidShareBps"
    assert response_blocks_ > 0, "InvalidResponseWindow"
    assert response_blocks_ <= MAX_RESPONSE_BLOCKS, "InvalidResponseWindow"
    self.stake_per_commitment = stake_per_commitment_
    self.challenge_bond = challenge_bond_
    self.slash_bps = slash_bps_
    self.challenger_share_bps = challenger_share_bps_
    self.response_blocks = response_blocks_
    self.release_delay = release_delay_
    log TermsSet(
        owner=msg.sender,
        stake_per_commitment=stake_per_commitment_,
        challenge_bond=challenge_bond_,
        slash_bps=slash_bps_,
        challenger_share_bps=challenger_share_bps_,
        response_blocks=response_blocks_,
        release_delay=release_delay_,
    )


@internal
def _set_treasury(treasury_: address):
    assert treasury_ != empty(address), "ZeroAddress"
    self.treasury = treasury_
    log TreasurySet(owner=msg.sender, treasury=treasury_)


@internal
def _set_reward(epoch_blocks_: uint256, epoch_reward_: uint256):
    assert epoch_blocks_ > 0, "InvalidEpoch"
    self.epoch_blocks = epoch_blocks_
    self.epoch_reward = epoch_reward_
    log RewardSet(owner=msg.sender, epoch_blocks=epoch_blocks_, epoch_reward=epoch_reward_)
