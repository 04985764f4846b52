"""The honest optimistic flow through the SDK with the daemons on threads: requests with a
calldata input and with a storage-blob input are claimed, posted, watched and finalised after
their window; their receipts verify by name, also when rebuilt from chain data alone by another
machine (no account, no files of the requester), since the provider posts its signature."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from flow_fixtures import (
    PROVIDERS,
    REQUESTER,
    Daemons,
    MarketNetwork,
    digits_sample,
    register_providers,
)

from aicommons.sdk.client import Client
from aicommons.sdk.verify import MARKET_CHECK_NAMES

pytestmark = [pytest.mark.network, pytest.mark.slow]


def test_honest_requests_finalise_and_any_machine_verifies_them(
    market_net: MarketNetwork, daemons: Daemons, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_providers(market_net, PROVIDERS[0])
    daemons.provider(PROVIDERS[0])
    watcher = daemons.watcher()
    requester = market_net.client(REQUESTER)
    assert requester.market.params() == dataclasses.asdict(market_net.params)
    calldata = requester.market.request("digits-cnn", digits_sample(0))
    blob = requester.market.request("digits-cnn", digits_sample(1), blob=True)
    created = requester.market.events(
        names=("RequestCreated",), filters={"request_id": blob.request_id}
    )
    assert bytes(created[0].args["input"]) == b"" and any(created[0].args["blob_id"])
    for ticket in (calldata, blob):
        info = requester.market.wait(ticket.request_id, timeout_s=120)
        assert info.status == "finalised", daemons.lines()
        assert info.provider is not None and len(info.output or []) == 10
    receipt = requester.market.receipt(calldata)
    assert not receipt.pending and receipt.signature
    report = requester.verify(receipt)
    assert [c.name for c in report.checks] == list(MARKET_CHECK_NAMES)
    assert report.ok, report.to_json()
    assert watcher.stats["checked"] >= 2 and watcher.stats["disputed"] == 0

    # Another machine: its own AIC_HOME holding only the (public) deployment addresses.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(market_net.home / "deployments", elsewhere / "deployments")
    monkeypatch.setenv("AIC_HOME", str(elsewhere))
    auditor = Client(market_net.rpc_url, account=None, storage_nodes=[market_net.storage_url])
    for ticket in (calldata, blob):
        rebuilt = auditor.market.receipt_of(ticket.request_id)
        assert rebuilt.requester == requester.account.address and rebuilt.signature
        assert rebuilt.input == ticket.input and rebuilt.tx_hash == ticket.tx_hash
        checked = auditor.verify(rebuilt)
        assert checked.ok, checked.to_json()
    assert rebuilt.to_json() == requester.market.receipt_of(blob.request_id).to_json()
    forged = dataclasses.replace(rebuilt, trace_root="0x" + "11" * 32)
    failed = auditor.verify(forged)
    assert not failed.ok and failed.failed()[0] == "signature"  # the provider signed another root
