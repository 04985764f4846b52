"""An in-process network for explorer tests: the devnet and a storage node on threads, the suite
deployed, the demo models published as `aic up` publishes them, and one paid inference.
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
