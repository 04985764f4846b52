"""The compute market end to end in titanoboa: honest flow, every dishonest provider of the issue,
a dishonest challenger, a silent claimant, redundant mode with one liar of three, callbacks.

One suite per module (deploy is the slow part); each test runs under `boa.env.anchor()`.
"""

from __future__ import annotations

from pathlib import Path

import boa
import numpy as np
import pytest
from market_fixtures import (
    AIC,
    advance,
    challenge,
    deploy_market_suite,
    finalise,
    honest_result,
    play,
    post,
    send,
    state,
)

from aicommons.chain.compile import compile_source_file, load_boa
from aicommons.commit import keccak256
from aicommons.demo import DIGITS_CNN, DIGITS_DATA
from aicommons.market.commitments import (
    UNSIGNED,
    PostedResult,
    output_bytes,
    redundant_commitment,
)
from aicommons.market.dispute import TraceCommitments
from aicommons.market.game import one_step_move
from aicommons.runtime.quantize import quantize_onnx

CONSUMER = Path(__file__).resolve().parent / "consumer_harness.vy"
OPEN, CLAIMED, POSTED, DISPUTED, FINALISED, OVERTURNED, EXPIRED = range(1, 8)


@pytest.fixture(scope="module")
def cnn():
    return quantize_onnx(DIGITS_CNN, np.load(DIGITS_DATA)["x_calib"].reshape(-1, 1, 8, 8))


@pytest.fixture(scope="module")
def world(cnn):
    """Suite, the digits CNN as a market version (fee 2 AIC, 60% to its author), actors."""
    with boa.env.anchor():
        suite = deploy_market_suite()
        author = boa.env.generate_address("author")
        suite.publish(cnn, "digits-cnn", fee=2 * AIC, attribution=[(author, 1, 6000)])
        actors = {
            "author": author,
            "p1": suite.provider("p1", ["digits-cnn"]),
            "p2": suite.provider("p2", ["digits-cnn"]),
            "p3": suite.provider("p3", ["digits-cnn"]),
        }
        for name in ("requester", "watcher"):
            actors[name] = boa.env.generate_address(name)
            suite.fund(actors[name])
        x = cnn.quantize_input(np.load(DIGITS_DATA)["x_test"][:4].reshape(-1, 1, 8, 8))
        yield suite, actors, x


@pytest.fixture
def env(world):
    with boa.env.anchor():
        yield world


def _claimed_request(suite, actors, x, provider="p1", **kwargs) -> int:
    request_id = suite.request(actors["requester"], "digits-cnn", x, **kwargs)
    with boa.env.prank(actors[provider]):
        suite.market.claim(request_id)
    return request_id


def _owed(suite, account) -> int:
    return suite.market.owed(account)


def test_honest_flow_pays_provider_author_treasury_and_refunds_the_rest(env, cnn) -> None:
    suite, actors, x = env
    request_id = _claimed_request(suite, actors, x[0], max_fee=10 * AIC)
    assert suite.market.request_status(request_id) == CLAIMED
    result, _ = honest_result(cnn, request_id, x[0])
    batch_id, batch = post(suite, actors["p1"], [result])
    with boa.reverts("WindowOpen"):
        finalise(suite, batch_id, batch, request_id, actors["requester"])
    advance(suite.params.window)
    finalise(suite, batch_id, batch, request_id, actors["requester"])
    logs = [log for log in suite.market.get_logs() if type(log).__name__ == "ResultFinalised"]
    assert len(logs) == 1 and logs[0].output == result.output
    assert logs[0].output_hash == keccak256(result.output) and logs[0].fee == 3 * AIC
    assert suite.market.request_status(request_id) == FINALISED
    # price 1 AIC to the provider; version fee 2 AIC: 5% protocol share, 60% of the rest to the
    # author, the rest (and dust) to the treasury; 7 AIC of the 10 escrowed come back.
    distributable = 2 * AIC - 2 * AIC * 500 // 10_000
    assert _owed(suite, actors["p1"]) == AIC
    assert _owed(suite, actors["author"]) == distributable * 6000 // 10_000
    assert _owed(suite, suite.treasury) == 2 * AIC - distributable * 6000 // 10_000
    assert _owed(suite, actors["requester"]) == 7 * AIC
    assert suite.market.providers(actors["p1"])[1] == 0  # lock released
    with boa.reverts("AlreadySettled"):
        finalise(suite, batch_id, batch, request_id, actors["requester"])


def test_batch_of_many_results_each_finalises_with_its_proof(env, cnn) -> None:
    suite, actors, x = env
    requests = [_claimed_request(suite, actors, x[i % 4]) for i in range(5)]
    results = [honest_result(cnn, rid, x[i % 4])[0] for i, rid in enumerate(requests)]
    batch_id, batch = post(suite, actors["p1"], results)
    advance(suite.params.window)
    for request_id in reversed(requests):
        finalise(suite, batch_id, batch, request_id, actors["watcher"])
        assert suite.market.request_status(request_id) == FINALISED


