"""Market and governance pages over an index holding their events (the contracts are on other
branches; the pages are generic queries, so an index with their events is what they need):
a dispute renders round by round, a proposal its lifecycle, a funding round its contributions.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from aicommons.explorer.app import create_app
from aicommons.explorer.store import EventIndex, NewEvent
from aicommons.explorer.views import Explorer

PROVIDER = "0x" + "aa" * 20
CHALLENGER = "0x" + "bb" * 20
ROOT = "0x" + "cc" * 32
DISPUTE_ROUNDS = [
    ("Challenged", {"dispute_id": 7, "request_id": 3, "challenger": CHALLENGER}),
    ("RootsRevealed", {"dispute_id": 7}),
    ("LayerPicked", {"dispute_id": 7}),
    ("ChildrenRevealed", {"dispute_id": 7}),
    ("ChildPicked", {"dispute_id": 7}),
    ("RowsRevealed", {"dispute_id": 7}),
    ("DisputeResolved", {"dispute_id": 7, "request_id": 3, "winner": CHALLENGER}),
]


@pytest.fixture
def web(tmp_path):
    index = EventIndex(tmp_path / "index.sqlite")
    rows = [
        ("ComputeMarket", "Staked", {"provider": PROVIDER, "amount": 5 * 10**18}),
        ("ComputeMarket", "RequestCreated", {"request_id": 3, "requester": CHALLENGER}),
        *[("ComputeMarket", name, args) for name, args in DISPUTE_ROUNDS],
        ("ComputeMarket", "Slashed", {"provider": PROVIDER, "request_id": 3, "amount": 10**18}),
        ("Governor", "ProposalCreated", {"proposal_id": 5, "proposer": PROVIDER}),
        ("Governor", "VoteCast", {"proposal_id": 5, "voter": CHALLENGER, "support": 1}),
        ("Governor", "ProposalQueued", {"proposal_id": 5}),
        ("FundingRound", "RoundStarted", {"round_id": 1, "matching_pool": 20}),
        (
            "FundingRound",
            "Contributed",
            {"round_id": 1, "model_id": "m1", "contributor": PROVIDER, "amount": 9},
        ),
        (
            "FundingRound",
            "Contributed",
            {"round_id": 1, "model_id": "m1", "contributor": CHALLENGER, "amount": 16},
        ),
        (
            "FundingRound",
            "Contributed",
            {"round_id": 1, "model_id": "m2", "contributor": PROVIDER, "amount": 4},
        ),
        (
            "FundingRound",
            "Contributed",
            {"round_id": 1, "model_id": "m2", "contributor": PROVIDER, "amount": 5},
        ),
        ("StorageRegistry", "Staked", {"provider": PROVIDER, "amount": 3 * 10**18}),
        ("StorageRegistry", "Committed", {"provider": PROVIDER, "root": ROOT, "locked": 10**18}),
        (
            "StorageRegistry",
            "ChallengeOpened",
            {"challenge_id": 1, "provider": PROVIDER, "root": ROOT},
        ),
        ("StorageRegistry", "ChallengePassed", {"challenge_id": 1, "provider": PROVIDER}),
        (
            "StorageRegistry",
            "ChallengeOpened",
            {"challenge_id": 2, "provider": PROVIDER, "root": ROOT},
        ),
        (
            "StorageRegistry",
            "Slashed",
            {"challenge_id": 2, "provider": PROVIDER, "root": ROOT, "amount": 5 * 10**17},
        ),
    ]
    events = [
        NewEvent(10 + n, f"0x{n:064x}", f"0x{n + 100:064x}", 0, contract, name, args)
        for n, (contract, name, args) in enumerate(rows)
    ]
    index.append(
        events,
        [(10 + n, f"0x{n:064x}", 1_700_000_000 + n) for n in range(len(rows))],
        indexed_to=10 + len(rows),
    )
    contracts = {
        "ComputeMarket": "0x" + "01" * 20,
        "Governor": "0x" + "02" * 20,
        "FundingRound": "0x" + "03" * 20,
    }
    client = SimpleNamespace(
        deployment=SimpleNamespace(contracts=contracts),
        chain_id=1337,
        storage_nodes=[],
        rpc_url="http://127.0.0.1:1",
    )
    with TestClient(create_app(Explorer(client, index))) as test:
        yield test


def test_dispute_timeline_round_by_round(web) -> None:
    data = web.get("/api/market/disputes/7").json()
    assert [e["event"] for e in data["events"]] == [name for name, _ in DISPUTE_ROUNDS]
    assert data["state"] == "DisputeResolved"
    page = web.get("/market/disputes/0x7")  # the same id in hex
    assert page.status_code == 200
    assert page.text.index("RootsRevealed") < page.text.index("RowsRevealed")
    market = web.get("/api/market").json()
    assert [d["args"]["dispute_id"] for d in market["disputes"]] == [7]
    provider = market["providers"][0]
    assert (provider["stake"], provider["slashed"]) == (4 * 10**18, 10**18)
    request = web.get("/api/market/requests/3").json()
    assert [e["event"] for e in request["events"]] == [
        "RequestCreated",
        "Challenged",
        "DisputeResolved",
        "Slashed",
    ]


def test_proposal_and_funding_round_timelines(web) -> None:
    governance = web.get("/api/governance").json()
    assert governance["proposals"][0]["state"] == "ProposalQueued"
    assert governance["proposals"][0]["votes"] == 1
    (funding_round,) = governance["rounds"]
    assert funding_round["contributions"] == 4
    # m1: (3 + 4)^2 - 25 = 24; m2: one contributor of 9 -> 9 - 9 = 0; scaled to the pool of 20.
    assert funding_round["projected_match"] == [
        {"recipient": "m1", "match": "20", "match_text": "0.00000000000000002"},
        {"recipient": "m2", "match": "0", "match_text": "0"},
    ]
    page = web.get("/governance/proposals/5")
    assert page.status_code == 200 and page.text.index("ProposalCreated") < page.text.index(
        "VoteCast"
    )
    assert "Contributed" in web.get("/governance/rounds/1").text
    assert web.get("/governance/proposals/6").status_code == 404


def test_storage_providers_and_stake_held(web) -> None:
    (provider,) = web.get("/api/storage").json()["providers"]
    assert (provider["blobs"], provider["passed"], provider["failed"]) == (1, 1, 1)
    assert provider["stake"] == 3 * 10**18 - 5 * 10**17
    # Market stake 5 - 1 slashed, storage stake 3 - 0.5 slashed.
    assert web.get("/api/").json()["stake_held"] == str(4 * 10**18 + 25 * 10**17)
    assert "challenges passed" in web.get("/storage").text
