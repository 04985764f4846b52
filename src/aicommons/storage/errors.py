"""Errors of the storage package: manifests and chunks, upload grants, node transport and
clients, and the storage registry.

All derive from `aicommons.errors.AicommonsError`; messages are one line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from aicommons.commit.json_input import parse_json
from aicommons.errors import AicommonsError


class StorageError(AicommonsError):
    """Base class of the storage package's errors (nodes, chunks, grants, proofs)."""


class ManifestError(StorageError, ValueError):
    """A manifest that is malformed or inconsistent with itself."""


class ChunkMissingError(StorageError, FileNotFoundError):
    """The store has no chunk with this CID."""


class ChunkCorruptError(StorageError, ValueError):
    """Bytes that do not match the CID they are stored or served under."""


class BlobMissingError(StorageError, FileNotFoundError):
    """The store has no complete blob with this id."""


class UploadAuthError(StorageError, ValueError):
    """A grant that is malformed, expired, wrongly signed or not allowed by this node."""


class UploadQuotaError(UploadAuthError):
    """A grant that is valid but would take its signer, or the node, past an upload quota."""


class TransportError(StorageError, OSError):
    """The node could not be reached or dropped the connection (treat the node as down)."""


class OversizeReplyError(StorageError, OSError):
    """A node's reply longer than the caller's limit (refused before it is read whole)."""


class StatusError(StorageError, OSError):
    """The node answered with a non-2xx status."""

    def __init__(self, url: str, status: int, body: bytes) -> None:
        self.status = status
        detail = body[:200].decode("utf-8", "replace")
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(parse_json(body, what="error body", max_bytes=65536).get("detail", detail))
        super().__init__(f"HTTP {status} from {url}: {detail}")


class StorageClientError(StorageError, OSError):
    """A put or get that could not complete on any node."""


class BlobTooLargeError(StorageClientError):
    """A blob larger than the download limit (nothing of it is written)."""


class BlobUnavailableError(StorageClientError):
    """Some chunks of a blob could be fetched from no node; names them."""

    def __init__(self, blob_id: str, missing: Sequence[str]) -> None:
        self.missing = list(missing)
        super().__init__(
            f"blob {blob_id}: {len(self.missing)} chunk(s) unavailable from every node: "
            + ", ".join(self.missing)
        )


class NodeConfigError(StorageError, ValueError):
    """A node URL that is not an http(s) URL, or node settings that cannot work (e.g. bound to
    every interface but no public URL to name it by)."""


class NodeStartError(StorageError, OSError):
    """A storage node process that exited or did not answer in time."""


class RegistryError(StorageError, ValueError):
    """A registry transaction that reverted or a blob the provider cannot prove."""
