"""Compile the aicommons Vyper contracts (cached by source hash) and deploy them to web3 or boa.

Uses the installed `vyper` package with snekmate resolved from site-packages: no solc, no
downloads. Artifacts are cached under `$AIC_HOME/cache/vyper`; never edits contract sources.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import vyper
from vyper.compiler.input_bundle import FilesystemInputBundle

from aicommons.chain.errors import CompileError, DeployError
from aicommons.commit.json_input import read_json_file
from aicommons.home import state_dir

CACHE_MAX_BYTES = 16 * 1024 * 1024
"""A cached artifact (ABI + bytecode) is tens of KiB; a larger file is not ours."""
CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
"""Where the contract sources live (`<Name>.vy`; lowercase files are imported modules)."""

_OUTPUTS = ["abi", "bytecode", "bytecode_runtime"]


@dataclass(frozen=True)
class CompiledContract:
    """One compiled contract: its ABI, creation code and the source hash it was built from."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    bytecode_runtime: bytes
    source_hash: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "abi": self.abi,
            "bytecode": "0x" + self.bytecode.hex(),
            "bytecode_runtime": "0x" + self.bytecode_runtime.hex(),
            "source_hash": self.source_hash,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompiledContract:
        return cls(
            name=str(data["name"]),
            abi=list(data["abi"]),
            bytecode=bytes.fromhex(str(data["bytecode"]).removeprefix("0x")),
            bytecode_runtime=bytes.fromhex(str(data["bytecode_runtime"]).removeprefix("0x")),
            source_hash=str(data["source_hash"]),
        )


def _search_paths() -> list[Path]:
    """Contract directory first, then sys.path entries (where `snekmate` is installed)."""
    paths = [CONTRACTS_DIR]
    paths += [Path(entry) for entry in sys.path if entry and Path(entry).is_dir()]
    return paths


def _source_hash(contract_path: Path) -> str:
    """Hash of everything the build depends on: compiler, snekmate and every local source.

    Hashing all local `.vy` files (not just the imported ones) keeps the key simple and safe:
    an edit to any module invalidates every artifact, which costs a recompile at most.
    """
    digest = hashlib.sha256()
    digest.update(f"vyper={vyper.__version__};snekmate={metadata.version('snekmate')}".encode())
    digest.update(f";target={contract_path.resolve()}".encode())
    for source in sorted(contract_path.parent.glob("*.vy")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    if contract_path.parent != CONTRACTS_DIR:
        digest.update(contract_path.read_bytes())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """`$AIC_CACHE/vyper` if set (artifacts are keyed by source hash, so one cache can serve many
    `$AIC_HOME`s, e.g. a test session), else `$AIC_HOME/cache/vyper`; created on first use."""
    shared = os.environ.get("AIC_CACHE")
    if shared:
        path = Path(shared).expanduser() / "vyper"
        path.mkdir(parents=True, exist_ok=True)
        return path
    return state_dir("cache", "vyper")


def contract_path(name: str) -> Path:
    """The source file of contract `name` (e.g. "ModelRegistry") in the contracts directory."""
    path = CONTRACTS_DIR / f"{name}.vy"
    if not path.is_file():
        raise CompileError(f"no contract source {path.name} in {CONTRACTS_DIR}")
    return path


def compile_source_file(path: Path, cache_dir: Path | None = None) -> CompiledContract:
    """Compile one Vyper file (any directory), reusing the cached artifact for the same sources."""
    path = Path(path)
    if not path.is_file():
        raise CompileError(f"no contract source {path}")
    source_hash = _source_hash(path)
    cache = cache_dir if cache_dir is not None else default_cache_dir()
    cached = cache / f"{path.stem}-{source_hash[:32]}.json"
    if cached.is_file():
        try:
            return CompiledContract.from_json(
                read_json_file(cached, what="compiled contract", max_bytes=CACHE_MAX_BYTES)
            )
        except (ValueError, KeyError):
            cached.unlink(missing_ok=True)  # a torn write from a killed process; rebuild it
    bundle = FilesystemInputBundle([path.parent, *_search_paths()])
    try:
        file_input = bundle.load_file(path)
        output = vyper.compiler.compile_from_file_input(
            file_input, input_bundle=bundle, output_formats=_OUTPUTS
        )
    except vyper.exceptions.VyperException as exc:
        raise CompileError(f"{path.name}: {_first_error(exc)}") from exc
    compiled = CompiledContract(
        name=path.stem,
        abi=list(output["abi"]),
        bytecode=bytes.fromhex(output["bytecode"].removeprefix("0x")),
        bytecode_runtime=bytes.fromhex(output["bytecode_runtime"].removeprefix("0x")),
        source_hash=source_hash,
    )
    cache.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a concurrent reader never sees half a file.
    temporary = cached.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(compiled.to_json()))
    temporary.replace(cached)
    return compiled


