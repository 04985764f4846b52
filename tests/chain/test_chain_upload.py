"""Upload integrity: only rows that are provably the registered version's ever run.

A wrong row in any of the four tensors, a missing chunk, a chunk of another version, a wrong
tensor list, a stranger or a repeated chunk: each is refused by name, and nothing runs early.
"""

from __future__ import annotations

import boa
import numpy as np
import pytest
from chain_fixtures import dense_package, deploy_suite, publish

from aicommons.chain.executor import (
    ContractCall,
    encode_input,
    model_from_package,
    send_boa,
    upload_calls,
)

# Argument positions of upload_chunk: version, layer, chunk, then (rows, siblings) for
# weight, bias, multiplier and shift.
ROWS_ARGUMENT = {"weight": 3, "bias": 5, "multiplier": 7, "shift": 9}


@pytest.fixture
def setup():
    with boa.env.anchor():
        suite = deploy_suite()
        maintainer = boa.env.generate_address("upload-maintainer")
        rng = np.random.default_rng(11)
        package = dense_package(rng, [20, 40, 3])  # layer 0 has 40 rows: several chunks
        publish(suite, package, maintainer, "upload-model")
        calls = upload_calls(package.version_id, model_from_package(package))
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
    with boa.reverts("ModelNotReady"):
        suite.executor.predict(package.version_id, encode_input(np.zeros(20, dtype=np.int8)))
    send_boa(suite.executor, calls, sender=maintainer)
    assert suite.executor.is_ready(package.version_id)
    x = np.arange(20, dtype=np.int8)
    assert list(suite.executor.predict(package.version_id, encode_input(x))[0]) == list(
        package.run(x)[0]
    )


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
    args[4] = list(args[4]) + [b"\x00" * 32]
    with boa.env.prank(maintainer), boa.reverts("WeightRowsMismatch"):
        suite.executor.upload_chunk(*args)


def test_a_missing_chunk_keeps_the_model_unusable(setup) -> None:
    suite, maintainer, package, calls = setup
    send_boa(suite.executor, calls[:-1], sender=maintainer)
    assert not suite.executor.is_ready(package.version_id)
    with boa.reverts("ModelNotReady"):
        suite.executor.predict(package.version_id, encode_input(np.zeros(20, dtype=np.int8)))
    with boa.reverts("ModelNotReady"):
        suite.executor.infer(package.version_id, encode_input(np.zeros(20, dtype=np.int8)))
    send_boa(suite.executor, calls[-1:], sender=maintainer)
    assert suite.executor.is_ready(package.version_id)


def test_rows_of_another_version_are_rejected(setup) -> None:
    suite, maintainer, package, calls = setup
    other = dense_package(np.random.default_rng(12), [20, 40, 3])
    publish(suite, other, maintainer, "upload-model")
    other_calls = upload_calls(other.version_id, model_from_package(other))
    send_boa(suite.executor, calls[:1], sender=maintainer)
    foreign = (package.version_id, *other_calls[1].args[1:])
    with boa.env.prank(maintainer), boa.reverts("WeightRowsMismatch"):
        suite.executor.upload_chunk(*foreign)


def test_tensor_roots_must_match_the_registered_weights_root(setup) -> None:
    suite, maintainer, package, calls = setup
    version_id, specs, roots = calls[0].args
    with boa.env.prank(maintainer), boa.reverts("WeightsRootMismatch"):
        suite.executor.begin_upload(version_id, specs, [roots[1], roots[0], *roots[2:]])
    with boa.env.prank(maintainer), boa.reverts("WeightsRootMismatch"):
        suite.executor.begin_upload(version_id, specs, roots[:-1])


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
    assert len(started) == 1 and started[0].version_id == package.version_id
    send_boa(suite.executor, calls[1:-1], sender=maintainer)
    with boa.env.prank(maintainer):
        suite.executor.upload_chunk(*calls[-1].args)
    names = [type(e).__name__ for e in suite.executor.get_logs()]
    assert "ChunkVerified" in names and "ModelReady" in names


def test_invalid_programs_are_rejected(setup) -> None:
    suite, maintainer, _, calls = setup
    version_id, specs, roots = calls[0].args
    hidden_clamp_too_wide = [list(spec) for spec in specs]
    hidden_clamp_too_wide[0][7] = 128  # hi of a hidden layer must stay in int8
    with boa.env.prank(maintainer), boa.reverts("InvalidClamp"):
        suite.executor.begin_upload(version_id, [tuple(s) for s in hidden_clamp_too_wide], roots)
    broken_chain = [list(spec) for spec in specs]
    broken_chain[1][4] = 39  # fan-in of layer 1 no longer equals layer 0's outputs
    with boa.env.prank(maintainer), boa.reverts("InvalidProgram"):
        suite.executor.begin_upload(version_id, [tuple(s) for s in broken_chain], roots)
