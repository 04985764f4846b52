"""Upload integrity: only the registered program, over rows provably the version's, ever runs.

A wrong row in any of the four tensors, a missing chunk, a chunk of another version, a wrong
tensor list, a program other than the registered one (a co-maintainer's changed clamp), a
stranger, a restart by someone else or a repeated chunk: each is refused by name, and nothing
runs early.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import boa
import numpy as np
import pytest
from chain_fixtures import LOCATOR, dense_package, deploy_suite, publish, slug_id

from aicommons.chain import executor as executor_module
from aicommons.chain.errors import ExecutorError
from aicommons.chain.executor import (
    ContractCall,
    ExecutorProgram,
    LayerProgram,
    encode_input,
    model_from_package,
    send_boa,
    upload_calls,
    validate_model,
)
from aicommons.commit import canonical_json, keccak256
from aicommons.runtime import ModelPackage
from aicommons.runtime.commitment import tensor_root, weights_root
from aicommons.runtime.errors import PackageError

# Argument positions of upload_chunk: model, version, layer, chunk, then (rows, siblings) for
# weight, bias, multiplier and shift.
ROWS_ARGUMENT = {"weight": 4, "bias": 6, "multiplier": 8, "shift": 10}
SLUG = "upload-model"
# Positions in a LayerProgram tuple (begin_upload's `program`).
IN_DIM, HI = 4, 7


@pytest.fixture
def setup():
    with boa.env.anchor():
        suite = deploy_suite()
        maintainer = boa.env.generate_address("upload-maintainer")
        rng = np.random.default_rng(11)
        package = dense_package(rng, [20, 40, 3])  # layer 0 has 40 rows: several chunks
        publish(suite, package, maintainer, SLUG)
        calls = upload_calls(slug_id(SLUG), package.version_id, model_from_package(package))
        yield suite, maintainer, package, calls


def _tampered(call: ContractCall, tensor: str) -> ContractCall:
    args = list(call.args)
    position = ROWS_ARGUMENT[tensor]
    rows = bytearray(args[position])
    rows[0] ^= 1
    args[position] = bytes(rows)
    return ContractCall(call.function, tuple(args))


def test_a_complete_upload_makes_the_model_ready(setup) -> None:
    suite, maintainer, package, calls = setup
    assert len([c for c in calls if c.function == "upload_chunk"]) > 2
    key = (slug_id(SLUG), package.version_id)
    with boa.reverts("ModelNotReady"):
        suite.executor.predict(*key, encode_input(np.zeros(20, dtype=np.int8)))
    send_boa(suite.executor, calls, sender=maintainer)
    assert suite.executor.is_ready(*key)
    assert suite.executor.program_hash(*key) == suite.registry.program_hash(*key)
    x = np.arange(20, dtype=np.int8)
    assert list(suite.executor.predict(*key, encode_input(x))[0]) == list(package.run(x)[0])


@pytest.mark.parametrize("tensor", ["weight", "bias", "multiplier", "shift"])
def test_a_wrong_row_is_rejected(setup, tensor: str) -> None:
    suite, maintainer, _, calls = setup
    send_boa(suite.executor, calls[:1], sender=maintainer)
    reason = f"{tensor.capitalize()}RowsMismatch"
    with boa.env.prank(maintainer), boa.reverts(reason):
        suite.executor.upload_chunk(*_tampered(calls[1], tensor).args)


def test_wrong_proof_length_is_rejected(setup) -> None:
    suite, maintainer, _, calls = setup
    send_boa(suite.executor, calls[:1], sender=maintainer)
    args = list(calls[1].args)
    args[5] = list(args[5]) + [b"\x00" * 32]
    with boa.env.prank(maintainer), boa.reverts("WeightRowsMismatch"):
        suite.executor.upload_chunk(*args)


def test_a_missing_chunk_keeps_the_model_unusable(setup) -> None:
    suite, maintainer, package, calls = setup
    key = (slug_id(SLUG), package.version_id)
    send_boa(suite.executor, calls[:-1], sender=maintainer)
    assert not suite.executor.is_ready(*key)
    with boa.reverts("ModelNotReady"):
        suite.executor.predict(*key, encode_input(np.zeros(20, dtype=np.int8)))
    with boa.reverts("ModelNotReady"):
        suite.executor.infer(*key, encode_input(np.zeros(20, dtype=np.int8)))
    send_boa(suite.executor, calls[-1:], sender=maintainer)
    assert suite.executor.is_ready(*key)


def test_rows_of_another_version_are_rejected(setup) -> None:
    suite, maintainer, package, calls = setup
    other = dense_package(np.random.default_rng(12), [20, 40, 3])
    publish(suite, other, maintainer, SLUG)
    other_calls = upload_calls(slug_id(SLUG), other.version_id, model_from_package(other))
    send_boa(suite.executor, calls[:1], sender=maintainer)
    foreign = (slug_id(SLUG), package.version_id, *other_calls[1].args[2:])
    with boa.env.prank(maintainer), boa.reverts("WeightRowsMismatch"):
        suite.executor.upload_chunk(*foreign)


def _program_hash(program, roots) -> bytes:
    layers = tuple(LayerProgram(*spec) for spec in program)
    return ExecutorProgram(layers, tuple(roots)).program_hash()


def test_tensor_roots_must_match_the_registered_program_and_weights_root(setup) -> None:
    suite, maintainer, package, calls = setup
    model_id, version_id, program, heights, roots = calls[0].args
    swapped = [roots[1], roots[0], *roots[2:]]
    with boa.env.prank(maintainer), boa.reverts("ProgramMismatch"):
        suite.executor.begin_upload(model_id, version_id, program, heights, swapped)
    with boa.env.prank(maintainer), boa.reverts("ProgramMismatch"):
        suite.executor.begin_upload(model_id, version_id, program, heights, roots[:-1])
    # A version whose registered program hash covers the swapped roots still stops at the
    # weights root: both commitments are checked.
    other_id = keccak256(b"registered over swapped roots")
    with boa.env.prank(maintainer):
        suite.registry.publish_version(
            model_id,
            other_id,
            package.weights_root,
            _program_hash(program, swapped),
            [LOCATOR],
            "MIT",
            [],
            1,
            0,
        )
    with boa.env.prank(maintainer), boa.reverts("WeightsRootMismatch"):
        suite.executor.begin_upload(model_id, other_id, program, heights, swapped)


def _publish_program(suite, maintainer, package, program, roots, tag: bytes) -> bytes:
    """Register, over `package`'s weights, a version whose program hash is `program`'s."""
    version_id = keccak256(tag)
    with boa.env.prank(maintainer):
        suite.registry.publish_version(
            slug_id(SLUG),
            version_id,
            package.weights_root,
            _program_hash(program, roots),
            [LOCATOR],
            "MIT",
            [],
            1,
            0,
        )
    return version_id


def test_only_maintainers_upload_and_only_the_uploader_sends_chunks(setup) -> None:
    suite, maintainer, _, calls = setup
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(stranger), boa.reverts("NotMaintainer"):
        suite.executor.begin_upload(*calls[0].args)
    with boa.env.prank(maintainer), boa.reverts("UploadNotStarted"):
        suite.executor.upload_chunk(*calls[1].args)
    send_boa(suite.executor, calls[:1], sender=maintainer)
    with boa.env.prank(stranger), boa.reverts("NotUploader"):
        suite.executor.upload_chunk(*calls[1].args)


def _co_maintainer(suite, owner: str) -> str:
    co_maintainer = boa.env.generate_address("co-maintainer")
    with boa.env.prank(owner):
        suite.registry.add_maintainer(slug_id(SLUG), co_maintainer)
    return co_maintainer


def test_a_co_maintainer_cannot_upload_another_program(setup) -> None:
    # Issue 14 item 8: a co-maintainer restarted the upload with the last layer's clamp changed
    # (no tensor root covers it) and locked in a program whose outputs differ from the package.
    suite, owner, package, calls = setup
    co_maintainer = _co_maintainer(suite, owner)
    model_id, version_id, program, heights, roots = calls[0].args
    clamped = [list(spec) for spec in program]
    clamped[-1][HI] = 0  # every logit capped at 0: argmax is no longer the model's
    with boa.env.prank(co_maintainer), boa.reverts("ProgramMismatch"):
        suite.executor.begin_upload(
            model_id, version_id, [tuple(spec) for spec in clamped], heights, roots
        )
    # Nor restart the author's upload to block it; the honest program goes through.
    send_boa(suite.executor, calls[:2], sender=owner)
    with boa.env.prank(co_maintainer), boa.reverts("NotUploader"):
        suite.executor.begin_upload(*calls[0].args)
    send_boa(suite.executor, calls[2:], sender=owner)
    assert suite.executor.is_ready(model_id, version_id)
    x = np.full(20, 100, dtype=np.int8)
    output = suite.executor.predict(model_id, version_id, encode_input(x))[0]
    assert list(output) == [int(v) for v in package.run(x)[0]]


def test_the_publisher_may_restart_an_upload_someone_else_started(setup) -> None:
    suite, owner, _, calls = setup
    co_maintainer = _co_maintainer(suite, owner)
    send_boa(suite.executor, calls[:2], sender=co_maintainer)
    # The publisher (the owner here) takes over; the chunk heights are layout, free to change.
    model_id, version_id, program, heights, roots = calls[0].args
    lower = [max(height - 1, 0) for height in heights]
    with boa.env.prank(owner):
        suite.executor.begin_upload(model_id, version_id, program, lower, roots)
    started = [e for e in suite.executor.get_logs() if type(e).__name__ == "UploadStarted"]
    assert started[0].uploader == owner
    assert started[0].program_hash == suite.registry.program_hash(model_id, version_id)
    with boa.env.prank(co_maintainer), boa.reverts("NotUploader"):
        suite.executor.upload_chunk(*calls[1].args)
    send_boa(suite.executor, calls[:1], sender=owner)  # restart again with the usual layout
    send_boa(suite.executor, calls[1:], sender=owner)
    assert suite.executor.is_ready(model_id, version_id)


def test_a_version_without_a_program_cannot_be_uploaded(setup) -> None:
    suite, maintainer, package, calls = setup
    model_id, _, program, heights, roots = calls[0].args
    off_chain = keccak256(b"optimistic only")
    with boa.env.prank(maintainer):
        suite.registry.publish_version(
            model_id, off_chain, package.weights_root, b"\x00" * 32, [LOCATOR], "MIT", [], 4, 0
        )
    with boa.env.prank(maintainer), boa.reverts("ProgramMismatch"):
        suite.executor.begin_upload(model_id, off_chain, program, heights, roots)


def test_a_chunk_is_accepted_once_and_a_ready_model_is_final(setup) -> None:
    suite, maintainer, _, calls = setup
    send_boa(suite.executor, calls[:2], sender=maintainer)
    with boa.env.prank(maintainer), boa.reverts("ChunkAlreadyUploaded"):
        suite.executor.upload_chunk(*calls[1].args)
    send_boa(suite.executor, calls[2:], sender=maintainer)
    with boa.env.prank(maintainer), boa.reverts("AlreadyReady"):
        suite.executor.begin_upload(*calls[0].args)


def test_upload_events_are_emitted(setup) -> None:
    suite, maintainer, package, calls = setup
    with boa.env.prank(maintainer):
        suite.executor.begin_upload(*calls[0].args)
    started = [e for e in suite.executor.get_logs() if type(e).__name__ == "UploadStarted"]
    assert len(started) == 1
    assert (started[0].model_id, started[0].version_id) == (slug_id(SLUG), package.version_id)
    send_boa(suite.executor, calls[1:-1], sender=maintainer)
    with boa.env.prank(maintainer):
        suite.executor.upload_chunk(*calls[-1].args)
    names = [type(e).__name__ for e in suite.executor.get_logs()]
    assert "ChunkVerified" in names and "ModelReady" in names


def test_invalid_programs_are_rejected_even_when_registered(setup) -> None:
    suite, maintainer, package, calls = setup
    model_id, _, program, heights, roots = calls[0].args
    cases = {
        "InvalidClamp": (0, HI, 128),  # hi of a hidden layer must stay in int8
        "InvalidProgram": (1, IN_DIM, 39),  # layer 1's fan-in no longer layer 0's outputs
    }
    for reason, (layer, field, value) in cases.items():
        bad = [list(spec) for spec in program]
        bad[layer][field] = value
        bad_program = [tuple(spec) for spec in bad]
        version_id = _publish_program(
            suite, maintainer, package, bad_program, roots, reason.encode()
        )
        with boa.env.prank(maintainer), boa.reverts(reason):
            suite.executor.begin_upload(model_id, version_id, bad_program, heights, roots)
    with boa.env.prank(maintainer), boa.reverts("InvalidChunking"):
        suite.executor.begin_upload(*calls[0].args[:3], heights[:-1], roots)
    with boa.env.prank(maintainer), boa.reverts("InvalidChunking"):
        suite.executor.begin_upload(*calls[0].args[:3], [7] * len(heights), roots)


def _with_bias(package, name: str, bias: np.ndarray) -> SimpleNamespace:
    """`package` with tensor `name` replaced and its roots recomputed, NOT verified by the
    runtime: what an uploader could commit to and register without the runtime's checks."""
    tensors = {**package.tensors, name: bias.astype(np.int32)}
    manifest = copy.deepcopy(package.manifest)
    roots = {n: tensor_root(t) for n, t in tensors.items()}
    for entry in manifest["tensors"]:
        entry["root"] = "0x" + roots[entry["name"]].hex()
    manifest["weights_root"] = "0x" + weights_root(roots).hex()
    return SimpleNamespace(
        manifest=manifest,
        tensors=tensors,
        version_id=keccak256(canonical_json(manifest)),
        weights_root=weights_root(roots),
    )


