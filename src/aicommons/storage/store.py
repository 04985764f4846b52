"""Content-addressed local store: chunks named by CID, blob manifests named by blob id.

Every write is temp file + fsync + rename (a crash never leaves a complete-looking bad file) and
every read is verified against its name. Never holds a whole blob in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aicommons.fsutil import fsync_directory
from aicommons.storage.chunking import (
    CHUNK_SIZE,
    BlobManifest,
    ChunkInfo,
    ManifestError,
    blob_id_of,
    chunk_root,
    describe_chunk,
    parse_manifest,
)
from aicommons.storage.cids import cid_from_sha256, fast_cid, sha256_of_cid
from aicommons.storage.errors import BlobMissingError, ChunkCorruptError, ChunkMissingError

Buffer = bytes | bytearray | memoryview

DEFAULT_WORKERS = max(2, min(8, os.cpu_count() or 2))
STALE_TEMP_SECONDS = 3600


@dataclass(frozen=True)
class GarbageReport:
    """What one collection removed; `stopped` names why it deleted no chunk, if it stopped."""

    chunks_removed: int
    bytes_removed: int
    temps_removed: int
    stopped: str | None


def check_cid(cid: str) -> str:
    """Return `cid` if it is a raw sha2-256 CIDv1 in base32 (safe as a file name), else raise."""
    sha256_of_cid(cid)  # also guarantees "b" + lower-case base32 letters only
    return cid


def check_blob_id(blob_id: str) -> str:
    """Return `blob_id` if it is `0x` + 64 lower-case hex digits, else raise."""
    body = blob_id.removeprefix("0x")
    if len(blob_id) != 66 or body != body.lower() or not all(c in "0123456789abcdef" for c in body):
        raise ValueError(f"blob id {blob_id!r} is not 0x + 64 lower-case hex digits")
    return blob_id


def verify_chunk_bytes(cid: str, data: bytes | memoryview) -> None:
    """Raise `ChunkCorruptError` unless `data` hashes to `cid`."""
    if fast_cid(data) != cid:
        raise ChunkCorruptError(f"chunk bytes do not match CID {cid}")


class LocalStore:
    """A directory of chunks (`chunks/xx/<cid>`), manifests (`blobs/<id>.json`) and root index."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._tmp = self.directory / "tmp"
        for sub in ("chunks", "blobs", "roots"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        # Orders manifest writes and chunk touches against chunk collection (in this process);
        # while a collection runs, `_new_refs` holds the CIDs of manifests written meanwhile.
        self._lock = threading.Lock()
        self._new_refs: set[str] | None = None
        self._remove_stale_temps()

    # -- paths -------------------------------------------------------------------------------

    def chunk_path(self, cid: str) -> Path:
        return self.directory / "chunks" / check_cid(cid)[-2:] / cid

    def manifest_path(self, blob_id: str) -> Path:
        return self.directory / "blobs" / f"{check_blob_id(blob_id)}.json"

    def root_path(self, root: bytes) -> Path:
        return self.directory / "roots" / root.hex()

    def _write_atomic(
        self, target: Path, data: bytes | memoryview | Sequence[Buffer], sync_dir: bool = True
    ) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = self._tmp / f"{uuid.uuid4().hex}.tmp"
        parts = [data] if isinstance(data, bytes | bytearray | memoryview) else data
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                _write_all(fd, parts)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        if sync_dir:
            fsync_directory(target.parent)

    # -- chunks ------------------------------------------------------------------------------

    def has_chunk(self, cid: str) -> bool:
        return self.chunk_path(cid).exists()

    def put_chunk(self, cid: str, data: bytes | memoryview) -> None:
        """Store `data` under `cid` after checking the CID (content-addressed: idempotent)."""
        self.put_chunk_parts(cid, [data])

    def put_chunk_parts(self, cid: str, parts: Sequence[Buffer]) -> None:
        """`put_chunk` for a chunk that arrived in pieces: hashed and written without joining
        them (a node would otherwise allocate, fault in and copy a fresh 1 MiB per request)."""
        size = sum(len(memoryview(part)) for part in parts)
        if not 0 < size <= CHUNK_SIZE:
            raise ChunkCorruptError(f"chunk {cid} has {size} bytes, expected 1..{CHUNK_SIZE}")
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part)
        if cid_from_sha256(digest.digest()) != cid:
            raise ChunkCorruptError(f"chunk bytes do not match CID {cid}")
        path = self.chunk_path(cid)
        if not self.touch_chunk(cid):
            # The file itself is fsynced; its directory entry is made durable in bulk by
            # `put_manifest`, before any manifest can point at it.
            self._write_atomic(path, parts, sync_dir=False)

    def touch_chunk(self, cid: str) -> bool:
        """Whether the chunk is stored; if so, mark it as just uploaded (its modification time),
        so that collection leaves it to the upload that relies on it."""
        with self._lock:
            try:
                os.utime(self.chunk_path(cid))
            except FileNotFoundError:
                return False
        return True

    def read_chunk(self, cid: str) -> bytes:
        """The chunk's bytes, verified against `cid`."""
        try:
            data = self.chunk_path(cid).read_bytes()
        except FileNotFoundError:
            raise ChunkMissingError(f"chunk {cid} is not in the store") from None
        verify_chunk_bytes(cid, data)
        return data

    def chunk_cids(self) -> Iterator[str]:
        for path in (self.directory / "chunks").glob("*/*"):
            yield path.name

    # -- blobs -------------------------------------------------------------------------------

    def missing_chunks(self, manifest: BlobManifest) -> list[str]:
        return [chunk.cid for chunk in manifest.chunks if not self.has_chunk(chunk.cid)]

    def verify_manifest_chunks(
        self, manifest: BlobManifest, *, workers: int = DEFAULT_WORKERS
    ) -> None:
        """Raise unless every chunk the manifest lists is stored, hashes to its CID and has the
        manifest's chunk root: the one check that ties a manifest's CIDs to its blob root.

        Parallel over chunks (sha2-256 and keccak release the GIL); one chunk per worker in memory.
        """

        def check(index: int) -> None:
            chunk = manifest.chunks[index]
            if chunk_root(self.read_chunk(chunk.cid)) != chunk.root:
                raise ManifestError(
                    f"manifest chunk {index}: the bytes of {chunk.cid} do not have its chunk root"
                )

        first_of_cid = {chunk.cid: index for index, chunk in enumerate(manifest.chunks)}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(check, sorted(first_of_cid.values())))

    def put_manifest(self, manifest_bytes: bytes) -> BlobManifest:
        """Hold a complete blob, once each chunk is stored and matches its CID and chunk root.

        Nothing anyone posts later changes what the store answers for a blob or a root it holds:
        a blob id names its manifest bytes, and `roots/<root>` is written only while no held
        blob has that root (a checked manifest for a root is unique, so this is defence in depth).
        """
        manifest = parse_manifest(manifest_bytes)
        blob_id = blob_id_of(manifest_bytes)
        missing = self.missing_chunks(manifest)
        if missing:
            raise BlobMissingError(f"blob is incomplete, missing chunks: {', '.join(missing)}")
        if not self.has_blob(blob_id):
            self.verify_manifest_chunks(manifest)
        for directory in sorted({self.chunk_path(chunk.cid).parent for chunk in manifest.chunks}):
            fsync_directory(directory)
        with self._lock:
            missing = self.missing_chunks(manifest)  # collected meanwhile: refuse, never half-hold
            if missing:
                raise BlobMissingError(f"blob is incomplete, missing chunks: {', '.join(missing)}")
            if not self.has_blob(blob_id):
                self._write_atomic(self.manifest_path(blob_id), manifest_bytes)
            if self._new_refs is not None:
                self._new_refs.update(chunk.cid for chunk in manifest.chunks)
            if self._held_blob_for_root(manifest.root) is None:
                self._write_atomic(self.root_path(manifest.root), blob_id.encode())
        return manifest

    def _held_blob_for_root(self, root: bytes) -> str | None:
        """The blob `roots/<root>` names, if that blob is held and has that root; else None."""
        try:
            blob_id = check_blob_id(self.root_path(root).read_text().strip())
            if self.read_manifest(blob_id).root == root:
                return blob_id
        except (OSError, ValueError):
            pass
        return None

    def has_blob(self, blob_id: str) -> bool:
        return self.manifest_path(blob_id).exists()

    def read_manifest_bytes(self, blob_id: str) -> bytes:
        try:
            data = self.manifest_path(blob_id).read_bytes()
        except FileNotFoundError:
            raise BlobMissingError(f"blob {blob_id} is not in the store") from None
        if blob_id_of(data) != blob_id:
            raise ManifestError(f"stored manifest of blob {blob_id} does not hash to its id")
        return data

    def read_manifest(self, blob_id: str) -> BlobManifest:
        return parse_manifest(self.read_manifest_bytes(blob_id))

    def blob_for_root(self, root: bytes) -> str:
        """Id of the held blob whose Merkle root is `root` (the first one stored)."""
        try:
            blob_id = self.root_path(root).read_text().strip()
        except FileNotFoundError:
            raise BlobMissingError(f"no stored blob has root 0x{root.hex()}") from None
        return check_blob_id(blob_id)

    def blob_ids(self) -> list[str]:
        return sorted(path.stem for path in (self.directory / "blobs").glob("*.json"))

    # -- garbage -------------------------------------------------------------------------------

    def collect_garbage(self, *, unreferenced_before: float) -> GarbageReport:
        """Delete every chunk that no held blob references and that was last uploaded (written
        or touched) before `unreferenced_before` (unix time), and stale temp files.

        Never deletes a chunk a held manifest lists: the references are read from every
        manifest first (an unreadable manifest stops the collection), and a manifest written
        meanwhile protects its chunks through `_new_refs`, checked under the lock at deletion.
        """
        with self._lock:
            self._new_refs = set()
        try:
            referenced: set[str] = set()
            for blob_id in self.blob_ids():
                try:
                    referenced.update(chunk.cid for chunk in self.read_manifest(blob_id).chunks)
                except ValueError as exc:
                    return GarbageReport(0, 0, 0, f"blob {blob_id}: {exc}")
            removed = freed = 0
            for path in (self.directory / "chunks").glob("*/*"):
                if path.name in referenced:
                    continue
                with self._lock:
                    try:
                        info = path.stat()
                        if path.name in self._new_refs or info.st_mtime >= unreferenced_before:
                            continue
                        path.unlink()
                    except FileNotFoundError:
                        continue
                removed += 1
                freed += info.st_size
        finally:
            with self._lock:
                self._new_refs = None
        return GarbageReport(removed, freed, self._remove_stale_temps(), None)

    def _remove_stale_temps(self) -> int:
        """Delete temp files older than STALE_TEMP_SECONDS: a crash left them, nobody reads them.
        Only old ones go: a node and a provider daemon may share the directory."""
        cutoff = time.time() - STALE_TEMP_SECONDS
        removed = 0
        for temp in self._tmp.glob("*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if temp.stat().st_mtime < cutoff:
                    temp.unlink()
                    removed += 1
        return removed

    # -- whole files ---------------------------------------------------------------------------

    def put_file(
        self,
        path: Path | str,
        workers: int = DEFAULT_WORKERS,
        on_chunk: Callable[[int], None] | None = None,
    ) -> BlobManifest:
        """Store a file as a blob: chunks first (in parallel), the manifest only once all are in."""

        def store_one(chunk: bytes) -> ChunkInfo:
            info = describe_chunk(chunk)
            self.put_chunk(info.cid, chunk)
            if on_chunk is not None:
                on_chunk(info.size)
            return info

        manifest = map_file_chunks(path, store_one, workers)
        self.put_manifest(manifest.encode())
        return manifest

    def verify_all(self) -> list[str]:
        """Re-check every chunk (against its CID) and every blob (all chunks present, each with
        the manifest's chunk root); one line per problem, empty when all is sound."""
        problems = []
        roots: dict[str, bytes] = {}  # chunk roots of the sound chunks, each read once
        for path in sorted((self.directory / "chunks").glob("*/*")):
            try:
                data = path.read_bytes()
                verify_chunk_bytes(check_cid(path.name), data)
                roots[path.name] = chunk_root(data)
            except ValueError as exc:
                problems.append(f"chunk {path.name}: {exc}")
        for blob_id in self.blob_ids():
            try:
                manifest = self.read_manifest(blob_id)
            except ValueError as exc:
                problems.append(f"blob {blob_id}: {exc}")
                continue
            missing = self.missing_chunks(manifest)
            if missing:
                problems.append(f"blob {blob_id}: missing chunks {', '.join(missing)}")
            wrong = [
                str(index)
                for index, chunk in enumerate(manifest.chunks)
                if chunk.cid in roots and roots[chunk.cid] != chunk.root
            ]
            if wrong:
                problems.append(
                    f"blob {blob_id}: chunk(s) {', '.join(wrong)} do not have the chunk root "
                    "the manifest lists"
                )
        return problems


def _write_all(fd: int, parts: Sequence[Buffer]) -> None:
    """Write every byte of `parts` to `fd` in order (writev may write less than asked)."""
    views = [memoryview(part).cast("B") for part in parts]
    while views:
        written = os.writev(fd, views[:1024])  # IOV_MAX on Linux
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def map_file_chunks(
    path: Path | str, handle_chunk: Callable[[bytes], ChunkInfo], workers: int
) -> BlobManifest:
    """Run `handle_chunk` over the file's 1 MiB chunks on a thread pool; return the manifest.

    Each worker reads its own chunk with `pread` (no shared file position, GIL released), so
    reading, hashing and writing overlap across chunks.
    """
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        offsets = range(0, size, CHUNK_SIZE)

        def read_and_handle(offset: int) -> ChunkInfo:
            data = os.pread(handle.fileno(), min(CHUNK_SIZE, size - offset), offset)
            if len(data) != min(CHUNK_SIZE, size - offset):
                raise OSError(f"{path} changed size while it was being read")
            return handle_chunk(data)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            chunks = list(pool.map(read_and_handle, offsets))
    return BlobManifest.from_chunks(chunks)


def describe_file(
    path: Path | str,
    workers: int = DEFAULT_WORKERS,
    on_chunk: Callable[[int], None] | None = None,
) -> BlobManifest:
    """The manifest of a file, computed without storing anything."""

    def describe(chunk: bytes) -> ChunkInfo:
        info = describe_chunk(chunk)
        if on_chunk is not None:
            on_chunk(info.size)
        return info

    return map_file_chunks(path, describe, workers)
