"""The compute provider daemon behind `aic provider serve`: claims requests for the versions it
serves (calldata or storage-blob inputs), computes them with the exact runtime, posts the
results in batches with its signature of each, defends its results in disputes and finalises
them after the window.

It serves only versions whose package hashes to the registered version id and whose graph
root equals the one the registry records; it claims a blob input only after checking it. It
never posts a result it did not compute; a trace it posted can always be recomputed from the
request's input, so disputes are defended after a restart too. Transient failures are logged on
one line and retried with backoff.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aicommons.chain.errors import TransactionFailed
from aicommons.market.daemon import MOVE_BACKOFF, Backoff, EventLog, Retry, attempt, run_loop
from aicommons.market.dispute import TraceCommitments
from aicommons.market.errors import InputMismatch, ServeError
from aicommons.market.graph import GraphCommitment, graph_commitment
from aicommons.market.inputs import sample_from_bytes
from aicommons.market.play import chain_now, output_of, provider_turn
from aicommons.market.records import MODES, SETTLED, MarketEvent, PostedResult, batch_results
from aicommons.runtime import ModelPackage, Trace

if TYPE_CHECKING:
    from aicommons.sdk.client import Client
    from aicommons.sdk.types import VersionInfo

_NOT_OURS = ("RequestNotOpen", "AlreadyClaimed", "WrongProvider", "DeadlinePassed")
"""Claim refusals that mean the request will never be this provider's."""
MAX_BATCH = 64
"""Results per post (the contract allows 128; 64 keeps one post well inside a block)."""


@dataclass(frozen=True)
class ServedVersion:
    """A version this provider serves: its verified package and graph commitment."""

    version: VersionInfo
    package: ModelPackage
    graph: GraphCommitment


def prepare_versions(client: Client, references: list[str]) -> list[ServedVersion]:
    """Resolve, fetch and check every version before serving any: the package must hash to
    the registered version id (the storage service checks) and its graph root must equal the
    one the registry records (else `ServeError`); the DisputeGame is given the version's graph
    header if it lacks it."""
    if not references:
        raise ServeError("serve at least one model (--model NAME[@VER])")
    served = []
    for reference in references:
        version = client.registry.resolve(reference)
        if version.deprecated:
            raise ServeError(f"{version.model} {version.version_id} is deprecated")
        package = client.storage.fetch_package(version)
        graph = graph_commitment(package)
        if version.graph_root == "0x" + "00" * 32:
            raise ServeError(f"{version.model} records no graph root in the registry")
        if version.graph_root != "0x" + graph.root.hex():
            raise ServeError(
                f"refusing {version.model} {version.version_id[:10]}…: its registered graph root "
                f"{version.graph_root} differs from the package's 0x{graph.root.hex()}"
            )
        client.market.register_graph(reference, package=package)  # the game's header, once
        served.append(ServedVersion(version, package, graph))
    return served


@dataclass
class _Job:
    """A request this provider knows about."""

    request_id: int
    version_id: str
    mode: str
    deadline: int
    created: dict[str, Any]  # its RequestCreated arguments
    input: bytes | None  # None: a storage-blob input not fetched yet
    designated: str | None
    claimed: bool = False
    posted: PostedResult | None = None
    committed: bool = False
    revealed: bool = False
    salt: bytes = b""  # redundant mode: the commitment's salt (`Provider._salt`)
    redundancy: int = 1
    reveal_deadline: int = 0
    reveals: int = 0
    settled: bool = False