def _dishonest_game(suite, actors, cnn, x, corrupt):
    """Post a corrupted result, let the honest watcher dispute it, play to the end."""
    request_id = _claimed_request(suite, actors, x)
    trace = cnn.trace(x[None])
    honest = TraceCommitments(cnn, [v[0] for v in trace.values])
    provider_view, posted = corrupt(request_id, trace, honest)
    batch_id, batch = post(suite, actors["p1"], [posted])
    requester_before = _owed(suite, actors["requester"])
    stake_before = suite.market.providers(actors["p1"])
    dispute_id = challenge(suite, actors["watcher"], batch_id, batch, request_id)
    assert suite.market.request_status(request_id) == DISPUTED
    record = play(
        suite, dispute_id, provider=provider_view, challenger=honest, output=posted.output
    )
    assert record.winner == actors["watcher"], record
    assert suite.market.request_status(request_id) == OVERTURNED
    # Requester refunded in full; provider's lock slashed, half to the watcher with its bond.
    lock, bond = suite.params.claim_lock, suite.params.challenge_bond
    assert _owed(suite, actors["requester"]) - requester_before == 10 * AIC
    stake_after = suite.market.providers(actors["p1"])
    assert stake_after[0] + stake_after[1] == stake_before[0] + stake_before[1] - lock
    assert _owed(suite, actors["watcher"]) == lock // 2 + bond
    advance(suite.params.window)
    with boa.reverts("AlreadySettled"):
        finalise(suite, batch_id, batch, request_id, actors["requester"])
    return record


def test_provider_corrupting_the_final_output_loses(env, cnn) -> None:
    suite, actors, x = env

    def corrupt(request_id, trace, honest):
        output = bytearray(output_bytes(trace.values[-1][0]))
        output[3] ^= 1
        return honest, PostedResult(request_id, trace.roots[0], bytes(output))

    record = _dishonest_game(suite, actors, cnn, x[0], corrupt)
    assert record.moves == ["challenge", "timeout"]  # its roots cannot open the posted output


def test_provider_corrupting_a_middle_layer_element_loses_the_one_step(env, cnn) -> None:
    suite, actors, x = env

    def corrupt(request_id, trace, honest):
        values = [v[0].copy() for v in trace.values]
        values[2][3, 1, 2] += 1  # one element of pool1 (layer 2 of 5); later layers as computed
        liar = TraceCommitments(cnn, values)
        return liar, PostedResult(request_id, liar.trace_root, output_bytes(values[-1]))

    record = _dishonest_game(suite, actors, cnn, x[1], corrupt)
    assert record.moves[-1] == "one_step"
    resolved = record.resolved
    assert resolved.layer == 2 and resolved.row == 3 and resolved.element == 1 * 4 + 2
    assert resolved.committed == resolved.correct + 1 and resolved.reason == 1


def test_provider_corrupting_the_trace_root_alone_loses(env, cnn) -> None:
    suite, actors, x = env

    def corrupt(request_id, trace, honest):
        posted = PostedResult(
            request_id, keccak256(b"not a trace"), output_bytes(trace.values[-1][0])
        )
        return honest, posted

    record = _dishonest_game(suite, actors, cnn, x[2], corrupt)
    assert record.moves == ["challenge", "timeout"]


def test_provider_refusing_to_reveal_loses(env, cnn) -> None:
    suite, actors, x = env

    def corrupt(request_id, trace, honest):
        values = [v[0].copy() for v in trace.values]
        values[4][7] += 1
        liar = TraceCommitments(cnn, values)
        return None, PostedResult(request_id, liar.trace_root, output_bytes(values[-1]))

    record = _dishonest_game(suite, actors, cnn, x[3], corrupt)
    assert record.moves == ["challenge", "timeout"]


