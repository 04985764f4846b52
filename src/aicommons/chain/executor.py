"""Turn a quantised dense model into OnchainExecutor upload transactions, and decode results.

Pure data in, call arguments out: it computes tensor roots, chunking and Merkle proofs exactly as
the contract checks them. Never sends anything by itself except through the `send_*` helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aicommons.commit import MerkleTree, keccak256, merkle_root
from aicommons.commit.merkle import tree_depth

# Limits mirrored from OnchainExecutor.vy; the contract enforces them too.
MAX_LAYERS = 8
MAX_WIDTH = 1024
SEGMENT_WORDS = 360
BLOCK = 8
MAX_CHUNK_ROWS = 64
MAX_CHUNK_BYTES = 8192
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


class ExecutorError(ValueError):
    """A model or input the on-chain executor cannot take (shape, range or size limits)."""


class InputOutOfRange(ExecutorError):
    """An input value outside int8; the on-chain encoding (one byte per value) cannot carry it."""


@dataclass(frozen=True)
class DenseLayer:
    """One dense layer in the v1 integer semantics; tensors are named as in the model package."""

    weight_name: str
    bias_name: str
    weight: np.ndarray  # int8 [out, in], values in [-127, 127]
    bias: np.ndarray  # int32 [out]
    multiplier: np.ndarray  # [out], 1 .. 2**31 - 1
    shift: np.ndarray  # [out], 0 .. 62
    lo: int
    hi: int

    @property
    def in_dim(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_dim(self) -> int:
        return int(self.weight.shape[0])


@dataclass(frozen=True)
class ExecutorModel:
    """A chain of dense layers plus every tensor of the version (for the weights root)."""

    layers: tuple[DenseLayer, ...]
    tensors: Mapping[str, np.ndarray] = field(default_factory=dict)

    def tensor_names(self) -> list[str]:
        return sorted(self.tensors)


@dataclass(frozen=True)
class ContractCall:
    """One transaction to send: a contract function name and its arguments."""

    function: str
    args: tuple[Any, ...]


def tensor_leaves(array: np.ndarray) -> list[bytes]:
    """Leaf bytes of a tensor: rows along the first axis, elements big-endian two's complement."""
    if array.dtype not in (np.int8, np.int32):
        raise ExecutorError(f"tensor dtype {array.dtype} is not int8 or int32")
    big_endian = array.astype(array.dtype.newbyteorder(">"), copy=False)
    if array.ndim == 0:
        raise ExecutorError("a tensor needs at least one axis")
    if array.ndim == 1:
        return [big_endian[i : i + 1].tobytes() for i in range(array.shape[0])]
    return [big_endian[i].tobytes() for i in range(array.shape[0])]


def tensor_root(array: np.ndarray) -> bytes:
    """Merkle root of a tensor's rows (docs/commitments.md)."""
    return merkle_root(tensor_leaves(array))


def weights_root(tensors: Mapping[str, np.ndarray]) -> bytes:
    """Merkle root over the 32-byte tensor roots, ordered by tensor name."""
    return merkle_root([tensor_root(tensors[name]) for name in sorted(tensors)])


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


def chunk_height(layer: DenseLayer) -> int:
    """Tallest aligned row block that fits one segment contract and one upload call."""
    row_words = padded_row_words(layer.in_dim) + 1
    height = 0
    max_height = tree_depth(layer.out_dim)
    while (
        height < max_height
        and (2 << height) * row_words <= SEGMENT_WORDS
        and (2 << height) * layer.in_dim <= MAX_CHUNK_BYTES
        and (2 << height) <= MAX_CHUNK_ROWS
    ):
        height += 1
    if (1 << height) * row_words > SEGMENT_WORDS or (1 << height) * layer.in_dim > MAX_CHUNK_BYTES:
        raise ExecutorError(f"a row of fan-in {layer.in_dim} does not fit one segment")
    return height


