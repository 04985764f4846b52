"""StorageRegistry in titanoboa: honest answers pass, wrong proof / wrong chunk / wrong bytes /
late answers slash, the challenged index cannot be chosen (commit-reveal seed), several
challenges may be open at once, a self-challenge is a strict loss, and stake accounting always
balances.
"""

from __future__ import annotations

import os
from dataclasses import replace

import boa
import httpx
import pytest
from eth_account import Account
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from aicommons.chain.compile import load_boa
from aicommons.commit import MerkleProof, leaf_hash, verify_proof
from aicommons.storage.auth import sign_grant
from aicommons.storage.chunking import CHUNK_SIZE, SEGMENT_SIZE, BlobManifest, storage_answer
from aicommons.storage.client import put_file
from aicommons.storage.node import UPLOAD_HEADER
from aicommons.storage.registry import (
    CHALLENGE_COMMITTED,
    CHALLENGE_EXPIRED,
    CHALLENGE_PASSED,
    CHALLENGE_REVEALED,
    CHALLENGE_SLASHED,
    answer_arguments,
    answer_from_store,
    challenge_secret_hash,
)
from aicommons.storage.store import LocalStore

STAKE = 1000
BOND = 10
SLASH_BPS = 5000
CHALLENGER_BPS = 4000
WINDOW = 20
RELEASE_DELAY = 5


@pytest.fixture(scope="module")
def stored_blob(tmp_path_factory) -> tuple[LocalStore, str]:
    """A 3-chunk blob whose last chunk is short (3 segments + a few bytes)."""
    directory = tmp_path_factory.mktemp("registry")
    source = directory / "blob.bin"
    source.write_bytes(os.urandom(2 * CHUNK_SIZE + 2 * SEGMENT_SIZE + 9))
    store = LocalStore(directory / "store")
    return store, store.put_file(source).blob_id


class World:
    def __init__(self) -> None:
        self.treasury = boa.env.generate_address("treasury")
        self.provider = boa.env.generate_address("provider")
        self.challenger = boa.env.generate_address("challenger")
        # An address the provider controls, to challenge itself with.
        self.sybil = boa.env.generate_address("sybil")
        self.token = load_boa("CommonsToken", self.treasury, 10**9)
        self.registry = load_boa(
            "StorageRegistry",
            self.token.address,
            self.treasury,
            STAKE,
            BOND,
            SLASH_BPS,
            CHALLENGER_BPS,
            WINDOW,
            RELEASE_DELAY,
        )
        for who in (self.provider, self.challenger, self.sybil):
            self.token.transfer(who, 10**6, sender=self.treasury)
            self.token.approve(self.registry.address, 2**256 - 1, sender=who)

    def balance(self, who: str) -> int:
        return self.token.balanceOf(who)

    def accounted(self) -> int:
        r = self.registry
        return (
            r.total_free() + r.total_locked() + r.total_bonds() + r.total_owed() + r.reward_pool()
        )

    def wealth(self, *accounts: str) -> int:
        """Every token the accounts hold or are owed or have staked here."""
        r = self.registry
        return sum(
            self.balance(a) + r.owed(a) + r.free_stake(a) + r.locked_stake(a) for a in accounts
        )

    def phase(self, challenge_id: int) -> int:
        return self.registry.challenges(challenge_id).phase


@pytest.fixture
def world():
    with boa.env.anchor():
        yield World()


def committed(world: World, store: LocalStore, blob_id: str) -> bytes:
    manifest = store.read_manifest(blob_id)
    world.registry.stake(STAKE * 2, sender=world.provider)
    world.registry.commit(manifest.root, len(manifest.chunks), sender=world.provider)
    return manifest.root


def open_challenge(world: World, root: bytes, challenger: str | None = None) -> tuple[int, bytes]:
    """Open a challenge with a fresh secret; return its id and the secret."""
    challenger = challenger or world.challenger
    secret = os.urandom(32)
    commitment = challenge_secret_hash(secret, challenger)
    registry = world.registry
    challenge_id = registry.open_challenge(world.provider, root, commitment, sender=challenger)
    return challenge_id, secret


def reveal(world: World, challenge_id: int, secret: bytes, challenger: str | None = None) -> None:
    """Mine the reveal block, then reveal the secret (fixes the seed)."""
    boa.env.time_travel(blocks=2)
    world.registry.reveal_challenge(challenge_id, secret, sender=challenger or world.challenger)


def open_and_reveal(world: World, root: bytes, challenger: str | None = None) -> int:
    challenge_id, secret = open_challenge(world, root, challenger)
    reveal(world, challenge_id, secret, challenger)
    return challenge_id


