"""A busy local network is still the network (issue 14 item 19): commands use the recorded
network of `aic up` while its processes live, even when a health probe times out, and never
fall back silently to another endpoint; `aic up` never starts a second network beside a busy
one; with nothing recorded, errors say which endpoint was tried and why.

The devnet is served in-process; "busy" is a health probe that times out.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import aicommons.sdk.network as network
from aicommons.chain.devnet import DevnetServer, free_port
from aicommons.cli import app
from aicommons.sdk.client import Client
from aicommons.sdk.errors import ClientError

pytestmark = pytest.mark.network


@pytest.fixture()
def aic_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIC_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture()
def devnet(tmp_path: Path) -> Iterator[DevnetServer]:
    with DevnetServer(tmp_path / "chain", port=0) as server:
        yield server


@pytest.fixture()
def client_urls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The JSON-RPC URL of every `Client` the command builds."""
    seen: list[str] = []
    original = Client.__init__

    def recording_init(self: Client, rpc_url: str, *args: Any, **kwargs: Any) -> None:
        seen.append(rpc_url)
        original(self, rpc_url, *args, **kwargs)

    monkeypatch.setattr(Client, "__init__", recording_init)
    return seen


def record_network(rpc_url: str) -> network.NetworkState:
    """Write network.json as `aic up` does, with this test process standing in for both
    children (so their pids are alive)."""
    state = network.NetworkState(os.getpid(), rpc_url, os.getpid(), "http://127.0.0.1:9")
    network.network_file().write_text(json.dumps(state.to_json()))
    return state


def make_busy(monkeypatch: pytest.MonkeyPatch, answers_after: int | None = None) -> list[int]:
    """Health probes time out (after a short wait, as a busy devnet's would); with
    `answers_after`, they succeed from that probe on. Returns the probe counter."""
    probes = [0]

    def slow_probe(url: str, timeout_s: float = 1.0) -> bool:
        probes[0] += 1
        time.sleep(0.05)
        return answers_after is not None and probes[0] > answers_after

    monkeypatch.setattr(network, "rpc_answers", slow_probe)
    monkeypatch.setattr(network, "node_answers", slow_probe)
    monkeypatch.setattr(network, "_alive", lambda pid: pid == os.getpid())
    return probes


def test_a_busy_recorded_network_is_used_not_8545(
    aic_home: Path,
    devnet: DevnetServer,
    client_urls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record_network(devnet.url)
    make_busy(monkeypatch)
    result = CliRunner().invoke(app, ["models", "--json"])
    assert client_urls == [devnet.url]
    assert "8545" not in result.output
    assert f"the local network at {devnet.url} is busy" in result.output


def test_an_explicit_rpc_wins_over_the_recorded_network(
    aic_home: Path,
    devnet: DevnetServer,
    client_urls: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record_network("http://127.0.0.1:9")
    make_busy(monkeypatch)
    CliRunner().invoke(app, ["models", "--json", "--rpc", devnet.url])
    assert client_urls == [devnet.url]


def test_without_a_network_the_error_names_the_endpoint_and_why(
    aic_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing recorded: the conventional default is tried (here a port nobody listens on, so
    # the test does not depend on what else runs on this machine) and the error says so.
    silent = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(network, "DEFAULT_RPC_URL", silent)
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code != 0
    message = str(result.exception)
    assert silent in message
    assert "no local network is running" in message
    assert "\n" not in message


def test_up_waits_for_a_busy_network_instead_of_starting_another(
    aic_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_start(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a second network was started beside a busy one")

    monkeypatch.setattr(network, "launch_devnet_process", must_not_start)
    recorded = record_network("http://127.0.0.1:9")
    probes = make_busy(monkeypatch, answers_after=3)
    state, reused = network.start_network()
    assert (state, reused) == (recorded, True)
    assert probes[0] > 3

    make_busy(monkeypatch)
    with pytest.raises(ClientError, match="runs but has not answered for 0.3 s"):
        network.start_network(busy_timeout_s=0.3)
