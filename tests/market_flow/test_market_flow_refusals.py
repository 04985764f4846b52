"""Actions the market refuses, through the SDK: each fails before sending with the contract's
named revert on one line, and leaves the request and dispute exactly as they were — a result
posted for a request the poster did not claim, a challenge after the window, a double finalise,
and a dispute move out of turn."""

from __future__ import annotations

import time

import pytest
from flow_fixtures import (
    CHALLENGER,
    LIAR,
    PROVIDERS,
    REQUESTER,
    MarketNetwork,
    digits_sample,
    register_providers,
)

from aicommons.chain.errors import TransactionFailed
from aicommons.market.game import Move
from aicommons.market.inputs import prepare_sample

pytestmark = [pytest.mark.network, pytest.mark.slow]


def refused(action, reason: str) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(TransactionFailed) as caught:
        action()
    message = str(caught.value)
    assert reason in message and len(message.splitlines()) == 1, message
    return message


def test_refused_actions_are_named_and_change_nothing(market_net: MarketNetwork) -> None:
    honest_name = PROVIDERS[0]
    register_providers(market_net, honest_name, LIAR)
    honest, liar = market_net.client(honest_name), market_net.client(LIAR)
    requester, challenger = market_net.client(REQUESTER), market_net.client(CHALLENGER)
    package = honest.market.package_of(honest.registry.resolve("digits-cnn"))
    sample = digits_sample(10)
    trace = package.trace(prepare_sample(package, sample))

    first = requester.market.request("digits-cnn", sample, provider=honest.account.address)
    honest.market.claim(first.request_id)
    # A result for a request the poster did not claim.
    refused(
        lambda: liar.market.post_result(first.request_id, trace, package=package), "NotClaimant"
    )
    assert requester.market.status(first.request_id) == "claimed"
    assert not requester.market.posted_results(first.request_id)

    batch = honest.market.post_result(first.request_id, trace, package=package)
    second = requester.market.request("digits-cnn", sample, provider=honest.account.address)
    honest.market.claim(second.request_id)
    honest.market.post_result(second.request_id, trace, package=package)
    dispute = challenger.market.challenge(second.request_id)
    state = challenger.market.dispute_state(dispute)
    # A move out of turn: the challenger makes the provider's move.
    roots = Move("reveal_roots", (dispute, b"\x00" * 32 * 6, b""))
    refused(lambda: challenger.market.send_move(roots), "NotProvider")
    refused(lambda: challenger.market.timeout(dispute), "DeadlineNotReached")
    assert challenger.market.dispute_state(dispute) == state

    while time.time() <= batch.window_ends + 1:
        time.sleep(0.5)
    # A challenge after the window.
    bond_before = challenger.tokens.balance(challenger.account.address)
    refused(lambda: challenger.market.challenge(first.request_id), "WindowClosed")
    assert challenger.tokens.balance(challenger.account.address) == bond_before
    requester.market.finalise(first.request_id)
    # A second finalise.
    refused(lambda: requester.market.finalise(first.request_id), "AlreadySettled")
    finals = requester.market.events(
        names=("ResultFinalised",), filters={"request_id": first.request_id}
    )
    assert len(finals) == 1