def honest_args(world: World, store: LocalStore, challenge_id: int, root: bytes) -> tuple:
    seed = world.registry.challenge_seed(challenge_id)
    return answer_arguments(challenge_id, answer_from_store(store, root, seed))


def assert_slashed(
    world: World, events: list, challenge_id: int, root: bytes, missed: bool
) -> None:
    r = world.registry
    assert world.phase(challenge_id) == CHALLENGE_SLASHED
    key = r.commitment_key(world.provider, root)
    assert r.commitments(key).provider == "0x0000000000000000000000000000000000000000"
    slash = STAKE * SLASH_BPS // 10000
    to_challenger = slash * CHALLENGER_BPS // 10000
    assert r.owed(world.challenger) == to_challenger + BOND
    assert r.owed(world.treasury) == slash - to_challenger
    # The rest of the commitment's stake returns to the provider's free stake.
    assert r.free_stake(world.provider) == 2 * STAKE - slash
    assert r.locked_stake(world.provider) == 0
    slashed = [event for event in events if type(event).__name__ == "Slashed"]
    assert len(slashed) == 1 and slashed[0].missed == missed and slashed[0].amount == slash
    assert world.balance(r.address) == world.accounted()


def test_honest_provider_passes_every_challenge(world, stored_blob) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    seen_chunks = set()
    for round_number in range(12):
        challenge_id = open_and_reveal(world, root)
        seen_chunks.add(world.registry.challenge_chunk_index(challenge_id))
        assert world.registry.answer(
            *honest_args(world, store, challenge_id, root), sender=world.provider
        )
        assert world.phase(challenge_id) == CHALLENGE_PASSED
        assert world.registry.owed(world.provider) == BOND * (round_number + 1)
    assert len(seen_chunks) >= 2, "seeds should spread challenges over the chunks"
    assert world.registry.locked_stake(world.provider) == STAKE
    before = world.balance(world.provider)
    world.registry.withdraw(sender=world.provider)
    assert world.balance(world.provider) == before + 12 * BOND
    assert world.balance(world.registry.address) == world.accounted()


def test_proven_storage_earns_the_epoch_reward_from_the_pool(world, stored_blob) -> None:
    """A valid answer on a listed root earns `epoch_reward` from the pool the treasury funds,
    at most once per commitment in `epoch_blocks` blocks and only while the pool holds a whole
    reward; the owner (the timelock after deployment) sets the reward and lists the roots."""
    store, blob_id = stored_blob
    registry, owner = world.registry, boa.env.eoa
    reward, epoch = 7, 10
    root = committed(world, store, blob_id)

    rewarded: list = []

    def passes() -> int:
        """One answered challenge; returns what the provider was owed for it."""
        before = registry.owed(world.provider)
        challenge_id = open_and_reveal(world, root)
        assert registry.answer(
            *honest_args(world, store, challenge_id, root), sender=world.provider
        )
        rewarded.extend(e for e in registry.get_logs() if type(e).__name__ == "EpochRewarded")
        assert world.balance(registry.address) == world.accounted()
        return registry.owed(world.provider) - before

    with boa.reverts("NotGovernance"):
        registry.set_reward(epoch, reward, sender=world.provider)
    with boa.reverts("NotGovernance"):
        registry.set_rewarded_root(root, True, sender=world.provider)
    with boa.reverts("InvalidEpoch"):
        registry.set_reward(0, reward, sender=owner)
    registry.set_reward(epoch, reward, sender=owner)
    assert passes() == BOND  # the root is not listed
    registry.set_rewarded_root(root, True, sender=owner)
    assert passes() == BOND  # the pool is empty
    world.token.approve(registry.address, 2**256 - 1, sender=world.treasury)
    with boa.reverts("ZeroAmount"):
        registry.fund_rewards(0, sender=world.treasury)
    registry.fund_rewards(reward + 3, sender=world.treasury)
    assert registry.reward_pool() == reward + 3
    assert passes() == BOND + reward
    (event,) = rewarded
    assert (event.provider, event.amount) == (world.provider, reward)
    registry.fund_rewards(reward, sender=world.treasury)
    assert passes() == BOND  # the same epoch: 2 blocks after the reward
    boa.env.time_travel(blocks=epoch)
    assert passes() == BOND + reward
    boa.env.time_travel(blocks=epoch)
    assert passes() == BOND  # 3 left in the pool: never a part of a reward
    assert registry.reward_pool() == 3 and len(rewarded) == 2


