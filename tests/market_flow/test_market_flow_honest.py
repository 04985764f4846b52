"""The honest optimistic flow through the SDK with the daemons on threads: a request is
claimed, posted, watched, finalised after its window, and its receipt verifies by name."""

from __future__ import annotations

import pytest
from flow_fixtures import (
    PROVIDERS,
    REQUESTER,
    Daemons,
    MarketNetwork,
    digits_sample,
    register_providers,
)

from aicommons.sdk.verify import MARKET_CHECK_NAMES

pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_honest_optimistic_request_finalises_and_verifies(
    market_net: MarketNetwork, daemons: Daemons
) -> None:
    register_providers(market_net, PROVIDERS[0])
    daemons.provider(PROVIDERS[0])
    watcher = daemons.watcher()
    requester = market_net.client(REQUESTER)
    ticket = requester.market.request("digits-cnn", digits_sample(0))
    info = requester.market.wait(ticket.request_id, timeout_s=120)
    assert info.status == "finalised", daemons.lines()
    assert info.provider is not None and len(info.output or []) == 10
    receipt = requester.market.receipt(ticket)
    assert not receipt.pending and receipt.signature
    report = requester.verify(receipt)
    assert [c.name for c in report.checks] == list(MARKET_CHECK_NAMES)
    assert report.ok, report.to_json()
    assert watcher.stats["checked"] >= 1 and watcher.stats["disputed"] == 0
