"""The explorer's pages and API over the demo network, in process: what each page shows, that
the receipt page runs every `aic verify` check, and that bad input gets a clear 4xx page."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from aicommons.explorer.app import create_app
from aicommons.explorer.server import build_explorer
from aicommons.sdk.verify import CHECK_NAMES


@pytest.fixture(scope="module")
def web(demo_network):
    explorer, indexer = build_explorer(
        demo_network.rpc_url, storage_nodes=[demo_network.storage_url]
    )
    indexer.sync()
    # Server exceptions are raised: an expected error answered by the outermost handler (which
    # re-raises after answering) would fail the bad-input tests instead of hiding in a log.
    with TestClient(create_app(explorer)) as client:
        yield client


def test_home_summarises_the_network(web, demo_network) -> None:
    summary = web.get("/api/").json()
    assert summary["chain_id"] == demo_network.receipt.chain_id
    assert (summary["models"], summary["versions"], summary["inferences"]) == (2, 2, 1)
    assert summary["fees_paid"] == str(demo_network.receipt.fee)
    assert sum(summary["inferences_per_day"]["counts"]) == 1
    page = web.get("/")
    assert page.status_code == 200 and "digits-mlp" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_models_filters(web) -> None:
    def names(**query):
        return [m["name"] for m in web.get("/api/models", params=query).json()["models"]]

    assert names() == ["digits-cnn", "digits-mlp"]
    assert names(placement="onchain") == ["digits-mlp"]
    assert names(placement="offchain") == ["digits-cnn"]
    # Every disputable version offers the market modes (publish's default since the registry
    # records modes); only the executor's upload adds onchain.
    assert names(mode="optimistic") == ["digits-cnn", "digits-mlp"]
    assert names(mode="onchain") == ["digits-mlp"]
    assert names(q="mlp", licence="MIT") == ["digits-mlp"]
    assert names(licence="GPL-3.0") == []


def test_version_page_describes_the_package(web, demo_network) -> None:
    receipt = demo_network.receipt
    data = web.get(f"/api/models/digits-mlp/versions/{receipt.version_id}").json()
    assert data["version"]["onchain_ready"] and data["version"]["licence"] == "MIT"
    assert data["version"]["attribution"][0]["share_bps"] == 7000
    assert data["manifest"].get("available"), data["manifest"]
    assert data["manifest"]["macs"] == 64 * 64 + 64 * 32 + 32 * 10
    assert data["storage"][0]["nodes"][0]["held"] is True
    assert data["usage"]["inferences"] == 1
    assert f"aic infer digits-mlp@{receipt.version_id}" in data["snippets"]["cli"]


def test_receipt_page_runs_every_check_and_downloads(web, demo_network) -> None:
    receipt = demo_network.receipt
    data = web.get(f"/api/inferences/{receipt.tx_hash}").json()
    assert data["receipt"] == receipt.to_json()
    checks = data["verification"]["checks"]
    assert [c["name"] for c in checks] == list(CHECK_NAMES) and all(c["ok"] for c in checks)
    download = web.get(f"/inferences/{receipt.tx_hash}/receipt.json")
    assert download.json() == receipt.to_json()
    assert "attachment" in download.headers["content-disposition"]


def test_uploaded_receipt_with_a_changed_field_fails_by_name(web, demo_network) -> None:
    tampered = {**demo_network.receipt.to_json(), "label": demo_network.receipt.label + 1}
    page = web.post(
        "/verify", files={"receipt_file": ("r.json", json.dumps(tampered), "application/json")}
    )
    assert page.status_code == 200
    assert 'data-check="event" data-ok="false"' in page.text
    api = web.post("/api/verify", content=json.dumps(tampered)).json()
    assert api["verification"]["ok"] is False
    assert [c["name"] for c in api["verification"]["checks"] if not c["ok"]][0] == "event"


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/models/no-such-model", 404, "no model named"),
        ("/models/Bad_Name!", 400, "not a model name"),
        ("/models/digits-mlp/versions/0x1234", 400, "64 hex digits"),
        (f"/models/digits-mlp/versions/0x{'ab' * 32}", 404, "has no version"),
        ("/inferences/0xzz", 400, "transaction hash"),
        (f"/inferences/0x{'00' * 32}", 404, "no indexed inference"),
        (f"/inferences/0x{'00' * 32}/receipt.json", 404, "no indexed inference"),
        ("/market/disputes/not-a-number", 400, "dispute id"),
        ("/governance/proposals/12", 404, "no proposal"),
        ("/contracts/Nope", 404, "no contract"),
        ("/models?placement=moon", 400, "placement"),
        ("/nowhere", 404, "Not Found"),
    ],
)
def test_bad_input_gets_a_clear_4xx_page(web, path, status, words) -> None:
    page = web.get(path)
    assert page.status_code == status
    assert words in page.text and "Traceback" not in page.text
    api = web.get("/api" + path if not path.startswith("/nowhere") else path)
    assert api.status_code == status


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"receipt_text": "not json"}, 400, "not valid JSON"),
        ({"receipt_text": "[1, 2]"}, 400, "a receipt is a JSON object"),
        ({"receipt_text": '{"format": "aicommons-receipt/2"}'}, 400, "lacks field"),
        ({"receipt_text": ""}, 400, "no receipt given"),
    ],
)
def test_bad_uploads_are_refused_with_their_reason(web, body, status, words) -> None:
    page = web.post("/verify", data=body)
    assert page.status_code == status and words in page.text and "Traceback" not in page.text


def test_oversized_upload_is_refused_by_its_size(web) -> None:
    big = b"{" + b" " * (2 << 20) + b"}"
    page = web.post("/verify", files={"receipt_file": ("r.json", big, "application/json")})
    assert page.status_code == 413 and "at most" in page.text
    assert web.post("/api/verify", content=big).status_code == 413