def test_the_owner_sets_the_terms_for_what_comes_after(world, stored_blob) -> None:
    """`set_terms` and `set_treasury` are the owner's, checked like the constructor's
    arguments; a new stake applies to the next commitment, a challenge keeps its deadlines."""
    store, blob_id = stored_blob
    registry, owner = world.registry, boa.env.eoa
    root = committed(world, store, blob_id)
    challenge_id, secret = open_challenge(world, root)
    terms = (2 * STAKE, 2 * BOND, SLASH_BPS, CHALLENGER_BPS, WINDOW + 5, RELEASE_DELAY)
    with boa.reverts("NotGovernance"):
        registry.set_terms(*terms, sender=world.provider)
    with boa.reverts("NotGovernance"):
        registry.set_treasury(world.provider, sender=world.provider)
    with boa.reverts("InvalidShareBps"):
        registry.set_terms(*terms[:3], 10_000, *terms[4:], sender=owner)
    with boa.reverts("ZeroAddress"):
        registry.set_treasury("0x" + "00" * 20, sender=owner)
    registry.set_terms(*terms, sender=owner)
    assert (registry.stake_per_commitment(), registry.challenge_bond()) == terms[:2]
    registry.set_treasury(world.sybil, sender=owner)
    assert registry.treasury() == world.sybil
    # The open challenge keeps the reveal window it was opened with.
    boa.env.time_travel(blocks=WINDOW + 3)
    with boa.reverts("TooLate"):
        registry.reveal_challenge(challenge_id, secret, sender=world.challenger)
    second = open_and_reveal(world, root)
    assert registry.challenges(second).bond == 2 * BOND
    # The next commitment locks the new stake.
    registry.stake(2 * STAKE, sender=world.provider)
    registry.commit(b"\x01" * 32, 1, sender=world.provider)
    assert registry.locked_stake(world.provider) == STAKE + 2 * STAKE
    assert world.balance(registry.address) == world.accounted()


def test_wrong_proof_slashes(world, stored_blob) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    challenge_id = open_and_reveal(world, root)
    args = list(honest_args(world, store, challenge_id, root))
    first = args[2][0]
    args[2] = [bytes([first[0] ^ 1]) + first[1:], *args[2][1:]]  # one bit of one sibling
    assert not world.registry.answer(*args, sender=world.provider)
    events = world.registry.get_logs()  # of the slashing transaction, the last one
    assert_slashed(world, events, challenge_id, root, missed=False)


def test_wrong_segment_bytes_slash(world, stored_blob) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    challenge_id = open_and_reveal(world, root)
    args = list(honest_args(world, store, challenge_id, root))
    args[3] = bytes(len(args[3]))  # a provider that kept only hashes cannot produce the bytes
    assert not world.registry.answer(*args, sender=world.provider)
    events = world.registry.get_logs()  # of the slashing transaction, the last one
    assert_slashed(world, events, challenge_id, root, missed=False)


def test_answer_for_another_chunk_slashes(world, stored_blob) -> None:
    """The provider cannot pick the chunk: a valid proof for a different chunk is slashed."""
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    challenge_id = open_and_reveal(world, root)
    manifest = store.read_manifest(blob_id)
    wanted = world.registry.challenge_chunk_index(challenge_id)
    other = (wanted + 1) % len(manifest.chunks)
    seed = world.registry.challenge_seed(challenge_id)
    chunk = store.read_chunk(manifest.chunks[other].cid)
    answer = storage_answer(manifest, other, chunk, seed)
    assert not world.registry.answer(*answer_arguments(challenge_id, answer), sender=world.provider)
    events = world.registry.get_logs()  # of the slashing transaction, the last one
    assert_slashed(world, events, challenge_id, root, missed=False)


def test_answer_for_another_segment_slashes(world, stored_blob) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    challenge_id = open_and_reveal(world, root)
    seed = world.registry.challenge_seed(challenge_id)
    honest = answer_from_store(store, root, seed)
    manifest = store.read_manifest(blob_id)
    chunk = store.read_chunk(manifest.chunks[honest.chunk_proof.index].cid)
    count = honest.segment_proof.leaf_count
    shifted_seed = seed + (1 << 128)  # same chunk, the next segment
    other = storage_answer(manifest, honest.chunk_proof.index, chunk, shifted_seed)
    assert other.segment_proof.index == (honest.segment_proof.index + 1) % count
    assert not world.registry.answer(*answer_arguments(challenge_id, other), sender=world.provider)
    events = world.registry.get_logs()  # of the slashing transaction, the last one
    assert_slashed(world, events, challenge_id, root, missed=False)