def test_dishonest_challenger_of_a_correct_result_loses_its_bond(env, cnn) -> None:
    suite, actors, x = env
    request_id = _claimed_request(suite, actors, x[0])
    result, honest = honest_result(cnn, request_id, x[0])
    batch_id, batch = post(suite, actors["p1"], [result])
    dispute_id = challenge(suite, actors["watcher"], batch_id, batch, request_id)
    # The challenger plays every move it can: it names layer 5, always descends left and
    # one-steps element 0 of the first revealed row. The provider answers honestly.
    from aicommons.market.game import provider_move

    roots = rows = None
    while True:
        current = state(suite, dispute_id)
        if not current.active:
            break
        if current.provider_to_move:
            move = provider_move(current, honest, result.output)
            send(suite, actors["p1"], move)
            if move.function == "reveal_roots":
                roots = [move.args[1][i : i + 32] for i in range(0, len(move.args[1]), 32)]
            if move.function == "reveal_rows":
                rows = list(move.args[1])
            continue
        with boa.env.prank(actors["watcher"]):
            if current.phase == "layer":
                from aicommons.commit import MerkleTree

                spec = honest.graph.specs[4]
                proof = MerkleTree.from_leaves(roots).prove(5)
                suite.game.pick_layer(
                    dispute_id,
                    5,
                    roots[5],
                    list(proof.siblings),
                    spec.as_abi(),
                    honest.graph.proof(5),
                )
            elif current.phase == "pick":
                suite.game.pick_child(dispute_id, False)
            else:
                first = 2 * current.index if current.level == 1 else current.index
                move = one_step_move(current, honest, first, 0, rows[0], roots)
                send(suite, actors["watcher"], move)
    final = state(suite, dispute_id)
    assert final.phase == "provider_won"
    bond = suite.params.challenge_bond
    assert _owed(suite, actors["p1"]) == bond // 2
    assert _owed(suite, suite.treasury) == bond - bond // 2
    assert _owed(suite, actors["watcher"]) == 0
    assert suite.market.request_status(request_id) == POSTED
    advance(suite.params.window)
    finalise(suite, batch_id, batch, request_id, actors["requester"])
    assert suite.market.request_status(request_id) == FINALISED


def test_silent_challenger_loses_and_the_result_still_finalises(env, cnn) -> None:
    suite, actors, x = env
    request_id = _claimed_request(suite, actors, x[1])
    result, honest = honest_result(cnn, request_id, x[1])
    batch_id, batch = post(suite, actors["p1"], [result])
    dispute_id = challenge(suite, actors["watcher"], batch_id, batch, request_id)
    record = play(suite, dispute_id, provider=honest, challenger=None, output=result.output)
    assert record.winner == actors["p1"] and record.moves == [
        "challenge",
        "reveal_roots",
        "timeout",
    ]
    advance(suite.params.window)
    finalise(suite, batch_id, batch, request_id, actors["requester"])


def test_a_second_honest_challenger_is_not_shielded_by_a_losing_accomplice(env, cnn) -> None:
    suite, actors, x = env
    request_id = _claimed_request(suite, actors, x[2])
    trace = cnn.trace(x[2][None])
    values = [v[0].copy() for v in trace.values]
    values[5][0] += 5
    liar = TraceCommitments(cnn, values)
    honest = TraceCommitments(cnn, [v[0] for v in trace.values])
    posted = PostedResult(request_id, liar.trace_root, output_bytes(values[-1]))
    batch_id, batch = post(suite, actors["p1"], [posted])
    accomplice = boa.env.generate_address("accomplice")
    suite.fund(accomplice)
    first = challenge(suite, accomplice, batch_id, batch, request_id)
    second = challenge(suite, actors["watcher"], batch_id, batch, request_id)
    play(suite, first, provider=liar, challenger=None, output=posted.output)
    assert state(suite, first).phase == "provider_won"
    advance(suite.params.window)
    with boa.reverts("DisputeOpen"):
        finalise(suite, batch_id, batch, request_id, actors["p1"])
    record = play(suite, second, provider=liar, challenger=honest, output=posted.output)
    assert record.winner == actors["watcher"]
    assert suite.market.request_status(request_id) == OVERTURNED


def test_claimed_and_silent_provider_loses_stake_at_the_deadline(env, cnn) -> None:
    suite, actors, x = env
    request_id = _claimed_request(suite, actors, x[0], ttl=100)
    with boa.reverts("NotExpired"):
        suite.market.expire(request_id)
    advance(100 + suite.params.window)
    with boa.reverts("NotExpired"):
        suite.market.expire(request_id)
    advance(suite.params.finalise_grace + 1)
    before = suite.market.providers(actors["p1"])
    suite.market.expire(request_id)
    after = suite.market.providers(actors["p1"])
    slashed = suite.params.claim_lock * suite.params.silence_slash_bps // 10_000
    assert before[0] + before[1] - (after[0] + after[1]) == slashed and after[1] == 0
    assert suite.market.request_status(request_id) == EXPIRED
    assert _owed(suite, actors["requester"]) == 10 * AIC + slashed // 2


def test_unclaimed_request_is_refunded_after_its_deadline(env) -> None:
    suite, actors, x = env
    request_id = suite.request(actors["requester"], "digits-cnn", x[0], ttl=50)
    advance(51)
    suite.market.expire(request_id)
    assert _owed(suite, actors["requester"]) == 10 * AIC
    with boa.reverts("AlreadySettled"):
        suite.market.expire(request_id)


