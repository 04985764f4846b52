"""`client.storage`: model packages on aicommons storage nodes, checked against the registry.

A package fetched from storage is used only after it hashes to the registered version id,
weights root and (for on-chain versions) program hash; a mismatching download is deleted, never
cached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aicommons.home import state_dir
from aicommons.runtime import ModelPackage, load_package
from aicommons.sdk import protocol
from aicommons.sdk._service import Service
from aicommons.sdk.errors import ClientError
from aicommons.sdk.types import VersionInfo, hex32


class StorageService(Service):
    """Put packages on the client's storage nodes; fetch and verify a version's package."""

    @property
    def nodes(self) -> list[str]:
        return self._client.storage_nodes

    def put(self, path: Path | str) -> Any:
        """Store a file on every configured node (signed upload grant); returns the blob."""
        from aicommons.storage.client import put_file

        if not self.nodes:
            raise ClientError("no storage node given: the package must be stored to be published")
        return put_file(path, self.nodes, self._require_account())

    def put_bytes(self, data: bytes, *, name: str = "data.bin") -> Any:
        """Store `data` as one blob on every configured node (as `put`); returns the blob."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="aic-put-") as folder:
            path = Path(folder) / name
            path.write_bytes(data)
            return self.put(path)

    def get_bytes(self, blob_id: str, *, max_bytes: int) -> bytes:
        """The bytes of blob `blob_id` (every chunk verified), refused above `max_bytes`."""
        import tempfile

        from aicommons.storage.client import get_blob
        from aicommons.storage.errors import StorageError

        if not self.nodes:
            raise ClientError(f"no storage node given to fetch blob {blob_id} from")
        with tempfile.TemporaryDirectory(prefix="aic-get-") as folder:
            target = Path(folder) / "blob"
            try:
                get_blob(blob_id, target, self.nodes, max_bytes=max_bytes)
            except (StorageError, ValueError) as exc:
                raise ClientError(f"cannot fetch blob {blob_id}: {exc}") from None
            return target.read_bytes()

    def fetch_package(self, version: VersionInfo) -> ModelPackage:
        """The version's package from the local cache or storage, verified against its id."""
        from aicommons.storage.client import get_blob

        cache = state_dir("packages") / f"{version.version_id}.aicm"
        if not cache.is_file():
            blobs = [
                loc.removeprefix(protocol.LOCATOR_PREFIX)
                for loc in version.locators
                if loc.startswith(protocol.LOCATOR_PREFIX)
            ]
            if not blobs:
                raise ClientError(f"version {version.version_id} lists no aicommons storage blob")
            if not self.nodes:
                raise ClientError("no storage node given to fetch the model package from")
            get_blob(blobs[0], cache, self.nodes)
        package = load_package(cache)
        if hex32(package.version_id) != version.version_id:
            cache.unlink(missing_ok=True)
            raise ClientError(
                f"package from storage hashes to {hex32(package.version_id)}, "
                f"not the registered version {version.version_id}"
            )
        if hex32(package.weights_root) != version.weights_root:
            cache.unlink(missing_ok=True)
            raise ClientError("package weights root differs from the registered weights root")
        check_program_hash(package, version)
        return package


def check_program_hash(package: ModelPackage, version: VersionInfo) -> None:
    """Refuse a version whose registered program hash is not its package's (issue 14 item 8).

    The registry cannot parse a manifest, so a maintainer could register a program hash other
    than the package's; the executor would then run only that other program. Such a version is
    never treated as usable. A version without the on-chain mode registers none (zero).
    """
    from aicommons.chain.errors import ExecutorError
    from aicommons.chain.executor import program_hash

    if version.program_hash == hex32(bytes(32)):
        return
    try:
        expected = hex32(program_hash(package))
    except ExecutorError as exc:
        expected = f"none ({exc})"
    if expected != version.program_hash:
        raise ClientError(
            f"version {version.version_id} of {version.model} registers program hash "
            f"{version.program_hash}, but its package's is {expected}: refusing it"
        )