def test_late_answer_is_refused_and_missed_challenge_slashes(world, stored_blob) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    challenge_id = open_and_reveal(world, root)
    args = honest_args(world, store, challenge_id, root)
    with boa.reverts("DeadlineNotPassed"):
        world.registry.slash_missed(challenge_id, sender=world.challenger)
    boa.env.time_travel(blocks=WINDOW)  # the deadline block: still answerable, not yet missed
    with boa.reverts("DeadlineNotPassed"):
        world.registry.slash_missed(challenge_id, sender=world.challenger)
    with boa.env.anchor():
        assert world.registry.answer(*args, sender=world.provider)
    boa.env.time_travel(blocks=1)
    with boa.reverts("TooLate"):
        world.registry.answer(*args, sender=world.provider)
    anyone = boa.env.generate_address("anyone")
    world.registry.slash_missed(challenge_id, sender=anyone)
    events = world.registry.get_logs()  # of the slashing transaction, the last one
    assert_slashed(world, events, challenge_id, root, missed=True)


def test_challenge_index_is_unknown_until_the_secret_is_revealed(world, stored_blob) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    challenge_id, secret = open_challenge(world, root)
    assert world.phase(challenge_id) == CHALLENGE_COMMITTED
    # Nobody can compute the seed before the reveal, and the reveal needs the reveal block mined.
    with boa.reverts("NotRevealed"):
        world.registry.challenge_seed(challenge_id)
    with boa.reverts("WrongPhase"):
        world.registry.answer(challenge_id, bytes(32), [], b"x", 1, [], sender=world.provider)
    boa.env.time_travel(blocks=1)
    with boa.reverts("TooEarly"):
        world.registry.reveal_challenge(challenge_id, secret, sender=world.challenger)
    boa.env.time_travel(blocks=1)
    with boa.reverts("WrongSecret"):
        world.registry.reveal_challenge(challenge_id, os.urandom(32), sender=world.challenger)
    anyone = boa.env.generate_address("anyone")
    seed = world.registry.reveal_challenge(challenge_id, secret, sender=anyone)
    assert world.phase(challenge_id) == CHALLENGE_REVEALED
    assert world.registry.challenge_seed(challenge_id) == seed
    with boa.reverts("WrongPhase"):
        world.registry.reveal_challenge(challenge_id, secret, sender=world.challenger)
    # A second provider committing the same root gets a different seed for the same secret.
    other = boa.env.generate_address("other-provider")
    world.token.transfer(other, STAKE, sender=world.treasury)
    world.token.approve(world.registry.address, STAKE, sender=other)
    world.registry.stake(STAKE, sender=other)
    world.registry.commit(root, len(store.read_manifest(blob_id).chunks), sender=other)
    commitment = challenge_secret_hash(secret, world.challenger)
    other_id = world.registry.open_challenge(other, root, commitment, sender=world.challenger)
    boa.env.time_travel(blocks=2)
    assert world.registry.reveal_challenge(other_id, secret, sender=world.challenger) != seed
    # Only the provider may answer: a stranger cannot trigger a slash with a bad answer.
    with boa.reverts("NotProvider"):
        world.registry.answer(challenge_id, bytes(32), [], b"x", 1, [], sender=world.challenger)


def test_the_seed_depends_on_the_challengers_secret(world, stored_blob) -> None:
    """Issue 14 item 10: the seed was keccak(blockhash(n+1), provider, root, id), chain data the
    builder of block n+1 (on the devnet: the sender of the next transaction) grinds. The same
    challenge in the same blocks now gets another seed for another secret, and whoever builds
    the reveal block does not know the secret it is combined with."""
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    seeds = set()
    for secret in (b"\x01" * 32, b"\x02" * 32):
        with boa.env.anchor():
            commitment = challenge_secret_hash(secret, world.challenger)
            challenge_id = world.registry.open_challenge(
                world.provider, root, commitment, sender=world.challenger
            )
            boa.env.time_travel(blocks=2)
            world.registry.reveal_challenge(challenge_id, secret, sender=world.challenger)
            seeds.add(world.registry.challenge_seed(challenge_id))
    assert len(seeds) == 2