def test_the_fan_in_bound_is_enforced_like_the_runtime(monkeypatch) -> None:
    # Issue 14 item 9: the executor ran packages the runtime refuses, so their receipts could
    # never verify. |bias| + in_dim * 128 * 127 <= 2**31 - 1, per row, as in the semantics.
    with boa.env.anchor():
        suite = deploy_suite()
        maintainer = boa.env.generate_address("fan-in-maintainer")
        base = dense_package(np.random.default_rng(14), [20, 3])
        limit = 2**31 - 1 - 20 * 128 * 127
        for offset, accepted in ((0, True), (1, False)):
            bias = np.array([-(limit + offset), 5, limit], dtype=np.int64)
            candidate = _with_bias(base, "dense0.bias", bias)
            if accepted:
                ModelPackage(candidate.manifest, candidate.tensors)
            else:
                with pytest.raises(PackageError, match="overflow int32"):
                    ModelPackage(candidate.manifest, candidate.tensors)
                with pytest.raises(ExecutorError, match="FanInBound"):
                    validate_model(model_from_package(candidate))
            model_id, version_id = publish(suite, candidate, maintainer, "fan-in-bound")
            # Send what the Python side would refuse, to see the contract refuse it too.
            monkeypatch.setattr(executor_module, "validate_model", lambda model: None)
            calls = upload_calls(model_id, version_id, model_from_package(candidate))
            monkeypatch.undo()
            send_boa(suite.executor, calls[:1], sender=maintainer)
            if accepted:
                send_boa(suite.executor, calls[1:], sender=maintainer)
                x = np.full(20, 127, dtype=np.int8)
                output = suite.executor.predict(model_id, version_id, encode_input(x))[0]
                assert list(output) == [
                    int(v) for v in ModelPackage(candidate.manifest, candidate.tensors).run(x)[0]
                ]
            else:
                with boa.env.prank(maintainer), boa.reverts("FanInBound"):
                    suite.executor.upload_chunk(*calls[1].args)
