"""Storage node: serves chunks, manifests and Merkle proofs over HTTP; accepts signed uploads.

A FastAPI app over a `LocalStore`. Reads are verified against their CIDs before they are served;
writes need a signed upload grant (see auth.py) and never exceed its byte budget.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from aicommons.storage.auth import UploadAuthError, UploadGrant, grant_signer
from aicommons.storage.chunking import CHUNK_SIZE, ManifestError, blob_id_of, parse_manifest
from aicommons.storage.store import (
    BlobMissingError,
    ChunkCorruptError,
    ChunkMissingError,
    LocalStore,
    check_blob_id,
    check_cid,
)

DEFAULT_MAX_UPLOAD_BYTES = 4 << 30
MAX_MANIFEST_BYTES = 64 << 20
UPLOAD_HEADER = "X-AIC-Upload"


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


def create_app(store: LocalStore, policy: NodePolicy | None = None) -> FastAPI:
    """The node's HTTP API (see docs/storage.md for the endpoint list)."""
    node_policy = policy or NodePolicy()
    app = FastAPI(title="aicommons storage node", docs_url=None, redoc_url=None)

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"ok": True, "blobs": len(store.blob_ids())}

    @app.get("/chunks/{cid}")
    def get_chunk(cid: str) -> Response:
        try:
            data = store.read_chunk(check_cid(cid))
        except ChunkMissingError as exc:
            raise _error(404, exc) from None
        except ChunkCorruptError as exc:
            # Our own copy is bad: say so rather than serve it; the client fails over.
            raise _error(500, exc) from None
        except ValueError as exc:
            raise _error(400, exc) from None
        return Response(content=data, media_type="application/octet-stream")

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
        try:
            grant = UploadGrant.from_json(await request.json())
            upload_id, session = node_policy.open_session(grant)
        except UploadAuthError as exc:
            raise _error(403, exc) from None
        except ValueError as exc:
            raise _error(400, exc) from None
        return {"upload_id": upload_id, "signer": session.signer, "max_bytes": session.max_bytes}

    @app.put("/chunks/{cid}")
    async def put_chunk(
        cid: str, request: Request, x_aic_upload: str | None = Header(default=None)
    ) -> JSONResponse:
        try:
            node_policy.session(x_aic_upload)
            check_cid(cid)
        except UploadAuthError as exc:
            raise _error(403, exc) from None
        except ValueError as exc:
            raise _error(400, exc) from None
        if store.has_chunk(cid):
            return JSONResponse({"cid": cid, "stored": False}, status_code=200)
        declared = int(request.headers.get("content-length") or 0)
        if declared > CHUNK_SIZE:
            raise HTTPException(413, f"a chunk is at most {CHUNK_SIZE} bytes")
        body = await request.body()
        try:
            node_policy.charge(x_aic_upload, len(body))
        except UploadAuthError as exc:
            raise _error(403, exc) from None
        try:
            await run_in_threadpool(store.put_chunk, cid, body)
        except ValueError as exc:
            node_policy.refund(x_aic_upload, len(body))
            raise _error(422, exc) from None
        return JSONResponse({"cid": cid, "stored": True}, status_code=201)

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

    return app


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