def test_python_secret_hash_and_phases_mirror_the_contract(world, stored_blob) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    secret = os.urandom(32)
    assert world.registry.secret_hash(secret, world.challenger) == challenge_secret_hash(
        secret, world.challenger
    )
    passed = open_and_reveal(world, root)
    assert world.phase(passed) == CHALLENGE_REVEALED
    world.registry.answer(*honest_args(world, store, passed, root), sender=world.provider)
    expired, _ = open_challenge(world, root)
    assert world.phase(expired) == CHALLENGE_COMMITTED
    boa.env.time_travel(blocks=WINDOW + 2)
    world.registry.expire_challenge(expired, sender=world.challenger)
    slashed = open_and_reveal(world, root)
    world.registry.answer(slashed, bytes(32), [], b"x", 1, [], sender=world.provider)
    phases = [world.phase(i) for i in (passed, expired, slashed)]
    assert phases == [CHALLENGE_PASSED, CHALLENGE_EXPIRED, CHALLENGE_SLASHED]
    assert {CHALLENGE_COMMITTED, CHALLENGE_REVEALED, *phases} == {1 << i for i in range(5)}


def test_an_unrevealed_challenge_expires_and_pays_its_bond_to_the_provider(
    world, stored_blob
) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    challenge_id, secret = open_challenge(world, root)
    boa.env.time_travel(blocks=WINDOW + 1)  # the last block of the reveal window
    with boa.reverts("RevealWindowOpen"):
        world.registry.expire_challenge(challenge_id, sender=world.provider)
    boa.env.time_travel(blocks=1)
    with boa.reverts("TooLate"):
        world.registry.reveal_challenge(challenge_id, secret, sender=world.challenger)
    world.registry.expire_challenge(challenge_id, sender=world.provider)
    assert world.phase(challenge_id) == CHALLENGE_EXPIRED
    assert world.registry.owed(world.provider) == BOND
    key = world.registry.commitment_key(world.provider, root)
    assert world.registry.commitments(key).open_challenges == 0
    assert world.balance(world.registry.address) == world.accounted()


def test_commit_release_and_guards(world, stored_blob) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    with boa.reverts("AlreadyCommitted"):
        world.registry.commit(root, 3, sender=world.provider)
    with boa.reverts("InvalidLeafCount"):
        world.registry.commit(b"\x01" * 32, 0, sender=world.provider)
    with boa.reverts("ReleaseNotRequested"):
        world.registry.release(root, sender=world.provider)
    world.registry.request_release(root, sender=world.provider)
    with boa.reverts("ReleaseNotDue"):
        world.registry.release(root, sender=world.provider)
    # Still challengeable during the release delay: a provider cannot escape a challenge it sees
    # coming by releasing first.
    first = open_and_reveal(world, root)
    boa.env.time_travel(blocks=RELEASE_DELAY)
    with boa.reverts("ChallengeOpen"):
        world.registry.release(root, sender=world.provider)
    second = open_and_reveal(world, root)  # an open challenge shields nobody from another
    world.registry.answer(*honest_args(world, store, first, root), sender=world.provider)
    with boa.reverts("ChallengeOpen"):
        world.registry.release(root, sender=world.provider)
    world.registry.answer(*honest_args(world, store, second, root), sender=world.provider)
    world.registry.release(root, sender=world.provider)
    assert world.registry.free_stake(world.provider) == 2 * STAKE
    assert world.registry.owed(world.provider) == 2 * BOND
    with boa.reverts("InsufficientFreeStake"):
        world.registry.unstake(2 * STAKE + 1, sender=world.provider)
    world.registry.unstake(2 * STAKE, sender=world.provider)
    world.registry.withdraw(sender=world.provider)
    assert world.balance(world.registry.address) == 0 == world.accounted()


def test_python_and_vyper_reject_a_proof_with_extra_siblings(world, stored_blob) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    challenge_id = open_and_reveal(world, root)
    honest = answer_from_store(store, root, world.registry.challenge_seed(challenge_id))
    padded = replace(
        honest,
        segment_proof=MerkleProof(
            honest.segment_proof.index,
            honest.segment_proof.leaf_count,
            (*honest.segment_proof.siblings, bytes(32)),
        ),
    )
    assert verify_proof(honest.chunk_root, leaf_hash(honest.segment), honest.segment_proof)
    assert not verify_proof(honest.chunk_root, leaf_hash(honest.segment), padded.segment_proof)
    assert not world.registry.answer(*answer_arguments(challenge_id, padded), sender=world.provider)
    events = world.registry.get_logs()  # of the slashing transaction, the last one
    assert_slashed(world, events, challenge_id, root, missed=False)


def swapped_cids(manifest: BlobManifest, first: int, second: int) -> BlobManifest:
    """The attack of issue 14 item 1: the honest manifest with two chunks' CIDs exchanged. The
    chunk roots stay, so the blob root stays; the manifest (and so the blob id) differs."""
    chunks = list(manifest.chunks)
    chunks[first] = replace(chunks[first], cid=manifest.chunks[second].cid)
    chunks[second] = replace(chunks[second], cid=manifest.chunks[first].cid)
    return BlobManifest(manifest.size, tuple(chunks), manifest.root)


