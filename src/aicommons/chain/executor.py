"""Turn a runtime model package into OnchainExecutor upload transactions; encode inputs.

Pure data in, call arguments out: the program hash a version registers (a pure function of the
manifest), tensor roots, chunking and Merkle proofs exactly as the contract checks them, and the
fee split's Python mirror. Nothing is sent except through the `send_*` helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aicommons.chain.errors import ExecutorError, InputOutOfRange
from aicommons.commit import MerkleTree, keccak256
from aicommons.commit.merkle import tree_depth
from aicommons.runtime.commitment import tensor_rows
from aicommons.runtime.manifest import SEMANTICS

# Limits mirrored from OnchainExecutor.vy; the contract enforces them too.
MAX_LAYERS = 8
MAX_WIDTH = 1024
SEGMENT_WORDS = 360
MAX_OUTPUT = 128
MAX_SEGMENTS = 128
BLOCK = 8
MAX_CHUNK_ROWS = 64
MAX_CHUNK_BYTES = 8192
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


FAN_IN_TERM = 128 * 127
"""The largest |x * w| of one input; the fan-in bound is |bias| + in_dim * FAN_IN_TERM < 2**31."""

PROGRAM_ABI = ("(uint256,uint256,uint256,uint256,uint256,uint256,int256,int256)[]", "bytes32[]")
"""ABI types of `abi_encode(program, tensor_roots)`, what `begin_upload` hashes."""


@dataclass(frozen=True)
class LayerProgram:
    """One dense layer as the program hash commits it (OnchainExecutor's `LayerProgram`).

    Tensors are indices among the version's tensors sorted by name, the leaves of its weights
    root; `in_dim`/`out_dim` are the weight's shape, `lo`/`hi` the layer's clamp bounds.
    """

    weight_tensor: int
    bias_tensor: int
    multiplier_tensor: int
    shift_tensor: int
    in_dim: int
    out_dim: int
    lo: int
    hi: int

    def as_abi(self) -> tuple[int, ...]:
        return (
            self.weight_tensor,
            self.bias_tensor,
            self.multiplier_tensor,
            self.shift_tensor,
            self.in_dim,
            self.out_dim,
            self.lo,
            self.hi,
        )


@dataclass(frozen=True)
class ExecutorProgram:
    """Everything the executor computes with that the tensor roots alone do not say.

    `program_hash = keccak256(abi_encode(layers, tensor_roots))` with the ABI types of
    `PROGRAM_ABI`; the registry stores it at publish and `begin_upload` recomputes it.
    """

    layers: tuple[LayerProgram, ...]
    tensor_roots: tuple[bytes, ...]

    def program_hash(self) -> bytes:
        from eth_abi import encode

        layers = [layer.as_abi() for layer in self.layers]
        return keccak256(encode(list(PROGRAM_ABI), [layers, list(self.tensor_roots)]))


@dataclass(frozen=True)
class DenseLayer:
    """One dense layer in the v1 integer semantics, by the names of its tensors in the package."""

    weight_name: str  # int8 [out, in], values in [-127, 127]
    bias_name: str  # int32 [out]
    multiplier_name: str  # int32 [out], 1 .. 2**31 - 1
    shift_name: str  # int32 [out], 0 .. 62
    lo: int
    hi: int

    def tensor_names(self) -> tuple[str, str, str, str]:
        return (self.weight_name, self.bias_name, self.multiplier_name, self.shift_name)


@dataclass(frozen=True)
class ExecutorModel:
    """A chain of dense layers, the program they commit to, and every tensor of the version."""

    layers: tuple[DenseLayer, ...]
    program: ExecutorProgram
    tensors: Mapping[str, np.ndarray] = field(default_factory=dict)

    def weight(self, layer: DenseLayer) -> np.ndarray:
        return self.tensors[layer.weight_name]

    def macs(self) -> int:
        return sum(layer.in_dim * layer.out_dim for layer in self.program.layers)


def _dense_layers(manifest: Mapping[str, Any]) -> tuple[DenseLayer, ...]:
    """The manifest's layers as a chain of dense layers; ExecutorError for anything else.

    The executor computes int8 semantics (aicommons-int/1): a version-2 manifest (int16 values,
    token ids, token-row dense) is refused even when its layers are all dense."""
    if manifest.get("semantics") != SEMANTICS:
        raise ExecutorError(
            f"the on-chain executor runs {SEMANTICS} (int8) graphs only, "
            f"not {manifest.get('semantics')}"
        )
    layers = []
    previous = manifest["input"]["name"]
    for entry in manifest["layers"]:
        if entry["op"] != "dense":
            raise ExecutorError(
                f"layer {entry['name']!r} is {entry['op']}; on-chain runs dense only"
            )
        if list(entry["inputs"]) != [previous]:
            raise ExecutorError(f"layer {entry['name']!r} does not read the previous layer")
        roles = entry["tensors"]
        layers.append(
            DenseLayer(
                roles["weight"],
                roles["bias"],
                roles["multiplier"],
                roles["shift"],
                int(entry["attrs"]["lo"]),
                int(entry["attrs"]["hi"]),
            )
        )
        previous = entry["output"]
    if len(manifest["input"]["shape"]) != 1:
        raise ExecutorError("the on-chain executor takes a flat (1-D) input")
    return tuple(layers)


def program_from_manifest(manifest: Mapping[str, Any]) -> ExecutorProgram:
    """The executor program a canonical manifest commits to (a pure function of the manifest).

    Tensors sorted by name give the indices and the roots (`tensors[*].root`); each dense
    layer contributes its tensors' indices by role (weight, bias, multiplier, shift), the
    weight's shape `[out_dim, in_dim]` and its clamp `attrs.lo`/`attrs.hi`. Chunk heights are
    layout, not program, and are not part of it. Raises ExecutorError for graphs the executor
    cannot run (conv, pooling, add, branches, non-flat input).
    """
    entries = {str(entry["name"]): entry for entry in manifest["tensors"]}
    names = sorted(entries)
    index = {name: position for position, name in enumerate(names)}
    programs = []
    for layer in _dense_layers(manifest):
        for name in layer.tensor_names():
            if name not in index:
                raise ExecutorError(f"tensor {name!r} is not among the version's tensors")
        shape = [int(v) for v in entries[layer.weight_name]["shape"]]
        if len(shape) != 2:
            raise ExecutorError(f"weight {layer.weight_name!r} must be 2-D, not {shape}")
        programs.append(
            LayerProgram(
                weight_tensor=index[layer.weight_name],
                bias_tensor=index[layer.bias_name],
                multiplier_tensor=index[layer.multiplier_name],
                shift_tensor=index[layer.shift_name],
                in_dim=shape[1],
                out_dim=shape[0],
                lo=layer.lo,
                hi=layer.hi,
            )
        )
    roots = tuple(bytes.fromhex(str(entries[n]["root"]).removeprefix("0x")) for n in names)
    return ExecutorProgram(tuple(programs), roots)


def program_hash(package: Any) -> bytes:
    """The program hash to register for `package` (`publish_version`'s `program_hash`).

    `keccak256(abi_encode(program, tensor_roots))` of `program_from_manifest(package.manifest)`;
    `begin_upload` refuses any program that does not hash to the registered value.
    """
    return program_from_manifest(package.manifest).program_hash()


def model_from_package(package: Any) -> ExecutorModel:
    """The executor's view of a runtime `ModelPackage`: its dense layers, program and tensors.

    Raises ExecutorError for any graph the executor cannot run (conv, pooling, add, branches).
    """
    return ExecutorModel(
        _dense_layers(package.manifest),
        program_from_manifest(package.manifest),
        dict(package.tensors),
    )


@dataclass(frozen=True)
class ContractCall:
    """One transaction to send: a contract function name and its arguments."""

    function: str
    args: tuple[Any, ...]


def lane_layout(in_dim: int) -> tuple[int, int]:
    """(lanes, lane_bits) the contract uses for a fan-in; mirrors `_lane_layout`."""
    if in_dim <= 64:
        return 10, 26
    if in_dim <= 258:
        return 9, 29
    return 8, 32


def padded_row_words(in_dim: int) -> int:
    """Weight words per row: ceil(in_dim / lanes) rounded up to the loop's block of 8 words."""
    lanes, _ = lane_layout(in_dim)
    words = (in_dim + lanes - 1) // lanes
    return (words + BLOCK - 1) // BLOCK * BLOCK


def chunk_height(in_dim: int, out_dim: int) -> int:
    """Tallest aligned row block that fits one segment contract and one upload call."""
    row_words = padded_row_words(in_dim) + 1
    height = 0
    max_height = tree_depth(out_dim)
    while (
        height < max_height
        and (2 << height) * row_words <= SEGMENT_WORDS
        and (2 << height) * in_dim <= MAX_CHUNK_BYTES
        and (2 << height) <= MAX_CHUNK_ROWS
    ):
        height += 1
    if (1 << height) * row_words > SEGMENT_WORDS or (1 << height) * in_dim > MAX_CHUNK_BYTES:
        raise ExecutorError(f"a row of fan-in {in_dim} does not fit one segment")
    return height


def validate_model(model: ExecutorModel) -> None:
    """Raise ExecutorError for anything the contract would refuse, before any transaction."""
    program = model.program.layers
    if not 1 <= len(program) <= MAX_LAYERS:
        raise ExecutorError(f"{len(program)} layers; the executor takes 1 to {MAX_LAYERS}")
    total_chunks = 0
    for index, (layer, spec) in enumerate(zip(model.layers, program, strict=True)):
        where = f"layer {index}"
        for name in layer.tensor_names():
            if name not in model.tensors:
                raise ExecutorError(f"{where}: tensor {name!r} is not among the version's tensors")
        weight = model.weight(layer)
        if weight.dtype != np.int8 or weight.shape != (spec.out_dim, spec.in_dim):
            raise ExecutorError(f"{where}: weight must be int8 [{spec.out_dim}, {spec.in_dim}]")
        in_dim, out_dim = spec.in_dim, spec.out_dim
        if not 1 <= in_dim <= MAX_WIDTH or not 1 <= out_dim <= MAX_WIDTH:
            raise ExecutorError(f"{where}: width outside 1..{MAX_WIDTH}")
        if weight.size and int(weight.min()) < -127:
            raise ExecutorError(f"{where}: weight -128 is outside the symmetric range")
        if index and in_dim != program[index - 1].out_dim:
            raise ExecutorError(f"{where}: fan-in does not match the previous layer")
        last = index == len(program) - 1
        if last and out_dim > MAX_OUTPUT:
            raise ExecutorError(
                f"{where}: {out_dim} outputs; the executor returns at most {MAX_OUTPUT}"
            )
        low, high = (INT32_MIN, INT32_MAX) if last else (-128, 127)
        if not low <= spec.lo <= spec.hi <= high:
            raise ExecutorError(f"{where}: clamp [{spec.lo}, {spec.hi}] outside [{low}, {high}]")
        for name in layer.tensor_names()[1:]:
            tensor = model.tensors[name]
            if tensor.shape != (out_dim,) or tensor.dtype != np.int32:
                raise ExecutorError(f"{where}: {name} must be int32 [{out_dim}]")
        multiplier = model.tensors[layer.multiplier_name].astype(np.int64)
        shift = model.tensors[layer.shift_name].astype(np.int64)
        if multiplier.min() < 1 or shift.min() < 0 or shift.max() > 62:
            raise ExecutorError(f"{where}: multiplier or shift out of range")
        bias = np.abs(model.tensors[layer.bias_name].astype(np.int64))
        if int(bias.max()) + in_dim * FAN_IN_TERM > INT32_MAX:
            raise ExecutorError(
                f"{where}: FanInBound: fan-in {in_dim} with |bias| {int(bias.max())} can overflow "
                "int32"
            )
        total_chunks += -(-out_dim // (1 << chunk_height(in_dim, out_dim)))
    if total_chunks > MAX_SEGMENTS:
        raise ExecutorError(f"{total_chunks} weight segments; the executor takes {MAX_SEGMENTS}")


def upload_calls(model_id: bytes, version_id: bytes, model: ExecutorModel) -> list[ContractCall]:
    """Every transaction that uploads `model` as (model_id, version_id): begin_upload, chunks.

    begin_upload carries the program (whose hash the registry must hold), the chunk heights and
    the tensor roots; each chunk carries its rows of W, bias, multiplier and shift, each with
    the Merkle siblings that lift the chunk's subtree to the tensor root (docs/contracts.md,
    "Upload protocol").
    """
    validate_model(model)
    program = model.program
    heights = [chunk_height(spec.in_dim, spec.out_dim) for spec in program.layers]
    calls = [
        ContractCall(
            "begin_upload",
            (
                model_id,
                version_id,
                [spec.as_abi() for spec in program.layers],
                heights,
                list(program.tensor_roots),
            ),
        )
    ]
    for index, (layer, spec) in enumerate(zip(model.layers, program.layers, strict=True)):
        height = heights[index]
        size = 1 << height
        leaves = [tensor_rows(model.tensors[name]) for name in layer.tensor_names()]
        trees = [MerkleTree.from_leaves(rows) for rows in leaves]
        for chunk in range(-(-spec.out_dim // size)):
            first = chunk * size
            rows = slice(first, min(first + size, spec.out_dim))
            args: list[Any] = [model_id, version_id, index, chunk]
            for tensor_leaves, tree in zip(leaves, trees, strict=True):
                args.append(b"".join(tensor_leaves[rows]))
                args.append(list(tree.prove(first).siblings[height:]))
            calls.append(ContractCall("upload_chunk", tuple(args)))
    return calls


BPS = 10_000
MAX_FEE = (2**256 - 1) // BPS
"""Mirrors `fee_split.MAX_FEE`: the registry refuses larger fees (their products could overflow)."""


@dataclass(frozen=True)
class Credit:
    """One payout of a fee split: `amount` token units owed to `account`."""

    account: str
    amount: int


def split_fee(
    fee: int,
    *,
    protocol_share_bps: int,
    attribution: Sequence[tuple[str, int, int]],
    treasury: str,
) -> list[Credit]:
    """The credits `fee_split.split` makes for one fee; the pure-Python mirror of that module.

    distributable = fee - fee * protocol_share_bps // 10000; each (account, role, share_bps)
    entry gets distributable * share_bps // 10000 (dropped when 0); the treasury gets the rest,
    last. The amounts sum to `fee`. Raises ExecutorError outside the contract's preconditions.
    """
    if not 0 <= fee <= MAX_FEE or not 0 <= protocol_share_bps <= BPS:
        raise ExecutorError(f"fee {fee} or protocol share {protocol_share_bps} bps out of range")
    if sum(share for _, _, share in attribution) > BPS:
        raise ExecutorError("attribution shares sum above 10000 bps")
    distributable = fee - fee * protocol_share_bps // BPS
    credits = [
        Credit(account, distributable * share // BPS)
        for account, _, share in attribution
        if distributable * share // BPS > 0
    ]
    rest = fee - sum(credit.amount for credit in credits)
    if rest > 0:
        credits.append(Credit(treasury, rest))
    return credits


def encode_input(values: Sequence[int] | np.ndarray) -> bytes:
    """One byte per int8 value (two's complement), the executor's input encoding."""
    array = np.asarray(values).reshape(-1)
    if array.size and (int(array.min()) < -128 or int(array.max()) > 127):
        raise InputOutOfRange("InputOutOfRange: executor inputs are int8 (-128..127)")
    return array.astype(np.int8).tobytes()


def input_hash(values: Sequence[int] | np.ndarray) -> bytes:
    """The `input_hash` of an Inference receipt: keccak256 of the encoded input."""
    return keccak256(encode_input(values))


def output_hash(output: Sequence[int]) -> bytes:
    """The `output_hash` of an Inference receipt: keccak256(abi_encode(int256[] output))."""
    from eth_abi import encode

    return keccak256(encode(["int256[]"], [[int(v) for v in output]]))


def send_boa(contract: Any, calls: Sequence[ContractCall], sender: str | None = None) -> int:
    """Send `calls` to a boa contract handle; returns the total gas used."""
    import boa

    total = 0
    for call in calls:
        method: Callable[..., Any] = getattr(contract, call.function)
        if sender is None:
            method(*call.args)
        else:
            with boa.env.prank(sender):
                method(*call.args)
        total += int(contract._computation.get_gas_used())
    return total


def send_web3(contract: Any, calls: Sequence[ContractCall], account: Any) -> int:
    """Send `calls` through web3 from `account` (LocalAccount or unlocked address); total gas."""
    from aicommons.chain.transact import send_call

    total = 0
    for call in calls:
        function = contract.functions[call.function](*call.args)
        receipt = send_call(contract.w3, account, function, call.function)
        total += int(receipt["gasUsed"])
    return total
