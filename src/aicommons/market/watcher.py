"""The watcher daemon behind `aic watch`: re-executes every result posted to the market while
its window is open (calldata or storage-blob inputs) and, on a mismatch, disputes it and plays
the game to the end; it also expires what nobody answered, redundant requests included.

It picks the first layer whose root differs, then the differing child at every level, then the
one-step on the first differing element, and calls `timeout` when the provider misses a move.
It disputes only what its own exact re-execution contradicts. Transient failures are logged on
one line and retried with backoff; the loop never ends on one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aicommons.commit import keccak256
from aicommons.market.daemon import MOVE_BACKOFF, Backoff, EventLog, Retry, attempt, run_loop
from aicommons.market.dispute import TraceCommitments
from aicommons.market.errors import InputMismatch
from aicommons.market.graph import GraphCommitment, graph_commitment
from aicommons.market.inputs import sample_from_bytes
from aicommons.market.play import chain_now, challenger_turn, output_of, unpack_roots, winner
from aicommons.market.records import MODES, MarketEvent, PostedResult, batch_results
from aicommons.runtime import ModelPackage

if TYPE_CHECKING:
    from aicommons.sdk.client import Client


@dataclass
class _Watched:
    """A posted result under watch."""

    result: PostedResult
    version_id: str
    verdict: str = ""  # "", "ok", "wrong"
    dispute_id: int | None = None
    done: bool = False


@dataclass
class _Deadline:
    """What decides when an unanswered request may be expired."""

    optimistic: bool
    deadline: int
    redundancy: int = 1
    claims: int = 0
    commits: int = 0
    answered: bool = False

    def expirable(self, now: int, grace: int) -> bool:
        """Whether anyone may expire the request now (docs/market.md "Timeouts"): open (fewer
        than k claims) past its deadline; optimistic, claimed and never answered past deadline
        + window + grace; redundant with all k claims but fewer than k commitments past its
        deadline."""
        if self.claims < self.redundancy:
            return now > self.deadline
        if self.optimistic:
            return not self.answered and now > self.deadline + grace
        return self.commits < self.redundancy and now > self.deadline


@dataclass
class _Version:
    package: ModelPackage
    graph: GraphCommitment


@dataclass
class Watcher:
    """Watches the market as one account; `step()` is one poll of the chain."""

    client: Client
    models: tuple[str, ...] = ()
    log: EventLog = field(default_factory=lambda: EventLog("watcher"))
    poll_s: float = 0.5
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        self.retry = Retry(self.backoff)
        self.moves = Retry(MOVE_BACKOFF)
        self.moves_seen: dict[int, list[MarketEvent]] = {}
        self.cursor: int | None = None
        self.requests: dict[int, MarketEvent] = {}
        self.watched: dict[tuple[int, int], _Watched] = {}
        self.versions: dict[str, _Version | None] = {}
        self.commitments: dict[int, TraceCommitments] = {}
        self.wanted = {name.partition("@")[0] for name in self.models}
        self.stats = {"checked": 0, "disputed": 0, "won": 0, "lost": 0}
        self.unsettled: dict[int, _Deadline] = {}
        self.params: dict[str, int] | None = None

    def run(self, stop: threading.Event) -> None:
        self.log("watching " + (", ".join(sorted(self.wanted)) or "every model"))
        run_loop(self.step, stop=stop, log=self.log)

    def step(self) -> float:
        head = int(self.client.w3.eth.block_number)
        first = self.client.deployment.block if self.cursor is None else self.cursor + 1
        if first <= head:
            for event in self.client.market.events(from_block=first, to_block=head):
                self._fold(event)
            self.cursor = head
        now = chain_now(self.client)
        for key, watched in list(self.watched.items()):
            if watched.done:
                continue
            if not watched.verdict and now < watched.result.window_ends:
                attempt(
                    ("check", key),
                    lambda w=watched: self._check(w),
                    retry=self.retry,
                    log=self.log,
                    what=f"re-execution of request {key[0]}",
                )
            if watched.verdict == "wrong" and watched.dispute_id is None:
                if now < watched.result.window_ends:
                    attempt(
                        ("challenge", key),
                        lambda w=watched: self._challenge(w),
                        retry=self.retry,
                        log=self.log,
                        what=f"challenge of request {key[0]}",
                    )
                else:
                    watched.done = True
                    self.log(f"request {key[0]}: window closed before a challenge")
            if watched.dispute_id is not None:
                attempt(
                    ("play", watched.dispute_id),
                    lambda w=watched: self._play(w, now),
                    retry=self.moves,
                    log=self.log,
                    what=f"move in dispute {watched.dispute_id}",
                )
            if watched.verdict == "ok" or (
                not watched.verdict and now >= watched.result.window_ends
            ):
                watched.done = True
        self.watched = {k: w for k, w in self.watched.items() if not w.done}
        self._expire(now)
        return self.poll_s

    def _expire(self, now: int) -> None:
        """Expire what nobody answered (`_Deadline.expirable`): refund the requester, slash the
        silent claimants. Anyone may; a watcher does it so fees return and a requester is never
        left waiting."""
        if not self.unsettled:
            return
        if self.params is None:
            self.params = self.client.market.params()
        grace = self.params["window"] + self.params["finalise_grace"]
        for request_id, due in list(self.unsettled.items()):
            if due.expirable(now, grace):
                attempt(
                    ("expire", request_id),
                    lambda r=request_id: self._expire_one(r),
                    retry=self.retry,
                    log=self.log,
                    what=f"expiry of request {request_id}",
                )

    def _expire_one(self, request_id: int) -> None:
        status = self.client.market.status(request_id)
        if status not in ("open", "claimed"):
            self.unsettled.pop(request_id, None)
            return
        self.client.market.expire(request_id)
        self.unsettled.pop(request_id, None)
        self.log(f"expired request {request_id} (unanswered past its deadline)")

    # -- events --------------------------------------------------------------------------------

    def _fold(self, event: MarketEvent) -> None:

        if event.name == "RequestCreated":
            request_id = int(event.args["request_id"])
            self.requests[request_id] = event
            self.unsettled[request_id] = _Deadline(
                optimistic=int(event.args["mode"]) == MODES["optimistic"],
                deadline=int(event.args["deadline"]),
                redundancy=int(event.args["redundancy"]),
            )
        elif event.name == "Claimed" and int(event.args["request_id"]) in self.unsettled:
            self.unsettled[int(event.args["request_id"])].claims += 1
        elif event.name == "Committed" and int(event.args["request_id"]) in self.unsettled:
            self.unsettled[int(event.args["request_id"])].commits += 1
        elif event.name in ("ResultFinalised", "RequestExpired"):
            self.unsettled.pop(int(event.args["request_id"]), None)
        elif event.name == "BatchPosted":
            for result in batch_results(event):
                if result.request_id in self.unsettled:
                    self.unsettled[result.request_id].answered = True
                created = self.requests.get(result.request_id)
                if created is None:
                    continue
                version_id = "0x" + bytes(created.args["version_id"]).hex()
                self.watched[(result.request_id, result.batch_id * 1000 + result.index)] = _Watched(
                    result, version_id
                )
        elif event.name in ("RootsRevealed", "ChildrenRevealed", "RowsRevealed"):
            self.moves_seen.setdefault(int(event.args["dispute_id"]), []).append(event)
        elif event.name == "DisputeResolved":
            dispute = int(event.args["dispute_id"])
            for watched in self.watched.values():
                if watched.dispute_id == dispute:
                    won = str(event.args["winner"]).lower() == self.client.account.address.lower()
                    self.stats["won" if won else "lost"] += 1
                    self.log(
                        f"dispute {dispute} on request {watched.result.request_id} "
                        f"{'won' if won else 'lost'}: {event.args.get('reason', '')}"
                    )
                    watched.done = True

    # -- re-execution --------------------------------------------------------------------------

    def _version(self, created: MarketEvent, version_id: str) -> _Version | None:
        if version_id not in self.versions:
            name = self.client.market._model_name(bytes(created.args["model_id"]))
            if self.wanted and name not in self.wanted:
                self.versions[version_id] = None
            else:
                version = self.client.registry.version(name, bytes.fromhex(version_id[2:]))
                package = self.client.storage.fetch_package(version)
                self.versions[version_id] = _Version(package, graph_commitment(package))
        return self.versions[version_id]

    def _check(self, watched: _Watched) -> None:
        result = watched.result
        created = self.requests[result.request_id]
        version = self._version(created, watched.version_id)
        if version is None:
            watched.done = True
            return
        mine = self.commitments.get(result.request_id)
        if mine is None:
            try:
                data = self.client.market.input_of(created.args, package=version.package)
            except InputMismatch as exc:
                watched.done = True
                self.log(f"request {result.request_id}: not checked, {exc}")
                return
            sample = sample_from_bytes(version.package, data)
            trace = version.package.trace(sample)
            mine = TraceCommitments.from_trace(version.package, trace, 0, version.graph)
            self.commitments[result.request_id] = mine
        output_hash = "0x" + keccak256(output_of(mine)).hex()
        self.stats["checked"] += 1
        same_output = output_hash == result.output_hash
        same = same_output and "0x" + mine.trace_root.hex() == result.trace_root
        watched.verdict = "ok" if same else "wrong"
        if same:
            self.log(f"request {result.request_id}: posted result matches re-execution")
        else:
            what = "output" if not same_output else "trace root"
            self.log(f"request {result.request_id}: posted {what} differs from re-execution")

    def _challenge(self, watched: _Watched) -> None:
        dispute = self.client.market.challenge(watched.result.request_id, posted=watched.result)
        watched.dispute_id = dispute
        self.stats["disputed"] += 1
        self.log(f"challenged request {watched.result.request_id} (dispute {dispute})")

    def _play(self, watched: _Watched, now: int) -> None:
        assert watched.dispute_id is not None
        state = self.client.market.dispute_state(watched.dispute_id)
        if not state.active:
            won = (winner(state) or "").lower() == self.client.account.address.lower()
            self.stats["won" if won else "lost"] += 1
            self.log(f"dispute {state.dispute_id} {'won' if won else 'lost'} ({state.phase})")
            watched.done = True
            return
        seen = self.moves_seen.get(state.dispute_id, [])
        roots = [e for e in seen if e.name == "RootsRevealed"]
        rows = [e for e in seen if e.name == "RowsRevealed"]
        turn = challenger_turn(
            self.client,
            state,
            self.commitments[watched.result.request_id],
            revealed_roots=unpack_roots(bytes(roots[-1].args["layer_roots"])) if roots else None,
            revealed_rows=[bytes(r) for r in rows[-1].args["rows"]] if rows else None,
            now=now,
        )
        if turn is None:
            return
        if turn.action == "missed":
            self.log(f"dispute {state.dispute_id}: our move came too late")
            watched.done = True
        else:
            self.log(f"dispute {state.dispute_id}: {turn.action}")
