"""all-MiniLM-L6-v2 through the compute market, end to end in titanoboa: far too large for the
on-chain executor, it is published with its graph root, a sentence's embedding is requested with
its token ids in calldata, served, finalised with the runtime's exact bytes as the receipt, and
a provider that corrupts one attention softmax row is disputed down to one element and slashed.

Slow: quantising the real checkpoint takes minutes (the import is timport's, tested there).
"""

from __future__ import annotations

import boa
import numpy as np
import pytest
from market_fixtures import advance, challenge, deploy_market_suite, finalise, play, post

from aicommons.market.commitments import PostedResult, output_bytes
from aicommons.market.dispute import TraceCommitments
from aicommons.market.graph import graph_commitment

pytestmark = pytest.mark.slow

BLOCK_GAS_LIMIT = 30_000_000
OVERTURNED, FINALISED = 6, 5


@pytest.fixture(scope="module")
def minilm(minilm_package):
    from aicommons.runtime.text import TextModel

    return minilm_package, TextModel(minilm_package)


@pytest.fixture(scope="module")
def world(minilm):
    package, model = minilm
    with boa.env.anchor():
        suite = deploy_market_suite()
        suite.publish(package, "all-minilm-l6-v2")
        provider = suite.provider("p1", ["all-minilm-l6-v2"])
        requester, watcher = (boa.env.generate_address(name) for name in ("req", "watcher"))
        suite.fund(requester)
        suite.fund(watcher)
        ids = model.encode(["A verifiable public good: semantic search on chain."]).ids[0]
        yield suite, package, provider, requester, watcher, ids


@pytest.fixture
def env(world):
    with boa.env.anchor():
        yield world


def _claimed(suite, provider, requester, ids) -> int:
    request_id = suite.request(requester, "all-minilm-l6-v2", ids)
    with boa.env.prank(provider):
        suite.market.claim(request_id)
    return request_id


def test_minilm_is_disputable_and_an_embedding_request_is_served(env, minilm) -> None:
    suite, package, provider, requester, watcher, ids = env
    _, model = minilm
    graph = graph_commitment(package)
    assert graph.header.input_bytes == 4 and graph.header.input_shape == (128,)
    assert len(graph.specs) == len(package.layers) > 100
    request_id = _claimed(suite, provider, requester, ids)
    trace = package.trace(ids[None])
    honest = TraceCommitments.from_trace(package, trace)
    posted = PostedResult(request_id, honest.trace_root, output_bytes(trace.values[-1][0]))
    batch_id, batch = post(suite, provider, [posted])
    advance(suite.params.window)
    finalise(suite, batch_id, batch, request_id, watcher)
    receipt = [log for log in suite.market.get_logs() if type(log).__name__ == "ResultFinalised"]
    assert suite.market.request_status(request_id) == FINALISED
    expected = model.embed(["A verifiable public good: semantic search on chain."]).values[0]
    assert receipt[0].output == output_bytes(expected)


def test_a_corrupted_softmax_row_of_minilm_is_slashed(env) -> None:
    suite, package, provider, requester, watcher, ids = env
    request_id = _claimed(suite, provider, requester, ids)
    trace = package.trace(ids[None])
    honest = TraceCommitments.from_trace(package, trace)
    softmax = [i for i, layer in enumerate(package.layers, start=1) if layer.op == "softmax"]
    leaf = softmax[len(softmax) // 2]  # a middle block's attention probabilities
    values = [value[0].copy() for value in trace.values]
    head_rows = values[leaf].reshape(values[leaf].shape[0], -1)
    head_rows[5] = np.roll(head_rows[5], 1)  # head 5's rows shifted by one query position
    liar = TraceCommitments(package, values, honest.graph)
    posted = PostedResult(request_id, liar.trace_root, output_bytes(values[-1]))
    batch_id, batch = post(suite, provider, [posted])
    before = suite.market.providers(provider)
    dispute_id = challenge(suite, watcher, batch_id, batch, request_id)
    record = play(suite, dispute_id, provider=liar, challenger=honest, output=posted.output)
    print(f"\nMiniLM softmax row: one-step {record.one_step_gas:,} gas, {record.rounds} rounds")
    assert record.winner == watcher, record
    assert record.resolved.layer == leaf and record.resolved.reason == 1
    assert suite.market.request_status(request_id) == OVERTURNED
    after = suite.market.providers(provider)
    assert after[0] + after[1] == before[0] + before[1] - suite.params.claim_lock
    assert record.one_step_gas < BLOCK_GAS_LIMIT
