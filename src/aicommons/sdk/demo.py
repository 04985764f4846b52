"""The demo that `aic up` runs: publish the shipped digits models, infer, verify.

It only composes public SDK calls, so it doubles as a worked example of the SDK. Packages are
quantised once and cached under `$AIC_HOME/demo`; nothing here is special-cased by the layers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aicommons.demo import DIGITS_CNN, DIGITS_DATA, DIGITS_MLP
from aicommons.home import state_dir
from aicommons.sdk.client import Client
from aicommons.sdk.receipt import MarketReceipt, Receipt, VerificationReport, kept_receipt_path
from aicommons.sdk.types import Attribution, PublishResult

if TYPE_CHECKING:
    from aicommons.runtime.text import TextModel

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


# -- the semantic-search demo: all-MiniLM-L6-v2 served by the market ---------------------------

SEARCH_MODEL = "all-minilm-l6-v2"
SEARCH_STATUS_FILE = "search-demo.json"
"""Under `$AIC_HOME`: {"state": "preparing" | "ready" | "failed", "detail": ..., "pid": ...}."""
SEARCH_LOG_FILE = "search-demo.log"


@dataclass(frozen=True)
class SearchStatus:
    state: str
    detail: str = ""
    pid: int = 0


@dataclass(frozen=True)
class SearchHit:
    score: float
    document: str


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[SearchHit]
    receipt: MarketReceipt
    receipt_path: Path
    report: VerificationReport


def minilm_demo_package() -> Path:
    """all-MiniLM-L6-v2 quantised with the shipped calibration texts, once, cached under
    `$AIC_HOME/demo` (saved atomically: a killed run leaves no file that looks complete)."""
    from aicommons.demo import MINILM_CALIB, minilm_checkpoint_dir
    from aicommons.runtime.bert_import import quantize_checkpoint
    from aicommons.runtime.text import read_text_lines

    target = state_dir("demo") / f"{SEARCH_MODEL}.aicm"
    if not target.is_file():
        texts = read_text_lines(MINILM_CALIB)
        quantize_checkpoint(minilm_checkpoint_dir(), texts).save(target)
    return target


def prepare_search_demo(client: Client, *, provider: Client) -> PublishResult:
    """Publish MiniLM (storage + registry, market mode) and have the demo provider offer it;
    the digits market demo (`prepare_market_demo`) must have funded and staked the provider.
    Idempotent."""
    author = [Attribution(client.account.address, "author", 7000)]
    published = client.registry.publish(
        minilm_demo_package(), model=SEARCH_MODEL, licence="Apache-2.0", attribution=author
    )
    client.market.register_graph(SEARCH_MODEL)
    offered = {offer["version_id"] for offer in provider.market.provider().offers}
    if published.version_id.lower() not in offered:
        provider.market.register_provider(stake=0, models=[SEARCH_MODEL], price=DEMO_PROVIDER_PRICE)
    return published


def search_status_path() -> Path:
    return state_dir() / SEARCH_STATUS_FILE


def write_search_status(state: str, detail: str = "", pid: int | None = None) -> None:
    import json
    import os

    from aicommons.fsutil import atomic_write_bytes

    record = {"state": state, "detail": detail, "pid": os.getpid() if pid is None else pid}
    atomic_write_bytes(search_status_path(), json.dumps(record).encode())


def read_search_status() -> SearchStatus | None:
    """The search demo's recorded state, or None if `aic up` never started it."""
    import json

    try:
        record = json.loads(search_status_path().read_text())
        return SearchStatus(str(record["state"]), str(record["detail"]), int(record["pid"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return SearchStatus("failed", f"unreadable status file {search_status_path()}")


def start_search_demo(rpc_url: str, storage_url: str) -> int:
    """Prepare the search demo in a child process (`aic search-prepare`), so `aic up` does not
    wait for MiniLM's quantisation; its output goes to `$AIC_HOME/search-demo.log`."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "aicommons", "search-prepare"]
    with open(state_dir() / SEARCH_LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            [*command, "--rpc", rpc_url, "--node", storage_url],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    write_search_status("preparing", "quantising and publishing all-MiniLM-L6-v2", process.pid)
    return process.pid


def stop_search_demo() -> None:
    """Stop a still-preparing search demo (`aic down`, Ctrl-C on `aic up`)."""
    from aicommons.sdk.network import _alive, _stop_pid

    status = read_search_status()
    if status and status.state == "preparing" and status.pid and _alive(status.pid):
        _stop_pid(status.pid)
        write_search_status("failed", "stopped with the network before it was ready", 0)


def run_search_preparation(client: Client, *, provider: Client) -> PublishResult:
    """What the child of `start_search_demo` does: prepare, then restart the demo provider
    daemon so it serves MiniLM next to the digits CNN; the status file says how it ended."""
    from dataclasses import replace

    from aicommons.sdk.network import _stop_pid, running_network, start_market_daemons

    write_search_status("preparing", "quantising and publishing all-MiniLM-L6-v2")
    try:
        published = prepare_search_demo(client, provider=provider)
        state = running_network()
        if state is None:
            raise RuntimeError("the local network stopped")
        if state.provider_pid:
            _stop_pid(state.provider_pid)
        start_market_daemons(
            replace(state, provider_pid=0),
            provider=DEMO_PROVIDER,
            watcher=DEMO_WATCHER,
            models=("digits-cnn", SEARCH_MODEL),
        )
    except BaseException as exc:
        write_search_status("failed", f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise
    write_search_status("ready", f"{SEARCH_MODEL} {published.version_id}")
    return published


def wait_search_ready(
    timeout_s: float, on_wait: Callable[[SearchStatus], None] | None = None
) -> SearchStatus:
    """Block while the search demo is preparing; ValueError (one line) if it failed or never
    started, TimeoutError if still preparing after `timeout_s`."""
    import time

    from aicommons.sdk.network import _alive

    limit = time.monotonic() + timeout_s
    announced = False
    while True:
        status = read_search_status()
        if status is None:
            raise ValueError("the search demo was not started: run `aic up` first")
        if status.state == "ready":
            return status
        if status.state == "failed":
            raise ValueError(
                f"the search demo failed: {status.detail} (see $AIC_HOME/{SEARCH_LOG_FILE})"
            )
        if status.pid and not _alive(status.pid):
            raise ValueError(
                f"the search demo's preparation stopped (see $AIC_HOME/{SEARCH_LOG_FILE})"
            )
        if time.monotonic() >= limit:
            raise TimeoutError(f"the search demo is still preparing after {timeout_s:.0f} s")
        if not announced and on_wait is not None:
            on_wait(status)
            announced = True
        time.sleep(1.0)


def rank(query: np.ndarray, documents: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Indices and cosine similarities of the `k` documents closest to `query` (ties: the
    earlier document first)."""
    q = np.asarray(query, dtype=np.float64)
    d = np.asarray(documents, dtype=np.float64)
    scores = d @ q / np.maximum(np.linalg.norm(d, axis=1) * np.linalg.norm(q), 1e-12)
    order = np.argsort(-scores, kind="stable")[: max(k, 0)]
    return [(int(i), float(scores[i])) for i in order]


def document_embeddings(model: TextModel, documents: list[str]) -> np.ndarray:
    """The exact embeddings of the shipped documents by the package, cached next to the demo
    package, keyed by its version id and the documents' hash."""
    import hashlib
    import io

    from aicommons.runtime.package import write_atomic

    key = hashlib.sha256("\n".join(documents).encode()).hexdigest()[:16]
    version = model.package.version_id.hex()[:16]
    cache = state_dir("demo") / f"search_docs-{version}-{key}.npy"
    if cache.is_file():
        return np.load(cache)
    vectors = model.embed(documents).vectors
    buffer = io.BytesIO()
    np.save(buffer, vectors)
    write_atomic(cache, buffer.getvalue())
    return vectors


def search(client: Client, query: str, k: int = 3, *, timeout_s: float = 300.0) -> SearchResult:
    """Embed `query` through the market (MiniLM, finalised, receipt kept and verified), embed
    the shipped documents locally with the same package, and rank them by cosine."""
    from aicommons.demo import SEARCH_DOCS
    from aicommons.runtime.text import TextModel, read_text_lines

    if not query.strip():
        raise ValueError("the query is empty")
    if k < 1:
        raise ValueError(f"k must be at least 1 (got {k})")
    version = client.registry.resolve(SEARCH_MODEL)
    package = client.fetch_package(version)
    model = TextModel(package)
    ticket = client.market.request(SEARCH_MODEL, query)  # tokenised by the SDK, as any text
    info = client.market.wait(ticket.request_id, timeout_s=timeout_s)
    if info.status != "finalised":
        raise ValueError(f"request {ticket.request_id} ended {info.status}, not finalised")
    receipt = client.market.receipt(ticket)
    report = client.verify(receipt)
    documents = read_text_lines(SEARCH_DOCS)
    vectors = document_embeddings(model, documents)
    embedding = package.dequantize_output(np.asarray(receipt.output, dtype=np.int32))
    hits = [SearchHit(score, documents[i]) for i, score in rank(embedding, vectors, k)]
    return SearchResult(query, hits, receipt, kept_receipt_path(receipt), report)