def challenge_every_chunk(world: World, store: LocalStore, root: bytes, chunks: int) -> set[int]:
    """Challenge until each chunk index was asked for once; every answer must pass."""
    asked: set[int] = set()
    for _ in range(60):
        challenge_id = open_and_reveal(world, root)
        asked.add(world.registry.challenge_chunk_index(challenge_id))
        args = honest_args(world, store, challenge_id, root)
        assert world.registry.answer(*args, sender=world.provider), "honest provider slashed"
        if len(asked) == chunks:
            break
    return asked


def test_reposted_manifest_with_swapped_cids_cannot_get_the_provider_slashed(
    tmp_path, world, thread_node
) -> None:
    url, store = thread_node("provider-node")
    source = tmp_path / "blob.bin"
    source.write_bytes(os.urandom(2 * CHUNK_SIZE + 5))
    honest = put_file(source, [url], Account.create()).manifest
    evil = swapped_cids(honest, 0, 1)
    assert evil.root == honest.root and evil.blob_id != honest.blob_id
    attacker = Account.create()
    upload_id = httpx.post(
        f"{url}/uploads", json=sign_grant(attacker, node=url, max_bytes=3 * CHUNK_SIZE).to_json()
    ).json()["upload_id"]
    posted = httpx.post(f"{url}/blobs", content=evil.encode(), headers={UPLOAD_HEADER: upload_id})
    assert posted.status_code == 422 and "chunk root" in posted.text
    assert not store.has_blob(evil.blob_id)
    assert store.blob_for_root(honest.root) == honest.blob_id
    root = committed(world, store, honest.blob_id)
    assert challenge_every_chunk(world, store, root, 3) == {0, 1, 2}
    assert world.registry.locked_stake(world.provider) == STAKE


def test_provider_answers_from_the_chunk_with_the_committed_root_in_a_poisoned_store(
    world, stored_blob, tmp_path
) -> None:
    """A store poisoned before nodes checked chunk roots (the index names the swapped manifest)
    still answers every challenge from the bytes that have the committed chunk root."""
    source_store, blob_id = stored_blob
    store = LocalStore(tmp_path / "poisoned")
    honest = source_store.read_manifest(blob_id)
    for chunk in honest.chunks:
        store.put_chunk(chunk.cid, source_store.read_chunk(chunk.cid))
    evil = swapped_cids(honest, 0, 1)
    store.manifest_path(evil.blob_id).write_bytes(evil.encode())
    (store.directory / "roots" / evil.root.hex()).write_text(evil.blob_id)
    assert store.blob_for_root(honest.root) == evil.blob_id
    assert any("chunk root" in line for line in store.verify_all())
    root = committed(world, store, evil.blob_id)
    assert challenge_every_chunk(world, store, root, 3) == {0, 1, 2}


def test_an_open_challenge_does_not_shield_a_provider_that_holds_nothing(
    world, stored_blob
) -> None:
    """Issue 14 item 7: a provider that holds nothing challenges itself first. Another
    challenger can still open a challenge (it got `ChallengeOpen` before), and the provider ends
    worse off than if it had let the honest challenge come: each failed challenge slashes."""
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    junk = (bytes(32), [], b"junk", 1, [])
    slash = STAKE * SLASH_BPS // 10000
    share = slash * CHALLENGER_BPS // 10000
    before = world.wealth(world.provider, world.sybil)
    with boa.env.anchor():  # without the self-challenge: one honest challenge, one slash
        honest = open_and_reveal(world, root)
        assert not world.registry.answer(honest, *junk, sender=world.provider)
        loss_without = before - world.wealth(world.provider, world.sybil)
    assert loss_without == slash
    own, own_secret = open_challenge(world, root, world.sybil)
    honest, honest_secret = open_challenge(world, root)
    reveal(world, own, own_secret, world.sybil)
    world.registry.reveal_challenge(honest, honest_secret, sender=world.challenger)
    assert not world.registry.answer(own, *junk, sender=world.provider)
    key = world.registry.commitment_key(world.provider, root)
    assert world.registry.commitments(key).failed  # failed, but still held to the open challenge
    with boa.reverts("CommitmentFailed"):
        world.registry.request_release(root, sender=world.provider)
    boa.env.time_travel(blocks=WINDOW + 1)
    world.registry.slash_missed(honest, sender=world.challenger)
    loss_with = before - world.wealth(world.provider, world.sybil)
    assert loss_with == 2 * slash - share > loss_without  # 800 > 500 with these parameters
    assert world.registry.owed(world.challenger) == share + BOND
    assert world.registry.commitments(key).provider == "0x0000000000000000000000000000000000000000"
    assert world.registry.locked_stake(world.provider) == 0
    assert world.balance(world.registry.address) == world.accounted()


