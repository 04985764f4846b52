"""Market and governance pages from events alone, with the contracts' own event and argument
names (every synthetic event here is checked against `explorer.schema.PAGE_EVENTS`): a dispute
still open past its deadline shows the timeout due, a cancelled one says so; a request's status
follows its events; a canceled proposal; a capped funding round's projection is
`qf.round_matches`; every route answers malformed path parameters with a 4xx page, never a 500.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from aicommons.explorer.app import create_app
from aicommons.explorer.schema import PAGE_EVENTS
from aicommons.explorer.store import EventIndex, NewEvent
from aicommons.explorer.views import Explorer
from aicommons.governance.qf import Contribution, round_matches

PROVIDER = "0x" + "aa" * 20
CHALLENGER = "0x" + "bb" * 20
REQUESTER = "0x" + "cc" * 20
MODEL = "0x" + "11" * 32
OTHER_MODEL = "0x" + "22" * 32
VERSION = "0x" + "33" * 32
T0 = 1_700_000_000


def _created(request_id: int) -> tuple[str, str, dict]:
    return (
        "ComputeMarket",
        "RequestCreated",
        {
            "request_id": request_id,
            "version_id": VERSION,
            "requester": REQUESTER,
            "model_id": MODEL,
            "mode": 1,
            "redundancy": 1,
            "max_fee": 10**16,
            "deadline": T0 + 10_000,
            "provider": PROVIDER,
        },
    )


def _challenged(dispute_id: int, request_id: int, deadline: int) -> tuple[str, str, dict]:
    args = {"dispute_id": dispute_id, "request_id": request_id, "challenger": CHALLENGER}
    args |= {"batch_id": 1, "provider": PROVIDER, "bond": 10**19, "deadline": deadline}
    return ("DisputeGame", "Challenged", args)


ROWS = [
    ("ComputeMarket", "Staked", {"provider": PROVIDER, "amount": 200 * 10**18}),
    _created(3),
    ("ComputeMarket", "Claimed", {"request_id": 3, "provider": PROVIDER, "price": 10**16}),
    _created(4),
    ("ComputeMarket", "Claimed", {"request_id": 4, "provider": PROVIDER, "price": 10**16}),
    (
        "ComputeMarket",
        "BatchPosted",
        {
            "batch_id": 1,
            "provider": PROVIDER,
            "root": MODEL,
            "window_ends": 0,
            "request_ids": [3, 4],
        },
    ),
    # Dispute 7: the provider revealed its roots, the challenger never picked a layer.
    _challenged(7, 3, T0 + 100),
    (
        "DisputeGame",
        "RootsRevealed",
        {"dispute_id": 7, "layer_roots": "0x" + "00" * 96, "deadline": T0 + 120},
    ),
    # Dispute 8 on request 4: cancelled.
    _challenged(8, 4, T0 + 100),
    ("DisputeGame", "DisputeCancelled", {"dispute_id": 8, "request_id": 4}),
    # Request 9, redundant mode: two commitments, reveals opened, one reveal so far.
    (
        *_created(9)[:2],
        {**_created(9)[2], "mode": 2, "redundancy": 2, "provider": "0x" + "00" * 20},
    ),
    ("RedundantMode", "Committed", {"request_id": 9, "provider": PROVIDER}),
    ("RedundantMode", "Committed", {"request_id": 9, "provider": CHALLENGER}),
    ("RedundantMode", "RevealsOpened", {"request_id": 9, "reveal_ends": T0 + 900}),
    ("RedundantMode", "Revealed", {"request_id": 9, "provider": PROVIDER, "output_hash": MODEL}),
    (
        "Governor",
        "ProposalCreated",
        {
            "proposalId": 5,
            "proposer": PROVIDER,
            "targets": [PROVIDER],
            "values": [0],
            "calldatas": ["0x12345678"],
            "voteStart": T0,
            "voteEnd": T0 + 60,
            "description": "try something",
        },
    ),
    (
        "Governor",
        "VoteCast",
        {"voter": CHALLENGER, "proposalId": 5, "support": 0, "weight": 3, "reason": ""},
    ),
    ("Governor", "ProposalCanceled", {"proposalId": 5}),
    *[
        (
            "Timelock",
            "CallScheduled",
            {
                "id": "0x" + "44" * 32,
                "index": i,
                "target": PROVIDER,
                "amount": 0,
                "payload": "0x",
                "delay": 30,
            },
        )
        for i in range(2)
    ],
    ("Timelock", "Cancelled", {"id": "0x" + "44" * 32}),
    (
        "FundingRound",
        "RoundOpened",
        {
            "round_id": 1,
            "funder": PROVIDER,
            "pool": 1000,
            "start": T0,
            "end": T0 + 10**6,
            "cap_bps": 6000,
            "eligibility": "0x" + "00" * 20,
        },
    ),
    *[
        (
            "FundingRound",
            "Contributed",
            {
                "round_id": 1,
                "model_id": model,
                "contributor": who,
                "amount": amount,
                "eligible": ok,
            },
        )
        for model, who, amount, ok in (
            (MODEL, PROVIDER, 9, True),
            (MODEL, CHALLENGER, 16, True),
            (OTHER_MODEL, PROVIDER, 25, True),
            (OTHER_MODEL, CHALLENGER, 36, True),
            (OTHER_MODEL, REQUESTER, 100, False),
        )
    ],
]


def test_synthetic_events_use_the_contracts_names() -> None:
    for contract, event, args in ROWS:
        assert set(args) <= set(PAGE_EVENTS[contract][event]) | {"rows"}, (contract, event)


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    index = EventIndex(tmp_path_factory.mktemp("index") / "index.sqlite")
    events = [
        NewEvent(10 + n, f"0x{n:064x}", f"0x{n + 100:064x}", 0, contract, name, args)
        for n, (contract, name, args) in enumerate(ROWS)
    ]
    head = 10 + len(ROWS)
    index.append(
        events,
        [(10 + n, f"0x{n:064x}", T0 + n) for n in range(len(ROWS))]
        + [(head, "0x" + "ee" * 32, T0 + 500)],
        indexed_to=head,
    )
    contracts = {
        name: "0x" + f"{n:02x}" * 20
        for n, name in enumerate(
            (
                "ComputeMarket",
                "DisputeGame",
                "RedundantMode",
                "Governor",
                "FundingRound",
                "Timelock",
            ),
            1,
        )
    }
    governor = SimpleNamespace(
        functions=SimpleNamespace(
            state=lambda _id: SimpleNamespace(call=lambda: 4)  # ProposalState.CANCELED
        )
    )
    from web3 import Web3

    client = SimpleNamespace(
        deployment=SimpleNamespace(contracts=contracts),
        chain_id=1337,
        storage_nodes=[],
        rpc_url="http://127.0.0.1:1",
        contract=lambda name: governor,
        w3=Web3(),
    )
    with TestClient(create_app(Explorer(client, index))) as test:
        yield test


def test_an_open_dispute_past_its_deadline_shows_the_timeout_due(web) -> None:
    data = web.get("/api/market/disputes/7").json()
    assert [s["kind"] for s in data["steps"]] == ["challenge", "reveal"]
    assert data["to_move"] == "challenger" and data["deadline"] == T0 + 120
    assert data["timed_out"] and data["state"] == "challenger timed out"
    page = web.get("/market/disputes/0x7")  # the same id in hex
    assert page.status_code == 200 and 'data-kind="timeout-due"' in page.text
    cancelled = web.get("/api/market/disputes/8").json()
    assert cancelled["state"] == "cancelled" and cancelled["steps"][-1]["kind"] == "cancelled"


def test_request_status_and_batch(web) -> None:
    request = web.get("/api/market/requests/3").json()
    assert request["status"] == "disputed"
    assert [e["event"] for e in request["events"]] == [
        "RequestCreated",
        "Claimed",
        "BatchPosted",
        "Challenged",
    ]
    assert web.get("/api/market/requests/4").json()["status"] == "posted"
    redundant = web.get("/api/market/requests/9").json()
    assert (redundant["mode"], redundant["redundancy"], redundant["status"]) == (
        "redundant",
        2,
        "posted",
    )
    assert [e["event"] for e in redundant["events"]][1:] == [
        "Committed",
        "Committed",
        "RevealsOpened",
        "Revealed",
    ]
    (provider,) = web.get("/api/market").json()["providers"]
    assert provider["stake"] == str(200 * 10**18)


def test_a_canceled_proposal(web) -> None:
    data = web.get("/api/governance/proposals/5").json()
    assert data["state"] == "canceled"
    assert [s["kind"] for s in data["steps"]] == ["created", "vote", "canceled"]
    assert data["votes"] == {"against": "3", "for": "0", "abstain": "0"}
    assert data["actions"][0]["call"].endswith("0x12345678 (4 bytes)")
    (operation,) = web.get("/api/governance").json()["timelock"]
    assert (operation["calls"], operation["delay"], operation["state"]) == (2, 30, "cancelled")
    page = web.get("/governance")
    assert page.status_code == 200 and "0 / 0.000000000000000003 / 0" in page.text
    assert "cancelled" in page.text and web.get("/governance/proposals/5").status_code == 200


def test_a_capped_round_projects_with_the_reference_formula(web) -> None:
    data = web.get("/api/governance/rounds/1").json()
    expected = round_matches(
        1000,
        [
            Contribution(PROVIDER, MODEL, 9, True),
            Contribution(CHALLENGER, MODEL, 16, True),
            Contribution(PROVIDER, OTHER_MODEL, 25, True),
            Contribution(CHALLENGER, OTHER_MODEL, 36, True),
            Contribution(REQUESTER, OTHER_MODEL, 100, False),
        ],
        6000,
    )
    assert [int(p["projected_match"]) for p in data["projects"]] == [r.match for r in expected]
    assert [p["contributors"] for p in data["projects"]] == [2, 3]
    assert data["state"] == "open" and data["contributed"] == str(9 + 16 + 25 + 36 + 100)


BAD_VALUES = [
    "-1",
    "0x",
    "0xzz",
    "1e9",
    "9" * 100,
    "0x" + "f" * 65,
    "%00",
    "..%2F..%2Fetc",
    "%F0%9F%92%A5",
    "' OR 1=1 --",
    "<script>x</script>",
    "A" * 2000,
]


def _routes(app) -> list[str]:
    return sorted(
        {
            route.path
            for route in app.routes
            if "{" in getattr(route, "path", "") and "GET" in getattr(route, "methods", ())
        }
    )


def test_every_route_refuses_malformed_path_parameters(web) -> None:
    routes = _routes(web.app)
    assert "/api/market/disputes/{dispute_id}" in routes and "/tx/{tx_hash}" in routes
    for path in routes:
        for bad in BAD_VALUES:
            url = path
            while "{" in url:
                start, end = url.index("{"), url.index("}")
                url = url[:start] + bad + url[end + 1 :]
            answer = web.get(url)
            assert 400 <= answer.status_code < 500, (url, answer.status_code, answer.text[:300])
            assert "Traceback" not in answer.text
            if path.startswith("/api"):
                assert answer.json()["status"] == answer.status_code
            elif answer.headers["content-type"].startswith("text/html"):
                assert 'class="error"' in answer.text or "Not Found" in answer.text, url


@pytest.mark.parametrize(
    "path",
    [
        "/market/disputes/99",
        "/market/requests/99",
        "/governance/proposals/6",
        "/governance/rounds/2",
        "/tx/0x" + "0" * 64,
        "/inferences/0x" + "0" * 64,
        "/contracts/Nope",
        "/models/no-such-model",
    ],
)
def test_unknown_ids_are_404_pages(web, path) -> None:
    for prefix in ("", "/api"):
        answer = web.get(prefix + path)
        assert answer.status_code == 404 and "Traceback" not in answer.text


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"\xff\xfe\x00garbage", {"content-type": "application/json"}, 400),
        (b"not json at all", {"content-type": "text/plain"}, 400),
        (b'{"format": "aicommons-receipt/2", "tx_hash": "0xzz"}', {}, 400),
        (b"[]", {}, 400),
        (b"1" * 50, {}, 400),
        (b"{" * 5000, {}, 400),
        (b"{}", {"content-length": str(10**9)}, 413),
        (b" " * ((1 << 20) + 10), {}, 413),
    ],
)
def test_bad_receipt_posts_are_refused(web, body, headers, status) -> None:
    for path in ("/verify", "/api/verify"):
        answer = web.post(path, content=body, headers=headers)
        assert answer.status_code == status, (path, answer.text[:300])
        assert "Traceback" not in answer.text
