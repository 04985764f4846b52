"""Byte formats of the market: inputs, outputs, result leaves, batch roots, redundant commitments.

Each function is the one definition of its format (docs/market.md); the contracts compute the
same bytes (tested against ComputeMarket, DisputeGame and RedundantMode). Pure, no chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from eth_abi import encode

from aicommons.commit import MerkleProof, MerkleTree, keccak256
from aicommons.market.errors import CommitmentError
from aicommons.runtime import tensor_root, tensor_rows

MAX_BATCH = 128
MAX_BATCH_BYTES = 32768
MAX_OUTPUT_BYTES = 4096
MAX_INPUT_BYTES = 8192
MAX_INPUT_ROWS = 1024
MAX_BLOB_INPUT_BYTES = 16 * 2**20
"""Largest storage-blob input the off-chain side fetches (the contracts never see its bytes)."""
SIGNATURE_BYTES = 65
UNSIGNED = bytes(SIGNATURE_BYTES)
"""A post without a provider signature (65 zero bytes recover to no one): receipts of such a
result fail their `signature` check; the market itself does not check signatures."""


def tensor_bytes(value: np.ndarray) -> bytes:
    """A tensor as committed: its rows concatenated (big-endian elements, int8 or int32)."""
    return b"".join(tensor_rows(np.asarray(value)))


def input_bytes(x: np.ndarray) -> bytes:
    """A request's calldata input: one sample's int8 values in C order, one byte each."""
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise CommitmentError(f"a market input is int8, got {x.dtype}")
    data = tensor_bytes(x)
    if len(data) > MAX_INPUT_BYTES:
        raise CommitmentError(
            f"input of {len(data)} bytes exceeds {MAX_INPUT_BYTES}; send it as a storage blob"
        )
    return data


def input_root(x: np.ndarray) -> bytes:
    """The input's tensor root (leaf 0 of every trace of the request)."""
    return tensor_root(np.asarray(x))


def output_bytes(value: np.ndarray) -> bytes:
    """The posted output: the output tensor's rows (int32 outputs: 4 bytes an element)."""
    data = tensor_bytes(value)
    if len(data) > MAX_OUTPUT_BYTES:
        raise CommitmentError(f"output of {len(data)} bytes exceeds {MAX_OUTPUT_BYTES}")
    return data


def output_hash(output: bytes) -> bytes:
    """keccak256 of the posted output bytes (what receipts and leaves carry)."""
    return keccak256(bytes(output))


def version_key(model_id: bytes, version_id: bytes) -> bytes:
    """The contracts' key of a version: keccak256(model_id ‖ version_id)."""
    return keccak256(bytes(model_id) + bytes(version_id))


def result_leaf(request_id: int, output_hash_: bytes, trace_root: bytes) -> bytes:
    """Leaf data of one result in a batch: abi_encode(request_id, output_hash, trace_root)."""
    return encode(["uint256", "bytes32", "bytes32"], [request_id, output_hash_, trace_root])


@dataclass(frozen=True)
class PostedResult:
    """One result of a batch: request id, trace root and output bytes."""

    request_id: int
    trace_root: bytes
    output: bytes

    @property
    def output_hash(self) -> bytes:
        return output_hash(self.output)

    @property
    def leaf(self) -> bytes:
        return result_leaf(self.request_id, self.output_hash, self.trace_root)


class BatchCommitment:
    """The Merkle root over a batch's result leaves, and each result's proof."""

    def __init__(self, results: Sequence[PostedResult]) -> None:
        if not 1 <= len(results) <= MAX_BATCH:
            raise CommitmentError(f"a batch holds 1 to {MAX_BATCH} results, got {len(results)}")
        self.results = tuple(results)
        self._tree = MerkleTree.from_leaves([result.leaf for result in self.results])
        self.root: bytes = self._tree.root

    def index_of(self, request_id: int) -> int:
        for index, result in enumerate(self.results):
            if result.request_id == request_id:
                return index
        raise CommitmentError(f"request {request_id} is not in this batch")

    def proof(self, index: int) -> MerkleProof:
        return self._tree.prove(index)

    def finalise_args(self, *, batch_id: int, request_id: int) -> tuple[Any, ...]:
        """`finalise`'s arguments for one result of this batch (posted as `batch_id`)."""
        index = self.index_of(request_id)
        result = self.results[index]
        siblings = list(self.proof(index).siblings)
        return (request_id, batch_id, index, result.output, result.trace_root, siblings)

    def challenge_args(self, *, batch_id: int, request_id: int) -> tuple[Any, ...]:
        """`DisputeGame.challenge`'s arguments for one result of this batch."""
        index = self.index_of(request_id)
        result = self.results[index]
        siblings = list(self.proof(index).siblings)
        return (request_id, batch_id, index, result.output_hash, result.trace_root, siblings)

    def post_args(
        self, signatures: Sequence[bytes] | None = None
    ) -> tuple[list[int], list[bytes], bytes, list[int], bytes]:
        """`post_batch`'s arguments: request ids, trace roots, the outputs concatenated, sizes,
        and the provider's signatures of the results concatenated (65 bytes each, in order;
        None: unsigned, `UNSIGNED` each)."""
        outputs = b"".join(result.output for result in self.results)
        if len(outputs) > MAX_BATCH_BYTES:
            raise CommitmentError(
                f"a batch's outputs ({len(outputs)} bytes) exceed {MAX_BATCH_BYTES}"
            )
        if signatures is None:
            signatures = [UNSIGNED] * len(self.results)
        if len(signatures) != len(self.results):
            raise CommitmentError(
                f"{len(signatures)} signatures for a batch of {len(self.results)} results"
            )
        if any(len(signature) != SIGNATURE_BYTES for signature in signatures):
            raise CommitmentError(f"a result signature is {SIGNATURE_BYTES} bytes")
        return (
            [result.request_id for result in self.results],
            [result.trace_root for result in self.results],
            outputs,
            [len(result.output) for result in self.results],
            b"".join(bytes(signature) for signature in signatures),
        )


def redundant_commitment(
    *, request_id: int, provider: str, output_hash: bytes, trace_root: bytes, salt: bytes
) -> bytes:
    """keccak256(abi_encode(request_id, provider, output_hash, trace_root, salt))."""
    return keccak256(
        encode(
            ["uint256", "address", "bytes32", "bytes32", "bytes32"],
            [request_id, provider, output_hash, trace_root, salt],
        )
    )
