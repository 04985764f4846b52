"""Storage node: serves chunks, manifests and Merkle proofs over HTTP; accepts signed uploads.

A FastAPI app over a `LocalStore`. Reads are verified against their CIDs before they are served;
writes need a signed upload grant (see auth.py), never exceed its byte budget or the signer's
quota, and every request body is refused by its Content-Length before any of it is read.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from aicommons.commit import parse_json
from aicommons.storage.auth import (
    CLOCK_SKEW_SECONDS,
    UPLOAD_TTL_SECONDS,
    UploadGrant,
    check_grant,
    node_origin,
)
from aicommons.storage.chunking import CHUNK_SIZE, blob_id_of, max_manifest_bytes, parse_manifest
from aicommons.storage.errors import (
    BlobMissingError,
    ChunkCorruptError,
    ChunkMissingError,
    ManifestError,
    NodeConfigError,
    UploadAuthError,
    UploadQuotaError,
)
from aicommons.storage.nonces import UsedNonces
from aicommons.storage.store import GarbageReport, LocalStore, check_blob_id, check_cid

DEFAULT_MAX_UPLOAD_BYTES = 4 << 30
UPLOAD_HEADER = "X-AIC-Upload"
MAX_GRANT_BYTES = 4096
"""Largest `POST /uploads` body: a signed grant is about 300 bytes of JSON."""
MAX_NODE_INFO_BYTES = 4096
"""Largest `GET /node` reply a client reads."""
ABANDONED_AFTER_SECONDS = UPLOAD_TTL_SECONDS + CLOCK_SKEW_SECONDS + 120
"""An unreferenced chunk this much older than its last upload is abandoned: every session that
could have referenced it has expired (grants live at most UPLOAD_TTL_SECONDS + 60 s), with two
minutes to spare for a request in flight."""
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class NodePolicy:
    """Who may upload and how much. `allowed` None means any valid signer (then the quotas are
    what keeps one key, or many, from filling the node). `chain_id`, if set, is part of every
    grant's EIP-712 domain (the chain whose deployment this node serves)."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    allowed: frozenset[str] | None = None
    max_sessions_per_signer: int = 4
    max_open_bytes_per_signer: int = 2 * DEFAULT_MAX_UPLOAD_BYTES
    max_open_sessions: int = 256
    max_open_bytes: int = 8 * DEFAULT_MAX_UPLOAD_BYTES
    max_concurrent_chunk_uploads: int = 32
    gc_interval_seconds: float = 300.0
    chain_id: int | None = None


@dataclass
class UploadSession:
    """An open upload: what its signer may still store and until when (`remaining` shrinks)."""

    signer: str
    max_bytes: int
    remaining: int
    expires: int


