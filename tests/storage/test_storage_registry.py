"""StorageRegistry in titanoboa: honest answers pass, wrong proof / wrong chunk / wrong bytes /
late answers slash, the challenged index cannot be chosen, and stake accounting always balances.
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
from aicommons.storage.registry import answer_arguments, answer_from_store
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
        for who in (self.provider, self.challenger):
            self.token.transfer(who, 10**6, sender=self.treasury)
            self.token.approve(self.registry.address, 2**256 - 1, sender=who)

    def balance(self, who: str) -> int:
        return self.token.balanceOf(who)

    def accounted(self) -> int:
        r = self.registry
        return r.total_free() + r.total_locked() + r.total_bonds() + r.total_withdrawable()


@pytest.fixture
def world():
    with boa.env.anchor():
        yield World()


def committed(world: World, store: LocalStore, blob_id: str) -> bytes:
    manifest = store.read_manifest(blob_id)
    world.registry.stake(STAKE * 2, sender=world.provider)
    world.registry.commit(manifest.root, len(manifest.chunks), sender=world.provider)
    return manifest.root


def open_and_reveal(world: World, root: bytes) -> int:
    challenge_id = world.registry.open_challenge(world.provider, root, sender=world.challenger)
    boa.env.time_travel(blocks=2)
    return challenge_id


def honest_args(world: World, store: LocalStore, challenge_id: int, root: bytes) -> tuple:
    seed = world.registry.challenge_seed(challenge_id)
    return answer_arguments(challenge_id, answer_from_store(store, root, seed))


def assert_slashed(
    world: World, events: list, challenge_id: int, root: bytes, missed: bool
) -> None:
    r = world.registry
    assert r.challenges(challenge_id)[5] == 3  # SLASHED
    key = r.commitment_key(world.provider, root)
    assert r.commitments(key)[0] == "0x0000000000000000000000000000000000000000"
    slash = STAKE * SLASH_BPS // 10000
    to_challenger = slash * CHALLENGER_BPS // 10000
    assert r.withdrawable(world.challenger) == to_challenger + BOND
    assert r.withdrawable(world.treasury) == slash - to_challenger
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
        assert world.registry.challenges(challenge_id)[5] == 2  # PASSED
        assert world.registry.withdrawable(world.provider) == BOND * (round_number + 1)
    assert len(seen_chunks) >= 2, "seeds should spread challenges over the chunks"
    assert world.registry.locked_stake(world.provider) == STAKE
    before = world.balance(world.provider)
    world.registry.withdraw(sender=world.provider)
    assert world.balance(world.provider) == before + 12 * BOND
    assert world.balance(world.registry.address) == world.accounted()


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
    boa.env.time_travel(blocks=WINDOW)
    with boa.reverts("TooLate"):
        world.registry.answer(*args, sender=world.provider)
    anyone = boa.env.generate_address("anyone")
    world.registry.slash_missed(challenge_id, sender=anyone)
    events = world.registry.get_logs()  # of the slashing transaction, the last one
    assert_slashed(world, events, challenge_id, root, missed=True)


def test_challenge_index_is_unknown_when_opened_and_bound_to_provider_and_root(
    world, stored_blob
) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    challenge_id = world.registry.open_challenge(world.provider, root, sender=world.challenger)
    # In the opening block and in the reveal block itself nobody can compute the seed yet.
    with boa.reverts("TooEarly"):
        world.registry.challenge_seed(challenge_id)
    boa.env.time_travel(blocks=1)
    with boa.reverts("TooEarly"):
        world.registry.challenge_seed(challenge_id)
    with boa.reverts("TooEarly"):
        world.registry.answer(*([challenge_id, bytes(32), [], b"x", 1, []]), sender=world.provider)
    boa.env.time_travel(blocks=1)
    seed = world.registry.challenge_seed(challenge_id)
    # A second provider committing the same root gets a different seed for the same blocks.
    other = boa.env.generate_address("other-provider")
    world.token.transfer(other, STAKE, sender=world.treasury)
    world.token.approve(world.registry.address, STAKE, sender=other)
    world.registry.stake(STAKE, sender=other)
    manifest = store.read_manifest(blob_id)
    world.registry.commit(root, len(manifest.chunks), sender=other)
    other_id = world.registry.open_challenge(other, root, sender=world.challenger)
    boa.env.time_travel(blocks=2)
    assert world.registry.challenge_seed(other_id) != seed
    # Only the provider may answer: a stranger cannot trigger a slash with a bad answer.
    with boa.reverts("NotProvider"):
        world.registry.answer(challenge_id, bytes(32), [], b"x", 1, [], sender=world.challenger)


def test_commit_release_and_guards(world, stored_blob) -> None:
    store, blob_id = stored_blob
    root = committed(world, store, blob_id)
    with boa.reverts("AlreadyCommitted"):
        world.registry.commit(root, 3, sender=world.provider)
    with boa.reverts("BadLeafCount"):
        world.registry.commit(b"\x01" * 32, 0, sender=world.provider)
    with boa.reverts("ReleaseNotRequested"):
        world.registry.release(root, sender=world.provider)
    world.registry.request_release(root, sender=world.provider)
    with boa.reverts("ReleaseNotDue"):
        world.registry.release(root, sender=world.provider)
    # Still challengeable during the release delay: a provider cannot escape a challenge it sees
    # coming by releasing first.
    challenge_id = world.registry.open_challenge(world.provider, root, sender=world.challenger)
    boa.env.time_travel(blocks=RELEASE_DELAY)
    with boa.reverts("ChallengeOpen"):
        world.registry.release(root, sender=world.provider)
    with boa.reverts("ChallengeOpen"):
        world.registry.open_challenge(world.provider, root, sender=world.challenger)
    world.registry.answer(*honest_args(world, store, challenge_id, root), sender=world.provider)
    world.registry.release(root, sender=world.provider)
    assert world.registry.free_stake(world.provider) == 2 * STAKE
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


class StakeAccounting(RuleBasedStateMachine):
    """Random stake/commit/challenge/answer/slash/withdraw sequences keep every token accounted:
    token.balanceOf(registry) == free + locked + bonds + withdrawable, and the per-provider sums
    match the totals."""

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
        self.open: dict[int, tuple[str, bytes]] = {}
        self.commits: set[tuple[str, bytes]] = set()
        self.roots = [self.manifest.root, b"\x07" * 32]

    def teardown(self) -> None:
        self.anchor.__exit__(None, None, None)

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
            self.commits.add((who, root))

    @rule(p=st.integers(0, 1), r=st.integers(0, 1))
    def release(self, p: int, r: int) -> None:
        pair = (self.providers[p], self.roots[r])
        if pair in self.commits and pair not in self.open.values():
            self.world.registry.request_release(pair[1], sender=pair[0])
            boa.env.time_travel(blocks=RELEASE_DELAY)
            self.world.registry.release(pair[1], sender=pair[0])
            self.commits.discard(pair)

    @precondition(lambda self: self.commits)
    @rule(data=st.data())
    def challenge(self, data) -> None:
        candidates = sorted(self.commits - set(self.open.values()))
        if candidates:
            pair = data.draw(st.sampled_from(candidates))
            cid = self.world.registry.open_challenge(*pair, sender=self.world.challenger)
            self.open[cid] = pair

    @precondition(lambda self: self.open)
    @rule(data=st.data(), honest=st.booleans())
    def answer(self, data, honest: bool) -> None:
        challenge_id = data.draw(st.sampled_from(sorted(self.open)))
        who, root = self.open[challenge_id]
        boa.env.time_travel(blocks=2)
        if self.world.registry.challenges(challenge_id)[4] < boa.env.evm.patch.block_number:
            # Other rules moved time past this challenge's deadline: it can only be slashed.
            with boa.reverts("TooLate"):
                self.world.registry.answer(challenge_id, bytes(32), [], b"x", 1, [], sender=who)
            self.world.registry.slash_missed(challenge_id, sender=self.world.challenger)
            self.commits.discard(self.open.pop(challenge_id))
            return
        if honest and root == self.manifest.root:
            args = honest_args(self.world, self.store, challenge_id, root)
        else:
            args = (challenge_id, bytes(32), [], b"junk", 1, [])
        passed = self.world.registry.answer(*args, sender=who)
        assert passed == (honest and root == self.manifest.root)
        del self.open[challenge_id]
        if not passed:
            self.commits.discard((who, root))

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def miss(self, data) -> None:
        challenge_id = data.draw(st.sampled_from(sorted(self.open)))
        boa.env.time_travel(blocks=WINDOW + 2)
        self.world.registry.slash_missed(challenge_id, sender=self.world.challenger)
        self.commits.discard(self.open.pop(challenge_id))

    @rule(who=st.sampled_from(["provider", "p2", "challenger", "treasury"]))
    def withdraw(self, who: str) -> None:
        address = {
            "provider": self.providers[0],
            "p2": self.providers[1],
            "challenger": self.world.challenger,
            "treasury": self.world.treasury,
        }[who]
        if self.world.registry.withdrawable(address) > 0:
            self.world.registry.withdraw(sender=address)

    @invariant()
    def balances(self) -> None:
        r = self.world.registry
        assert self.world.balance(r.address) == self.world.accounted()
        assert r.total_free() == sum(r.free_stake(p) for p in self.providers)
        assert r.total_locked() == sum(r.locked_stake(p) for p in self.providers)
        assert r.total_locked() == STAKE * len(self.commits)
        assert r.total_bonds() == BOND * len(self.open)
        parties = [*self.providers, self.world.challenger, self.world.treasury]
        assert r.total_withdrawable() == sum(r.withdrawable(p) for p in parties)


def test_stake_accounting_invariant(stored_blob) -> None:
    StakeAccounting.store, StakeAccounting.blob_id = stored_blob
    run = StakeAccounting.TestCase()
    run.settings = settings(max_examples=15, stateful_step_count=25, deadline=None)
    run.runTest()
