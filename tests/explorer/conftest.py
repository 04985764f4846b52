"""An in-process network for explorer tests: the devnet and a storage node on threads, the suite
deployed, the demo models published as `aic up` publishes them, and one paid inference.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn

from aicommons.chain.accounts import load_account
from aicommons.chain.devnet import DevnetServer
from aicommons.demo import DIGITS_DATA
from aicommons.sdk.client import Client
from aicommons.sdk.demo import publish_demo_models
from aicommons.sdk.deployment import deploy_suite
from aicommons.sdk.receipt import Receipt
from aicommons.storage.node import create_app, node_origins
from aicommons.storage.process import free_port, node_answers
from aicommons.storage.store import LocalStore


def serve_in_thread(app: object, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    """A uvicorn server for `app` on 127.0.0.1:`port`, on a daemon thread."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    return server, thread


@dataclass
class DemoNetwork:
    rpc_url: str
    storage_url: str
    home: Path
    receipt: Receipt

    def client(self, account: str | None = "dev0") -> Client:
        return Client(
            self.rpc_url,
            account=load_account(account, None) if account else None,
            storage_nodes=[self.storage_url],
        )


@pytest.fixture(scope="session")
def demo_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoNetwork]:
    home = tmp_path_factory.mktemp("aic-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("AIC_HOME", str(home))
    devnet = DevnetServer(home / "devnet", port=0).start()
    port = free_port()
    store = LocalStore(home / "storage")
    server, thread = serve_in_thread(
        create_app(store, origins=node_origins("127.0.0.1", port)), port
    )
    storage_url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        if node_answers(storage_url):
            break
        threading.Event().wait(0.05)
    try:
        client = Client(devnet.url, account=load_account("dev0", None), storage_nodes=[storage_url])
        deploy_suite(client.w3, client.account)
        publish_demo_models(client)
        with np.load(DIGITS_DATA) as data:
            sample = data["x_test"][0]
        receipt = client.inference.infer("digits-mlp", sample)
        yield DemoNetwork(devnet.url, storage_url, home, receipt)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        devnet.stop()
        patch.undo()


# -- market and governance activity on the demo network (once per session) ---------------------

LIAR, CHALLENGER, REQUESTER = "dev6", "dev7", "dev5"
"""The dishonest provider, the challenger and the requester of the dispute scenes."""


@dataclass
class MarketActivity:
    """Two disputes played on the demo network: one decided by the one-step, one by timeout."""

    one_step: int
    one_step_request: int
    timeout: int
    timeout_request: int
    liar: str
    challenger: str


def _corrupt(trace: Any, leaf: int, element: int) -> Any:
    """`trace` with one element of value `leaf` (sample 0) off by one, roots recomputed."""
    from aicommons.runtime import Trace, trace_root

    values = [np.array(value, copy=True) for value in trace.values]
    flat = values[leaf].reshape(-1)
    flat[element] = flat[element] - 1 if flat[element] > np.iinfo(flat.dtype).min else 1
    return Trace(trace.names, tuple(values), (trace_root([value[0] for value in values]),))


def _cnn_sample(index: int) -> np.ndarray:
    from aicommons.demo import DIGITS_CNN
    from aicommons.sdk.demo import DEMO_INPUT_SHAPES

    with np.load(DIGITS_DATA) as data:
        return data["x_test"][index].reshape(DEMO_INPUT_SHAPES[DIGITS_CNN])


def _dispute(net: DemoNetwork, sample: int, *, defend: bool) -> tuple[int, int]:
    """A request served by the liar with a wrong output and disputed by the challenger. If
    `defend`, both sides play the game out move by move (the one-step decides); else the liar
    stays silent and the challenger claims the timeout once the chain passes the deadline.
    Returns (dispute id, request id)."""
    from aicommons.chain.devnet.control import mine
    from aicommons.market.dispute import TraceCommitments
    from aicommons.market.graph import graph_commitment
    from aicommons.market.inputs import prepare_sample
    from aicommons.market.play import challenger_turn, output_of, provider_turn, unpack_roots

    liar, challenger = net.client(LIAR), net.client(CHALLENGER)
    requester = net.client(REQUESTER)
    package = liar.market.package_of(liar.registry.resolve("digits-cnn"))
    graph = graph_commitment(package)
    ticket = requester.market.request(
        "digits-cnn", _cnn_sample(sample), provider=liar.account.address
    )
    liar.market.claim(ticket.request_id)
    honest = package.trace(prepare_sample(package, _cnn_sample(sample)))
    wrong = _corrupt(honest, graph.header.output_leaf, element=3)
    liar.market.post_result(ticket.request_id, wrong, package=package)
    posted = requester.market.posted_results(ticket.request_id)
    dispute = challenger.market.challenge(ticket.request_id, posted=posted[0])
    lies = TraceCommitments(package, [v[0] for v in wrong.values], graph)
    truth = TraceCommitments(package, [v[0] for v in honest.values], graph)
    state = challenger.market.dispute_state(dispute)
    if not defend:
        mine(net.rpc_url, timestamp=max(state.deadline, _chain_time(net)) + 1)
    for _ in range(200):
        if not state.active:
            break
        now = _chain_time(net)
        if defend:
            provider_turn(liar, state, lies, output=output_of(lies), now=now)
            state = challenger.market.dispute_state(dispute)
        seen = challenger.market.events(
            names=("RootsRevealed", "RowsRevealed"), filters={"dispute_id": dispute}
        )
        roots = [e for e in seen if e.name == "RootsRevealed"]
        rows = [e for e in seen if e.name == "RowsRevealed"]
        challenger_turn(
            challenger,
            state,
            truth,
            revealed_roots=unpack_roots(bytes(roots[-1].args["layer_roots"])) if roots else None,
            revealed_rows=[bytes(r) for r in rows[-1].args["rows"]] if rows else None,
            now=max(now, _chain_time(net)),
        )
        state = challenger.market.dispute_state(dispute)
    assert state.phase == "challenger_won", state
    return dispute, ticket.request_id


def _chain_time(net: DemoNetwork) -> int:
    return int(net.client(None).w3.eth.get_block("latest")["timestamp"])


@pytest.fixture(scope="session")
def market_activity(demo_network: DemoNetwork) -> MarketActivity:
    from aicommons.sdk.demo import prepare_market_demo

    admin = demo_network.client()
    liar = demo_network.client(LIAR)
    challenger = demo_network.client(CHALLENGER)
    prepare_market_demo(admin, provider=liar, watcher_address=challenger.account.address)
    admin.tokens.transfer(demo_network.client(REQUESTER).account.address, tokens=100 * 10**18)
    one_step = _dispute(demo_network, 1, defend=True)
    timeout = _dispute(demo_network, 2, defend=False)
    return MarketActivity(
        one_step[0],
        one_step[1],
        timeout[0],
        timeout[1],
        liar.account.address,
        challenger.account.address,
    )


@dataclass
class GovernanceActivity:
    """A proposal taken through votes, queue and execution (a treasury grant), and an open
    funding round with contributions to both demo models."""

    proposal_id: int
    grant_recipient: str
    grant_amount: int
    voters: dict[str, str]
    round_id: int


GRANT = 7 * 10**18


@pytest.fixture(scope="session")
def governance_activity(demo_network: DemoNetwork) -> GovernanceActivity:
    from aicommons.chain.devnet.control import mine
    from aicommons.governance.params import DEVNET_PARAMS

    admin = demo_network.client()
    recipient = load_account("dev9", None).address
    token = admin.deployment.address("CommonsToken")
    actions = admin.governance.parse_actions(
        [f"Treasury:grant:{token},{recipient},{GRANT},explorer test grant"]
    )
    proposal_id = admin.governance.propose(actions, "Grant 7 AIC to dev9 for testing")
    mine(demo_network.rpc_url, timestamp=_chain_time(demo_network) + DEVNET_PARAMS.voting_delay + 1)
    voters = {"dev1": "for", "dev2": "for", "dev3": "against", "dev4": "abstain"}
    for name, choice in voters.items():
        reason = "useful" if name == "dev1" else None
        demo_network.client(name).governance.vote(proposal_id, choice, reason=reason)
    period = DEVNET_PARAMS.voting_period + DEVNET_PARAMS.late_quorum_extension + 1
    mine(demo_network.rpc_url, timestamp=_chain_time(demo_network) + period)
    admin.governance.queue(proposal_id)
    mine(
        demo_network.rpc_url, timestamp=_chain_time(demo_network) + DEVNET_PARAMS.timelock_delay + 1
    )
    admin.governance.execute(proposal_id)
    round_id = admin.governance.open_round(pool=100 * 10**18, start="+0s", end="+3600s")
    for name, model, amount in (
        ("dev1", "digits-mlp", 4),
        ("dev2", "digits-mlp", 9),
        ("dev3", "digits-cnn", 16),
        ("dev1", "digits-mlp", 5),
    ):
        demo_network.client(name).governance.contribute(round_id, model, amount * 10**18)
    return GovernanceActivity(proposal_id, recipient, GRANT, voters, round_id)
