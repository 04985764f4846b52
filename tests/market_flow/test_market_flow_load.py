"""Load: 200 requests served by 3 provider daemons and watched by 1 watcher, all finalised, with
results posted in batches (fewer posts than requests) and every escrow released."""

from __future__ import annotations

import time

import numpy as np
import pytest
from flow_fixtures import PROVIDERS, REQUESTER, Daemons, MarketNetwork, register_providers

from aicommons.demo import DIGITS_DATA

pytestmark = [pytest.mark.network, pytest.mark.slow]

REQUESTS = 200


def test_two_hundred_requests_three_providers_one_watcher(
    market_net: MarketNetwork, daemons: Daemons
) -> None:
    register_providers(market_net, *PROVIDERS)
    for name in PROVIDERS:
        daemons.provider(name)
    watcher = daemons.watcher()
    requester = market_net.client(REQUESTER)
    with np.load(DIGITS_DATA) as data:
        samples = data["x_test"][:REQUESTS].reshape(REQUESTS, 1, 8, 8)
    started = time.monotonic()
    tickets = requester.market.request_many("digits-cnn", list(samples), ttl_s=600)
    requested = time.monotonic() - started
    ids = {ticket.request_id for ticket in tickets}
    deadline = time.monotonic() + 600
    finalised: set[int] = set()
    while time.monotonic() < deadline and finalised != ids:
        events = requester.market.events(names=("ResultFinalised",))
        finalised = {int(e.args["request_id"]) for e in events} & ids
        time.sleep(1.0)
    elapsed = time.monotonic() - started
    assert finalised == ids, (len(finalised), daemons.lines()[-40:])
    posts = requester.market.events(names=("BatchPosted",))
    batched = [e for e in posts if set(map(int, e.args["request_ids"])) & ids]
    assert len(batched) < REQUESTS / 2, len(batched)  # many results per post
    providers = {str(e.args["provider"]).lower() for e in batched}
    assert len(providers) >= 2, providers  # the work was shared
    assert watcher.stats["checked"] >= REQUESTS and watcher.stats["disputed"] == 0
    print(
        f"{REQUESTS} requests made in {requested:.0f} s, all finalised in {elapsed:.0f} s "
        f"over {len(batched)} batches"
    )