def _first_error(exc: Exception) -> str:
    """The first concrete error line of a Vyper exception (skipping the "failed with" header)."""
    for line in str(exc).splitlines():
        text = line.strip()
        if text and not text.startswith("Compilation failed"):
            return text
    return type(exc).__name__


def compile_contract(name: str, cache_dir: Path | None = None) -> CompiledContract:
    """Compile contract `name` from the aicommons contracts directory (cached)."""
    return compile_source_file(contract_path(name), cache_dir)


def _constructor_abi(compiled: CompiledContract) -> list[str]:
    for entry in compiled.abi:
        if entry.get("type") == "constructor":
            return [_abi_type(arg) for arg in entry.get("inputs", [])]
    return []


def _abi_type(arg: dict[str, Any]) -> str:
    """Canonical ABI type string of an ABI input (tuples expanded for eth-abi)."""
    kind = str(arg["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in arg["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def creation_code(compiled: CompiledContract, *args: Any) -> bytes:
    """Creation bytecode followed by the ABI-encoded constructor arguments."""
    from eth_abi import encode

    types = _constructor_abi(compiled)
    if len(types) != len(args):
        raise DeployError(
            f"{compiled.name} constructor takes {len(types)} arguments, got {len(args)}"
        )
    return compiled.bytecode + (encode(types, list(args)) if types else b"")


def load_boa(compiled: CompiledContract | str, *args: Any, sender: str | None = None) -> Any:
    """Deploy into the current titanoboa environment; returns a boa contract handle.

    The handle is built from the ABI, so it works the same for every artifact in the cache.
    """
    import boa

    if isinstance(compiled, str):
        compiled = compile_contract(compiled)
    kwargs: dict[str, Any] = {"bytecode": creation_code(compiled, *args)}
    if sender is not None:
        kwargs["sender"] = sender
    address, _ = boa.env.deploy_code(**kwargs)
    return boa.loads_abi(json.dumps(compiled.abi), name=compiled.name).at(address)


def deploy_web3(
    w3: Any,
    compiled: CompiledContract | str,
    *args: Any,
    account: Any,
    gas: int | None = None,
) -> Any:
    """Deploy to a web3 endpoint and return a `web3` contract bound to the new address.

    `account` is an eth-account `LocalAccount` (signed here) or an address the node unlocks.
    """
    if isinstance(compiled, str):
        compiled = compile_contract(compiled)
    data = creation_code(compiled, *args)
    sender = getattr(account, "address", account)
    tx: dict[str, Any] = {"from": sender, "data": data, "chainId": w3.eth.chain_id}
    tx["nonce"] = w3.eth.get_transaction_count(sender, "pending")
    tx["gas"] = gas if gas is not None else int(w3.eth.estimate_gas(tx) * 1.2)
    if hasattr(account, "sign_transaction"):
        tx.update(_fee_fields(w3))
        signed = account.sign_transaction(tx)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    else:
        tx_hash = w3.eth.send_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    if receipt["status"] != 1 or not receipt.get("contractAddress"):
        raise DeployError(f"deploying {compiled.name} failed in tx {tx_hash.hex()}")
    return w3.eth.contract(address=receipt["contractAddress"], abi=compiled.abi)


def _fee_fields(w3: Any) -> dict[str, int]:
    """EIP-1559 fee fields when the chain has a base fee, else a legacy gas price."""
    latest = w3.eth.get_block("latest")
    base_fee = latest.get("baseFeePerGas")
    if base_fee is None:
        return {"gasPrice": w3.eth.gas_price}
    tip = w3.eth.max_priority_fee if hasattr(w3.eth, "max_priority_fee") else 10**9
    return {"maxFeePerGas": 2 * int(base_fee) + int(tip), "maxPriorityFeePerGas": int(tip)}