class StorageNode:
    """One node: its store, its policy, its origins (the URLs grants name it by), the open
    upload sessions and the used grant nonces (persisted under `store.directory / "nonces"`).

    Thread-safe: request handlers run on the event loop and in worker threads.
    """

    def __init__(
        self, store: LocalStore, policy: NodePolicy | None = None, *, origins: Iterable[str]
    ) -> None:
        self.store = store
        self.policy = policy or NodePolicy()
        self.origins = frozenset(node_origin(origin) for origin in origins)
        if not self.origins:
            raise NodeConfigError("a storage node needs at least one origin (the URL clients use)")
        self.sessions: dict[str, UploadSession] = {}
        self.used_nonces = UsedNonces(store.directory / "nonces")
        self._lock = threading.Lock()

    # -- upload sessions ---------------------------------------------------------------------

    def open_session(
        self, grant: UploadGrant, now: float | None = None
    ) -> tuple[str, UploadSession]:
        """Check a grant against the policy and the quotas; open a session charged to it."""
        current = time.time() if now is None else now
        policy = self.policy
        signer = check_grant(grant, origins=self.origins, chain_id=policy.chain_id, now=current)
        if policy.allowed is not None and signer.lower() not in policy.allowed:
            raise UploadAuthError(f"uploader {signer} is not on this node's allow-list")
        if grant.max_bytes > policy.max_upload_bytes:
            raise UploadAuthError(
                f"upload of {grant.max_bytes} bytes exceeds this node's limit of "
                f"{policy.max_upload_bytes}"
            )
        with self._lock:
            self._expire(current)
            self._check_quota(signer, grant.max_bytes)
            self.used_nonces.claim(signer, grant.nonce)
            upload_id = secrets.token_hex(16)
            session = UploadSession(signer, grant.max_bytes, grant.max_bytes, grant.expires)
            self.sessions[upload_id] = session
        return upload_id, session

    def _check_quota(self, signer: str, max_bytes: int) -> None:
        """Raise `UploadQuotaError` if one more session of `max_bytes` breaks a quota (locked)."""
        policy = self.policy
        own = [s for s in self.sessions.values() if s.signer == signer]
        if len(own) >= policy.max_sessions_per_signer:
            raise UploadQuotaError(
                f"uploader {signer} has {len(own)} open upload sessions, the most this node allows"
            )
        if sum(s.max_bytes for s in own) + max_bytes > policy.max_open_bytes_per_signer:
            raise UploadQuotaError(
                f"uploader {signer} would have more than {policy.max_open_bytes_per_signer} "
                "bytes of open uploads on this node"
            )
        if len(self.sessions) >= policy.max_open_sessions:
            raise UploadQuotaError("this node has as many open upload sessions as it allows")
        if sum(s.max_bytes for s in self.sessions.values()) + max_bytes > policy.max_open_bytes:
            raise UploadQuotaError(
                f"this node allows at most {policy.max_open_bytes} bytes of open uploads"
            )

    def _expire(self, now: float) -> None:
        """Drop expired sessions (call with the lock held)."""
        for upload_id, session in list(self.sessions.items()):
            if session.expires < now:
                del self.sessions[upload_id]

    def session(self, upload_id: str | None, now: float | None = None) -> UploadSession:
        current = time.time() if now is None else now
        with self._lock:
            session = self.sessions.get(upload_id or "")
        if session is None or session.expires < current:
            raise UploadAuthError("unknown or expired upload id")
        return session

    def charge(self, upload_id: str | None, size: int) -> int:
        """Take `size` bytes from the session's budget; return what remains."""
        session = self.session(upload_id)
        with self._lock:
            if size > session.remaining:
                raise UploadAuthError(f"upload budget of {session.max_bytes} bytes is exhausted")
            session.remaining -= size
            return session.remaining

    def refund(self, upload_id: str | None, size: int) -> None:
        with self._lock:
            session = self.sessions.get(upload_id or "")
            if session is not None:
                session.remaining += size

    def close(self, upload_id: str | None) -> None:
        """End a session (its blob is stored): it no longer counts against any quota."""
        with self._lock:
            self.sessions.pop(upload_id or "", None)

    # -- garbage -----------------------------------------------------------------------------

    def collect_garbage(self, now: float | None = None) -> GarbageReport:
        """Forget expired sessions and nonces; delete chunks no held blob references whose
        last upload is older than any open session (abandoned uploads)."""
        current = time.time() if now is None else now
        with self._lock:
            self._expire(current)
        self.used_nonces.forget_expired(current)
        return self.store.collect_garbage(unreferenced_before=current - ABANDONED_AFTER_SECONDS)

    # -- HTTP --------------------------------------------------------------------------------

    def app(self) -> ASGIApp:
        """The node's HTTP API (see docs/storage.md for the endpoint list)."""
        return _chunk_routes(_api(self), self)


def create_app(
    store: LocalStore, policy: NodePolicy | None = None, *, origins: Iterable[str]
) -> ASGIApp:
    """The HTTP API of a node over `store` reached at `origins` (see docs/storage.md)."""
    return StorageNode(store, policy, origins=origins).app()


def _error(status: int, exc: Exception) -> HTTPException:
    return HTTPException(status_code=status, detail=str(exc).splitlines()[0])


def _status_of(exc: Exception) -> int:
    """The HTTP status that tells a client which rule its request broke."""
    if isinstance(exc, UploadQuotaError):
        return 429
    if isinstance(exc, UploadAuthError):
        return 403
    if isinstance(exc, ChunkMissingError | BlobMissingError):
        return 404
    if isinstance(exc, ChunkCorruptError | ManifestError):
        return 422
    return 400


