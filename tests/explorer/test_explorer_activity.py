"""Market and governance pages over a real chain: disputes played on the devnet (one decided by
the one-step, one by a timeout) render round by round; a proposal taken through votes, queue and
execution renders its lifecycle with the Governor's own state; an open funding round shows its
contributions and the match `aicommons.governance.qf` projects, equal to what the contract keeps.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from aicommons.chain.accounts import load_account
from aicommons.commit import keccak256
from aicommons.explorer.app import create_app
from aicommons.explorer.server import build_explorer
from aicommons.governance.qf import Contribution, round_matches

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def web(demo_network, market_activity, governance_activity):
    explorer, indexer = build_explorer(
        demo_network.rpc_url, storage_nodes=[demo_network.storage_url]
    )
    indexer.sync()
    with TestClient(create_app(explorer)) as client:
        yield client


def test_a_dispute_decided_by_the_one_step_renders_round_by_round(web, market_activity) -> None:
    data = web.get(f"/api/market/disputes/{market_activity.one_step}").json()
    kinds = [step["kind"] for step in data["steps"]]
    assert kinds[0] == "challenge" and kinds[-1] == "verdict"
    assert kinds[1:3] == ["reveal", "pick"]  # layer roots, then the disputed layer
    events = [step["event"] for step in data["steps"]]
    assert events[1:3] == ["RootsRevealed", "LayerPicked"] and "RowsRevealed" in events
    assert data["rounds"] >= 2 and data["steps"][-1]["round"] == data["rounds"]
    assert data["outcome"] == {
        "winner": market_activity.challenger.lower(),
        "side": "challenger",
        "reason": "one-step",
    }
    assert data["state"] == "challenger won" and data["to_move"] is None
    assert "committed" in data["steps"][-1]["text"] and "correct" in data["steps"][-1]["text"]
    slashed = [e for e in data["consequences"] if e["event"] == "Slashed"]
    assert [s["args"]["provider"].lower() for s in slashed] == [market_activity.liar.lower()]
    page = web.get(f"/market/disputes/{market_activity.one_step}")
    assert page.status_code == 200
    assert page.text.index('data-kind="challenge"') < page.text.index('data-kind="verdict"')
    assert "verdict (one-step)" in page.text


def test_a_dispute_decided_by_timeout(web, market_activity) -> None:
    data = web.get(f"/api/market/disputes/{market_activity.timeout}").json()
    assert [s["kind"] for s in data["steps"]] == ["challenge", "verdict"]
    assert data["outcome"]["reason"] == "timeout" and data["outcome"]["side"] == "challenger"
    assert "the provider missed its deadline" in data["steps"][-1]["text"]


def test_requests_and_providers_on_the_market_page(web, market_activity) -> None:
    home = web.get("/api/").json()
    assert (home["market_requests"], home["disputes"], home["proposals"]) == (2, 2, 1)
    market = web.get("/api/market").json()
    statuses = {r["request_id"]: r["status"] for r in market["requests"]}
    assert statuses[str(market_activity.one_step_request)] == "overturned"
    assert statuses[str(market_activity.timeout_request)] == "overturned"
    disputes = {d["dispute_id"]: d for d in market["disputes"]}
    assert disputes[str(market_activity.one_step)]["reason"] == "one-step"
    assert disputes[str(market_activity.timeout)]["reason"] == "timeout"
    (liar,) = [p for p in market["providers"] if p["provider"] == market_activity.liar]
    assert int(liar["slashed"]) > 0 and liar["offers"] == 1
    request = web.get(f"/api/market/requests/{market_activity.one_step_request}").json()
    events = [e["event"] for e in request["events"]]
    assert events[:3] == ["RequestCreated", "Claimed", "BatchPosted"]
    assert "Challenged" in events and "DisputeResolved" in events
    assert request["mode"] == "optimistic" and request["model"] == "digits-cnn"
    assert request["disputes"] == [str(market_activity.one_step)]
    assert "overturned" in web.get(f"/market/requests/{market_activity.one_step_request}").text


def test_a_proposal_renders_its_lifecycle(web, governance_activity, demo_network) -> None:
    proposal_id = governance_activity.proposal_id
    data = web.get(f"/api/governance/proposals/{proposal_id}").json()
    assert data["state"] == "executed"
    kinds = [step["kind"] for step in data["steps"]]
    assert kinds == ["created", "vote", "vote", "vote", "vote", "queued", "executed"]
    votes = {s["voter"]: s["support"] for s in data["steps"] if s["kind"] == "vote"}
    addresses = {name: load_account(name, None).address for name in governance_activity.voters}
    assert votes == {addresses[n]: c for n, c in governance_activity.voters.items()}
    governor = demo_network.client(None).contract("Governor")
    against, for_votes, abstain = governor.functions.proposalVotes(proposal_id).call()
    assert data["votes"] == {
        "against": str(against),
        "for": str(for_votes),
        "abstain": str(abstain),
    }
    (action,) = data["actions"]
    assert action["call"].startswith("Treasury.grant(")
    assert f"amount={governance_activity.grant_amount}" in action["call"]
    queued = next(s for s in data["steps"] if s["kind"] == "queued")
    assert "CallScheduled" in [e["event"] for e in queued["effects"]]
    executed = next(s for s in data["steps"] if s["kind"] == "executed")
    assert {"CallExecuted", "Granted"} <= {e["event"] for e in executed["effects"]}
    governance = web.get("/api/governance").json()
    listed = {p["proposal_id"]: p["state"] for p in governance["proposals"]}
    assert listed[str(proposal_id)] == "executed"
    scheduled = next(e for e in queued["effects"] if e["event"] == "CallScheduled")
    operations = {o["id"]: o for o in governance["timelock"]}
    assert operations[scheduled["args"]["id"]]["state"] == "executed"
    (grant,) = governance["treasury"]["grants"]
    assert grant["amount"] == str(governance_activity.grant_amount)
    assert grant["recipient"] == governance_activity.grant_recipient
    page = web.get(f"/governance/proposals/{hex(proposal_id)}")  # the same id in hex
    assert page.status_code == 200
    assert page.text.index('data-kind="created"') < page.text.index('data-kind="queued"')
    assert page.text.index('data-kind="queued"') < page.text.index('data-kind="executed"')


def test_a_funding_round_shows_contributions_and_the_projected_match(
    web, governance_activity, demo_network
) -> None:
    data = web.get(f"/api/governance/rounds/{governance_activity.round_id}").json()
    assert data["state"] == "open" and len(data["contributions"]) == 4
    by_model = {p["model"]: p for p in data["projects"]}
    assert by_model["digits-mlp"]["total"] == str(18 * 10**18)
    assert by_model["digits-mlp"]["contributors"] == 2
    # The projection is qf.round_matches over the contributions as made ...
    aic = 10**18
    expected = round_matches(
        100 * aic,
        [
            Contribution("dev1", "mlp", 4 * aic, True),
            Contribution("dev2", "mlp", 9 * aic, True),
            Contribution("dev3", "cnn", 16 * aic, True),
            Contribution("dev1", "mlp", 5 * aic, True),
        ],
    )
    projected = {p["model"]: int(p["projected_match"]) for p in data["projects"]}
    assert projected == {"digits-mlp": expected[0].match, "digits-cnn": expected[1].match}
    assert projected["digits-mlp"] > 0 and projected["digits-cnn"] == 0  # one contributor
    # ... and the contract's running figures (S_p, raw_p) agree with it.
    funding = demo_network.client(None).contract("FundingRound")
    for name, project in by_model.items():
        figures = funding.functions.project(
            governance_activity.round_id, keccak256(name.encode())
        ).call()
        assert (figures[2], figures[4]) == (int(project["sqrt_sum"]), int(project["raw"]))
    page = web.get(f"/governance/rounds/{governance_activity.round_id}")
    assert "projected match if the round closed now" in page.text
    assert by_model["digits-mlp"]["projected_match_text"] in page.text
    summary = web.get("/api/governance").json()["rounds"]
    assert [r["contributions"] for r in summary if r["round_id"] == str(data["round_id"])] == [4]
