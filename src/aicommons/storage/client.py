"""Storage client: put a file on several nodes, get a blob back from any of them, verified.

Chunks move in parallel, every chunk is checked against its CID, bad or dead nodes are reported
and skipped; a download appears only complete (atomic rename) and a re-run resumes it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount

from aicommons.fsutil import fsync_directory
from aicommons.storage.auth import UploadGrant, node_origin, sign_grant
from aicommons.storage.chunking import (
    CHUNK_SIZE,
    BlobManifest,
    ChunkInfo,
    blob_id_of,
    describe_chunk,
    max_manifest_bytes,
    parse_manifest,
)
from aicommons.storage.cids import fast_cid
from aicommons.storage.errors import (
    BlobTooLargeError,
    BlobUnavailableError,
    OversizeReplyError,
    StorageClientError,
)
from aicommons.storage.node import MAX_NODE_INFO_BYTES, UPLOAD_HEADER
from aicommons.storage.store import check_blob_id, map_file_chunks
from aicommons.storage.transport import (
    MAX_JSON_REPLY_BYTES,
    NodeTransport,
    StatusError,
    TransportError,
)

DEFAULT_NODE = "http://127.0.0.1:8470"
DEFAULT_MAX_DOWNLOAD_BYTES = 4 << 30
"""Largest blob `get_blob` fetches unless told otherwise (a node's default upload limit)."""
DEFAULT_PARALLEL = 8
ProgressCallback = Callable[[int], None]


@dataclass
class NodeReport:
    """What went wrong with which node during one operation (url -> reasons)."""

    problems: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, node: str, reason: str) -> None:
        with self.lock:
            reasons = self.problems.setdefault(node, [])
            if len(reasons) < 5:
                reasons.append(reason)

    def lines(self) -> list[str]:
        return [f"{node}: {'; '.join(reasons)}" for node, reasons in sorted(self.problems.items())]


@dataclass(frozen=True)
class PutResult:
    manifest: BlobManifest
    blob_id: str
    stored_on: list[str]
    report: NodeReport


@dataclass(frozen=True)
class GetResult:
    manifest: BlobManifest
    path: Path
    resumed_bytes: int
    report: NodeReport


def _describe_error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"


def sign_grant_for_node(
    http: NodeTransport, node: str, signer: LocalAccount, max_bytes: int
) -> UploadGrant:
    """A grant for `max_bytes` on the node at URL `node`, naming the origin of that URL (and
    the chain id the node serves). Refused here, not by the node, if the node does not answer
    to that origin: it would refuse the grant anyway."""
    origin = node_origin(node)
    info = http.get_json(f"{node}/node", max_bytes=MAX_NODE_INFO_BYTES)
    if not isinstance(info, dict) or not isinstance(info.get("origins"), list):
        raise StorageClientError(f"{node}/node is not a storage node's identity")
    if origin not in info["origins"]:
        raise StorageClientError(
            f"node {node} does not answer to {origin} (its origins: "
            f"{', '.join(map(str, info['origins']))}); use one of those URLs"
        )
    chain_id = info.get("chain_id")
    if chain_id is not None and type(chain_id) is not int:
        raise StorageClientError(f"{node}/node names chain id {chain_id!r}, not an integer")
    return sign_grant(signer, node=origin, max_bytes=max_bytes, chain_id=chain_id)


def put_file(
    path: Path | str,
    nodes: Sequence[str],
    signer: LocalAccount,
    parallel: int = DEFAULT_PARALLEL,
    on_progress: ProgressCallback | None = None,
    timeout: float = 60.0,
) -> PutResult:
    """Store a file on every node in `nodes` (one signed grant each); fail only if none took it.

    Chunks are hashed and sent in one pass: each worker reads, describes and uploads its chunk,
    so hashing on one chunk overlaps the network transfer of another.
    """
    if not nodes:
        raise StorageClientError("no storage node given")
    size = os.path.getsize(path)
    report = NodeReport()
    http = NodeTransport(timeout)
    live: dict[str, str] = {}
    for node in nodes:
        try:
            grant = sign_grant_for_node(http, node, signer, size)
            answer = http.post_json(f"{node}/uploads", grant.to_json())
            live[node] = str(answer["upload_id"])  # type: ignore[index]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            report.add(node, f"upload refused: {_describe_error(exc)}")
    if not live:
        raise StorageClientError("no node accepted the upload: " + " | ".join(report.lines()))
    failed: set[str] = set()

    def send(chunk: bytes) -> ChunkInfo:
        info = describe_chunk(chunk)
        for node, upload_id in live.items():
            if node in failed:
                continue
            try:
                http.request(
                    "PUT",
                    f"{node}/chunks/{info.cid}",
                    chunk,
                    {UPLOAD_HEADER: upload_id},
                    max_bytes=MAX_JSON_REPLY_BYTES,
                )
            except OSError as exc:
                failed.add(node)
                report.add(node, f"chunk {info.cid}: {_describe_error(exc)}")
        if on_progress is not None:
            on_progress(info.size)
        return info

    manifest = map_file_chunks(path, send, parallel)
    body = manifest.encode()
    stored_on = []
    for node, upload_id in live.items():
        if node in failed:
            continue
        try:
            http.request(
                "POST",
                f"{node}/blobs",
                body,
                {UPLOAD_HEADER: upload_id},
                max_bytes=MAX_JSON_REPLY_BYTES,
            )
            stored_on.append(node)
        except OSError as exc:
            report.add(node, f"manifest: {_describe_error(exc)}")
    if not stored_on:
        raise StorageClientError("no node stored the blob: " + " | ".join(report.lines()))
    return PutResult(manifest, manifest.blob_id, stored_on, report)