def _declared_length(value: str | None, limit: int, what: str) -> int:
    """A request's Content-Length if present and at most `limit`, else the status to refuse."""
    if value is None or not value.isdigit():
        raise HTTPException(411, f"{what} needs a Content-Length")
    if int(value) > limit:
        raise HTTPException(413, f"{what} of {value} bytes exceeds the limit of {limit}")
    return int(value)


async def read_bounded_body(request: Request, *, limit: int, what: str) -> bytes:
    """The request body, refused by its Content-Length before any of it is read.

    411 without a Content-Length, 413 when it (or the bytes actually sent) exceed `limit`:
    memory use per request is bounded by `limit`, whatever the client claims or sends.
    """
    _declared_length(request.headers.get("content-length"), limit, what)
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise HTTPException(413, f"{what} exceeds the limit of {limit} bytes")
    return bytes(body)


def _api(node: StorageNode) -> FastAPI:
    store = node.store

    @asynccontextmanager
    async def collect_periodically(_: FastAPI) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(node.policy.gc_interval_seconds)
                await anyio.to_thread.run_sync(node.collect_garbage)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="aicommons storage node",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=collect_periodically,
    )

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"ok": True, "blobs": len(store.blob_ids())}

    @app.get("/node")
    def identity() -> dict[str, object]:
        """What an upload grant for this node must name: one of its origins, its chain id."""
        return {"origins": sorted(node.origins), "chain_id": node.policy.chain_id}

    @app.get("/blobs/{blob_id}")
    def get_manifest(blob_id: str) -> Response:
        try:
            data = store.read_manifest_bytes(check_blob_id(blob_id))
        except (ValueError, OSError) as exc:
            raise _error(_status_of(exc), exc) from None
        return Response(content=data, media_type="application/json")

    @app.get("/roots/{root}/proofs/{index}")
    def get_proof(root: str, index: int) -> dict[str, object]:
        try:
            manifest = store.read_manifest(store.blob_for_root(bytes.fromhex(root[2:])))
            chunk = manifest.chunks[index]
            proof = manifest.chunk_proof(index)
        except (ValueError, OSError, IndexError) as exc:
            raise _error(_status_of(exc), exc) from None
        return {"cid": chunk.cid, "chunk_root": "0x" + chunk.root.hex(), "proof": proof.to_json()}

    @app.post("/uploads")
    async def open_upload(request: Request) -> dict[str, object]:
        body = await read_bounded_body(request, limit=MAX_GRANT_BYTES, what="upload grant")
        try:
            data = parse_json(body, what="upload grant", max_bytes=MAX_GRANT_BYTES)
            grant = UploadGrant.from_json(data)
            # Signature recovery and the durable nonce record run off the event loop.
            upload_id, session = await run_in_threadpool(node.open_session, grant)
        except ValueError as exc:  # UploadAuthError and JsonInputError included
            raise _error(_status_of(exc), exc) from None
        return {"upload_id": upload_id, "signer": session.signer, "max_bytes": session.max_bytes}

    @app.post("/blobs")
    async def put_manifest(
        request: Request, x_aic_upload: str | None = Header(default=None)
    ) -> dict[str, object]:
        try:
            session = node.session(x_aic_upload)
        except UploadAuthError as exc:
            raise _error(403, exc) from None
        limit = max_manifest_bytes(session.max_bytes)
        body = await read_bounded_body(request, limit=limit, what="manifest")
        try:
            manifest = parse_manifest(body)
            if manifest.size > session.max_bytes:
                raise UploadAuthError("blob is larger than the upload grant")
            await run_in_threadpool(store.put_manifest, body)
        except BlobMissingError as exc:
            raise _error(409, exc) from None
        except ValueError as exc:
            raise _error(_status_of(exc), exc) from None
        node.close(x_aic_upload)
        return {"blob_id": blob_id_of(body), "root": "0x" + manifest.root.hex()}

    return app


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _respond_json(send: Send, status: int, payload: dict[str, object]) -> None:
    await _respond(send, status, json.dumps(payload).encode(), "application/json")


