"""The explorer in a real headless Chromium (the distribution's, driven by Playwright): a reader
walks from the network page to the demo inference and sees every check pass; a tampered upload
fails its check by name; pages work with JavaScript off. One browser for the whole module.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from aicommons.explorer.server import ExplorerServer
from aicommons.sdk.verify import CHECK_NAMES

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
CHROMIUM_NAMES = ("chromium", "chromium-headless-shell", "chromium-browser")


def find_chromium() -> str:
    """The distribution's Chromium; a missing browser fails the test (never skips it)."""
    configured = os.environ.get("AIC_CHROMIUM")
    if configured:
        return configured
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    for path in ("/usr/lib/chromium/chromium", "/usr/lib/chromium/headless_shell"):
        if Path(path).is_file():
            return path
    pytest.fail("no Chromium found: `make test` installs it (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=find_chromium(), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def site(demo_network, market_activity, governance_activity) -> Iterator[str]:
    """The explorer over the demo network after its disputes and proposal (see conftest)."""
    server = ExplorerServer(
        demo_network.rpc_url, storage_nodes=[demo_network.storage_url], poll_s=0.5
    ).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_reader_reaches_the_demo_inference_and_every_check_passes(
    browser, site, demo_network
) -> None:
    from playwright.sync_api import expect

    receipt = demo_network.receipt
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(site + "/")
    assert page.locator(".card strong").first.inner_text() == str(receipt.chain_id)
    page.wait_for_selector("#inferences-per-day[data-drawn='1']")  # Chart.js drew it
    page.click("nav >> text=Models")
    page.fill("input[name=q]", "mlp")  # htmx narrows the list as one types
    expect(page.locator("#model-list tr")).to_have_count(2)
    page.click("#model-list >> text=digits-mlp")
    assert page.locator("h1").inner_text() == "digits-mlp"
    page.click(f"a[href$='{receipt.version_id}']")
    assert receipt.version_id in page.locator("table.fields").inner_text()
    assert "parameters" in page.content() and "aic infer digits-mlp@" in page.content()
    page.click(f"a[href='/inferences/{receipt.tx_hash}']")
    rows = page.locator("tr.check")
    assert rows.count() == len(CHECK_NAMES)
    shown = {
        rows.nth(i).get_attribute("data-check"): rows.nth(i).get_attribute("data-ok")
        for i in range(rows.count())
    }
    assert shown == {name: "true" for name in CHECK_NAMES}
    assert page.locator("#checks h2 .pass").inner_text() == "passed"
    assert errors == []  # no CSP violation, no script error
    page.close()


def test_a_tampered_upload_names_the_failing_check(browser, site, demo_network, tmp_path) -> None:
    tampered = {**demo_network.receipt.to_json(), "output_hash": "0x" + "11" * 32}
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(tampered))
    page = browser.new_page()
    page.goto(site + "/verify")
    page.set_input_files("input[name=receipt_file]", str(path))
    page.click("form.upload button[type=submit]")
    failing = page.locator("tr.check[data-ok=false]").first
    assert failing.get_attribute("data-check") == "event"
    assert "output_hash" in failing.inner_text()
    assert page.locator("#checks h2 .fail").inner_text() == "failed"
    page.close()


def test_pages_work_without_javascript(browser, site, demo_network) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(site + "/models?q=cnn")
    assert page.locator("#model-list").inner_text().count("digits-") == 1
    response = page.goto(site + f"/inferences/{demo_network.receipt.tx_hash}")
    assert response.status == 200
    assert page.locator("tr.check[data-ok=true]").count() == len(CHECK_NAMES)
    response = page.goto(site + "/governance/proposals/1")
    assert response.status == 404 and "no proposal" in page.content()
    for path in ("/market", "/governance", "/storage"):
        assert page.goto(site + path).status == 200
    context.close()


def test_dispute_and_proposal_timelines(
    browser, site, market_activity, governance_activity
) -> None:
    """From the market page to the one-step dispute's rounds, and from the governance page to
    the executed proposal's lifecycle."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(site + "/market")
    page.click(f"#market-disputes a[href='/market/disputes/{market_activity.one_step}']")
    steps = page.locator("#dispute-timeline li.step")
    kinds = [steps.nth(i).get_attribute("data-kind") for i in range(steps.count())]
    assert kinds[0] == "challenge" and kinds[-1] == "verdict" and "pick" in kinds
    assert kinds.index("reveal") < kinds.index("pick")
    assert "verdict (one-step)" in steps.last.inner_text()
    assert page.locator("#dispute-state").inner_text() == "challenger won"
    page.click("nav >> text=Governance")
    page.click(f"#proposals a[href='/governance/proposals/{governance_activity.proposal_id}']")
    assert page.locator("#proposal-state").inner_text() == "executed"
    steps = page.locator("#proposal-timeline li.step")
    kinds = [steps.nth(i).get_attribute("data-kind") for i in range(steps.count())]
    assert kinds == ["created", *["vote"] * len(governance_activity.voters), "queued", "executed"]
    executed = page.locator("#proposal-timeline li[data-kind=executed]")
    executed.locator("summary").click()
    assert "Granted" in executed.inner_text()
    assert errors == []
    page.close()
