"""all-MiniLM-L6-v2 through the compute market on the devnet with a storage node: published
with its graph root, an honest provider daemon serves a sentence's embedding (requested as text,
tokenised by the SDK with the package's tokenizer; a long one through `aic request --text`, its
cut reported) which finalises and verifies to the runtime's exact bytes; a provider daemon that
corrupts one attention softmax row of its trace is disputed by the watcher daemon, slashed and
its request overturned.

Slow: quantising the checkpoint (session fixture) and a dispute over 100+ layers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from flow_fixtures import AIC, REQUESTER, WATCHER, Daemons, MarketNetwork

from aicommons.chain.accounts import load_account
from aicommons.market.provider import Provider
from aicommons.runtime import ModelPackage, Trace, trace_root
from aicommons.runtime.text import TextModel
from aicommons.sdk.types import Attribution
from aicommons.sdk.verify import MARKET_CHECK_NAMES

pytestmark = [pytest.mark.network, pytest.mark.slow]

MODEL = "all-minilm-l6-v2"
HONEST, LIAR = "dev8", "dev9"
TEXT = "A verifiable public good: semantic search on chain."


def middle_softmax(package: ModelPackage) -> int:
    """The trace leaf of a middle block's attention probabilities."""
    softmax = [i for i, layer in enumerate(package.layers, start=1) if layer.op == "softmax"]
    return softmax[len(softmax) // 2]


def corrupt_softmax(package: ModelPackage, trace: Trace) -> Trace:
    """`trace` with head 5's attention rows of a middle block shifted by one query position
    (the final output untouched), its root recomputed."""
    leaf = middle_softmax(package)
    values = [np.array(value, copy=True) for value in trace.values]
    rows = values[leaf][0].reshape(values[leaf].shape[1], -1)
    rows[5] = np.roll(rows[5], 1)
    return Trace(trace.names, tuple(values), (trace_root([value[0] for value in values]),))


class SoftmaxLiar(Provider):
    """A provider daemon that posts and defends a trace with one corrupted softmax row."""

    def trace(self, job) -> Trace:  # noqa: ANN001 - the daemon's private job record
        return corrupt_softmax(self.served[job.version_id].package, super().trace(job))


@pytest.fixture(scope="module")
def minilm_net(
    market_net: MarketNetwork, minilm_package: ModelPackage, minilm_package_file
) -> Iterator[tuple[MarketNetwork, ModelPackage]]:
    patch = pytest.MonkeyPatch()  # (`market_home` points AIC_HOME there for tests only)
    patch.setenv("AIC_HOME", str(market_net.home))
    try:
        admin = market_net.client()
        started = time.monotonic()
        admin.registry.publish(
            minilm_package_file,
            model=MODEL,
            licence="Apache-2.0",
            attribution=[Attribution(admin.account.address, "author", 10_000)],
            fee=AIC // 100,
        )
        print(f"\npublished MiniLM in {time.monotonic() - started:.1f} s")
        for name in (HONEST, LIAR):
            admin.tokens.transfer(load_account(name, None).address, tokens=1_000 * AIC)
            market_net.client(name).market.register_provider(
                stake=200 * AIC, models=[MODEL], price=AIC // 100
            )
    finally:
        patch.undo()
    yield market_net, minilm_package


def test_a_minilm_embedding_is_served_finalised_and_verified(
    minilm_net: tuple[MarketNetwork, ModelPackage], daemons: Daemons
) -> None:
    net, package = minilm_net
    started = time.monotonic()
    daemons.provider(HONEST, (MODEL,))
    watcher = daemons.watcher()
    requester = net.client(REQUESTER)
    ticket = requester.market.request(MODEL, TEXT, provider=net.client(HONEST).account.address)
    model = TextModel(package)
    assert ticket.truncated is None
    # The ticket (and the pending receipt kept from it) holds the request's bytes as signed
    # bytes: four big-endian bytes per token id, as the receipt rebuilt from the chain does.
    ids = model.encode([TEXT]).ids[0]
    assert np.array(ticket.input, np.int8).tobytes() == ids.astype(">i4").tobytes()
    info = requester.market.wait(ticket.request_id, timeout_s=300)
    assert info.status == "finalised", daemons.lines()
    receipt = requester.market.receipt(ticket)
    assert receipt.input == ticket.input
    report = requester.verify(receipt)
    assert [c.name for c in report.checks] == list(MARKET_CHECK_NAMES)
    assert report.ok, report.to_json()
    assert receipt.output == model.embed([TEXT]).values[0].tolist()
    assert watcher.stats["checked"] >= 1 and watcher.stats["disputed"] == 0
    print(f"\nMiniLM honest request: {time.monotonic() - started:.1f} s")
    # The command line: a text longer than max_length is requested, the cut noted on stderr.
    long_text = " ".join([TEXT] * 20)
    made = subprocess.run(
        [
            str(Path(sys.executable).parent / "aic"),
            "request",
            MODEL,
            "--text",
            long_text,
            "--provider",
            net.client(HONEST).account.address,
            "--account",
            REQUESTER,
            "--rpc",
            net.rpc_url,
            "--node",
            net.storage_url,
            "--json",
        ],
        env={**os.environ, "AIC_HOME": str(net.home)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["truncated"] is True
    cut = model.encode([long_text]).truncated[0]
    assert f"has {cut.tokens} tokens; truncated to the first 128" in made.stderr, made.stderr


def test_a_corrupted_minilm_softmax_row_is_slashed_on_the_devnet(
    minilm_net: tuple[MarketNetwork, ModelPackage], daemons: Daemons
) -> None:
    net, package = minilm_net
    started = time.monotonic()
    liar = net.client(LIAR).account.address
    daemons.provider(LIAR, (MODEL,), kind=SoftmaxLiar)
    daemons.watcher()
    requester = net.client(REQUESTER)
    ticket = requester.market.request(MODEL, TEXT, provider=liar)
    info = requester.market.wait(ticket.request_id, timeout_s=900)
    assert info.status == "overturned", daemons.lines()
    slashed = requester.market.events(names=("Slashed",), filters={"request_id": ticket.request_id})
    assert [str(e.args["provider"]).lower() for e in slashed] == [liar.lower()]
    resolved = requester.market.events(
        names=("DisputeResolved",), filters={"request_id": ticket.request_id}
    )
    assert str(resolved[0].args["winner"]).lower() == net.client(WATCHER).account.address.lower()
    assert int(resolved[0].args["reason"]) == 1, daemons.lines()  # the one-step decided it
    assert int(resolved[0].args["layer"]) == middle_softmax(package)
    print(f"\nMiniLM softmax dispute on the devnet: {time.monotonic() - started:.1f} s")
