"""What keeps the market's daemons (`aic provider serve`, `aic watch`) running: one poll loop
with exponential backoff, a one-line event log, and the rule for which errors are transient.

A transient error (a node that is down or slow, a transaction that lost a race, a peer that
refused) is logged on one line and retried later; it never ends the loop. Anything else is a bug
and propagates with its traceback. Pure scheduling: no chain, storage or model code here.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from aicommons.errors import AicommonsError

_REMOTE_ERROR_ROOTS = {"web3", "requests", "httpx", "urllib3", "eth_utils", "eth_abi", "aiohttp"}


def is_transient(exc: BaseException) -> bool:
    """Whether a daemon should log `exc` and go on: expected failures (`AicommonsError`, a
    refused or failed transaction), I/O errors and errors raised by the JSON-RPC / HTTP client
    libraries (a node that is down, slow or said no). Everything else is a bug."""
    if isinstance(exc, AicommonsError | OSError | TimeoutError):
        return True
    root = type(exc).__module__.split(".")[0]
    return root in _REMOTE_ERROR_ROOTS


def one_line(exc: BaseException) -> str:
    """`exc` as one line: its first line of text, or its type name."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return first or type(exc).__name__


@dataclass
class EventLog:
    """One line per event on `stream`: `<UTC time> <who> <message>`; thread-safe."""

    who: str
    stream: TextIO | None = None
    lines: list[str] = field(default_factory=list)
    keep: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        line = f"{stamp} {self.who} {message}"
        with self._lock:
            if self.keep:
                self.lines.append(line)
                del self.lines[: -self.keep]
            stream = self.stream if self.stream is not None else sys.stdout
            stream.write(line + "\n")
            stream.flush()


@dataclass(frozen=True)
class Backoff:
    """Delays after consecutive failures: `initial * factor**(n-1)`, at most `maximum` s."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return min(self.maximum, self.initial * self.factor ** (failures - 1))


MOVE_BACKOFF = Backoff(initial=0.3, factor=2.0, maximum=2.0)
"""Retries of a dispute move stay frequent: a move has a deadline, and missing it loses."""


@dataclass
class Retry:
    """Per-key retry bookkeeping: after a failure a key waits its backoff before the next try."""

    backoff: Backoff = field(default_factory=Backoff)
    _failures: dict[object, int] = field(default_factory=dict)
    _not_before: dict[object, float] = field(default_factory=dict)

    def ready(self, key: object, now: float | None = None) -> bool:
        moment = time.monotonic() if now is None else now
        return moment >= self._not_before.get(key, 0.0)

    def failed(self, key: object, now: float | None = None) -> float:
        """Record a failure of `key`; returns the delay before it may be tried again."""
        moment = time.monotonic() if now is None else now
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = self.backoff.delay(failures)
        self._not_before[key] = moment + delay
        return delay

    def succeeded(self, key: object) -> None:
        self._failures.pop(key, None)
        self._not_before.pop(key, None)

    def failures(self, key: object) -> int:
        return self._failures.get(key, 0)


def attempt(
    key: object, action: Callable[[], object], *, retry: Retry, log: EventLog, what: str
) -> bool:
    """Run `action` once if `key` is due; a transient failure is logged and backed off.

    Returns True when the action ran and succeeded. One failing item never blocks the others.
    """
    if not retry.ready(key):
        return False
    try:
        action()
    except Exception as exc:
        if not is_transient(exc):
            raise
        delay = retry.failed(key)
        log(f"{what} failed ({one_line(exc)}); retrying in {delay:.1f}s")
        return False
    retry.succeeded(key)
    return True


def run_loop(
    step: Callable[[], float],
    *,
    stop: threading.Event,
    log: EventLog,
    backoff: Backoff | None = None,
) -> None:
    """Call `step` until `stop` is set; `step` returns the seconds to wait before the next call.

    A transient error in `step` (say, the RPC endpoint is down) is logged once per failure and
    retried with exponential backoff; the loop never ends on one. A bug propagates.
    """
    schedule = backoff or Backoff()
    failures = 0
    while not stop.is_set():
        try:
            pause = step()
        except Exception as exc:
            if not is_transient(exc):
                raise
            failures += 1
            pause = schedule.delay(failures)
            log(f"poll failed ({one_line(exc)}); retrying in {pause:.1f}s")
        else:
            if failures:
                log("recovered")
            failures = 0
        stop.wait(max(0.0, pause))
