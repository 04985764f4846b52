"""An in-process market network for the off-chain flow tests: the devnet and a storage node on
threads, the suite and the market deployed with short periods, the digits CNN published with a
fee and its graph root (publishing brings its header into the game), and AIC handed to the
provider, watcher and requester accounts. One network serves the whole session (setting one up
costs most of a minute); each test stops the daemons it started.

Daemons run on threads here (`Daemons`), so a test plays every role without subprocesses.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import uvicorn

from aicommons.chain.accounts import load_account
from aicommons.chain.deploy import MarketParams
from aicommons.chain.devnet import DevnetServer
from aicommons.demo import DIGITS_CNN, DIGITS_DATA
from aicommons.market.daemon import EventLog
from aicommons.market.provider import Provider, prepare_versions
from aicommons.market.watcher import Watcher
from aicommons.sdk.client import Client
from aicommons.sdk.demo import demo_package
from aicommons.sdk.deployment import deploy_suite
from aicommons.sdk.types import Attribution
from aicommons.storage.node import create_app, node_origins
from aicommons.storage.process import free_port, node_answers
from aicommons.storage.store import LocalStore

AIC = 10**18
CNN_FEE = AIC // 100
PARAMS = MarketParams(
    window=15,
    move_period=15,
    reveal_period=8,
    finalise_grace=4,
    unbonding_delay=2,
    min_stake=100 * AIC,
    claim_lock=10 * AIC,
    challenge_bond=10 * AIC,
)
"""Short periods so a dispute or an expiry settles within seconds of wall-clock time."""
PROVIDERS = ("dev1", "dev2", "dev3")
WATCHER = "dev4"
REQUESTER = "dev5"
LIAR = "dev6"
CHALLENGER = "dev7"


@dataclass
class MarketNetwork:
    rpc_url: str
    storage_url: str
    home: Path
    params: MarketParams

    def client(self, account: str | None = "dev0") -> Client:
        return Client(
            self.rpc_url,
            account=load_account(account, None) if account else None,
            storage_nodes=[self.storage_url],
        )


def digits_sample(index: int = 0) -> np.ndarray:
    with np.load(DIGITS_DATA) as data:
        return data["x_test"][index].reshape(1, 8, 8)


@pytest.fixture(scope="session")
def market_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MarketNetwork]:
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
    net = MarketNetwork(devnet.url, storage_url, home, PARAMS)
    try:
        admin = net.client()
        deploy_suite(admin.w3, admin.account, market_params=PARAMS)
        admin.registry.publish(
            demo_package(DIGITS_CNN),
            model="digits-cnn",
            licence="MIT",
            attribution=[Attribution(admin.account.address, "author", 7000)],
            fee=CNN_FEE,
        )
        for name in (*PROVIDERS, WATCHER, REQUESTER, LIAR, CHALLENGER):
            admin.tokens.transfer(load_account(name, None).address, tokens=10_000 * AIC)
        patch.undo()  # each test points AIC_HOME here itself (`market_home`)
        yield net
    finally:
        patch.undo()
        server.should_exit = True
        thread.join(timeout=10)
        devnet.stop()


@pytest.fixture(autouse=True)
def market_home(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests on the market network see its deployment and keys under its AIC_HOME."""
    if "market_net" in request.fixturenames:
        net = request.getfixturevalue("market_net")
        monkeypatch.setenv("AIC_HOME", str(net.home))


@dataclass
class Daemons:
    """Providers and watchers running on threads; `stop()` ends them all."""

    net: MarketNetwork
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    logs: list[EventLog] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def _start(self, name: str, run: Callable[[threading.Event], None]) -> None:
        def target() -> None:
            try:
                run(self.stop_event)
            except BaseException as exc:  # a daemon bug must fail the test, not vanish
                self.errors.append(exc)

        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def log(self, who: str) -> EventLog:
        log = EventLog(who, stream=io.StringIO(), keep=2000)
        self.logs.append(log)
        return log

    def provider(
        self,
        account: str,
        models: tuple[str, ...] = ("digits-cnn",),
        *,
        kind: type[Provider] = Provider,
    ) -> Provider:
        """A provider daemon of class `kind` (a test's dishonest subclass, say) on a thread."""
        client = self.net.client(account)
        provider = kind(
            client, prepare_versions(client, list(models)), log=self.log(account), poll_s=0.2
        )
        self._start(f"provider-{account}", provider.run)
        return provider

    def watcher(self, account: str = WATCHER) -> Watcher:
        watcher = Watcher(self.net.client(account), log=self.log(account), poll_s=0.2)
        self._start(f"watcher-{account}", watcher.run)
        return watcher

    def lines(self) -> list[str]:
        return [line for log in self.logs for line in log.lines]

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=30)
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def daemons(market_net: MarketNetwork) -> Iterator[Daemons]:
    running = Daemons(market_net)
    try:
        yield running
    finally:
        running.stop()


def register_providers(net: MarketNetwork, *names: str, stake: int = 200 * AIC) -> None:
    """Stake and offer the digits CNN from each account (once per module)."""
    for name in names:
        client = net.client(name)
        info = client.market.provider()
        if not info.offers:
            client.market.register_provider(stake=stake, models=["digits-cnn"], price=AIC // 100)
