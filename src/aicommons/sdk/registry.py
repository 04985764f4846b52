"""`client.registry`: the models and versions on the chain, name resolution, and publishing.

Reads go through the registry contract's views and its `ModelRegistered`/`VersionPublished`
logs; versions are keyed by (model_id, version_id). `publish` checks everything it can (package,
licence, attribution, executor limits, storage) before its first transaction, so a doomed
publish costs no gas. A version counts as ready on-chain only if the executor's upload is
complete and carries the registered program hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicommons.commit import keccak256
from aicommons.runtime import ModelPackage, load_package
from aicommons.sdk import protocol
from aicommons.sdk._service import Service
from aicommons.sdk.errors import ClientError
from aicommons.sdk.types import (
    Attribution,
    ModelInfo,
    PublishResult,
    VersionInfo,
    hex32,
)

if TYPE_CHECKING:
    from aicommons.market.graph import GraphCommitment


def model_id_of(name: str) -> bytes:
    """The registry's id of a model: keccak256 of its slug."""
    return keccak256(name.encode())


def parse_reference(reference: str) -> tuple[str, str | None]:
    """`NAME` or `NAME@VERSION` (a 0x version id or a unique prefix of one)."""
    name, _, version = reference.partition("@")
    protocol.check_slug(name)
    return name, (version or None)


class RegistryService(Service):
    """Models, versions and publishing (`ModelRegistry`, and `OnchainExecutor` readiness)."""

    def model_names(self) -> list[str]:
        registry = self._contract("ModelRegistry")
        events = registry.events.ModelRegistered().get_logs(from_block=self.deployment.block)
        return sorted({str(event["args"]["slug"]) for event in events})

    def _version_ids(self, name: str) -> list[bytes]:
        registry = self._contract("ModelRegistry")
        events = registry.events.VersionPublished().get_logs(
            from_block=self.deployment.block,
            argument_filters={"model_id": model_id_of(name)},
        )
        return [bytes(event["args"]["version_id"]) for event in events]

    def version(self, name: str, version_id: bytes) -> VersionInfo:
        """One version of model `name`, as the registry records it."""
        registry = self._contract("ModelRegistry")
        model_id = model_id_of(name)
        record = self._call_struct("ModelRegistry", "versions", model_id, version_id)
        if int(record["published_at"]) == 0:
            raise ClientError(f"version {hex32(version_id)} is not a version of model {name!r}")
        canonical = bytes(registry.functions.canonical(model_id).call()) == version_id
        executor = self._contract("OnchainExecutor")
        program_hash = bytes(record["program_hash"])
        # Ready only if the executor's upload is complete AND is the registered program (the
        # executor refuses any other, so a mismatch means a different executor or registry).
        ready = bool(executor.functions.is_ready(model_id, version_id).call()) and (
            bytes(executor.functions.program_hash(model_id, version_id).call()) == program_hash
        )
        return VersionInfo(
            model=name,
            model_id=hex32(model_id),
            version_id=hex32(version_id),
            weights_root=hex32(record["weights_root"]),
            program_hash=hex32(program_hash),
            fee=int(record["fee"]),
            modes=int(record["modes"]),
            licence=str(record["licence"]),
            locators=[str(locator) for locator in record["locators"]],
            attribution=[_attribution(entry) for entry in record["attribution"]],
            publisher=str(record["publisher"]),
            deprecated=bool(record["deprecated"]),
            canonical=canonical,
            onchain_ready=ready,
            graph_root=hex32(record["graph_root"]),
            mode_names=protocol.mode_names(int(record["modes"])),
        )

    def model(self, name: str) -> ModelInfo:
        name, _ = parse_reference(name)
        record = self._call_struct("ModelRegistry", "models", model_id_of(name))
        if not record["maintainer_count"]:
            raise ClientError(f"unknown model {name!r} (see `aic models`)")
        versions = [self.version(name, v) for v in self._version_ids(name)]
        return ModelInfo(name, hex32(model_id_of(name)), versions)

    def models(self) -> list[ModelInfo]:
        return [self.model(name) for name in self.model_names()]

    def resolve(self, reference: str) -> VersionInfo:
        """`NAME@VERSION` → that version; `NAME` → the canonical version, else the latest live."""
        name, wanted = parse_reference(reference)
        info = self.model(name)
        if not info.versions:
            raise ClientError(f"model {name!r} has no published version")
        if wanted is None:
            for version in info.versions:
                if version.canonical:
                    return version
            live = [v for v in info.versions if not v.deprecated]
            return (live or info.versions)[-1]
        matches = [v for v in info.versions if v.version_id.startswith(wanted.lower())]
        if not matches:
            raise ClientError(f"model {name!r} has no version {wanted}")
        if len(matches) > 1:
            raise ClientError(f"version prefix {wanted} is ambiguous for model {name!r}")
        return matches[0]

    def publish(
        self,
        package_path: Path | str,
        *,
        model: str,
        licence: str = "MIT",
        attribution: Sequence[Attribution] = (),
        fee: int = 0,
        onchain: bool = False,
        modes: Sequence[str] | None = None,
    ) -> PublishResult:
        """Store the package, register the model (if new) and the version, upload it on-chain.

        `modes` (names of `protocol.MODES`) are the verification modes the version offers; by
        default "onchain" (with `onchain`) plus the market's "optimistic" and "redundant" when
        the market can check the package (`market.graph_commitment` accepts it), else
        "optimistic" alone (not servable by the market). With a market mode the registry
        records the package's graph root, and the market's DisputeGame is given its header.

        Everything that can be checked is checked before the first transaction: the package
        verifies, the model fits the executor (when `onchain`), the market can check it (for
        market modes asked for), storage accepts the bytes.
        """
        from aicommons.chain.executor import (
            model_from_package,
            program_hash,
            send_web3,
            upload_calls,
            validate_model,
        )

        account = self._require_account()
        name, version = parse_reference(model)
        if version is not None:
            raise ClientError("publish takes a model name; the version id comes from the package")
        package = load_package(package_path)
        protocol.check_licence(licence)
        if sum(entry.share_bps for entry in attribution) > protocol.MAX_SHARES_BPS:
            raise ClientError(
                f"attribution shares add up to more than {protocol.MAX_SHARES_BPS} bps"
            )
        entries = [(a.account, protocol.role_code(a.role), a.share_bps) for a in attribution]
        chosen, graph = _market_modes(package, onchain=onchain, modes=modes)
        graph_root = graph.root if graph is not None else bytes(32)
        program = None
        committed = bytes(32)  # the program hash to register: none without the on-chain mode
        if onchain:
            program = model_from_package(package)
            validate_model(program)
            committed = program_hash(package)
        model_id, version_id = model_id_of(name), package.version_id
        existing = self._call_struct("ModelRegistry", "versions", model_id, version_id)
        published = int(existing["published_at"]) != 0
        if published and (
            bytes(existing["weights_root"]) != package.weights_root
            or (onchain and bytes(existing["program_hash"]) != committed)
            or (graph is not None and bytes(existing["graph_root"]) != graph_root)
        ):
            # Published before under this model (only its maintainers can) with commitments
            # that are not this package's: refuse to build on it.
            raise ClientError(
                f"version {hex32(version_id)} of {name!r} is already published with another "
                "weights root, program hash or graph root than this package's; deprecate it"
            )
        stored = self._client.storage.put(package_path)

        registry = self._contract("ModelRegistry")
        if not self._call_struct("ModelRegistry", "models", model_id)["maintainer_count"]:
            self._transact(
                registry.functions.register_model(name, [account.address]),
                f"registering model {name!r}",
            )
        if not published:
            self._transact(
                registry.functions.publish_version(
                    model_id,
                    version_id,
                    package.weights_root,
                    committed,
                    [protocol.LOCATOR_PREFIX + stored.blob_id],
                    licence,
                    entries,
                    protocol.mode_bits(chosen),
                    fee,
                    graph_root,
                ),
                f"publishing version {hex32(version_id)}",
            )
        if graph is not None and "DisputeGame" in self.deployment.contracts:
            self._client.market.register_graph(f"{name}@{hex32(version_id)}", package=package)
        upload_gas = None
        if program is not None:
            executor = self._contract("OnchainExecutor")
            if not executor.functions.is_ready(model_id, version_id).call():
                calls = upload_calls(model_id, version_id, program)
                upload_gas = send_web3(executor, calls, account)
        return PublishResult(
            model=name,
            version_id=hex32(version_id),
            weights_root=hex32(package.weights_root),
            blob_id=stored.blob_id,
            stored_on=stored.stored_on,
            onchain_upload_gas=upload_gas,
            modes=list(chosen),
            graph_root=hex32(graph_root) if graph is not None else None,
        )


