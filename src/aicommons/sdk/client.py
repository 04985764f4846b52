"""`aicommons.Client`: publish model versions, run verifiable inferences, check receipts.

It joins the layers (runtime packages, storage nodes, registry and executor contracts) over any
EVM JSON-RPC endpoint. It checks what it can before sending, so a bad request costs no gas.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aicommons.chain.executor import (
    encode_input,
    input_hash,
    output_hash,
    send_web3,
    upload_calls,
)
from aicommons.chain.transact import revert_reason, send_call
from aicommons.commit import keccak256
from aicommons.home import state_dir
from aicommons.runtime import ModelPackage, load_package
from aicommons.sdk.deployment import Deployment, contract, load_deployment
from aicommons.sdk.errors import ClientError
from aicommons.sdk.receipt import Receipt, VerificationReport, run_checks

ROLE_CODES = {"author": 1, "data_provider": 2, "maintainer": 3}
MODE_ONCHAIN_EXACT = 1
MODE_OPTIMISTIC = 4
LOCATOR_PREFIX = "aicblob:"
"""Registry locator naming a blob on aicommons storage nodes (`aicblob:<blob id>`)."""


@dataclass(frozen=True)
class Attribution:
    account: str
    role: str
    share_bps: int


@dataclass(frozen=True)
class VersionInfo:
    model: str
    version_id: str
    weights_root: str
    fee: int
    modes: int
    licence: str
    locators: list[str]
    attribution: list[Attribution]
    publisher: str
    deprecated: bool
    canonical: bool
    onchain_ready: bool

    def to_json(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["attribution"] = [a.__dict__ for a in self.attribution]
        return data


@dataclass(frozen=True)
class ModelInfo:
    name: str
    model_id: str
    versions: list[VersionInfo] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_id": self.model_id,
            "versions": [v.to_json() for v in self.versions],
        }


@dataclass(frozen=True)
class PublishResult:
    model: str
    version_id: str
    weights_root: str
    blob_id: str
    stored_on: list[str]
    onchain_upload_gas: int | None


def _hex(data: bytes) -> str:
    return "0x" + bytes(data).hex()


def model_id_of(name: str) -> bytes:
    """The registry's id of a model: keccak256 of its slug."""
    return keccak256(name.encode())


def parse_reference(reference: str) -> tuple[str, str | None]:
    """`NAME` or `NAME@VERSION` (a 0x version id or a unique prefix of one)."""
    name, _, version = reference.partition("@")
    # The registry's slug rule (docs/contracts.md), checked here for a clear error and no gas.
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{1,62}[a-z0-9]", name) or "--" in name:
        raise ClientError(
            f"invalid model name {name!r}: 3-64 of a-z, 0-9 and '-', alphanumeric at both ends"
        )
    return name, (version or None)


