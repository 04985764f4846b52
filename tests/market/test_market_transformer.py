"""The dispute game settles wrong transformer results: the v2 verifier chain recomputes every
element of every aicommons-int/2 layer exactly as the runtime's kernels and the pure-int
reference do, and a provider who corrupts a softmax row, a layer-norm row, a GELU element or an
attention product element is caught by an honest watcher and slashed, each one-step far below
the block gas limit (its gas is printed; `-s` shows it).
"""

from __future__ import annotations

import boa
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from market_fixtures import challenge, deploy_market_suite, play, post

from aicommons.market.commitments import PostedResult, input_bytes, output_bytes
from aicommons.market.dispute import TraceCommitments
from aicommons.market.errors import MarketError
from aicommons.market.gasbench import synthetic_token_ids as token_ids
from aicommons.market.gasbench import synthetic_transformer_package as transformer_package
from aicommons.market.graph import graph_commitment
from aicommons.market.inputs import prepare_sample, sample_from_bytes

BLOCK_GAS_LIMIT = 30_000_000
OVERTURNED = 6
REASON_ONE_STEP = 1


@pytest.fixture(scope="module")
def world():
    """The market suite with the small transformer published, a provider, a watcher."""
    with boa.env.anchor():
        suite = deploy_market_suite()
        package = transformer_package()
        suite.publish(package, "mini-bert")
        provider = suite.provider("p1", ["mini-bert"])
        requester, watcher = (boa.env.generate_address(name) for name in ("req", "watcher"))
        suite.fund(requester)
        suite.fund(watcher)
        yield suite, package, provider, requester, watcher


@pytest.fixture
def env(world):
    with boa.env.anchor():
        yield world


def _recompute(suite, commitments: TraceCommitments, layer: int, row: int, element: int):
    args = commitments.one_step(layer, row, element)
    head = suite.game.verifier()
    assert head == suite.attention_verifier.address
    target = {
        v.address: v for v in (suite.verifier, suite.transformer_verifier, suite.attention_verifier)
    }[suite.attention_verifier.route(args.spec.op)]
    context = (
        commitments.trace_root,
        len(commitments.layer_roots),
        commitments.package.weights_root,
        commitments.graph.header.tensor_count,
    )
    got = target.recompute(
        context,
        args.spec.as_abi(),
        row,
        element,
        [arg.as_abi() for arg in args.inputs],
        [arg.as_abi() for arg in args.tensors],
    )
    return got, args.value


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_v2_layer_verifies_like_the_kernels_and_the_reference(env, seed: int) -> None:
    suite, *_ = env
    rng = np.random.default_rng(seed)
    package = transformer_package(int(rng.integers(0, 2**31)))
    ids = token_ids(rng)
    trace = package.trace(ids[None])
    reference = package.run_reference(ids[None])
    np.testing.assert_array_equal(trace.values[-1], reference)
    commitments = TraceCommitments.from_trace(package, trace)
    for layer, spec in enumerate(commitments.graph.specs, start=1):
        assert suite.attention_verifier.supported(spec.as_abi()), package.layers[layer - 1].name
        out = trace.values[layer][0].reshape(spec.out_rows, -1)
        row, element = int(rng.integers(0, out.shape[0])), int(rng.integers(0, out.shape[1]))
        got, value = _recompute(suite, commitments, layer, row, element)
        assert value == int(out[row, element])
        assert got == (True, value), (package.layers[layer - 1].name, row, element)


def test_wrong_rows_are_refused_and_out_of_range_ids_are_unsupported(env) -> None:
    suite, package, *_ = env
    ids = token_ids(np.random.default_rng(3))
    commitments = TraceCommitments.from_trace(package, package.trace(ids[None]))
    names = [layer.name for layer in package.layers]
    probs = names.index("probs") + 1
    args = commitments.one_step(probs, 1, 5)
    data = bytearray(args.inputs[0].data)
    data[7] ^= 1
    bad = args.inputs[0].__class__(**{**args.inputs[0].__dict__, "data": bytes(data)})
    context = (
        commitments.trace_root,
        len(commitments.layer_roots),
        package.weights_root,
        commitments.graph.header.tensor_count,
    )
    with boa.reverts("InputRowsMismatch"):
        suite.attention_verifier.recompute(
            context, args.spec.as_abi(), 1, 5, [bad.as_abi(), args.inputs[1].as_abi()], []
        )
    # The embed of a (hypothetical) id outside the table: no correct output, challenger wins.
    spec = commitments.graph.specs[names.index("emb")]
    small = spec.__class__(**{**spec.__dict__, "attrs": (4, 1, *spec.attrs[2:])})
    assert suite.attention_verifier.supported(small.as_abi())
    args = commitments.one_step(names.index("emb") + 1, 0, 0)
    if int(ids[0]) >= 1:
        tensors = [arg.as_abi() for arg in args.tensors]
        got = suite.transformer_verifier.recompute(
            context, small.as_abi(), 0, 0, [args.inputs[0].as_abi()], tensors
        )
        assert got == (False, 0)