def _market_modes(
    package: ModelPackage, *, onchain: bool, modes: Sequence[str] | None
) -> tuple[tuple[str, ...], GraphCommitment | None]:
    """The modes to publish and, with a market mode, the package's graph commitment."""
    from aicommons.market.errors import NotDisputable
    from aicommons.market.graph import graph_commitment

    market = ("optimistic", "redundant")
    if modes is None:
        try:
            graph = graph_commitment(package)
        except NotDisputable:
            return (("onchain",) if onchain else ("optimistic",)), None
        return (("onchain",) if onchain else ()) + market, graph
    chosen = tuple(dict.fromkeys(modes))
    protocol.mode_bits(chosen)  # known names, at least one
    if ("onchain" in chosen) != onchain:
        raise ClientError("the onchain mode and --onchain go together (the executor upload)")
    if not any(mode in market for mode in chosen):
        return chosen, None
    try:
        return chosen, graph_commitment(package)
    except NotDisputable as exc:
        raise ClientError(
            f"the market cannot check this package ({exc}): publish it without the "
            "optimistic and redundant modes"
        ) from None


def _attribution(entry: dict[str, Any]) -> Attribution:
    return Attribution(
        account=str(entry["account"]),
        role=protocol.role_name(int(entry["role"])),
        share_bps=int(entry["share_bps"]),
    )