class Client:
    """Talks to one chain (and its storage nodes) as one account."""

    def __init__(
        self,
        rpc_url: str,
        account: Any | None = None,
        storage_nodes: Sequence[str] = (),
        timeout: float = 300.0,
    ) -> None:
        from web3 import Web3
        from web3.providers.rpc import HTTPProvider

        self.w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        try:
            self.chain_id = int(self.w3.eth.chain_id)
        except Exception as exc:  # requests/web3 raise many types for a dead endpoint
            raise ClientError(f"cannot reach JSON-RPC endpoint {rpc_url}: {exc}") from None
        self.rpc_url = rpc_url
        self.account = account
        self.storage_nodes = list(storage_nodes)
        self._deployment: Deployment | None = None

    # -- plumbing ------------------------------------------------------------------------------

    @property
    def deployment(self) -> Deployment:
        if self._deployment is None:
            self._deployment = load_deployment(self.w3)
        return self._deployment

    def _contract(self, name: str) -> Any:
        return contract(self.w3, self.deployment, name)

    def _require_account(self) -> Any:
        if self.account is None:
            raise ClientError("this operation sends a transaction: give an account")
        return self.account

    def _transact(self, function: Any, what: str) -> Any:
        """Sign and send one contract call; return its receipt or raise with the revert reason."""
        return send_call(self.w3, self._require_account(), function, what)

    # -- reading -------------------------------------------------------------------------------

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
        registry = self._contract("ModelRegistry")
        executor = self._contract("OnchainExecutor")
        record = registry.functions.versions(version_id).call()
        if bytes(record[0]) != model_id_of(name):
            raise ClientError(f"version {_hex(version_id)} is not a version of model {name!r}")
        roles = {code: role for role, code in ROLE_CODES.items()}
        attribution = [
            Attribution(str(entry[0]), roles.get(int(entry[1]), str(entry[1])), int(entry[2]))
            for entry in registry.functions.attribution(version_id).call()
        ]
        canonical = bytes(registry.functions.canonical(model_id_of(name)).call()) == version_id
        return VersionInfo(
            model=name,
            version_id=_hex(version_id),
            weights_root=_hex(record[1]),
            fee=int(record[2]),
            modes=int(record[3]),
            licence=str(record[4]),
            locators=[str(locator) for locator in record[5]],
            attribution=attribution,
            publisher=str(record[7]),
            deprecated=bool(record[9]),
            canonical=canonical,
            onchain_ready=bool(executor.functions.is_ready(version_id).call()),
        )

    def model(self, name: str) -> ModelInfo:
        name, _ = parse_reference(name)
        record = self._contract("ModelRegistry").functions.models(model_id_of(name)).call()
        if not record[0]:
            raise ClientError(f"unknown model {name!r} (see `aic models`)")
        versions = [self.version(name, v) for v in self._version_ids(name)]
        return ModelInfo(name, _hex(model_id_of(name)), versions)

    def models(self) -> list[ModelInfo]:
        return [self.model(name) for name in self.model_names()]

    def resolve(self, reference: str) -> VersionInfo:
        """`NAME@VERSION` → that version; `NAME` → the canonical version, else the latest."""
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

    # -- storage -------------------------------------------------------------------------------

    def fetch_package(self, version: VersionInfo) -> ModelPackage:
        """The version's package from the local cache or storage, verified against its id."""
        from aicommons.storage.client import get_blob

        cache = state_dir("packages") / f"{version.version_id}.aicm"
        if not cache.is_file():
            blobs = [
                loc[len(LOCATOR_PREFIX) :]
                for loc in version.locators
                if loc.startswith(LOCATOR_PREFIX)
            ]
            if not blobs:
                raise ClientError(f"version {version.version_id} lists no aicommons storage blob")
            if not self.storage_nodes:
                raise ClientError("no storage node given to fetch the model package from")
            get_blob(blobs[0], cache, self.storage_nodes)
        package = load_package(cache)
        if _hex(package.version_id) != version.version_id:
            cache.unlink(missing_ok=True)
            raise ClientError(
                f"package from storage hashes to {_hex(package.version_id)}, "
                f"not the registered version {version.version_id}"
            )
        if _hex(package.weights_root) != version.weights_root:
            cache.unlink(missing_ok=True)
            raise ClientError("package weights root differs from the registered weights root")
        return package

    # -- publishing ----------------------------------------------------------------------------

    def publish(
        self,
        package_path: Path | str,
        model: str,
        licence: str = "MIT",
        attribution: Sequence[Attribution] = (),
        fee: int = 0,
        onchain: bool = False,
    ) -> PublishResult:
        """Store the package, register the model (if new) and the version, upload it on-chain.

        Everything that can be checked is checked before the first transaction: the package
        verifies, the model fits the executor (when `onchain`), storage accepts the bytes.
        """
        from aicommons.chain.executor import model_from_package, validate_model
        from aicommons.storage.client import put_file

        account = self._require_account()
        name, version = parse_reference(model)
        if version is not None:
            raise ClientError("publish takes a model name; the version id comes from the package")
        package = load_package(package_path)
        if not re.fullmatch(r"[A-Za-z0-9.+-]{1,64}", licence):
            raise ClientError(f"licence {licence!r} is not an SPDX identifier")
        if sum(entry.share_bps for entry in attribution) > 10_000:
            raise ClientError("attribution shares add up to more than 10000 bps")
        for entry in attribution:
            if entry.role not in ROLE_CODES:
                raise ClientError(f"unknown attribution role {entry.role!r}")
        program = None
        if onchain:
            program = model_from_package(package)
            validate_model(program)
        if not self.storage_nodes:
            raise ClientError("no storage node given: the package must be stored to be published")
        stored = put_file(package_path, self.storage_nodes, account)

        registry = self._contract("ModelRegistry")
        model_id = model_id_of(name)
        if not registry.functions.models(model_id).call()[0]:
            self._transact(
                registry.functions.register_model(name, [account.address]),
                f"registering model {name!r}",
            )
        version_id = package.version_id
        existing = registry.functions.versions(version_id).call()
        if bytes(existing[0]) == b"\0" * 32:
            entries = [(a.account, ROLE_CODES[a.role], a.share_bps) for a in attribution]
            modes = MODE_ONCHAIN_EXACT if onchain else MODE_OPTIMISTIC
            self._transact(
                registry.functions.publish_version(
                    model_id,
                    version_id,
                    package.weights_root,
                    [LOCATOR_PREFIX + stored.blob_id],
                    licence,
                    entries,
                    modes,
                    fee,
                ),
                f"publishing version {_hex(version_id)}",
            )
        elif bytes(existing[0]) != model_id:
            raise ClientError(
                f"version {_hex(version_id)} is already published under another model"
            )
        upload_gas = None
        if program is not None:
            executor = self._contract("OnchainExecutor")
            if not executor.functions.is_ready(version_id).call():
                upload_gas = send_web3(executor, upload_calls(version_id, program), account)
        return PublishResult(
            model=name,
            version_id=_hex(version_id),
            weights_root=_hex(package.weights_root),
            blob_id=stored.blob_id,
            stored_on=stored.stored_on,
            onchain_upload_gas=upload_gas,
        )

    # -- inference -----------------------------------------------------------------------------

    def infer(self, reference: str, x: np.ndarray) -> Receipt:
        """Run one sample on-chain through the executor; return its receipt.

        `x` is float input (quantised with the package's input scale) or already int8.
        """
        from web3.exceptions import ContractLogicError

        account = self._require_account()
        version = self.resolve(reference)
        if version.deprecated:
            raise ClientError(f"version {version.version_id} of {version.model} is deprecated")
        if not version.onchain_ready:
            raise ClientError(
                f"version {version.version_id} of {version.model} is not uploaded to the "
                "on-chain executor; publish it with --onchain"
            )
        package = self.fetch_package(version)
        values = np.asarray(x)
        if values.dtype != np.int8:
            values = package.quantize_input(values.astype(np.float32))
        values = package.check_input(values)
        if values.shape[0] != 1:
            raise ClientError(
                f"on-chain inference takes one sample, got a batch of {values.shape[0]}"
            )
        flat = [int(v) for v in values.reshape(-1)]
        version_id = bytes.fromhex(version.version_id[2:])
        executor = self._contract("OnchainExecutor")
        if version.fee:
            token = self._contract("CommonsToken")
            balance = int(token.functions.balanceOf(account.address).call())
            if balance < version.fee:
                raise ClientError(
                    f"insufficient CommonsToken balance for the fee: have {balance}, "
                    f"need {version.fee}"
                )
            allowance = int(token.functions.allowance(account.address, executor.address).call())
            if allowance < version.fee:
                self._transact(
                    token.functions.approve(executor.address, version.fee), "approving the fee"
                )
        try:
            call = executor.functions.infer(version_id, encode_input(flat))
            receipt = self._transact(call, f"inference on {version.model}")
        except ContractLogicError as exc:
            raise ClientError(f"inference reverted: {revert_reason(exc)}") from None
        events = executor.events.Inference().process_receipt(receipt)
        if len(events) != 1:
            raise ClientError("the inference transaction logged no Inference event")
        args = events[0]["args"]
        return Receipt(
            chain_id=self.chain_id,
            executor=executor.address,
            registry=self.deployment.address("ModelRegistry"),
            tx_hash=_hex(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            model=version.model,
            version_id=version.version_id,
            caller=account.address,
            input=flat,
            input_hash=_hex(args["input_hash"]),
            output=[int(v) for v in args["output"]],
            output_hash=_hex(args["output_hash"]),
            label=int(args["label"]),
            fee=int(args["fee"]),
        )

    # -- verification --------------------------------------------------------------------------

    def verify(self, receipt: Receipt) -> VerificationReport:
        """Check a receipt against the chain, the registry, storage and a local re-execution."""
        from aicommons.sdk.receipt import RECEIPT_FORMAT, CheckFailed

        state: dict[str, Any] = {}

        def expect(condition: bool, message: str) -> None:
            if not condition:
                raise CheckFailed(message)

        def check_format() -> str:
            expect(receipt.format == RECEIPT_FORMAT, f"format {receipt.format!r} is not known")
            return RECEIPT_FORMAT

        def check_chain() -> str:
            expect(
                receipt.chain_id == self.chain_id,
                f"receipt is for chain {receipt.chain_id}, the endpoint serves {self.chain_id}",
            )
            return f"chain id {self.chain_id}"

        def check_deployment() -> str:
            deployment = self.deployment
            expect(
                receipt.executor.lower() == deployment.address("OnchainExecutor").lower(),
                f"executor {receipt.executor} is not this chain's aicommons executor",
            )
            expect(
                receipt.registry.lower() == deployment.address("ModelRegistry").lower(),
                f"registry {receipt.registry} is not this chain's aicommons registry",
            )
            return f"executor {deployment.address('OnchainExecutor')}"

        def check_transaction() -> str:
            from web3.exceptions import TransactionNotFound

            try:
                tx_receipt = self.w3.eth.get_transaction_receipt(receipt.tx_hash)
                tx = self.w3.eth.get_transaction(receipt.tx_hash)
            except (TransactionNotFound, ValueError) as exc:
                raise CheckFailed(f"transaction {receipt.tx_hash} not found: {exc}") from None
            expect(tx_receipt["status"] == 1, "transaction reverted")
            expect(
                str(tx_receipt["to"]).lower() == receipt.executor.lower(),
                "transaction was not sent to the executor",
            )
            expect(
                int(tx_receipt["blockNumber"]) == receipt.block_number,
                f"transaction is in block {tx_receipt['blockNumber']}, not {receipt.block_number}",
            )
            expect(str(tx["from"]).lower() == receipt.caller.lower(), "caller is not the sender")
            state["tx_receipt"] = tx_receipt
            return f"mined in block {receipt.block_number}"

        def check_event() -> str:
            executor = self._contract("OnchainExecutor")
            events = [
                e
                for e in executor.events.Inference().process_receipt(state["tx_receipt"])
                if str(e["address"]).lower() == receipt.executor.lower()
            ]
            expect(len(events) == 1, f"{len(events)} Inference events from the executor")
            args = events[0]["args"]
            logged = {
                "version_id": _hex(args["version_id"]),
                "caller": str(args["caller"]).lower(),
                "input_hash": _hex(args["input_hash"]),
                "output_hash": _hex(args["output_hash"]),
                "output": [int(v) for v in args["output"]],
                "label": int(args["label"]),
                "fee": int(args["fee"]),
            }
            claimed = {
                "version_id": receipt.version_id.lower(),
                "caller": receipt.caller.lower(),
                "input_hash": receipt.input_hash.lower(),
                "output_hash": receipt.output_hash.lower(),
                "output": receipt.output,
                "label": receipt.label,
                "fee": receipt.fee,
            }
            differing = [key for key in logged if logged[key] != claimed[key]]
            expect(not differing, f"event differs from receipt in: {', '.join(differing)}")
            return "Inference event matches every receipt field"

        def check_hashes() -> str:
            expect(
                _hex(input_hash(receipt.input)) == receipt.input_hash.lower(),
                "input does not hash to input_hash",
            )
            expect(
                _hex(output_hash(receipt.output)) == receipt.output_hash.lower(),
                "output does not hash to output_hash",
            )
            return "input and output hash to the logged hashes"

        def check_registry() -> str:
            version_id = bytes.fromhex(receipt.version_id.removeprefix("0x"))
            state["version"] = self.version(receipt.model, version_id)
            return f"version of {receipt.model}, weights root {state['version'].weights_root}"

        def check_package() -> str:
            state["package"] = self.fetch_package(state["version"])
            return "package from storage hashes to the version id and weights root"

        def check_reexecution() -> str:
            package: ModelPackage = state["package"]
            x = np.asarray(receipt.input, dtype=np.int64)
            expect(
                x.size == int(np.prod(package.input_shape)),
                "input has the wrong size for this model",
            )
            expect(bool(np.all((x >= -128) & (x <= 127))), "input values are outside int8")
            x8 = x.astype(np.int8).reshape((1, *package.input_shape))
            output = [int(v) for v in package.run(x8).reshape(-1)]
            expect(output == receipt.output, "local re-execution gives a different output")
            label = int(np.argmax(np.asarray(output)))
            expect(label == receipt.label, f"argmax of the output is {label}, not {receipt.label}")
            return f"re-executed locally: identical {len(output)} outputs, label {label}"

        return run_checks(
            [
                ("format", check_format),
                ("chain", check_chain),
                ("deployment", check_deployment),
                ("transaction", check_transaction),
                ("event", check_event),
                ("hashes", check_hashes),
                ("registry", check_registry),
                ("package", check_package),
                ("reexecution", check_reexecution),
            ]
        )

    # -- transfers (funding new accounts on a development chain) -------------------------------

    def transfer(self, to: str, eth_wei: int = 0, tokens: int = 0) -> list[str]:
        """Send ether and/or CommonsToken to `to`; returns the transaction hashes."""
        from web3 import Web3

        account = self._require_account()
        if not Web3.is_address(to):
            raise ClientError(f"{to!r} is not an address")
        to = Web3.to_checksum_address(to)
        hashes = []
        if eth_wei:
            tx = {
                "from": account.address,
                "to": to,
                "value": eth_wei,
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": self.chain_id,
                "gas": 21_000,
            }
            latest = self.w3.eth.get_block("latest")
            tx["maxPriorityFeePerGas"] = 10**9
            tx["maxFeePerGas"] = 2 * int(latest.get("baseFeePerGas", 10**9)) + 10**9
            if self.w3.eth.get_balance(account.address) < eth_wei + 21_000 * tx["maxFeePerGas"]:
                raise ClientError(f"account {account.address} cannot cover {eth_wei} wei + gas")
            tx_hash = self.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
            self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
            hashes.append(_hex(tx_hash))
        if tokens:
            token = self._contract("CommonsToken")
            balance = int(token.functions.balanceOf(account.address).call())
            if balance < tokens:
                raise ClientError(
                    f"insufficient CommonsToken balance: have {balance}, need {tokens}"
                )
            receipt = self._transact(token.functions.transfer(to, tokens), "token transfer")
            hashes.append(_hex(receipt["transactionHash"]))
        return hashes
