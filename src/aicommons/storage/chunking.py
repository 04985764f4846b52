"""Blob chunking and manifests: chunk CIDs, segment roots, the blob Merkle root, blob ids.

Pure functions over bytes; no files, no network. The formats here are protocol (docs/storage.md):
the StorageRegistry contract checks proofs built from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from _pysha3 import keccak_256

from aicommons.commit import (
    MerkleProof,
    MerkleTree,
    canonical_json,
    keccak256,
    leaf_hash,
)
from aicommons.commit.json_input import JsonInputError, parse_json
from aicommons.commit.merkle import EMPTY_SLOT, LEAF_PREFIX, NODE_PREFIX, ROOT_PREFIX, tree_depth
from aicommons.storage.cids import fast_cid, sha256_of_cid
from aicommons.storage.errors import ManifestError

CHUNK_SIZE = 1 << 20
"""Bytes per chunk (the last chunk of a blob may be shorter; a chunk is never empty)."""
SEGMENT_SIZE = 1 << 14
"""Bytes per segment: the unit a provider sends on-chain to answer a storage challenge."""
MANIFEST_FORMAT = "aicommons-blob/1"
MAX_MANIFEST_BYTES = 64 << 20
"""Largest manifest accepted (about 160 bytes per chunk: blobs up to ~400 TiB)."""
MANIFEST_BYTES_PER_CHUNK = 192
"""Bound on one chunk's entry in a canonical manifest (161 bytes with its comma)."""