class Provider:
    """One provider account serving some versions; `step()` is one poll of the chain."""

    def __init__(
        self,
        client: Client,
        served: list[ServedVersion],
        *,
        log: EventLog | None = None,
        max_batch: int = MAX_BATCH,
        poll_s: float = 0.5,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        if client.account is None:
            raise ServeError("a provider needs an account to sign with")
        self.address = client.account.address
        self.served = {s.version.version_id: s for s in served}
        self.log = log or EventLog(f"provider {self.address[:10]}")
        self.max_batch = max_batch
        self.poll_s = poll_s
        self.retry = Retry(backoff or Backoff())
        self.moves = Retry(MOVE_BACKOFF)
        self.jobs: dict[int, _Job] = {}
        self.disputes: dict[int, int] = {}
        self.cursor: int | None = None
        self._commitments: dict[int, TraceCommitments] = {}

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.log(f"serving {', '.join(s.version.model for s in self.served.values())}")
        run_loop(self.step, stop=stop, log=self.log)

    def step(self) -> float:
        head = int(self.client.w3.eth.block_number)
        first = self.client.deployment.block if self.cursor is None else self.cursor + 1
        if first <= head:
            for event in self.client.market.events(from_block=first, to_block=head):
                self._fold(event)
            self.cursor = head
        now = chain_now(self.client)
        self._claim(now)
        self._answer(now)
        self._redundant(now)
        self._defend(now)
        self._finalise(now)
        self.jobs = {k: j for k, j in self.jobs.items() if not j.settled}
        return self.poll_s

    # -- what the chain says -------------------------------------------------------------------

    def _fold(self, event: MarketEvent) -> None:
        args, me = event.args, self.address.lower()
        if event.name == "RequestCreated":
            version_id = "0x" + bytes(args["version_id"]).hex()
            if version_id not in self.served:
                return
            designated = str(args["provider"])
            if int(designated, 16) and designated.lower() != me:
                return
            self.jobs[int(args["request_id"])] = _Job(
                request_id=int(args["request_id"]),
                version_id=version_id,
                mode="redundant" if int(args["mode"]) == MODES["redundant"] else "optimistic",
                deadline=int(args["deadline"]),
                created=dict(args),
                input=None
                if int.from_bytes(bytes(args["blob_id"]), "big")
                else bytes(args["input"]),
                designated=designated if int(designated, 16) else None,
                redundancy=int(args["redundancy"]),
            )
            return
        if event.name == "BatchPosted" and str(args["provider"]).lower() == me:
            # Our own posts (this run's or, after a restart, an earlier run's): never post twice.
            for result in batch_results(event):
                if result.request_id in self.jobs and self.jobs[result.request_id].posted is None:
                    self.jobs[result.request_id].posted = result
            return
        job = self.jobs.get(int(args.get("request_id", 0) or 0))
        if event.name == "Claimed" and job is not None:
            if str(args["provider"]).lower() == me:
                job.claimed = True  # (logged when we sent the claim)
            elif job.mode == "optimistic":
                job.settled = True  # someone else's
        elif event.name in ("Committed", "Revealed") and job is not None:
            # Our own commit or reveal (also from before a restart): never send it twice.
            mine = str(args["provider"]).lower() == me
            if event.name == "Committed":
                job.committed = job.committed or mine
            else:
                job.revealed = job.revealed or mine
                job.reveals += 1
        elif event.name == "RevealsOpened" and job is not None:
            job.reveal_deadline = int(args["reveal_ends"])
        elif event.name in ("ResultFinalised", "RequestExpired") and job is not None:
            job.settled = True
            if job.claimed:
                self.log(f"request {job.request_id} {event.name}")
        elif event.name == "Challenged" and job is not None and job.claimed:
            dispute = int(args["dispute_id"])
            self.disputes[dispute] = job.request_id
            self.log(f"request {job.request_id} challenged (dispute {dispute})")
        elif event.name == "DisputeResolved":
            dispute = int(args["dispute_id"])
            if dispute in self.disputes:
                winner = str(args["winner"]).lower()
                verdict = "won" if winner == me else "lost"
                self.log(f"dispute {dispute} {verdict} ({args.get('reason', '')})")
                del self.disputes[dispute]

    # -- actions -------------------------------------------------------------------------------

    def _claim(self, now: int) -> None:
        for job in list(self.jobs.values()):
            if job.claimed or job.settled or now >= job.deadline:
                continue
            attempt(
                ("claim", job.request_id),
                lambda job=job: self._claim_one(job),
                retry=self.retry,
                log=self.log,
                what=f"claim of request {job.request_id}",
            )

    def _claim_one(self, job: _Job) -> None:
        # A storage-blob input is fetched and checked before claiming (a claim locks stake;
        # an input that does not match its request is never served).
        try:
            self._input(job)
        except InputMismatch as exc:
            job.settled = True
            self.log(f"refusing request {job.request_id}: {exc}")
            return
        # No status read first: the claim's own pre-check says why it cannot be made.
        try:
            self.client.market.claim(job.request_id)
        except TransactionFailed as exc:
            if any(reason in str(exc) for reason in _NOT_OURS):
                job.settled = True  # all slots taken by others (or settled): never ours
                return
            raise
        job.claimed = True
        self.log(f"claimed request {job.request_id}")

    def _input(self, job: _Job) -> bytes:
        """The job's input bytes: its calldata, or its storage blob (fetched once, checked)."""
        if job.input is None:
            job.input = self.client.market.input_of(
                job.created, package=self.served[job.version_id].package
            )
        return job.input

    def trace(self, job: _Job) -> Trace:
        """The trace of a job's input under its version (what the provider posts and defends)."""
        served = self.served[job.version_id]
        return served.package.trace(sample_from_bytes(served.package, self._input(job)))

    def commitments(self, job: _Job) -> TraceCommitments:
        """The trace this provider computes for a job (recomputed if not cached)."""
        cached = self._commitments.get(job.request_id)
        if cached is None:
            served = self.served[job.version_id]
            trace = self.trace(job)
            cached = TraceCommitments.from_trace(served.package, trace, 0, served.graph)
            self._commitments[job.request_id] = cached
        return cached

    def _answer(self, now: int) -> None:
        due = [
            j
            for j in self.jobs.values()
            if j.claimed
            and j.mode == "optimistic"
            and j.posted is None
            and not j.settled
            and now < j.deadline
        ]
        for start in range(0, len(due), self.max_batch):
            batch = due[start : start + self.max_batch]
            key = ("post", tuple(j.request_id for j in batch))
            attempt(
                key,
                lambda b=batch: self._post(b),
                retry=self.retry,
                log=self.log,
                what=f"post of {len(batch)} result(s)",
            )

    def _post(self, batch: list[_Job]) -> None:
        results = []
        for job in batch:
            served = self.served[job.version_id]
            trace = self.trace(job)
            self._commitments[job.request_id] = TraceCommitments.from_trace(
                served.package, trace, 0, served.graph
            )
            results.append((job.request_id, trace, 0, served.package))
        posted = self.client.market.post_results(
            [(rid, trace, sample) for rid, trace, sample, _ in results],
            package=results[0][3] if len({j.version_id for j in batch}) == 1 else None,
        )
        for job, result in zip(batch, posted.results, strict=True):
            job.posted = result
        ids = ", ".join(str(j.request_id) for j in batch)
        self.log(
            f"posted batch {posted.batch_id} ({len(batch)} result(s): {ids}), "
            f"window ends {posted.window_ends}, {posted.gas_used} gas"
        )

    def _redundant(self, now: int) -> None:
        """Commit once all k slots are claimed, reveal once all k committed, then settle by
        majority when every vote is in or the reveal period is over."""
        for job in list(self.jobs.values()):
            if not job.claimed or job.mode != "redundant" or job.settled:
                continue
            if not job.committed:
                if now <= job.deadline and self.client.market.status(job.request_id) == "claimed":
                    self._step(job, "commit", self._commit)
            elif not job.revealed:
                if job.reveal_deadline and now <= job.reveal_deadline:
                    self._step(job, "reveal", self._reveal)
            elif job.reveals >= job.redundancy or now > job.reveal_deadline:
                self._step(job, "settle", self._finalise_redundant)

    def _step(self, job: _Job, what: str, action: Any) -> None:
        attempt(
            (what, job.request_id),
            lambda: action(job),
            retry=self.retry,
            log=self.log,
            what=f"{what} of request {job.request_id}",
        )

    def _salt(self, job: _Job) -> bytes:
        """The salt of this provider's redundant commitment to a job: keccak of its signature
        of the market and request, so nobody else can guess it and a restarted daemon can
        still reveal what it committed."""
        if not job.salt:
            from eth_account.messages import encode_defunct

            from aicommons.commit import keccak256

            text = f"aicommons redundant salt {self.client.chain_id}:{self.client.market.address}"
            message = encode_defunct(text=f"{text}:{job.request_id}")
            signed = self.client.account.sign_message(message)
            job.salt = keccak256(bytes(signed.signature))
        return job.salt

    def _commit(self, job: _Job) -> None:
        mine = self.commitments(job)
        self.client.market.commit_result(
            job.request_id, output=output_of(mine), trace_root=mine.trace_root, salt=self._salt(job)
        )
        job.committed = True
        self.log(f"committed to request {job.request_id}")

    def _reveal(self, job: _Job) -> None:
        mine = self.commitments(job)
        output = output_of(mine)
        self.client.market.reveal_result(
            job.request_id, output=output, trace_root=mine.trace_root, salt=self._salt(job)
        )
        job.revealed = True
        self.log(f"revealed request {job.request_id}")

    def _finalise_redundant(self, job: _Job) -> None:
        if self.client.market.status(job.request_id) in SETTLED:
            job.settled = True
            return
        self.client.market.finalise_redundant(job.request_id)
        job.settled = True
        self.log(f"finalised request {job.request_id}")

    def _defend(self, now: int) -> None:
        for dispute_id, request_id in list(self.disputes.items()):
            job = self.jobs.get(request_id)
            attempt(
                ("dispute", dispute_id),
                lambda d=dispute_id, j=job: self._defend_one(d, j, now),
                retry=self.moves,
                log=self.log,
                what=f"move in dispute {dispute_id}",
            )

    def _defend_one(self, dispute_id: int, job: _Job | None, now: int) -> None:
        state = self.client.market.dispute_state(dispute_id)
        if not state.active:
            self.disputes.pop(dispute_id, None)
            return
        if job is None:
            return  # not a request of ours any more (settled); nothing to defend with
        mine = self.commitments(job)
        turn = provider_turn(self.client, state, mine, output=output_of(mine), now=now)
        if turn is None:
            return
        if turn.action == "missed":
            self.log(f"dispute {dispute_id}: our move came too late")
            self.disputes.pop(dispute_id, None)
        else:
            self.log(f"dispute {dispute_id}: {turn.action}")

    def _finalise(self, now: int) -> None:
        for job in list(self.jobs.values()):
            posted = job.posted
            # One second of margin: the node's pre-check and the block that mines the call
            # may see different timestamps, and a revert here only costs a retry.
            if posted is None or job.settled or now < posted.window_ends + 1:
                continue
            if any(r == job.request_id for r in self.disputes.values()):
                continue
            attempt(
                ("finalise", job.request_id),
                lambda j=job: self._finalise_one(j),
                retry=self.retry,
                log=self.log,
                what=f"finalising request {job.request_id}",
            )

    def _finalise_one(self, job: _Job) -> None:
        try:
            self.client.market.finalise(job.request_id, posted=job.posted)
        except TransactionFailed as exc:
            if "AlreadySettled" in str(exc):
                job.settled = True  # someone else finalised it (anyone may), or it was overturned
                return
            raise
        job.settled = True
        self.log(f"finalised request {job.request_id}")
