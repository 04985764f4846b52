"""Silence and redundancy with the daemons running: requests nobody answers (a silent optimistic
claimant, a redundant request not fully committed, a blob input that does not match its hash)
are expired by the watcher and refunded, the silent slashed; and a redundant request with one
liar of three settles on the honest majority, the liar slashed."""

from __future__ import annotations

import secrets
import time

import numpy as np
import pytest
from flow_fixtures import (
    AIC,
    LIAR,
    PROVIDERS,
    REQUESTER,
    Daemons,
    MarketNetwork,
    digits_sample,
    register_providers,
)

from aicommons.commit import keccak256
from aicommons.market.commitments import output_bytes
from aicommons.market.graph import graph_commitment
from aicommons.market.inputs import prepare_sample
from aicommons.sdk.client import Client

pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_unanswered_requests_are_expired_by_the_watcher(
    market_net: MarketNetwork, daemons: Daemons
) -> None:
    """Three requests left unanswered, each expired by the running watcher with no human action
    and the requester refunded: (a) an optimistic claim never answered, its claimant slashed;
    (b) a redundant request whose claimants did not all commit by the deadline, the silent one
    slashed, the committed one released (RedundantMode.expire); (c) a storage-blob input that
    does not hash to the request's input hash, which the serving provider refuses to claim."""
    register_providers(market_net, LIAR, PROVIDERS[1])
    liar = market_net.client(LIAR)
    requester = market_net.client(REQUESTER)
    daemons.watcher()
    honest = daemons.provider(PROVIDERS[1])
    lock, silence = market_net.params.claim_lock, market_net.params.silence_slash_bps
    silent = requester.market.request(
        "digits-cnn", digits_sample(6), provider=liar.account.address, ttl_s=3
    )
    liar.market.claim(silent.request_id)  # ... and then nothing
    undercommitted = requester.market.request(
        "digits-cnn", digits_sample(8), mode="redundant", providers=2, ttl_s=12
    )
    liar.market.claim(undercommitted.request_id)  # the honest daemon takes the other slot
    mismatched = _request_blob_with_wrong_hash(requester, ttl_s=6)
    for request_id in (silent.request_id, undercommitted.request_id, mismatched):
        info = requester.market.wait(request_id, timeout_s=150)
        assert info.status == "expired", daemons.lines()
        expired = requester.market.events(
            names=("RequestExpired",), filters={"request_id": request_id}
        )
        assert int(expired[0].args["refund"]) == info.max_fee
    slashed = {
        request_id: [
            (str(e.args["provider"]), int(e.args["amount"]))
            for e in requester.market.events(names=("Slashed",), filters={"request_id": request_id})
        ]
        for request_id in (silent.request_id, undercommitted.request_id, mismatched)
    }
    assert slashed[silent.request_id] == [(liar.account.address, lock * silence // 10_000)]
    assert slashed[undercommitted.request_id] == [(liar.account.address, lock * silence // 10_000)]
    committed = requester.market.events(
        names=("Committed",), filters={"request_id": undercommitted.request_id}
    )
    assert [str(e.args["provider"]) for e in committed] == [honest.address]
    assert slashed[mismatched] == []
    assert not requester.market.events(names=("Claimed",), filters={"request_id": mismatched})
    assert any(f"refusing request {mismatched}" in line for line in daemons.lines())
    assert sum("expired request" in line for line in daemons.lines()) >= 3


def _request_blob_with_wrong_hash(requester: Client, *, ttl_s: int) -> int:
    """A blob-input request straight to the contract whose input hash is not the blob's."""
    from web3.logs import DISCARD

    from aicommons.chain.transact import send_call
    from aicommons.sdk.registry import model_id_of

    version = requester.registry.resolve("digits-cnn")
    stored = requester.storage.put_bytes(bytes(64), name="input.bin")
    max_fee = version.fee + AIC
    market = requester.contract("ComputeMarket")
    requester.tokens.approve(market.address, max_fee)
    deadline = int(requester.w3.eth.get_block("latest")["timestamp"]) + ttl_s
    zero = "0x" + "00" * 20
    ref = (bytes.fromhex(stored.blob_id[2:]), keccak256(b"other bytes"), keccak256(b"a root"))
    call = market.functions.request(
        model_id_of("digits-cnn"), version.version_bytes, b"", ref, 1, 1, max_fee, deadline,
        zero, zero, 0,
    )  # fmt: skip
    receipt = send_call(requester.w3, requester.account, call, "requesting a bad blob")
    (event,) = market.events.RequestCreated().process_receipt(receipt, errors=DISCARD)
    return int(event["args"]["request_id"])


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