def test_redundant_mode_slashes_the_one_liar_of_three(env, cnn) -> None:
    suite, actors, x = env
    request_id = suite.request(
        actors["requester"], "digits-cnn", x[0], mode=2, redundancy=3, max_fee=10 * AIC
    )
    for name in ("p1", "p2", "p3"):
        with boa.env.prank(actors[name]):
            suite.market.claim(request_id)
    result, _ = honest_result(cnn, request_id, x[0])
    wrong = bytes([result.output[0] ^ 1]) + result.output[1:]
    answers = {"p1": result.output, "p2": wrong, "p3": result.output}
    for name, output in answers.items():
        commitment = redundant_commitment(
            request_id=request_id,
            provider=actors[name],
            output_hash=keccak256(output),
            trace_root=result.trace_root,
            salt=name.encode().ljust(32, b"\0"),
        )
        with boa.env.prank(actors[name]):
            suite.redundant.commit(request_id, commitment)
    for name, output in answers.items():
        with boa.env.prank(actors[name]):
            suite.redundant.reveal(
                request_id, output, result.trace_root, name.encode().ljust(32, b"\0"), UNSIGNED
            )
    with boa.reverts("OutputMismatch"):
        suite.redundant.finalise(request_id, wrong)
    suite.redundant.finalise(request_id, result.output)
    assert suite.market.request_status(request_id) == FINALISED
    lock = suite.params.claim_lock
    liar = suite.market.providers(actors["p2"])
    assert liar[0] + liar[1] == 200 * AIC - lock
    share = lock // 2 // 2  # the winner half of the liar's lock, split by the two honest
    assert _owed(suite, actors["p1"]) == AIC + share == _owed(suite, actors["p3"])
    assert _owed(suite, actors["p2"]) == 0
    assert _owed(suite, actors["requester"]) == 10 * AIC - 2 * AIC - 2 * AIC


def test_redundant_without_majority_is_refunded(env, cnn) -> None:
    suite, actors, x = env
    request_id = suite.request(
        actors["requester"], "digits-cnn", x[1], mode=2, redundancy=3, max_fee=10 * AIC
    )
    for name in ("p1", "p2", "p3"):
        with boa.env.prank(actors[name]):
            suite.market.claim(request_id)
    salt = b"\x01" * 32
    for i, name in enumerate(("p1", "p2")):
        output, trace_root = bytes([i]), b"\x02" * 32
        commitment = redundant_commitment(
            request_id=request_id,
            provider=actors[name],
            output_hash=keccak256(output),
            trace_root=trace_root,
            salt=salt,
        )
        with boa.env.prank(actors[name]):
            suite.redundant.commit(request_id, commitment)
    advance(601)  # p3 never commits: the reveals never open
    with boa.reverts("NotCommitted"):
        suite.redundant.finalise(request_id, b"")
    suite.redundant.expire(request_id)
    assert suite.market.request_status(request_id) == EXPIRED
    silent = suite.params.claim_lock * suite.params.silence_slash_bps // 10_000
    assert _owed(suite, actors["requester"]) == 10 * AIC + silent // 2
    assert suite.market.providers(actors["p1"])[1] == 0


def test_callback_gets_the_output_and_cannot_block_finalisation(env, cnn) -> None:
    suite, actors, x = env
    consumer = load_boa(compile_source_file(CONSUMER), suite.market.address)
    for behaviour, expected in ((0, True), (1, False), (2, False)):
        consumer.set_behaviour(behaviour)  # 0 store, 1 revert, 2 burn all gas
        request_id = _claimed_request(
            suite, actors, x[0], callback=consumer.address, callback_gas=100_000
        )
        result, _ = honest_result(cnn, request_id, x[0])
        batch_id, batch = post(suite, actors["p1"], [result])
        advance(suite.params.window)
        finalise(suite, batch_id, batch, request_id, actors["watcher"])
        logs = [log for log in suite.market.get_logs() if type(log).__name__ == "CallbackResult"]
        assert logs[0].success is expected, behaviour
        assert suite.market.request_status(request_id) == FINALISED
        if expected:
            assert consumer.last_request() == request_id and consumer.last_output() == result.output
    # A finaliser that sends too little gas for the promised callback is refused.
    request_id = _claimed_request(
        suite, actors, x[1], callback=consumer.address, callback_gas=400_000
    )
    result, _ = honest_result(cnn, request_id, x[1])
    batch_id, batch = post(suite, actors["p1"], [result])
    advance(suite.params.window)
    args = batch.finalise_args(batch_id=batch_id, request_id=request_id)
    with boa.env.prank(actors["watcher"]), boa.reverts("InsufficientGas"):
        suite.market.finalise(*args, gas=300_000)
