"""Storage node: serves chunks, manifests and Merkle proofs over HTTP; accepts signed uploads.

A FastAPI app over a `LocalStore`. Reads are verified against their CIDs before they are served;
writes need a signed upload grant (see auth.py) and never exceed its byte budget.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from aicommons.commit import parse_json
from aicommons.storage.auth import UploadAuthError, UploadGrant, grant_signer
from aicommons.storage.chunking import (
    CHUNK_SIZE,
    MAX_MANIFEST_BYTES,
    ManifestError,
    blob_id_of,
    parse_manifest,
)
from aicommons.storage.store import (
    BlobMissingError,
    ChunkCorruptError,
    ChunkMissingError,
    LocalStore,
    check_blob_id,
    check_cid,
)

DEFAULT_MAX_UPLOAD_BYTES = 4 << 30
UPLOAD_HEADER = "X-AIC-Upload"
MAX_GRANT_BYTES = 4096
"""Largest `POST /uploads` body: a signed grant is about 300 bytes of JSON."""


@dataclass
class UploadSession:
    signer: str
    max_bytes: int
    remaining: int
    expires: int


@dataclass
class NodePolicy:
    """Who may upload and how much: `allowed` None means any valid signer."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    allowed: frozenset[str] | None = None
    sessions: dict[str, UploadSession] = field(default_factory=dict)
    used_nonces: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open_session(self, grant: UploadGrant) -> tuple[str, UploadSession]:
        signer = grant_signer(grant)
        if self.allowed is not None and signer.lower() not in self.allowed:
            raise UploadAuthError(f"uploader {signer} is not on this node's allow-list")
        if grant.max_bytes > self.max_upload_bytes:
            raise UploadAuthError(
                f"upload of {grant.max_bytes} bytes exceeds this node's limit of "
                f"{self.max_upload_bytes}"
            )
        now = time.time()
        with self.lock:
            for nonce, expires in list(self.used_nonces.items()):
                if expires < now:
                    del self.used_nonces[nonce]
            for upload_id, session in list(self.sessions.items()):
                if session.expires < now:
                    del self.sessions[upload_id]
            key = f"{signer}:{grant.nonce}"
            if key in self.used_nonces:
                raise UploadAuthError("upload grant was already used (replayed nonce)")
            self.used_nonces[key] = grant.expires
            upload_id = secrets.token_hex(16)
            session = UploadSession(signer, grant.max_bytes, grant.max_bytes, grant.expires)
            self.sessions[upload_id] = session
        return upload_id, session

    def session(self, upload_id: str | None) -> UploadSession:
        with self.lock:
            session = self.sessions.get(upload_id or "")
        if session is None or session.expires < time.time():
            raise UploadAuthError("unknown or expired upload id")
        return session

    def charge(self, upload_id: str | None, size: int) -> None:
        session = self.session(upload_id)
        with self.lock:
            if size > session.remaining:
                raise UploadAuthError(f"upload budget of {session.max_bytes} bytes is exhausted")
            session.remaining -= size

    def refund(self, upload_id: str | None, size: int) -> None:
        with self.lock:
            session = self.sessions.get(upload_id or "")
            if session is not None:
                session.remaining += size


def _error(status: int, exc: Exception) -> HTTPException:
    return HTTPException(status_code=status, detail=str(exc).splitlines()[0])


async def read_bounded_body(request: Request, *, limit: int, what: str) -> bytes:
    """The request body, refused by its Content-Length before any of it is read.

    411 without a Content-Length, 413 when it (or the bytes actually sent) exceed `limit`:
    memory use per request is bounded by `limit`, whatever the client claims or sends.
    """
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise HTTPException(411, f"{what} needs a Content-Length")
    if int(declared) > limit:
        raise HTTPException(413, f"{what} of {declared} bytes exceeds the limit of {limit}")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise HTTPException(413, f"{what} exceeds the limit of {limit} bytes")
    return bytes(body)


