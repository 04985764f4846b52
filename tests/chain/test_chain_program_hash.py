"""The program hash: a pure function of the manifest, pinned by a test vector, and the very
value OnchainExecutor recomputes in `begin_upload`.

docs/test-vectors/program-hash.json (scripts/make_program_vectors.py) holds a small package's
canonical manifest, its program, tensor roots and hash; Python and the contract must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import boa
from chain_fixtures import LOCATOR, deploy_suite, slug_id

from aicommons.chain.executor import (
    PROGRAM_ABI,
    ExecutorProgram,
    LayerProgram,
    program_from_manifest,
)
from aicommons.commit import canonical_json, keccak256

VECTOR = json.loads(
    (Path(__file__).resolve().parents[2] / "docs/test-vectors/program-hash.json").read_text()
)
HI = 7  # position of `hi` in a LayerProgram tuple


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def test_the_vector_is_the_manifests_program_hash() -> None:
    manifest = VECTOR["manifest"]
    assert "0x" + keccak256(canonical_json(manifest)).hex() == VECTOR["version_id"]
    program = program_from_manifest(manifest)
    assert [list(layer.as_abi()) for layer in program.layers] == VECTOR["program"]
    assert ["0x" + root.hex() for root in program.tensor_roots] == VECTOR["tensor_roots"]
    assert "0x" + program.program_hash().hex() == VECTOR["program_hash"]
    assert PROGRAM_ABI == (
        "(uint256,uint256,uint256,uint256,uint256,uint256,int256,int256)[]",
        "bytes32[]",
    )


def test_every_committed_field_changes_the_hash_and_layout_does_not_enter() -> None:
    program = program_from_manifest(VECTOR["manifest"])
    base = program.program_hash()
    for layer in range(len(program.layers)):
        for field in range(8):
            changed = [list(spec.as_abi()) for spec in program.layers]
            changed[layer][field] += 1
            layers = tuple(LayerProgram(*spec) for spec in changed)
            assert ExecutorProgram(layers, program.tensor_roots).program_hash() != base
    swapped = (program.tensor_roots[1], program.tensor_roots[0], *program.tensor_roots[2:])
    assert ExecutorProgram(program.layers, swapped).program_hash() != base


def test_the_executor_recomputes_the_vectors_hash() -> None:
    with boa.env.anchor():
        suite = deploy_suite()
        author = boa.env.generate_address("vector-author")
        model_id = slug_id("program-vector")
        version_id = _bytes(VECTOR["version_id"])
        program = [tuple(spec) for spec in VECTOR["program"]]
        roots = [_bytes(root) for root in VECTOR["tensor_roots"]]
        with boa.env.prank(author):
            suite.registry.register_model("program-vector", [])
            suite.registry.publish_version(
                model_id,
                version_id,
                _bytes(VECTOR["manifest"]["weights_root"]),
                _bytes(VECTOR["program_hash"]),
                [LOCATOR],
                "MIT",
                [],
                1,
                0,
            )
            wider = [list(spec) for spec in program]
            wider[0][HI] = 126
            with boa.reverts("ProgramMismatch"):
                suite.executor.begin_upload(
                    model_id, version_id, [tuple(s) for s in wider], [0, 0], roots
                )
            suite.executor.begin_upload(model_id, version_id, program, [0, 1], roots)
        started = [e for e in suite.executor.get_logs() if type(e).__name__ == "UploadStarted"]
        assert started[0].program_hash == _bytes(VECTOR["program_hash"])
        assert suite.executor.program_hash(model_id, version_id) == started[0].program_hash
