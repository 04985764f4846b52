"""Silence and redundancy with the daemons running: a provider that claims and never answers is
slashed at its deadline (the watcher expires the request, the requester is refunded), and a
redundant request with one liar of three settles on the honest majority, the liar slashed."""

from __future__ import annotations

import secrets
import time

import numpy as np
import pytest
from flow_fixtures import (
    LIAR,
    PROVIDERS,
    REQUESTER,
    Daemons,
    MarketNetwork,
    digits_sample,
    register_providers,
)

from aicommons.market.commitments import output_bytes
from aicommons.market.graph import graph_commitment
from aicommons.market.inputs import prepare_sample

pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_a_silent_claimant_is_slashed_and_the_requester_refunded(
    market_net: MarketNetwork, daemons: Daemons
) -> None:
    register_providers(market_net, LIAR)
    liar = market_net.client(LIAR)
    requester = market_net.client(REQUESTER)
    daemons.watcher()
    before = liar.market.provider()
    ticket = requester.market.request(
        "digits-cnn", digits_sample(6), provider=liar.account.address, ttl_s=3
    )
    liar.market.claim(ticket.request_id)  # ... and then nothing
    info = requester.market.wait(ticket.request_id, timeout_s=120)
    assert info.status == "expired", daemons.lines()
    after = liar.market.provider()
    lock, silence = market_net.params.claim_lock, market_net.params.silence_slash_bps
    assert after.slashed - before.slashed == lock * silence // 10_000
    expired = requester.market.events(
        names=("RequestExpired",), filters={"request_id": ticket.request_id}
    )
    assert int(expired[0].args["refund"]) == ticket.max_fee
    assert any("expired request" in line for line in daemons.lines())


def test_redundant_mode_settles_on_the_majority_and_slashes_the_liar(
    market_net: MarketNetwork, daemons: Daemons
) -> None:
    honest = PROVIDERS[1:3]
    register_providers(market_net, LIAR, *honest)
    liar = market_net.client(LIAR)
    requester = market_net.client(REQUESTER)
    ticket = requester.market.request("digits-cnn", digits_sample(7), mode="redundant", providers=3)
    liar.market.claim(ticket.request_id)  # one slot for the liar, two for the honest daemons
    for name in honest:
        daemons.provider(name)
    package = liar.market.package_of(liar.registry.resolve("digits-cnn"))
    trace = package.trace(prepare_sample(package, digits_sample(7)))
    output_leaf = graph_commitment(package).header.output_leaf
    wrong = np.array(trace.values[output_leaf][0], copy=True)
    wrong[0] += 1
    bad_output, bad_root = output_bytes(wrong), secrets.token_bytes(32)
    salt = secrets.token_bytes(32)
    deadline = time.monotonic() + 120
    while liar.market.status(ticket.request_id) != "claimed" and time.monotonic() < deadline:
        time.sleep(0.3)
    liar.market.commit_result(ticket.request_id, output=bad_output, trace_root=bad_root, salt=salt)
    while not liar.market.reveal_ends(ticket.request_id) and time.monotonic() < deadline:
        time.sleep(0.3)
    liar.market.reveal_result(ticket.request_id, output=bad_output, trace_root=bad_root, salt=salt)
    info = requester.market.wait(ticket.request_id, timeout_s=120)
    assert info.status == "finalised", daemons.lines()
    assert output_bytes(np.asarray(trace.values[output_leaf][0])) != bad_output
    finalised = requester.market.events(
        names=("ResultFinalised",), filters={"request_id": ticket.request_id}
    )
    assert bytes(finalised[0].args["output"]) == output_bytes(
        np.asarray(trace.values[output_leaf][0])
    )
    slashed = requester.market.events(names=("Slashed",), filters={"request_id": ticket.request_id})
    assert [str(e.args["provider"]) for e in slashed] == [liar.account.address]
    assert int(slashed[0].args["amount"]) == market_net.params.claim_lock
    receipt = requester.market.receipt(ticket)
    assert receipt.mode == "redundant" and receipt.signature
    assert requester.verify(receipt).ok