def test_a_self_challenge_is_a_strict_loss(world, stored_blob) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    before = world.wealth(world.provider, world.sybil)
    # Holding the blob: the bond comes back and nothing else; the gas is lost.
    own = open_and_reveal(world, root, world.sybil)
    assert world.registry.answer(*honest_args(world, store, own, root), sender=world.provider)
    assert world.wealth(world.provider, world.sybil) == before
    # Not holding it: the slash minus the challenger's share (300 of 1000 staked here).
    own = open_and_reveal(world, root, world.sybil)
    assert not world.registry.answer(own, bytes(32), [], b"x", 1, [], sender=world.provider)
    slash = STAKE * SLASH_BPS // 10000
    lost = before - world.wealth(world.provider, world.sybil)
    assert lost == slash - slash * CHALLENGER_BPS // 10000 > 0


def test_a_challenger_never_gets_the_whole_slash() -> None:
    with boa.env.anchor():
        treasury = boa.env.generate_address("treasury")
        token = load_boa("CommonsToken", treasury, 10**9)
        terms = [token.address, treasury, STAKE, BOND, SLASH_BPS]
        with pytest.raises(Exception, match="InvalidShareBps"):  # a deploy revert
            load_boa("StorageRegistry", *terms, 10000, WINDOW, RELEASE_DELAY)
        with pytest.raises(Exception, match="InvalidResponseWindow"):
            load_boa("StorageRegistry", *terms, 9999, 251, RELEASE_DELAY)
        load_boa("StorageRegistry", *terms, 9999, 250, RELEASE_DELAY)


