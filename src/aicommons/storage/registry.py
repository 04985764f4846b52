"""Client for the StorageRegistry contract (as provider and as challenger) and the provider
daemon that answers its challenges.

Answers are built from the local store (pure given the store); chain access goes through web3
JSON-RPC, so it works with `aic devnet` or any EVM node. Never answers from anything but real bytes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount

from aicommons.commit import keccak256
from aicommons.storage.chunking import (
    BlobManifest,
    StorageAnswer,
    challenge_chunk_index,
    chunk_root,
    storage_answer,
)
from aicommons.storage.errors import RegistryError
from aicommons.storage.store import LocalStore

# The contract's `flag Phase` (one bit each, in declaration order); pinned by the tests.
CHALLENGE_COMMITTED = 1
CHALLENGE_REVEALED = 2
CHALLENGE_PASSED = 4
CHALLENGE_SLASHED = 8
CHALLENGE_EXPIRED = 16


def challenge_secret_hash(secret: bytes, challenger: str) -> bytes:
    """What a challenger commits to when it opens a challenge (`StorageRegistry.secret_hash`):
    keccak256(abi_encode(secret, challenger))."""
    return keccak256(abi_encode(["bytes32", "address"], [secret, challenger]))


def challenge_seed(
    *, block_hash: bytes, secret: bytes, provider: str, root: bytes, challenge_id: int
) -> int:
    """A challenge's seed as `StorageRegistry.reveal_challenge` fixes it: keccak256 of the
    reveal block's hash, the challenger's secret, the provider, the root and the id."""
    encoded = abi_encode(
        ["bytes32", "bytes32", "address", "bytes32", "uint256"],
        [block_hash, secret, provider, root, challenge_id],
    )
    return int.from_bytes(keccak256(encoded), "big")


def answer_from_store(store: LocalStore, root: bytes, seed: int) -> StorageAnswer:
    """The answer to a challenge with `seed` against the stored blob whose root is `root`.

    Built from the chunk whose bytes have the committed chunk root (leaf `index` under `root`),
    never from whatever a manifest's CID names: a manifest with swapped CIDs, stored before
    nodes checked chunk roots, must not make an honest provider answer with the wrong chunk.
    """
    manifest = store.read_manifest(store.blob_for_root(root))
    if manifest.root != root:
        raise RegistryError(f"the store's index names a blob of another root for 0x{root.hex()}")
    index = challenge_chunk_index(seed, len(manifest.chunks))
    chunk = chunk_with_root(store, manifest.chunks[index].root, manifest)
    return storage_answer(manifest, index, chunk, seed)


def chunk_with_root(store: LocalStore, wanted: bytes, manifest: BlobManifest) -> bytes:
    """Stored bytes whose chunk root is `wanted`, read (and CID-checked) from the store.

    Candidates, cheapest first: the CID `manifest` lists with `wanted`, every other CID of
    `manifest` (its chunks are the blob's bytes, possibly listed in the wrong places), then
    the CIDs other held manifests list with `wanted`.
    """

    def candidates() -> Iterator[str]:
        yield from (chunk.cid for chunk in manifest.chunks if chunk.root == wanted)
        yield from (chunk.cid for chunk in manifest.chunks if chunk.root != wanted)
        for blob_id in store.blob_ids():
            with contextlib.suppress(OSError, ValueError):
                yield from (c.cid for c in store.read_manifest(blob_id).chunks if c.root == wanted)

    tried: set[str] = set()
    for cid in candidates():
        if cid in tried:
            continue
        tried.add(cid)
        with contextlib.suppress(OSError, ValueError):
            data = store.read_chunk(cid)
            if chunk_root(data) == wanted:
                return data
    raise RegistryError(f"no stored chunk has chunk root 0x{wanted.hex()}")


def answer_arguments(challenge_id: int, answer: StorageAnswer) -> tuple[Any, ...]:
    """Arguments of `StorageRegistry.answer` in ABI order."""
    return (
        challenge_id,
        answer.chunk_root,
        list(answer.chunk_proof.siblings),
        answer.segment,
        answer.segment_proof.leaf_count,
        list(answer.segment_proof.siblings),
    )


def check_blob_provable(store: LocalStore, blob_id: str) -> tuple[bytes, int]:
    """Re-derive every chunk's segment root from the stored bytes; return (root, chunk count).

    A provider must run this before committing: a manifest whose segment roots do not match its
    chunks would make every challenge fail.
    """
    manifest = store.read_manifest(blob_id)
    if not manifest.chunks:
        raise RegistryError(f"blob {blob_id} is empty; an empty blob cannot be committed")
    for index, chunk in enumerate(manifest.chunks):
        if chunk_root(store.read_chunk(chunk.cid)) != chunk.root:
            raise RegistryError(f"blob {blob_id}: chunk {index} does not match its segment root")
    return manifest.root, len(manifest.chunks)


@dataclass(frozen=True)
class RevealedChallenge:
    """A challenge whose seed is fixed: the provider must answer it by block `deadline`."""

    challenge_id: int
    root: bytes
    seed: int
    deadline: int


class RegistryClient:
    """A StorageRegistry at `address` on a web3 connection, acting as `account`."""

    def __init__(self, w3: Any, address: str, account: LocalAccount) -> None:
        from aicommons.chain.compile import compile_contract

        self.w3 = w3
        self.account = account
        abi = compile_contract("StorageRegistry").abi
        self.contract = w3.eth.contract(address=w3.to_checksum_address(address), abi=abi)
        getter = next(item for item in abi if item.get("name") == "challenges")
        fields = [field["name"] for field in getter["outputs"][0]["components"]]
        self._phase_field = fields.index("phase")

    def transact(self, function: Any) -> Any:
        """Sign and send a contract call as `account`; return the receipt, raise if reverted."""
        from aicommons.chain.transact import send_call

        return send_call(self.w3, self.account, function, function.fn_name)

    def commit(self, root: bytes, leaf_count: int) -> Any:
        return self.transact(self.contract.functions.commit(root, leaf_count))

    def is_committed(self, root: bytes) -> bool:
        key = self.contract.functions.commitment_key(self.account.address, root).call()
        return self.contract.functions.commitments(key).call()[0] == self.account.address

    def challenge_phase(self, challenge_id: int) -> int:
        return int(self.contract.functions.challenges(challenge_id).call()[self._phase_field])

    # -- as a challenger -----------------------------------------------------------------------

    def open_challenge(self, provider: str, root: bytes, secret: bytes) -> int:
        """Challenge `provider`'s commitment to `root` with `secret` (32 random bytes, kept until
        `reveal_challenge`); return the challenge id."""
        commitment = challenge_secret_hash(secret, self.account.address)
        receipt = self.transact(self.contract.functions.open_challenge(provider, root, commitment))
        from web3.logs import DISCARD

        # The receipt also holds the token's Transfer log, which is not this contract's event.
        opened = self.contract.events.ChallengeOpened().process_receipt(receipt, errors=DISCARD)
        return int(opened[0]["args"]["challenge_id"])

    def reveal_challenge(self, challenge_id: int, secret: bytes) -> Any:
        """Reveal the secret once the block after the opening one is mined (fixes the seed)."""
        return self.transact(self.contract.functions.reveal_challenge(challenge_id, secret))

    # -- as a provider -------------------------------------------------------------------------

    def revealed_since(self, from_block: int, to_block: int) -> list[RevealedChallenge]:
        """ChallengeRevealed events against this provider mined in [from_block, to_block]."""
        logs = self.contract.events.ChallengeRevealed.get_logs(
            from_block=from_block,
            to_block=to_block,
            argument_filters={"provider": self.account.address},
        )
        return [
            RevealedChallenge(
                int(log["args"]["challenge_id"]),
                bytes(log["args"]["root"]),
                int(log["args"]["seed"]),
                int(log["args"]["deadline"]),
            )
            for log in logs
        ]

    def answer(self, challenge: RevealedChallenge, store: LocalStore) -> bool:
        """Answer one challenge from the store; True if the registry accepted it."""
        answer = answer_from_store(store, challenge.root, challenge.seed)
        self.transact(
            self.contract.functions.answer(*answer_arguments(challenge.challenge_id, answer))
        )
        return self.challenge_phase(challenge.challenge_id) == CHALLENGE_PASSED


class ProviderDaemon:
    """Watches the registry for challenges against this provider and answers each in time."""

    def __init__(
        self,
        client: RegistryClient,
        store: LocalStore,
        from_block: int = 0,
        report: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.client = client
        self.store = store
        self.next_block = from_block
        self.pending: dict[int, RevealedChallenge] = {}
        self.report = report

    def commit_stored(self) -> list[str]:
        """Commit every stored, provable blob not committed yet; return their ids."""
        committed = []
        for blob_id in self.store.blob_ids():
            manifest = self.store.read_manifest(blob_id)
            if not manifest.chunks or self.client.is_committed(manifest.root):
                continue
            root, leaf_count = check_blob_provable(self.store, blob_id)
            self.client.commit(root, leaf_count)
            self.report(f"committed blob {blob_id} (root 0x{root.hex()}, {leaf_count} chunks)")
            committed.append(blob_id)
        return committed

    def poll_once(self) -> dict[int, bool]:
        """Pick up newly revealed challenges and answer each while its deadline allows.

        Returns challenge id -> accepted for every answer sent in this round.
        """
        head = int(self.client.w3.eth.block_number)
        if head >= self.next_block:
            for challenge in self.client.revealed_since(self.next_block, head):
                self.pending[challenge.challenge_id] = challenge
            self.next_block = head + 1
        results: dict[int, bool] = {}
        for challenge_id, challenge in sorted(self.pending.items()):
            del self.pending[challenge_id]
            # The answer lands in a block after `head`, which must be no later than the deadline.
            if head >= challenge.deadline:
                self.report(f"challenge {challenge_id}: deadline passed unanswered")
                continue
            if self.client.challenge_phase(challenge_id) != CHALLENGE_REVEALED:
                continue
            try:
                results[challenge_id] = self.client.answer(challenge, self.store)
            except (OSError, ValueError) as exc:
                self.report(f"challenge {challenge_id}: could not answer: {exc}")
                results[challenge_id] = False
                continue
            verdict = "passed" if results[challenge_id] else "FAILED (slashed)"
            self.report(f"challenge {challenge_id} on root 0x{challenge.root.hex()}: {verdict}")
        return results

    def run(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Poll until `stop` is set."""
        while not stop.is_set():
            self.poll_once()
            stop.wait(interval)


def wait_for_rpc(w3: Any, timeout: float = 30.0) -> None:
    """Block until the JSON-RPC endpoint answers, or raise OSError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if w3.is_connected():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise OSError("JSON-RPC endpoint did not answer")