def validate_model(model: ExecutorModel) -> None:
    """Raise ExecutorError for anything the contract would reject."""
    if not 1 <= len(model.layers) <= MAX_LAYERS:
        raise ExecutorError(f"{len(model.layers)} layers; the executor takes 1 to {MAX_LAYERS}")
    for index, layer in enumerate(model.layers):
        where = f"layer {index}"
        if layer.weight.dtype != np.int8 or layer.weight.ndim != 2:
            raise ExecutorError(f"{where}: weight must be a 2-D int8 tensor")
        if not 1 <= layer.in_dim <= MAX_WIDTH or not 1 <= layer.out_dim <= MAX_WIDTH:
            raise ExecutorError(f"{where}: width outside 1..{MAX_WIDTH}")
        if int(layer.weight.min()) < -127:
            raise ExecutorError(f"{where}: weight -128 is outside the symmetric range")
        if index and layer.in_dim != model.layers[index - 1].out_dim:
            raise ExecutorError(f"{where}: fan-in does not match the previous layer")
        last = index == len(model.layers) - 1
        low, high = (INT32_MIN, INT32_MAX) if last else (-128, 127)
        if not low <= layer.lo <= layer.hi <= high:
            raise ExecutorError(f"{where}: clamp [{layer.lo}, {layer.hi}] outside [{low}, {high}]")
        if layer.bias.shape != (layer.out_dim,) or layer.bias.dtype != np.int32:
            raise ExecutorError(f"{where}: bias must be int32 [{layer.out_dim}]")
        multiplier = np.asarray(layer.multiplier, dtype=np.int64)
        shift = np.asarray(layer.shift, dtype=np.int64)
        if multiplier.shape != (layer.out_dim,) or shift.shape != (layer.out_dim,):
            raise ExecutorError(f"{where}: one multiplier and shift per output channel")
        if (
            multiplier.min() < 1
            or multiplier.max() > INT32_MAX
            or shift.min() < 0
            or shift.max() > 62
        ):
            raise ExecutorError(f"{where}: multiplier or shift out of range")
        for name in (layer.weight_name, layer.bias_name):
            if name not in model.tensors:
                raise ExecutorError(f"{where}: tensor {name!r} is not among the version's tensors")
        chunk_height(layer)


def _layer_spec(layer: DenseLayer, names: list[str]) -> tuple[Any, ...]:
    return (
        names.index(layer.weight_name),
        names.index(layer.bias_name),
        layer.in_dim,
        layer.out_dim,
        layer.lo,
        layer.hi,
        chunk_height(layer),
        [int(m) for m in layer.multiplier],
        [int(s) for s in layer.shift],
    )


def upload_calls(version_id: bytes, model: ExecutorModel) -> list[ContractCall]:
    """Every transaction that uploads `model` for `version_id`: begin_upload, then the chunks."""
    validate_model(model)
    names = model.tensor_names()
    roots = [tensor_root(model.tensors[name]) for name in names]
    calls = [
        ContractCall(
            "begin_upload",
            (version_id, [_layer_spec(layer, names) for layer in model.layers], roots),
        )
    ]
    for index, layer in enumerate(model.layers):
        height = chunk_height(layer)
        size = 1 << height
        weight_leaves = tensor_leaves(layer.weight)
        bias_leaves = tensor_leaves(layer.bias)
        weight_tree = MerkleTree.from_leaves(weight_leaves)
        bias_tree = MerkleTree.from_leaves(bias_leaves)
        multipliers = [int(m) for m in layer.multiplier]
        shifts = [int(s) for s in layer.shift]
        for chunk in range(-(-layer.out_dim // size)):
            first = chunk * size
            rows = slice(first, min(first + size, layer.out_dim))
            calls.append(
                ContractCall(
                    "upload_chunk",
                    (
                        version_id,
                        index,
                        chunk,
                        b"".join(weight_leaves[rows]),
                        list(weight_tree.prove(first).siblings[height:]),
                        b"".join(bias_leaves[rows]),
                        list(bias_tree.prove(first).siblings[height:]),
                        multipliers,
                        shifts,
                    ),
                )
            )
    return calls


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
    w3 = contract.w3
    sender = getattr(account, "address", account)
    total = 0
    for call in calls:
        function = contract.functions[call.function](*call.args)
        tx = function.build_transaction(
            {"from": sender, "nonce": w3.eth.get_transaction_count(sender, "pending")}
        )
        if hasattr(account, "sign_transaction"):
            tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        else:
            tx_hash = w3.eth.send_transaction(tx)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise ExecutorError(f"{call.function} reverted in tx {tx_hash.hex()}")
        total += int(receipt["gasUsed"])
    return total
