"""Wrong results are caught by the running watcher with no human action, and right ones stand.

A dishonest provider posts, through `client.market.post_result`, a `Trace` with (a) a wrong
final output, (b) one wrong element of a middle layer, (c) a wrong trace root alone, or (d) a
wrong output after which it never reveals anything; each is disputed by the watcher daemon and
overturned (provider slashed, requester refunded). A dishonest challenger who disputes a correct
result loses its bond to the honest provider daemon.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from flow_fixtures import (
    CHALLENGER,
    LIAR,
    PROVIDERS,
    REQUESTER,
    WATCHER,
    Daemons,
    MarketNetwork,
    digits_sample,
    register_providers,
)

from aicommons.market.dispute import TraceCommitments
from aicommons.market.graph import graph_commitment
from aicommons.market.inputs import prepare_sample
from aicommons.market.play import chain_now, challenger_turn, output_of, provider_turn, unpack_roots
from aicommons.runtime import Trace, trace_root
from aicommons.sdk.client import Client

pytestmark = [pytest.mark.network, pytest.mark.slow]

HONEST = PROVIDERS[0]


def corrupt(trace: Trace, leaf: int, *, element: int = 0) -> Trace:
    """`trace` with one element of value `leaf` (sample 0) changed, roots recomputed."""
    values = [np.array(value, copy=True) for value in trace.values]
    flat = values[leaf].reshape(-1)
    info = np.iinfo(flat.dtype)
    flat[element] = flat[element] + 1 if flat[element] < info.max else flat[element] - 1
    roots = (trace_root([value[0] for value in values]),)
    return Trace(trace.names, tuple(values), roots)


def play_provider(
    client: Client,
    request_id: int,
    mine: TraceCommitments,
    stop: threading.Event,
    errors: list[str],
    lock: threading.Lock,
) -> None:
    """A provider that defends `request_id` from its (possibly corrupted) trace until `stop`;
    `lock` serialises its transactions with the other threads of the same account."""
    while not stop.is_set():
        try:
            challenges = client.market.events(
                names=("Challenged",), filters={"request_id": request_id}
            )
            for event in challenges:
                state = client.market.dispute_state(int(event.args["dispute_id"]))
                with lock:
                    provider_turn(
                        client, state, mine, output=output_of(mine), now=chain_now(client)
                    )
        except Exception as exc:  # a liar's reveal may revert; it keeps trying, like a daemon
            errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
        stop.wait(0.3)


def overturned_correctly(net: MarketNetwork, request_id: int, liar: str) -> list[str]:
    """What is wrong with the aftermath of an overturned request (empty when all is right)."""
    client = net.client(None)
    problems = []
    if client.market.status(request_id) != "overturned":
        problems.append(f"status {client.market.status(request_id)}")
    slashed = client.market.events(names=("Slashed",), filters={"request_id": request_id})
    if [str(e.args["provider"]).lower() for e in slashed] != [liar.lower()]:
        problems.append("the liar was not slashed exactly once")
    resolved = client.market.events(names=("DisputeResolved",), filters={"request_id": request_id})
    watcher = net.client(WATCHER).account.address.lower()
    if not resolved or str(resolved[0].args["winner"]).lower() != watcher:
        problems.append("the watcher did not win the dispute")
    refunds = client.market.events(
        names=("Credited",), filters={"account": net.client(REQUESTER).account.address}
    )
    info = client.market.request_info(request_id)
    if not any(int(e.args["amount"]) == info.max_fee for e in refunds):
        problems.append("the requester was not refunded its escrow")
    return problems


def test_watcher_overturns_every_kind_of_wrong_result(
    market_net: MarketNetwork, daemons: Daemons
) -> None:
    register_providers(market_net, LIAR)
    liar = market_net.client(LIAR)
    requester = market_net.client(REQUESTER)
    package = liar.market.package_of(liar.registry.resolve("digits-cnn"))
    graph = graph_commitment(package)
    daemons.watcher()
    cases: dict[str, tuple[int, TraceCommitments, bool]] = {}
    stop, errors, players, lock = threading.Event(), [], [], threading.Lock()
    for name, sample_index in (("output", 1), ("middle", 2), ("root", 3), ("silent", 4)):
        ticket = requester.market.request(
            "digits-cnn", digits_sample(sample_index), provider=liar.account.address
        )
        with lock:
            liar.market.claim(ticket.request_id)
        honest = package.trace(prepare_sample(package, digits_sample(sample_index)))
        if name == "output":
            bad = corrupt(honest, graph.header.output_leaf, element=3)
        elif name == "middle":
            bad = corrupt(honest, 2, element=5)  # the pool's output; later layers untouched
        elif name == "root":
            bad = replace(honest, roots=(bytes(31) + b"\x01",))
        else:
            bad = corrupt(honest, graph.header.output_leaf, element=0)
        mine = TraceCommitments(package, [v[0] for v in bad.values], graph)
        if name != "silent":  # the liar defends from the moment it posts, like a daemon
            player = threading.Thread(
                target=play_provider,
                args=(liar, ticket.request_id, mine, stop, errors, lock),
                daemon=True,
            )
            player.start()
            players.append(player)
        with lock:
            liar.market.post_result(ticket.request_id, bad, package=package)
        cases[name] = (ticket.request_id, mine, name != "silent")
    try:  # a generous wait: the shared test machine runs many suites at once
        deadline = time.monotonic() + 300
        pending = dict(cases)
        while pending and time.monotonic() < deadline:
            for name, (request_id, _, _) in list(pending.items()):
                if requester.market.status(request_id) in ("overturned", "finalised", "expired"):
                    del pending[name]
            time.sleep(0.5)
    finally:
        stop.set()
        for player in players:
            player.join(timeout=30)
    assert not pending, (pending, daemons.lines())
    for name, (request_id, _, _) in cases.items():
        problems = overturned_correctly(market_net, request_id, liar.account.address)
        assert not problems, (name, problems, daemons.lines())
    reasons = {
        name: int(
            requester.market.events(names=("DisputeResolved",), filters={"request_id": request_id})[
                0
            ].args["reason"]
        )
        for name, (request_id, _, _) in cases.items()
    }
    # The one-step decides what the liar defended; silence (and an unopenable root) time out.
    assert reasons == {"output": 1, "middle": 1, "root": 2, "silent": 2}, (
        reasons,
        errors,
        daemons.lines(),
    )


def test_a_dishonest_challenger_loses_its_bond(market_net: MarketNetwork, daemons: Daemons) -> None:
    register_providers(market_net, HONEST)
    daemons.provider(HONEST)
    challenger = market_net.client(CHALLENGER)
    requester = market_net.client(REQUESTER)
    ticket = requester.market.request(
        "digits-cnn", digits_sample(5), provider=market_net.client(HONEST).account.address
    )
    deadline = time.monotonic() + 60
    while not requester.market.posted_results(ticket.request_id) and time.monotonic() < deadline:
        time.sleep(0.3)
    posted = requester.market.posted_results(ticket.request_id)
    assert posted, daemons.lines()
    dispute = challenger.market.challenge(ticket.request_id, posted=posted[0])
    # The challenger "believes" a trace with one wrong element of layer 3 and plays it out.
    package = challenger.market.package_of(challenger.registry.resolve("digits-cnn"))
    belief = corrupt(package.trace(prepare_sample(package, digits_sample(5))), 3, element=7)
    mine = TraceCommitments(package, [v[0] for v in belief.values], graph_commitment(package))
    deadline = time.monotonic() + 120
    state = challenger.market.dispute_state(dispute)
    while state.active and time.monotonic() < deadline:
        seen = challenger.market.events(
            names=("RootsRevealed", "RowsRevealed"), filters={"dispute_id": dispute}
        )
        roots = [e for e in seen if e.name == "RootsRevealed"]
        rows = [e for e in seen if e.name == "RowsRevealed"]
        challenger_turn(
            challenger,
            state,
            mine,
            revealed_roots=unpack_roots(bytes(roots[-1].args["layer_roots"])) if roots else None,
            revealed_rows=[bytes(r) for r in rows[-1].args["rows"]] if rows else None,
            now=chain_now(challenger),
        )
        time.sleep(0.3)
        state = challenger.market.dispute_state(dispute)
    assert state.phase == "provider_won", state
    resolved = challenger.market.events(names=("DisputeResolved",), filters={"dispute_id": dispute})
    assert int(resolved[0].args["reason"]) == 1  # decided by the one-step, not a timeout
    assert requester.market.wait(ticket.request_id, timeout_s=60).status == "finalised"
    credited = challenger.market.events(
        names=("Credited",), filters={"account": challenger.account.address}
    )
    assert not credited  # the bond is gone: half to the provider, half to the treasury
