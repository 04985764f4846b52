"""The demo that `aic up` runs: publish the shipped digits models, infer, verify.

It only composes public SDK calls, so it doubles as a worked example of the SDK. Packages are
quantised once and cached under `$AIC_HOME/demo`; nothing here is special-cased by the layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aicommons.demo import DIGITS_CNN, DIGITS_DATA, DIGITS_MLP
from aicommons.home import state_dir
from aicommons.sdk.client import Client
from aicommons.sdk.receipt import MarketReceipt, Receipt, VerificationReport, kept_receipt_path
from aicommons.sdk.types import Attribution, PublishResult

DEMO_FEE = 10**16
"""Fee per on-chain inference of the demo MLP: 0.01 AIC."""


@dataclass(frozen=True)
class DemoRun:
    published: list[PublishResult]
    receipt: Receipt
    receipt_path: Path
    report: VerificationReport
    expected_label: int


DEMO_INPUT_SHAPES = {DIGITS_MLP: (64,), DIGITS_CNN: (1, 8, 8)}
"""Per-sample input shape of each demo model; the shipped data holds flat 64-pixel samples."""


def demo_package(onnx_path: Path) -> Path:
    """Quantise a shipped ONNX model with the shipped calibration set (cached by file name)."""
    from aicommons.runtime.quantize import quantize_onnx

    target = state_dir("demo") / (onnx_path.stem + ".aicm")
    if not target.is_file():
        with np.load(DIGITS_DATA) as data:
            calibration = data["x_calib"]
        shape = DEMO_INPUT_SHAPES[onnx_path]
        quantize_onnx(onnx_path, calibration.reshape((len(calibration), *shape))).save(target)
    return target


def publish_demo_models(client: Client) -> list[PublishResult]:
    """The digits MLP on-chain (exact mode) and the digits CNN off-chain, authored by the caller."""
    author = [Attribution(client.account.address, "author", 7000)]
    publish = client.registry.publish
    return [
        publish(
            demo_package(DIGITS_MLP),
            model="digits-mlp",
            licence="MIT",
            attribution=author,
            fee=DEMO_FEE,
            onchain=True,
        ),
        publish(demo_package(DIGITS_CNN), model="digits-cnn", licence="MIT", attribution=author),
    ]


def run_demo(client: Client, sample: int = 0) -> DemoRun:
    """Publish, infer one held-out digit on-chain, save the receipt and verify it."""
    published = publish_demo_models(client)
    with np.load(DIGITS_DATA) as data:
        x = data["x_test"][sample]
        expected = int(data["y_test"][sample])
    receipt = client.inference.infer("digits-mlp", x)
    receipt_path = state_dir("receipts") / f"{receipt.tx_hash}.json"
    receipt.save(receipt_path)
    return DemoRun(published, receipt, receipt_path, client.verify(receipt), expected)


DEMO_PROVIDER = "dev1"
DEMO_WATCHER = "dev2"
DEMO_PROVIDER_STAKE = 200 * 10**18
DEMO_PROVIDER_PRICE = 10**16
"""The demo provider stakes 200 AIC and asks 0.01 AIC per request on top of the version fee."""
DEMO_MARKET_FUNDS = 1_000 * 10**18


@dataclass(frozen=True)
class MarketDemoRun:
    receipt: MarketReceipt
    receipt_path: Path
    report: VerificationReport
    expected_label: int
    label: int


def prepare_market_demo(client: Client, *, provider: Client, watcher_address: str) -> str:
    """Make the digits CNN servable by the market: its graph header in the game (publishing
    did it; a no-op then), the provider and the watcher funded, the provider staked and
    offering it. Idempotent; returns the graph root the registry records."""
    root = client.market.register_graph("digits-cnn")
    for address in (provider.account.address, watcher_address):
        if client.tokens.balance(address) < DEMO_MARKET_FUNDS // 2:
            client.tokens.transfer(address, tokens=DEMO_MARKET_FUNDS)
    if not provider.market.provider().offers:
        provider.market.register_provider(
            stake=DEMO_PROVIDER_STAKE, models=["digits-cnn"], price=DEMO_PROVIDER_PRICE
        )
    return root


def run_market_demo(client: Client, *, sample: int = 1, timeout_s: float = 180.0) -> MarketDemoRun:
    """Request a digits-CNN prediction through the market, wait until it is final, keep the
    receipt and verify it (the provider and watcher daemons must be running)."""
    with np.load(DIGITS_DATA) as data:
        x = data["x_test"][sample].reshape(DEMO_INPUT_SHAPES[DIGITS_CNN])
        expected = int(data["y_test"][sample])
    ticket = client.market.request("digits-cnn", x)
    client.market.wait(ticket.request_id, timeout_s=timeout_s)
    receipt = client.market.receipt(ticket)
    label = int(np.argmax(np.asarray(receipt.output))) if receipt.output else -1
    return MarketDemoRun(
        receipt, kept_receipt_path(receipt), client.verify(receipt), expected, label
    )