class StakeAccounting(RuleBasedStateMachine):
    """Random stake/commit/challenge/reveal/answer/slash/expire/withdraw sequences, several
    challenges open at once, keep every token accounted: token.balanceOf(registry) == free +
    locked + bonds + owed, each total is the sum of its parts, and a commitment closes exactly
    when it has failed and its last challenge is settled."""

    store: LocalStore
    blob_id: str

    def __init__(self) -> None:
        super().__init__()
        self.anchor = boa.env.anchor()
        self.anchor.__enter__()
        self.world = World()
        self.manifest = self.store.read_manifest(self.blob_id)
        self.providers = [self.world.provider, boa.env.generate_address("p2")]
        self.world.token.transfer(self.providers[1], 10**6, sender=self.world.treasury)
        self.world.token.approve(self.world.registry.address, 2**256 - 1, sender=self.providers[1])
        # challenge id -> (provider, root, secret, revealed)
        self.open: dict[int, tuple[str, bytes, bytes, bool]] = {}
        # (provider, root) -> failed, for every commitment not closed
        self.commits: dict[tuple[str, bytes], bool] = {}
        self.roots = [self.manifest.root, b"\x07" * 32]

    def teardown(self) -> None:
        self.anchor.__exit__(None, None, None)

    def settled(self, challenge_id: int, slashed: bool) -> None:
        pair = self.open.pop(challenge_id)[:2]
        self.commits[pair] = self.commits[pair] or slashed
        if self.commits[pair] and not any(c[:2] == pair for c in self.open.values()):
            del self.commits[pair]

    @rule(p=st.integers(0, 1), amount=st.integers(1, 3 * STAKE))
    def stake(self, p: int, amount: int) -> None:
        self.world.registry.stake(amount, sender=self.providers[p])

    @rule(p=st.integers(0, 1), amount=st.integers(1, 3 * STAKE))
    def unstake(self, p: int, amount: int) -> None:
        if self.world.registry.free_stake(self.providers[p]) >= amount:
            self.world.registry.unstake(amount, sender=self.providers[p])

    @rule(p=st.integers(0, 1), r=st.integers(0, 1))
    def commit(self, p: int, r: int) -> None:
        who, root = self.providers[p], self.roots[r]
        if (who, root) not in self.commits and self.world.registry.free_stake(who) >= STAKE:
            self.world.registry.commit(root, len(self.manifest.chunks), sender=who)
            self.commits[(who, root)] = False

    @rule(p=st.integers(0, 1), r=st.integers(0, 1))
    def release(self, p: int, r: int) -> None:
        pair = (self.providers[p], self.roots[r])
        busy = any(c[:2] == pair for c in self.open.values())
        if pair in self.commits and not self.commits[pair] and not busy:
            self.world.registry.request_release(pair[1], sender=pair[0])
            boa.env.time_travel(blocks=RELEASE_DELAY)
            self.world.registry.release(pair[1], sender=pair[0])
            del self.commits[pair]

    @precondition(lambda self: self.commits)
    @rule(data=st.data())
    def challenge(self, data) -> None:
        pair = data.draw(st.sampled_from(sorted(self.commits)))
        secret = os.urandom(32)
        commitment = challenge_secret_hash(secret, self.world.challenger)
        cid = self.world.registry.open_challenge(*pair, commitment, sender=self.world.challenger)
        self.open[cid] = (*pair, secret, False)

    @precondition(lambda self: any(not c[3] for c in self.open.values()))
    @rule(data=st.data())
    def reveal(self, data) -> None:
        hidden = sorted(i for i, c in self.open.items() if not c[3])
        challenge_id = data.draw(st.sampled_from(hidden))
        who, root, secret, _ = self.open[challenge_id]
        boa.env.time_travel(blocks=2)
        window_end = self.world.registry.challenges(challenge_id).reveal_block + WINDOW
        if window_end < boa.env.evm.patch.block_number:
            # Other rules moved time past its reveal window: it can only expire.
            self.world.registry.expire_challenge(challenge_id, sender=who)
            self.settled(challenge_id, slashed=False)
            return
        self.world.registry.reveal_challenge(challenge_id, secret, sender=self.world.challenger)
        self.open[challenge_id] = (who, root, secret, True)

    @precondition(lambda self: any(c[3] for c in self.open.values()))
    @rule(data=st.data(), honest=st.booleans())
    def answer(self, data, honest: bool) -> None:
        challenge_id = data.draw(st.sampled_from(sorted(i for i, c in self.open.items() if c[3])))
        who, root, _, _ = self.open[challenge_id]
        if self.world.registry.challenges(challenge_id).deadline < boa.env.evm.patch.block_number:
            # Other rules moved time past this challenge's deadline: it can only be slashed.
            with boa.reverts("TooLate"):
                self.world.registry.answer(challenge_id, bytes(32), [], b"x", 1, [], sender=who)
            self.world.registry.slash_missed(challenge_id, sender=self.world.challenger)
            self.settled(challenge_id, slashed=True)
            return
        if honest and root == self.manifest.root:
            args = honest_args(self.world, self.store, challenge_id, root)
        else:
            args = (challenge_id, bytes(32), [], b"junk", 1, [])
        passed = self.world.registry.answer(*args, sender=who)
        assert passed == (honest and root == self.manifest.root)
        self.settled(challenge_id, slashed=not passed)

    @precondition(lambda self: any(c[3] for c in self.open.values()))
    @rule(data=st.data())
    def miss(self, data) -> None:
        challenge_id = data.draw(st.sampled_from(sorted(i for i, c in self.open.items() if c[3])))
        boa.env.time_travel(blocks=WINDOW + 2)
        self.world.registry.slash_missed(challenge_id, sender=self.world.challenger)
        self.settled(challenge_id, slashed=True)

    @rule(who=st.sampled_from(["provider", "p2", "challenger", "treasury"]))
    def withdraw(self, who: str) -> None:
        address = {
            "provider": self.providers[0],
            "p2": self.providers[1],
            "challenger": self.world.challenger,
            "treasury": self.world.treasury,
        }[who]
        if self.world.registry.owed(address) > 0:
            self.world.registry.withdraw(sender=address)

    @invariant()
    def balances(self) -> None:
        r = self.world.registry
        assert self.world.balance(r.address) == self.world.accounted()
        assert r.total_free() == sum(r.free_stake(p) for p in self.providers)
        assert r.total_locked() == sum(r.locked_stake(p) for p in self.providers)
        held = [r.commitments(r.commitment_key(*pair)) for pair in self.commits]
        assert r.total_locked() == sum(c.locked for c in held)
        assert all(c.provider == pair[0] for c, pair in zip(held, self.commits, strict=True))
        assert [c.failed for c in held] == list(self.commits.values())
        assert r.total_bonds() == BOND * len(self.open)
        parties = [*self.providers, self.world.challenger, self.world.treasury]
        assert r.total_owed() == sum(r.owed(p) for p in parties)


def test_stake_accounting_invariant(stored_blob) -> None:
    StakeAccounting.store, StakeAccounting.blob_id = stored_blob
    run = StakeAccounting.TestCase()
    run.settings = settings(max_examples=15, stateful_step_count=25, deadline=None)
    run.runTest()
