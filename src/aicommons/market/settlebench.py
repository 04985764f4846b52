"""`settle_s` of `aic bench market`: wall-clock seconds from a dishonest post to the slash, on
the embedded devnet, with the watcher daemon running and a liar that defends its wrong trace.

A devnet and a storage node run in-process on threads (loopback only) under a temporary
`$AIC_HOME`; the model is published, its graph registered, and one wrong result (one element of
the widest layer changed, roots recomputed) is posted and played out to the end. Measures and
returns; asserts nothing about the target.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from aicommons.market.daemon import EventLog, is_transient
from aicommons.market.dispute import TraceCommitments
from aicommons.market.play import chain_now, output_of, provider_turn
from aicommons.runtime import ModelPackage, Trace, trace_root

AIC = 10**18
OPERATOR, LIAR, WATCHER, REQUESTER = "dev0", "dev6", "dev4", "dev5"


@contextmanager
def _network() -> Iterator[tuple[str, str, Path]]:
    """(rpc url, storage url, home): a devnet and a storage node on threads, gone afterwards."""
    import uvicorn

    from aicommons.chain.devnet import DevnetServer
    from aicommons.storage.node import create_app, node_origins
    from aicommons.storage.process import free_port, node_answers
    from aicommons.storage.store import LocalStore

    with tempfile.TemporaryDirectory(prefix="aic-settle-") as folder:
        home = Path(folder)
        previous = os.environ.get("AIC_HOME")
        os.environ["AIC_HOME"] = str(home)
        devnet = DevnetServer(home / "devnet", port=0).start()
        port = free_port()
        app = create_app(LocalStore(home / "storage"), origins=node_origins("127.0.0.1", port))
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        storage_url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(400):
                if node_answers(storage_url):
                    break
                time.sleep(0.05)
            yield devnet.url, storage_url, home
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            devnet.stop()
            if previous is None:
                os.environ.pop("AIC_HOME", None)
            else:
                os.environ["AIC_HOME"] = previous


def _corrupt(package: ModelPackage, trace: Trace) -> Trace:
    """`trace` with one element of its widest layer changed and the root recomputed."""
    rows = [layer.out_shape[0] for layer in package.layers]
    leaf = 1 + rows.index(max(rows))
    values = [np.array(value, copy=True) for value in trace.values]
    flat = values[leaf].reshape(-1)
    flat[len(flat) // 2 + 1] ^= 1
    return Trace(trace.names, tuple(values), (trace_root([value[0] for value in values]),))


def measure_settle_s(name: str, package: ModelPackage, x: np.ndarray) -> float:
    """Seconds from the wrong post being mined to the liar's Slashed event."""
    from aicommons.chain.accounts import load_account
    from aicommons.market.inputs import prepare_sample
    from aicommons.market.watcher import Watcher
    from aicommons.sdk.client import Client
    from aicommons.sdk.deployment import deploy_suite

    with _network() as (rpc_url, storage_url, home):

        def client(account: str) -> Client:
            return Client(rpc_url, account=load_account(account, None), storage_nodes=[storage_url])

        operator = client(OPERATOR)
        deploy_suite(operator.w3, operator.account)
        path = package.save(home / f"{name}.aicm")
        operator.registry.publish(path, model=name, licence="MIT", fee=0)
        for account in (LIAR, WATCHER, REQUESTER):
            operator.tokens.transfer(client(account).account.address, tokens=1_000 * AIC)
        liar, requester = client(LIAR), client(REQUESTER)
        liar.market.register_provider(stake=200 * AIC, models=[name])
        stop = threading.Event()
        watcher = Watcher(client(WATCHER), log=EventLog("watcher", stream=_Discard()), poll_s=0.2)
        threads = [threading.Thread(target=watcher.run, args=(stop,), daemon=True)]
        sample = prepare_sample(package, x)
        bad = _corrupt(package, package.trace(sample))
        mine = TraceCommitments(package, [value[0] for value in bad.values])
        ticket = requester.market.request(name, sample, provider=liar.account.address)
        liar.market.claim(ticket.request_id)
        threads.append(
            threading.Thread(
                target=_defend, args=(liar, ticket.request_id, mine, stop), daemon=True
            )
        )
        for thread in threads:
            thread.start()
        try:
            liar.market.post_result(ticket.request_id, bad, package=package)
            posted = time.monotonic()
            while time.monotonic() - posted < 600:
                slashed = requester.market.events(
                    names=("Slashed",), filters={"request_id": ticket.request_id}
                )
                if slashed:
                    return time.monotonic() - posted
                time.sleep(0.2)
            raise TimeoutError(f"{name}: the wrong result was not slashed within 600 s")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)


def _defend(client: Any, request_id: int, mine: TraceCommitments, stop: threading.Event) -> None:
    """The liar defends its trace like a provider daemon would (its reveals are consistent;
    the one-step decides)."""
    while not stop.is_set():
        try:
            for event in client.market.events(
                names=("Challenged",), filters={"request_id": request_id}
            ):
                state = client.market.dispute_state(int(event.args["dispute_id"]))
                provider_turn(client, state, mine, output=output_of(mine), now=chain_now(client))
        except Exception as exc:  # a move that lost a race is retried on the next poll
            if not is_transient(exc):
                raise
        stop.wait(0.2)


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None