def max_manifest_bytes(blob_bytes: int) -> int:
    """Largest canonical manifest of a blob of at most `blob_bytes` (capped at
    MAX_MANIFEST_BYTES): what a node or client reads at most for such a blob."""
    chunks = -(-max(blob_bytes, 0) // CHUNK_SIZE)
    return min(MAX_MANIFEST_BYTES, 1024 + MANIFEST_BYTES_PER_CHUNK * chunks)


def segment_count(chunk_size: int) -> int:
    """Number of segments of a chunk of `chunk_size` bytes (the last one may be shorter)."""
    return max(1, -(-chunk_size // SEGMENT_SIZE))


def chunk_segments(chunk: bytes | memoryview) -> list[memoryview]:
    """The chunk's segments as views (no copies)."""
    view = memoryview(chunk)
    return [view[offset : offset + SEGMENT_SIZE] for offset in range(0, len(view), SEGMENT_SIZE)]


def chunk_tree(chunk: bytes | memoryview) -> MerkleTree:
    """Merkle tree whose leaves are the chunk's segments (raw bytes as leaf data)."""
    return MerkleTree([leaf_hash(segment) for segment in chunk_segments(chunk)])


def chunk_root(chunk: bytes | memoryview) -> bytes:
    """The chunk's commitment: Merkle root over its segments. This is the blob tree's leaf data.

    Same value as `chunk_tree(chunk).root` (tested), computed on the hot path with the C keccak
    straight over memoryviews: eth_hash's auto backend (pycryptodome here) costs ~15 us of Python
    per call and copies each segment twice, about half as much again as the hashing itself.
    """
    view = memoryview(chunk)
    level = []
    for offset in range(0, len(view), SEGMENT_SIZE):
        leaf = keccak_256(LEAF_PREFIX)
        leaf.update(view[offset : offset + SEGMENT_SIZE])
        level.append(leaf.digest())
    count = len(level)
    level += [EMPTY_SLOT] * ((1 << tree_depth(count)) - count)
    if not level:
        level = [EMPTY_SLOT]
    while len(level) > 1:
        level = [
            keccak_256(NODE_PREFIX + level[i] + level[i + 1]).digest()
            for i in range(0, len(level), 2)
        ]
    return keccak_256(ROOT_PREFIX + count.to_bytes(32, "big") + level[0]).digest()


@dataclass(frozen=True)
class ChunkInfo:
    """What a manifest records per chunk: its CID (sha2-256), size and segment root (keccak)."""

    cid: str
    size: int
    root: bytes

    def to_json(self) -> dict[str, object]:
        return {"cid": self.cid, "root": "0x" + self.root.hex(), "size": self.size}


def describe_chunk(chunk: bytes | memoryview) -> ChunkInfo:
    """CID, size and segment root of one chunk (hashlib and keccak both release the GIL)."""
    if len(chunk) == 0 or len(chunk) > CHUNK_SIZE:
        raise ManifestError(f"a chunk is 1..{CHUNK_SIZE} bytes, got {len(chunk)}")
    return ChunkInfo(fast_cid(chunk), len(chunk), chunk_root(chunk))


@dataclass(frozen=True)
class BlobManifest:
    """A blob: its size, its chunks in order and the Merkle root over the chunks' segment roots."""

    size: int
    chunks: tuple[ChunkInfo, ...]
    root: bytes

    @classmethod
    def from_chunks(cls, chunks: Sequence[ChunkInfo]) -> BlobManifest:
        tree = MerkleTree.from_leaves([chunk.root for chunk in chunks])
        return cls(sum(chunk.size for chunk in chunks), tuple(chunks), tree.root)

    def to_json(self) -> dict[str, object]:
        return {
            "chunk_size": CHUNK_SIZE,
            "chunks": [chunk.to_json() for chunk in self.chunks],
            "format": MANIFEST_FORMAT,
            "root": "0x" + self.root.hex(),
            "segment_size": SEGMENT_SIZE,
            "size": self.size,
        }

    def encode(self) -> bytes:
        """The canonical JSON bytes whose keccak-256 is the blob id."""
        return canonical_json(self.to_json())

    @property
    def blob_id(self) -> str:
        return blob_id_of(self.encode())

    def offset_of(self, index: int) -> int:
        return index * CHUNK_SIZE

    def blob_tree(self) -> MerkleTree:
        return MerkleTree.from_leaves([chunk.root for chunk in self.chunks])

    def chunk_proof(self, index: int) -> MerkleProof:
        """Proof that chunk `index`'s segment root is leaf `index` under `self.root`."""
        return self.blob_tree().prove(index)


def blob_id_of(manifest_bytes: bytes) -> str:
    """Blob id: `0x` + hex keccak-256 of the manifest's canonical JSON."""
    return "0x" + keccak256(manifest_bytes).hex()


def _hex32(value: object, where: str) -> bytes:
    text = str(value)
    if not (text.startswith("0x") and len(text) == 66):
        raise ManifestError(f"{where} is not a 0x-prefixed 32-byte hex string")
    try:
        return bytes.fromhex(text[2:])
    except ValueError as exc:
        raise ManifestError(f"{where} is not hex") from exc


def parse_manifest(manifest_bytes: bytes) -> BlobManifest:
    """Parse and check a manifest: canonical form, chunk sizes, the root over the chunk roots,
    and that CIDs and chunk roots name the same bytes wherever they repeat (one CID, one root).

    It cannot check that a CID and a chunk root name the *same* bytes: only the chunk's bytes
    can (`LocalStore.put_manifest` does, before it holds a blob).
    """
    try:
        data = parse_json(manifest_bytes, what="manifest", max_bytes=MAX_MANIFEST_BYTES)
    except JsonInputError as exc:
        raise ManifestError(str(exc)) from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"manifest format is not {MANIFEST_FORMAT}")
    if data.get("chunk_size") != CHUNK_SIZE or data.get("segment_size") != SEGMENT_SIZE:
        raise ManifestError("manifest chunk_size/segment_size differ from this protocol version")
    raw_chunks = data.get("chunks")
    if not isinstance(raw_chunks, list):
        raise ManifestError("manifest chunks is not a list")
    chunks = []
    for index, raw in enumerate(raw_chunks):
        if not isinstance(raw, dict) or not isinstance(raw.get("size"), int):
            raise ManifestError(f"manifest chunk {index} is malformed")
        cid = str(raw.get("cid"))
        sha256_of_cid(cid)
        chunks.append(ChunkInfo(cid, raw["size"], _hex32(raw.get("root"), "root")))
    seen_cids: dict[str, ChunkInfo] = {}
    cid_of_root: dict[bytes, str] = {}
    for index, chunk in enumerate(chunks):
        expected = CHUNK_SIZE if index < len(chunks) - 1 else chunk.size
        if chunk.size != expected or not 0 < chunk.size <= CHUNK_SIZE:
            raise ManifestError(f"manifest chunk {index} has size {chunk.size}")
        # Equal bytes have equal CIDs and equal roots, so the two must pair up one to one.
        if seen_cids.setdefault(chunk.cid, chunk) != chunk:
            raise ManifestError(f"manifest chunk {index}: CID {chunk.cid} is listed twice unequal")
        if cid_of_root.setdefault(chunk.root, chunk.cid) != chunk.cid:
            raise ManifestError(f"manifest chunk {index}: its root is listed with two CIDs")
    manifest = BlobManifest.from_chunks(chunks)
    if manifest.size != data.get("size"):
        raise ManifestError("manifest size is not the sum of its chunk sizes")
    if manifest.root != _hex32(data.get("root"), "root"):
        raise ManifestError("manifest root is not the Merkle root of its chunk roots")
    if manifest.encode() != manifest_bytes:
        raise ManifestError("manifest is not in canonical JSON form")
    return manifest


@dataclass(frozen=True)
class StorageAnswer:
    """Everything a provider sends on-chain for a challenge of chunk `chunk_proof.index`."""

    chunk_root: bytes
    chunk_proof: MerkleProof
    segment: bytes
    segment_proof: MerkleProof


def storage_answer(
    manifest: BlobManifest, chunk_index: int, chunk: bytes, seed: int
) -> StorageAnswer:
    """Build the answer for a challenge: the segment `seed` selects inside chunk `chunk_index`."""
    tree = chunk_tree(chunk)
    segment_index = challenge_segment_index(seed, tree.leaf_count)
    segment = bytes(chunk_segments(chunk)[segment_index])
    return StorageAnswer(
        tree.root, manifest.chunk_proof(chunk_index), segment, tree.prove(segment_index)
    )


def challenge_chunk_index(seed: int, leaf_count: int) -> int:
    """Chunk a challenge asks for: the low 128 bits of the seed modulo the chunk count."""
    return (seed & ((1 << 128) - 1)) % leaf_count


def challenge_segment_index(seed: int, segments: int) -> int:
    """Segment a challenge asks for: the high 128 bits of the seed modulo the segment count."""
    return (seed >> 128) % segments
