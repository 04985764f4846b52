"""An in-process network for SDK tests: the devnet and a storage node on threads (no
subprocesses), the suite deployed, and the demo digits MLP published on-chain once for the whole
sdk package (no test relies on a fresh chain: the one that registers a model uses its own name).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import uvicorn

from aicommons.chain.accounts import load_account
from aicommons.chain.devnet import DevnetServer
from aicommons.demo import DIGITS_DATA
from aicommons.sdk.client import Client
from aicommons.sdk.demo import DEMO_FEE, demo_package
from aicommons.sdk.deployment import deploy_suite
from aicommons.sdk.receipt import Receipt
from aicommons.sdk.types import Attribution, PublishResult
from aicommons.storage.node import create_app, node_origins
from aicommons.storage.process import free_port, node_answers
from aicommons.storage.store import LocalStore


@dataclass
class LocalNetwork:
    rpc_url: str
    storage_url: str
    home: Path

    def client(self, account: str | None = "dev0") -> Client:
        return Client(
            self.rpc_url,
            account=load_account(account, None) if account else None,
            storage_nodes=[self.storage_url],
        )


@pytest.fixture(scope="package")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    home = tmp_path_factory.mktemp("aic-home")
    patch = pytest.MonkeyPatch()
    patch.setenv("AIC_HOME", str(home))
    devnet = DevnetServer(home / "devnet", port=0).start()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(LocalStore(home / "storage"), origins=node_origins("127.0.0.1", port)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    storage_url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        if node_answers(storage_url):
            break
        threading.Event().wait(0.05)
    local = LocalNetwork(devnet.url, storage_url, home)
    client = local.client()
    deploy_suite(client.w3, client.account)
    try:
        yield local
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        devnet.stop()
        patch.undo()


@dataclass
class PublishedMlp:
    result: PublishResult
    receipt: Receipt
    sample: np.ndarray


@pytest.fixture(scope="package")
def published_mlp(network: LocalNetwork) -> PublishedMlp:
    """The digits MLP published on-chain with a fee, and one paid inference's receipt."""
    client = network.client()
    result = client.registry.publish(
        demo_package_path(),
        model="digits-mlp",
        licence="MIT",
        attribution=[Attribution(client.account.address, "author", 7000)],
        fee=DEMO_FEE,
        onchain=True,
    )
    with np.load(DIGITS_DATA) as data:
        sample = data["x_test"][0]
    receipt = client.inference.infer("digits-mlp", sample)
    return PublishedMlp(result, receipt, sample)


def demo_package_path() -> Path:
    from aicommons.demo import DIGITS_MLP

    return demo_package(DIGITS_MLP)