def _corrupt_row(values: list[np.ndarray], leaf: int, row: int) -> None:
    flat = values[leaf].reshape(values[leaf].shape[0], -1)
    flat[row] = np.roll(flat[row], 1)  # a plausible row: the same values, shifted
    if np.array_equal(np.roll(flat[row], -1), flat[row]):
        flat[row, 0] ^= 1


def _corrupt_element(values: list[np.ndarray], leaf: int, row: int, element: int) -> None:
    flat = values[leaf].reshape(values[leaf].shape[0], -1)
    flat[row, element] ^= 1


@pytest.mark.parametrize(
    ("what", "layer_name", "corrupt"),
    [
        ("softmax row", "probs", lambda v, leaf: _corrupt_row(v, leaf, 1)),
        ("layernorm row", "ln1", lambda v, leaf: _corrupt_row(v, leaf, 3)),
        ("GELU element", "act", lambda v, leaf: _corrupt_element(v, leaf, 2, 17)),
        ("attention QK^T element", "scores", lambda v, leaf: _corrupt_element(v, leaf, 1, 9)),
        ("attention PV element", "ctx", lambda v, leaf: _corrupt_element(v, leaf, 0, 20)),
    ],
)
def test_corrupted_transformer_results_are_slashed(env, what, layer_name, corrupt) -> None:
    suite, package, provider, requester, watcher = env
    ids = token_ids(np.random.default_rng(11))
    request_id = suite.request(requester, "mini-bert", ids)
    with boa.env.prank(provider):
        suite.market.claim(request_id)
    trace = package.trace(ids[None])
    honest = TraceCommitments.from_trace(package, trace)
    values = [value[0].copy() for value in trace.values]
    leaf = [layer.name for layer in package.layers].index(layer_name) + 1
    corrupt(values, leaf)
    liar = TraceCommitments(package, values, honest.graph)
    posted = PostedResult(request_id, liar.trace_root, output_bytes(values[-1]))
    batch_id, batch = post(suite, provider, [posted])
    before = suite.market.providers(provider)
    dispute_id = challenge(suite, watcher, batch_id, batch, request_id)
    record = play(suite, dispute_id, provider=liar, challenger=honest, output=posted.output)
    print(f"\n{what}: one-step {record.one_step_gas:,} gas (block limit {BLOCK_GAS_LIMIT:,})")
    assert record.winner == watcher, record
    assert record.moves[-1] == "one_step"
    assert record.resolved.reason == REASON_ONE_STEP and record.resolved.layer == leaf
    assert record.resolved.committed != record.resolved.correct
    assert suite.market.request_status(request_id) == OVERTURNED
    after = suite.market.providers(provider)
    assert after[0] + after[1] == before[0] + before[1] - suite.params.claim_lock
    assert 0 < record.one_step_gas < BLOCK_GAS_LIMIT


def test_honest_transformer_result_survives_a_challenge(env) -> None:
    suite, package, provider, requester, watcher = env
    ids = token_ids(np.random.default_rng(12))
    assert len(input_bytes(ids)) == 4 * len(ids)  # int32 token ids in calldata
    request_id = suite.request(requester, "mini-bert", ids)
    with boa.env.prank(provider):
        suite.market.claim(request_id)
    trace = package.trace(ids[None])
    honest = TraceCommitments.from_trace(package, trace)
    # A challenger who believes the first softmax row differs (a lying challenger).
    values = [value[0].copy() for value in trace.values]
    leaf = [layer.name for layer in package.layers].index("probs") + 1
    _corrupt_row(values, leaf, 0)
    wrong = TraceCommitments(package, values, honest.graph)
    posted = PostedResult(request_id, honest.trace_root, output_bytes(trace.values[-1][0]))
    batch_id, batch = post(suite, provider, [posted])
    dispute_id = challenge(suite, watcher, batch_id, batch, request_id)
    record = play(suite, dispute_id, provider=honest, challenger=wrong, output=posted.output)
    assert record.winner == provider, record
    assert graph_commitment(package).header.input_bytes == 4


def test_token_id_requests_round_trip_through_calldata_bytes() -> None:
    package = transformer_package()
    ids = token_ids(np.random.default_rng(4))
    data = input_bytes(ids)
    assert data == b"".join(int(v).to_bytes(4, "big", signed=True) for v in ids)
    back = sample_from_bytes(package, data)
    assert back.dtype == np.int32 and np.array_equal(back[0], ids)
    assert np.array_equal(prepare_sample(package, ids.tolist())[0], ids)
    with pytest.raises(MarketError, match="does not fit the model's 8 int32 values"):
        sample_from_bytes(package, data[:-1])


def test_int16_embedding_outputs_read_back_as_values() -> None:
    from aicommons.sdk.market import output_values

    embedding = np.array([-32768, -1, 0, 1, 32767], np.int16)
    assert output_values(output_bytes(embedding), 2) == embedding.tolist()