def _chunk_routes(app: ASGIApp, node: StorageNode) -> ASGIApp:
    """`GET /chunks/{cid}` and `PUT /chunks/{cid}` as plain ASGI, everything else to `app`.

    Chunk transfer is the hot path (1 MiB per request); going around the framework's request
    objects and body collection measured about half the per-request CPU.
    """
    store = node.store
    receiving = asyncio.Semaphore(node.policy.max_concurrent_chunk_uploads)

    async def get_chunk(cid: str, send: Send) -> None:
        try:
            data = await anyio.to_thread.run_sync(store.read_chunk, check_cid(cid))
        except ChunkCorruptError as exc:
            # Our own copy is bad: say so rather than serve it; the client fails over.
            return await _respond_json(send, 500, {"detail": str(exc)})
        except (ValueError, OSError) as exc:
            return await _respond_json(send, _status_of(exc), {"detail": str(exc)})
        await _respond(send, 200, data, "application/octet-stream")

    async def put_chunk(cid: str, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {key.lower(): value for key, value in scope["headers"]}
        upload_id = headers.get(UPLOAD_HEADER.lower().encode(), b"").decode("latin-1")
        try:
            node.session(upload_id)
            check_cid(cid)
            declared = _declared_length(
                headers.get(b"content-length", b"").decode("latin-1") or None, CHUNK_SIZE, "chunk"
            )
        except ValueError as exc:
            return await _respond_json(send, _status_of(exc), {"detail": str(exc)})
        except HTTPException as exc:
            return await _respond_json(send, exc.status_code, {"detail": exc.detail})
        if declared == 0:
            return await _respond_json(send, 400, {"detail": "a chunk is never empty"})
        async with receiving:
            await _receive_chunk(cid, declared, upload_id, receive, send)

    async def _receive_chunk(
        cid: str, declared: int, upload_id: str, receive: Receive, send: Send
    ) -> None:
        # The pieces as received, hashed and written with writev by the store: a fresh 1 MiB
        # buffer per request cost more (page faults, zeroing, a copy) than hashing it.
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            piece = message.get("body", b"")
            size += len(piece)
            if size > declared:
                return await _respond_json(send, 413, {"detail": "body exceeds Content-Length"})
            if piece:
                parts.append(piece)
            if not message.get("more_body", False):
                break
        if size != declared:
            return await _respond_json(send, 400, {"detail": "body shorter than Content-Length"})
        if store.touch_chunk(cid):
            # Already held (the bytes are the same): free, and safe from collection for a while.
            return await _respond_json(send, 200, {"cid": cid, "stored": False})
        try:
            remaining = node.charge(upload_id, size)
        except UploadAuthError as exc:
            return await _respond_json(send, 403, {"detail": str(exc)})
        try:
            await anyio.to_thread.run_sync(store.put_chunk_parts, cid, parts)
        except ValueError as exc:
            node.refund(upload_id, size)
            return await _respond_json(send, 422, {"detail": str(exc)})
        await _respond_json(send, 201, {"cid": cid, "stored": True, "remaining": remaining})

    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/chunks/"):
            cid = scope["path"][len("/chunks/") :]
            if scope["method"] == "GET":
                return await get_chunk(cid, send)
            if scope["method"] == "PUT":
                return await put_chunk(cid, scope, receive, send)
        await app(scope, receive, send)

    return routed


def node_origins(host: str, port: int, public_urls: Iterable[str] = ()) -> list[str]:
    """The origins grants may name for a node bound to `host:port`: `public_urls` if given;
    else, on loopback, the loopback names of that port. A node reachable from elsewhere must be
    told the URL its clients use (it cannot learn it from requests: a Host header is whatever
    the sender writes, so a replaying node could claim any)."""
    given = [node_origin(url) for url in public_urls]
    if given:
        return given
    if host not in LOOPBACK_HOSTS:
        raise NodeConfigError(
            f"a node bound to {host} needs --public-url (the URL clients use to reach it)"
        )
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"]


def serve(
    directory: Path | str,
    host: str = "127.0.0.1",
    port: int = 8470,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    allowed: list[str] | None = None,
    *,
    public_urls: Iterable[str] = (),
    chain_id: int | None = None,
) -> None:
    """Run a storage node in the foreground until interrupted."""
    import uvicorn

    policy = NodePolicy(
        max_upload_bytes=max_upload_bytes,
        allowed=frozenset(a.lower() for a in allowed) if allowed else None,
        chain_id=chain_id,
    )
    origins = node_origins(host, port, public_urls)
    app = create_app(LocalStore(directory), policy, origins=origins)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
