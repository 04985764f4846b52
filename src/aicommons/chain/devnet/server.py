"""Serves the devnet's JSON-RPC over HTTP (uvicorn, raw ASGI) in-process or as a subprocess,
and waits for a devnet to answer.

It binds 127.0.0.1 unless told otherwise and never answers a request with a traceback. Chain
work runs on worker threads by lane (`rpc.Lane`), so a long eth_call or a long transaction
never keeps the event loop from answering eth_blockNumber.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import uvicorn

from aicommons.chain.devnet.accounts import DEV_ACCOUNTS, DEV_KEYS_WARNING
from aicommons.chain.devnet.control import rpc_request
from aicommons.chain.devnet.node import CHAIN_ID, DEFAULT_RPC_GAS_CAP, DevnetChain
from aicommons.chain.devnet.rpc import PARSE_ERROR, Lane, RpcDispatcher
from aicommons.chain.errors import DevnetError, DevnetStartError
from aicommons.commit.json_input import JsonInputError, parse_json

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8545
MAX_REQUEST_BYTES = 5 * 1024 * 1024
"""Largest JSON-RPC body accepted: geth's default. A contract at the initcode limit (48 KiB) is
under 100 KB of hex; the bound keeps one request from costing the node memory it cannot spare."""
_TOO_LARGE = b'{"error": "request body larger than %d bytes"}' % MAX_REQUEST_BYTES
_PARSED_INLINE_BYTES = 64 * 1024
"""Bodies up to this size are parsed on the event loop (microseconds); larger ones on a reader
thread, so a few megabytes of JSON never stall the quick answers."""
_LANE_THREADS = {Lane.READ: 4, Lane.CALL: 2, Lane.WRITE: 1}
"""Threads per lane: calls get their own two (a third waits its turn instead of slowing the
rest), writes one (they are serialised by the chain anyway)."""

AsgiReceive = Callable[[], Awaitable[dict[str, Any]]]
AsgiSend = Callable[[dict[str, Any]], Awaitable[None]]


def default_data_dir() -> Path:
    """$AIC_HOME/devnet, with AIC_HOME defaulting to ~/.aicommons."""
    home = os.environ.get("AIC_HOME") or str(Path.home() / ".aicommons")
    return Path(home).expanduser() / "devnet"


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind the listening socket up front so a taken port is a one-line error, not a log line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DevnetStartError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


class JsonRpcApp:
    """A minimal ASGI application: POST a JSON-RPC payload, get the reply (CORS open, so a
    browser wallet or dapp page on localhost can talk to it).

    Each payload runs in its lane: inline methods on the event loop, the rest on that lane's
    threads; `close()` stops the threads."""

    def __init__(self, dispatcher: RpcDispatcher) -> None:
        self.dispatcher = dispatcher
        self._pools = {
            chosen: ThreadPoolExecutor(threads, thread_name_prefix=f"devnet-{chosen.name.lower()}")
            for chosen, threads in _LANE_THREADS.items()
        }

    def close(self) -> None:
        """Stop the worker threads (a call already running finishes on its own)."""
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    def _answer(self, payload: Any) -> bytes:
        reply = self.dispatcher.handle_payload(payload)
        return b"" if reply is None else json.dumps(reply).encode()

    async def __call__(self, scope: dict[str, Any], receive: AsgiReceive, send: AsgiSend) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["method"] == "OPTIONS":
            await _respond(send, 204, b"")
            return
        if scope["method"] != "POST":
            await _respond(send, 405, b'{"error": "POST a JSON-RPC request"}')
            return
        declared = _declared_length(scope)
        if declared is not None and declared > MAX_REQUEST_BYTES:
            # Refused before a byte of the body is read; the server closes the connection.
            await _respond(send, 413, _TOO_LARGE)
            return
        body = bytearray()
        while True:
            message = await receive()
            body.extend(message.get("body", b""))
            if len(body) > MAX_REQUEST_BYTES:  # chunked bodies declare no length
                await _respond(send, 413, _TOO_LARGE)
                return
            if not message.get("more_body"):
                break
        loop = asyncio.get_running_loop()
        try:
            if len(body) <= _PARSED_INLINE_BYTES:
                payload = _parse_body(body)
            else:
                payload = await loop.run_in_executor(self._pools[Lane.READ], _parse_body, body)
        except JsonInputError:
            await _respond(send, 200, _PARSE_ERROR_REPLY)
            return
        chosen = self.dispatcher.lane_of(payload)
        if chosen is Lane.INLINE:
            encoded = self._answer(payload)
        else:
            encoded = await loop.run_in_executor(self._pools[chosen], self._answer, payload)
        await _respond(send, 200, encoded)


_PARSE_ERROR_REPLY = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": PARSE_ERROR, "message": "parse error: body is not JSON"},
    }
).encode()


def _parse_body(body: bytes | bytearray) -> Any:
    return parse_json(body, what="request body", max_bytes=MAX_REQUEST_BYTES)


def _declared_length(scope: dict[str, Any]) -> int | None:
    """The request's Content-Length, if it sent one (uvicorn has already refused a malformed
    one with 400)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _respond(send: AsgiSend, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"access-control-allow-origin", b"*"),
                (b"access-control-allow-headers", b"content-type"),
                (b"access-control-allow-methods", b"POST, OPTIONS"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _GracefulServer(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown, so the process would die
    by the signal before our cleanup runs; a clean stop should exit with status 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {
            handled: signal.signal(handled, self.handle_exit)
            for handled in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for handled, handler in previous.items():
                signal.signal(handled, handler)


class DevnetServer:
    """The devnet chain in `data_dir` served on http://host:port.

    `serve_forever()` blocks (the CLI); `start()` serves from a background thread and `stop()`
    ends it (tests, `aic up`). Port 0 picks a free port; `url` tells which.
    """

    def __init__(
        self,
        data_dir: Path,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        fsync_every_block: bool = False,
        rpc_gas_cap: int = DEFAULT_RPC_GAS_CAP,
    ) -> None:
        self.chain = DevnetChain(
            data_dir, fsync_every_block=fsync_every_block, rpc_gas_cap=rpc_gas_cap
        )
        try:
            self._socket = bind_socket(host, port)
        except DevnetStartError:
            self.chain.close()
            raise
        self.host = host
        self.port = self._socket.getsockname()[1]
        self._app = JsonRpcApp(RpcDispatcher(self.chain))
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
        )
        self._server = _GracefulServer(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The JSON-RPC endpoint."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve until SIGINT/SIGTERM (uvicorn handles both), then close the database."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._app.close()
            self.chain.close()

    def start(self) -> DevnetServer:
        """Serve from a daemon thread; returns once the server accepts requests."""
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise DevnetStartError("devnet server thread did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving and close the database."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._socket.close()
        self._app.close()
        self.chain.close()

    def __enter__(self) -> DevnetServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def startup_banner(server: DevnetServer) -> str:
    """What `aic devnet` prints at start: where it listens, where data lives, and the keys."""
    lines = [
        f"aicommons devnet (chain id {CHAIN_ID}) listening on {server.url}",
        f"data: {server.chain.data_dir}  (head block {server.chain.head().block_number})",
        "",
        "!" * 78,
        f"!! {DEV_KEYS_WARNING}",
        "!" * 78,
        "",
        "Development accounts (10,000 ETH each at genesis):",
    ]
    for account in DEV_ACCOUNTS:
        lines.append(f"  ({account.index}) {account.address}  key {account.private_key}")
    lines.append("")
    lines.append("Ctrl-C stops the devnet; its chain stays in the data directory.")
    return "\n".join(lines)


def rpc_answers(url: str, timeout_s: float = 1.0) -> bool:
    """Whether a JSON-RPC endpoint at `url` answers eth_chainId."""
    try:
        rpc_request(url, "eth_chainId", timeout_s=timeout_s)
    except DevnetError:
        return False
    return True


def wait_for_rpc(
    url: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until `url` answers; fail early if `process` (the node) exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise DevnetStartError(f"node at {url} exited with status {process.returncode}")
        if rpc_answers(url, timeout_s=0.5):
            return
        time.sleep(0.05)
    raise DevnetStartError(f"node at {url} did not answer within {timeout_s:.0f} s")


def wait_for_rpc_or_kill(url: str, timeout_s: float, process: subprocess.Popen[bytes]) -> None:
    """`wait_for_rpc`, but a node that never answers is killed before the error propagates."""
    try:
        wait_for_rpc(url, timeout_s, process)
    except DevnetStartError:
        process.kill()
        process.wait()
        raise


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that was free a moment ago (for starting nodes in tests and benchmarks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def launch_devnet_process(
    data_dir: Path,
    port: int | None = None,
    host: str = DEFAULT_HOST,
    *,
    timeout_s: float = 30.0,
    log_path: Path | None = None,
    rpc_gas_cap: int | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `python -m aicommons.chain.devnet` and wait until it answers.

    Returns the process and its URL; the caller owns the process (terminate() it to stop it
    cleanly). Output goes to `log_path` (default: data_dir/devnet.log).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    chosen_port = port if port is not None else free_port(host)
    log_file = open(log_path or data_dir / "devnet.log", "ab")  # noqa: SIM115 (owned by the child)
    command = [
        sys.executable,
        "-m",
        "aicommons.chain.devnet",
        "--data",
        str(data_dir),
        "--host",
        host,
        "--port",
        str(chosen_port),
    ]
    if rpc_gas_cap is not None:
        command += ["--rpc-gas-cap", str(rpc_gas_cap)]
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    log_file.close()
    url = f"http://{host}:{chosen_port}"
    wait_for_rpc_or_kill(url, timeout_s, process)
    return process, url