def create_app(store: LocalStore, policy: NodePolicy | None = None) -> ASGIApp:
    """The node's HTTP API (see docs/storage.md for the endpoint list)."""
    node_policy = policy or NodePolicy()
    app = FastAPI(title="aicommons storage node", docs_url=None, redoc_url=None)

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"ok": True, "blobs": len(store.blob_ids())}

    @app.get("/blobs/{blob_id}")
    def get_manifest(blob_id: str) -> Response:
        try:
            data = store.read_manifest_bytes(check_blob_id(blob_id))
        except BlobMissingError as exc:
            raise _error(404, exc) from None
        except ValueError as exc:
            raise _error(400, exc) from None
        return Response(content=data, media_type="application/json")

    @app.get("/roots/{root}/proofs/{index}")
    def get_proof(root: str, index: int) -> dict[str, object]:
        try:
            manifest = store.read_manifest(store.blob_for_root(bytes.fromhex(root[2:])))
            chunk = manifest.chunks[index]
            proof = manifest.chunk_proof(index)
        except BlobMissingError as exc:
            raise _error(404, exc) from None
        except (ValueError, IndexError) as exc:
            raise _error(400, exc) from None
        return {"cid": chunk.cid, "chunk_root": "0x" + chunk.root.hex(), "proof": proof.to_json()}

    @app.post("/uploads")
    async def open_upload(request: Request) -> dict[str, object]:
        body = await read_bounded_body(request, limit=MAX_GRANT_BYTES, what="upload grant")
        try:
            data = parse_json(body, what="upload grant", max_bytes=MAX_GRANT_BYTES)
            grant = UploadGrant.from_json(data)
            upload_id, session = node_policy.open_session(grant)
        except UploadAuthError as exc:
            raise _error(403, exc) from None
        except ValueError as exc:  # JsonInputError included
            raise _error(400, exc) from None
        return {"upload_id": upload_id, "signer": session.signer, "max_bytes": session.max_bytes}

    @app.post("/blobs")
    async def put_manifest(
        request: Request, x_aic_upload: str | None = Header(default=None)
    ) -> dict[str, object]:
        try:
            session = node_policy.session(x_aic_upload)
        except UploadAuthError as exc:
            raise _error(403, exc) from None
        body = await request.body()
        if len(body) > MAX_MANIFEST_BYTES:
            raise HTTPException(413, "manifest too large")
        try:
            manifest = parse_manifest(body)
            if manifest.size > session.max_bytes:
                raise UploadAuthError("blob is larger than the upload grant")
            await run_in_threadpool(store.put_manifest, body)
        except BlobMissingError as exc:
            raise _error(409, exc) from None
        except UploadAuthError as exc:
            raise _error(403, exc) from None
        except (ManifestError, ValueError) as exc:
            raise _error(422, exc) from None
        return {"blob_id": blob_id_of(body), "root": "0x" + manifest.root.hex()}

    return _with_chunk_routes(app, store, node_policy)


def _chunk_status(exc: Exception) -> int:
    if isinstance(exc, UploadAuthError):
        return 403
    if isinstance(exc, ChunkMissingError):
        return 404
    if isinstance(exc, ChunkCorruptError):
        return 422
    return 400


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _respond_json(send: Send, status: int, payload: dict[str, object]) -> None:
    await _respond(send, status, json.dumps(payload).encode(), "application/json")


def _with_chunk_routes(app: ASGIApp, store: LocalStore, policy: NodePolicy) -> ASGIApp:
    """`GET /chunks/{cid}` and `PUT /chunks/{cid}` as plain ASGI, everything else to `app`.

    Chunk transfer is the hot path (1 MiB per request); going around the framework's request
    objects and body collection measured about half the per-request CPU.
    """

    async def get_chunk(cid: str, send: Send) -> None:
        try:
            data = await anyio.to_thread.run_sync(store.read_chunk, check_cid(cid))
        except ChunkCorruptError as exc:
            # Our own copy is bad: say so rather than serve it; the client fails over.
            return await _respond_json(send, 500, {"detail": str(exc)})
        except ValueError as exc:
            return await _respond_json(send, _chunk_status(exc), {"detail": str(exc)})
        except ChunkMissingError as exc:
            return await _respond_json(send, 404, {"detail": str(exc)})
        await _respond(send, 200, data, "application/octet-stream")

    async def put_chunk(cid: str, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {key.lower(): value for key, value in scope["headers"]}
        upload_id = headers.get(UPLOAD_HEADER.lower().encode(), b"").decode("latin-1")
        try:
            policy.session(upload_id)
            check_cid(cid)
            declared = int(headers.get(b"content-length", b"-1"))
        except ValueError as exc:
            return await _respond_json(send, _chunk_status(exc), {"detail": str(exc)})
        if store.has_chunk(cid):
            # Read the body anyway, so the client's connection stays usable for the next chunk.
            while (await receive()).get("more_body", False):
                pass
            return await _respond_json(send, 200, {"cid": cid, "stored": False})
        if not 0 < declared <= CHUNK_SIZE:
            detail = f"a chunk is 1..{CHUNK_SIZE} bytes with a Content-Length"
            return await _respond_json(send, 413, {"detail": detail})
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
        try:
            policy.charge(upload_id, size)
        except UploadAuthError as exc:
            return await _respond_json(send, 403, {"detail": str(exc)})
        try:
            await anyio.to_thread.run_sync(store.put_chunk_parts, cid, parts)
        except ValueError as exc:
            policy.refund(upload_id, size)
            return await _respond_json(send, 422, {"detail": str(exc)})
        await _respond_json(send, 201, {"cid": cid, "stored": True})

    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/chunks/"):
            cid = scope["path"][len("/chunks/") :]
            if scope["method"] == "GET":
                return await get_chunk(cid, send)
            if scope["method"] == "PUT":
                return await put_chunk(cid, scope, receive, send)
        await app(scope, receive, send)

    return routed


def serve(
    directory: Path | str,
    host: str = "127.0.0.1",
    port: int = 8470,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    allowed: list[str] | None = None,
) -> None:
    """Run a storage node in the foreground until interrupted."""
    import uvicorn

    policy = NodePolicy(
        max_upload_bytes=max_upload_bytes,
        allowed=frozenset(a.lower() for a in allowed) if allowed else None,
    )
    app = create_app(LocalStore(directory), policy)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
