"""Storage layer: content-addressed chunks, a local store, HTTP storage nodes and their client.

Uses aicommons.commit for every hash and tree; never imports the runtime. See docs/storage.md.
"""

from aicommons.storage.chunking import (
    CHUNK_SIZE,
    SEGMENT_SIZE,
    BlobManifest,
    ChunkInfo,
    ManifestError,
    chunk_root,
    describe_chunk,
    parse_manifest,
)
from aicommons.storage.store import LocalStore, describe_file

__all__ = [
    "CHUNK_SIZE",
    "SEGMENT_SIZE",
    "BlobManifest",
    "ChunkInfo",
    "LocalStore",
    "ManifestError",
    "chunk_root",
    "describe_chunk",
    "describe_file",
    "parse_manifest",
]