def fetch_manifest(
    blob_id: str,
    nodes: Sequence[str],
    http: NodeTransport,
    report: NodeReport,
    *,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
) -> BlobManifest:
    """The blob's manifest from the first node that has one hashing to `blob_id`, refused
    (`BlobTooLargeError`) if the blob is larger than `max_bytes`: its manifest is read only up
    to the size a manifest of `max_bytes` can have."""
    check_blob_id(blob_id)
    limit = max_manifest_bytes(max_bytes)
    oversize = 0
    for node in nodes:
        try:
            body = http.get(f"{node}/blobs/{blob_id}", max_bytes=limit)
            if blob_id_of(body) != blob_id:
                report.add(node, "served a manifest that does not hash to the blob id")
                continue
            manifest = parse_manifest(body)
        except OversizeReplyError as exc:
            oversize += 1
            report.add(node, f"manifest: {exc}")
            continue
        except (OSError, ValueError) as exc:
            report.add(node, f"manifest: {_describe_error(exc)}")
            continue
        if manifest.size > max_bytes:
            raise BlobTooLargeError(
                f"blob {blob_id} has {manifest.size} bytes, more than the download limit of "
                f"{max_bytes}"
            )
        return manifest
    if oversize:
        raise BlobTooLargeError(
            f"blob {blob_id}: its manifest is longer than {limit} bytes, so the blob is larger "
            f"than the download limit of {max_bytes} ({' | '.join(report.lines())})"
        )
    raise StorageClientError(
        f"blob {blob_id}: no node served its manifest ({' | '.join(report.lines())})"
    )


def partial_path(target: Path, blob_id: str) -> Path:
    """Where an unfinished download of `blob_id` to `target` keeps its bytes."""
    return target.with_name(f".{target.name}.{blob_id[2:18]}.aic-partial")


def _resume_state(partial: Path, manifest: BlobManifest) -> list[bool]:
    """Which chunks of an existing partial file already hold the right bytes (re-verified)."""
    done = [False] * len(manifest.chunks)
    if not partial.exists():
        return done
    with open(partial, "rb") as handle:
        for index, chunk in enumerate(manifest.chunks):
            data = os.pread(handle.fileno(), chunk.size, index * CHUNK_SIZE)
            done[index] = len(data) == chunk.size and fast_cid(data) == chunk.cid
    return done


class _NodeHealth:
    """Nodes in preference order; a node that dropped a connection goes to the back."""

    def __init__(self, nodes: Sequence[str]) -> None:
        self.nodes = list(nodes)
        self.down: set[str] = set()
        self.lock = threading.Lock()

    def order_for(self, index: int) -> list[str]:
        # Rotate by chunk index so parallel workers spread load over every node.
        start = index % len(self.nodes)
        rotated = self.nodes[start:] + self.nodes[:start]
        with self.lock:
            up = [node for node in rotated if node not in self.down]
        return up + [node for node in rotated if node not in up]

    def mark_down(self, node: str) -> None:
        with self.lock:
            self.down.add(node)


def get_blob(
    blob_id: str,
    target: Path | str,
    nodes: Sequence[str],
    parallel: int = DEFAULT_PARALLEL,
    on_progress: ProgressCallback | None = None,
    on_manifest: Callable[[BlobManifest], None] | None = None,
    timeout: float = 60.0,
    *,
    max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
) -> GetResult:
    """Download blob `blob_id` to `target`, verifying every chunk, failing over between nodes.

    A blob larger than `max_bytes` is refused (`BlobTooLargeError`) before anything is written,
    and no reply is read past what the manifest (or a chunk) may hold. On failure the target
    does not exist; the verified chunks stay in a hidden partial file beside it, which the next
    call for the same blob and target resumes from.
    """
    if not nodes:
        raise StorageClientError("no storage node given")
    target_path = Path(target)
    report = NodeReport()
    health = _NodeHealth(nodes)
    http = NodeTransport(timeout)
    manifest = fetch_manifest(blob_id, health.nodes, http, report, max_bytes=max_bytes)
    if on_manifest is not None:
        on_manifest(manifest)
    partial = partial_path(target_path, blob_id)
    done = _resume_state(partial, manifest)
    resumed = sum(chunk.size for chunk, ok in zip(manifest.chunks, done, strict=True) if ok)
    if on_progress is not None and resumed:
        on_progress(resumed)
    missing: list[str] = []
    missing_lock = threading.Lock()

    def fetch(index: int) -> None:
        chunk = manifest.chunks[index]
        for node in health.order_for(index):
            try:
                data = http.get(f"{node}/chunks/{chunk.cid}", max_bytes=chunk.size)
            except TransportError as exc:
                health.mark_down(node)
                report.add(node, f"down: {exc}")
                continue
            except (StatusError, OversizeReplyError) as exc:
                report.add(node, f"chunk {chunk.cid}: {exc}")
                continue
            if len(data) != chunk.size or fast_cid(data) != chunk.cid:
                report.add(node, f"served corrupt bytes for chunk {chunk.cid}")
                continue
            os.pwrite(fd, data, index * CHUNK_SIZE)
            if on_progress is not None:
                on_progress(chunk.size)
            return
        with missing_lock:
            missing.append(chunk.cid)

    fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, manifest.size)
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            list(pool.map(fetch, [i for i, ok in enumerate(done) if not ok]))
        if not missing:
            os.fsync(fd)
    finally:
        os.close(fd)
    if missing:
        if not any(done) and len(missing) == len(manifest.chunks):
            # Nothing could be fetched at all: an empty partial file is not worth keeping.
            partial.unlink(missing_ok=True)
        raise BlobUnavailableError(blob_id, sorted(missing))
    os.replace(partial, target_path)
    fsync_directory(target_path.parent.resolve())
    return GetResult(manifest, target_path, resumed, report)
