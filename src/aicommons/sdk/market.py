"""`client.market`: the compute market (ComputeMarket, docs/market.md) as one account sees it —
providers (stake, offers, claims, batched results, redundant commit/reveal), requesters
(requests, status, receipts) and both sides of the dispute game.

Every transaction goes through `Service._transact`; what can be checked before sending (the
version, the input size, the fee against balance and allowance, the deadline) is checked first,
so a refused request costs no gas. Results are frozen records (`aicommons.market.records`).
`post_result` posts whatever `Trace` it is given: that is what a provider is.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aicommons.commit import keccak256
from aicommons.market.commitments import (
    BatchCommitment,
    input_bytes,
    output_bytes,
    redundant_commitment,
)
from aicommons.market.commitments import PostedResult as CommittedResult
from aicommons.market.commitments import version_key as commitment_version_key
from aicommons.market.game import DisputeState, Move
from aicommons.market.records import (
    MODES,
    SETTLED,
    MarketEvent,
    MarketRequest,
    PostedResult,
    ProviderInfo,
    batch_results,
    mode_name,
    status_name,
)
from aicommons.runtime import ModelPackage, Trace
from aicommons.runtime.text import Truncation
from aicommons.sdk._service import Service
from aicommons.sdk.errors import ClientError
from aicommons.sdk.receipt import MarketReceipt, keep_receipt
from aicommons.sdk.types import VersionInfo, hex32

CONTRACT = "ComputeMarket"
GAME = "DisputeGame"
REDUNDANT = "RedundantMode"
DEFAULT_TTL_S = 600
"""A request's deadline when none is given: ten minutes from now."""
LOG_CHUNK = 5_000
"""Blocks per eth_getLogs query (nodes cap the range)."""
MOVE_GAS = {
    "reveal_roots": 3_000_000,
    "pick_layer": 1_000_000,
    "reveal_children": 500_000,
    "pick_child": 300_000,
    "reveal_rows": 3_000_000,
    "one_step": 8_000_000,
    "timeout": 1_000_000,
    "cancel_dispute": 500_000,
}
"""Gas limits of the dispute moves (upper bounds; `aic bench market` measures what they use):
sent without a node estimate, which on a Python EVM re-runs a heavy move some 25 times and
could cost a move its deadline."""
TX_GAS = {
    "request": 1_500_000,
    "claim": 400_000,
    "finalise": 1_000_000,
    "finalise_redundant": 2_000_000,
    "expire": 1_500_000,
    "challenge": 1_000_000,
    "commit": 300_000,
    "reveal": 1_000_000,
}
"""Gas limits of the market's frequent transactions (upper bounds, sent without a node
estimate for the same reason as MOVE_GAS; finalising adds the callback's gas)."""
POST_GAS_BASE = 1_200_000
POST_GAS_PER_RESULT = 60_000
"""Gas limit of a `post_batch` of n results: base + n * per result (upper bounds)."""


@dataclass(frozen=True)
class RequestTicket:
    """A request just made: its id and the transaction that escrowed the fee."""

    request_id: int
    tx_hash: str
    block_number: int
    block_hash: str
    model: str
    version_id: str
    mode: str
    input: list[int]
    input_hash: str
    max_fee: int
    deadline: int
    truncated: Truncation | None = None
    """Set when the sample was a text cut to the model's max_length (tokens before, kept)."""


@dataclass(frozen=True)
class PostedBatch:
    """A batch just posted: its id, when its window ends, and each request's result."""

    batch_id: int
    tx_hash: str
    window_ends: int
    results: tuple[PostedResult, ...]
    gas_used: int


def output_values(output: bytes, width: int) -> list[int]:
    """The element values of posted output bytes (big-endian two's complement, `width` each)."""
    if width not in (1, 2, 4) or len(output) % width:
        raise ClientError(f"{len(output)} output bytes are not elements of {width} byte(s)")
    return [
        int.from_bytes(output[i : i + width], "big", signed=True)
        for i in range(0, len(output), width)
    ]


def version_key(version: VersionInfo) -> bytes:
    """The market's key of a version (`commitments.version_key`)."""
    from aicommons.sdk.registry import model_id_of

    return commitment_version_key(model_id_of(version.model), version.version_bytes)


class MarketService(Service):
    """The ComputeMarket contract for providers, requesters and challengers."""

    # -- reads ---------------------------------------------------------------------------------

    def _market(self) -> Any:
        return self._contract(CONTRACT)

    def _game(self) -> Any:
        return self._contract(GAME)

    def _redundant(self) -> Any:
        return self._contract(REDUNDANT)

    @property
    def address(self) -> str:
        return self.deployment.address(CONTRACT)

    def params(self) -> dict[str, int]:
        """The market's parameters (`Params`: window, bonds, stakes, periods...)."""
        return {k: int(v) for k, v in self._call_struct(CONTRACT, "params").items()}

    def graph(self, version: VersionInfo) -> dict[str, Any]:
        """The registered graph commitment of a version (`graph_root` zero when none)."""
        return self._call_struct(GAME, "graphs", version_key(version))

    def package_of(self, version: VersionInfo) -> ModelPackage:
        return self._client.storage.fetch_package(version)

    def provider(self, address: str | None = None) -> ProviderInfo:
        """Stake (free, locked, unbonding), what the market credited and slashed, what is owed
        now, and the live offers of `address` (default: the account)."""
        from web3 import Web3

        who = Web3.to_checksum_address(address or self._require_account().address)
        record = self._call_struct(CONTRACT, "providers", who)
        market = self._market()
        latest: dict[str, dict[str, Any]] = {}
        for event in self.events(names=("OfferSet",), filters={"provider": who}):
            latest[hex32(event.args["version_id"])] = {
                "model_id": hex32(event.args["model_id"]),
                "version_id": hex32(event.args["version_id"]),
                "price": int(event.args["price"]),
                "active": bool(event.args["active"]),
            }
        credited = self.events(names=("Credited",), filters={"account": who})
        slashed = self.events(names=("Slashed",), filters={"provider": who})
        return ProviderInfo(
            address=who,
            stake=int(record["free"]),
            locked=int(record["locked"]),
            unbonding=int(record["unbonding"]),
            unbonding_until=int(record["unbond_at"]),
            earned=sum(int(e.args["amount"]) for e in credited),
            slashed=sum(int(e.args["amount"]) for e in slashed),
            owed=int(market.functions.owed(who).call()),
            offers=[offer for offer in latest.values() if offer["active"]],
        )

    def events(
        self,
        *,
        from_block: int | None = None,
        to_block: int | None = None,
        names: Sequence[str] | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[MarketEvent]:
        """The logs of the market's contracts (ComputeMarket, DisputeGame, RedundantMode) in
        chain order, decoded; `names` limits the event types and `filters` their indexed
        arguments (by name).

        Without filters one `eth_getLogs` per block range covers every wanted type of every
        contract (the node is asked once, not once per type); with filters, one per type."""
        from eth_utils import event_abi_to_log_topic

        contracts = [self._market(), self._game(), self._redundant()]
        owner: dict[str, Any] = {}
        for contract in contracts:
            for item in contract.abi:
                if item.get("type") == "event":
                    owner.setdefault(item["name"], (contract, item))
        wanted = list(names or owner)
        unknown = [name for name in wanted if name not in owner]
        if unknown:
            raise ClientError(f"the market logs no event {unknown[0]!r}")
        first = self.deployment.block if from_block is None else from_block
        last = int(self.w3.eth.block_number) if to_block is None else to_block
        by_topic = {
            (owner[name][0].address.lower(), bytes(event_abi_to_log_topic(owner[name][1]))): name
            for name in wanted
        }
        found: list[MarketEvent] = []
        start = first
        while start <= last:
            end = min(last, start + LOG_CHUNK - 1)
            if filters:
                for name in wanted:
                    logs = getattr(owner[name][0].events, name)().get_logs(
                        from_block=start, to_block=end, argument_filters=filters
                    )
                    found += [_as_market_event(name, log) for log in logs]
            else:
                raw = self.w3.eth.get_logs(
                    {
                        "address": sorted({owner[name][0].address for name in wanted}),
                        "fromBlock": start,
                        "toBlock": end,
                        "topics": [sorted({"0x" + topic.hex() for _, topic in by_topic})],
                    }
                )
                for log in raw:
                    key = (str(log["address"]).lower(), bytes(log["topics"][0]))
                    name = by_topic.get(key) if log["topics"] else None
                    if name is not None:
                        event = getattr(owner[name][0].events, name)().process_log(log)
                        found.append(_as_market_event(name, event))
            start = end + 1
        return sorted(found, key=lambda e: e.order)

    def status(self, request_id: int) -> str:
        """The on-chain status name (`claimed` for a request whose batch is not yet proven)."""
        return status_name(int(self._market().functions.request_status(request_id).call()))

    def _created(self, request_id: int) -> MarketEvent:
        events = self.events(names=("RequestCreated",), filters={"request_id": request_id})
        if not events:
            raise ClientError(f"no market request {request_id}")
        return events[0]

    def posted_results(self, request_id: int) -> list[PostedResult]:
        """Every result posted for `request_id` (normally one), with its batch proof."""
        found = []
        for event in self.events(names=("BatchPosted",)):
            found += [r for r in batch_results(event) if r.request_id == request_id]
        return found

    def request_input(self, request_id: int, *, package: ModelPackage | None = None) -> bytes:
        """The input bytes of a request: its calldata, or its storage blob fetched and checked
        against the request's input hash and input root (`InputMismatch` otherwise: such a
        request is never served). `package` (else fetched) gives the input's shape."""
        return self.input_of(self._created(request_id).args, package=package)

    def input_of(self, created: dict[str, Any], *, package: ModelPackage | None) -> bytes:
        """`request_input` for a request's RequestCreated arguments."""
        from aicommons.market.commitments import MAX_BLOB_INPUT_BYTES, input_root
        from aicommons.market.errors import InputMismatch
        from aicommons.market.inputs import sample_from_bytes

        blob = bytes(created["blob_id"])
        if blob == bytes(32):
            return bytes(created["input"])
        request_id = int(created["request_id"])
        data = self._client.storage.get_bytes(hex32(blob), max_bytes=MAX_BLOB_INPUT_BYTES)
        if keccak256(data) != bytes(created["input_hash"]):
            raise InputMismatch(
                f"request {request_id}: blob {hex32(blob)} does not hash to the input hash"
            )
        if package is None:
            name = self._model_name(bytes(created["model_id"]))
            version = self._client.registry.version(name, bytes(created["version_id"]))
            package = self.package_of(version)
        try:
            sample = sample_from_bytes(package, data)
        except ValueError as exc:
            raise InputMismatch(f"request {request_id}: blob input {exc}") from None
        if input_root(sample[0]) != bytes(created["input_root"]):
            raise InputMismatch(f"request {request_id}: blob input does not match its input root")
        return data

    def request_info(self, request_id: int) -> MarketRequest:
        """The request joined with its events: what `aic request show` prints."""
        created = self._created(request_id)
        args = created.args
        version_id = hex32(args["version_id"])
        model = self._model_name(bytes(args["model_id"]))
        status = self.status(request_id)
        claims = self.events(names=("Claimed",), filters={"request_id": request_id})
        providers = [str(e.args["provider"]) for e in claims]
        posted = self.posted_results(request_id)
        finalised = self.events(names=("ResultFinalised",), filters={"request_id": request_id})
        disputes = self.events(names=("Challenged",), filters={"request_id": request_id})
        if status == "claimed" and posted:
            status = "posted"
        output = output_hash = trace_root = fee = window_ends = finalise_tx = None
        answered_by = providers[0] if providers else None
        width = self.output_width(bytes(args["model_id"]), bytes(args["version_id"]))
        if finalised:
            f = finalised[0].args
            output = output_values(bytes(f["output"]), width)
            output_hash, trace_root = hex32(f["output_hash"]), hex32(f["trace_root"])
            fee, finalise_tx = int(f["fee"]), finalised[0].tx_hash
            answered_by = str(f["provider"])  # redundant mode: a majority provider
        elif posted:
            result = posted[0]
            output = output_values(result.output, width)
            output_hash, trace_root = result.output_hash, result.trace_root
        if posted:
            window_ends = posted[0].window_ends
        return MarketRequest(
            id=request_id,
            model=model,
            version_id=version_id,
            mode=mode_name(int(args["mode"])),
            status=status,
            requester=str(args["requester"]),
            provider=answered_by,
            providers=providers,
            output=output,
            output_hash=output_hash,
            trace_root=trace_root,
            fee=fee,
            max_fee=int(args["max_fee"]),
            deadline=int(args["deadline"]),
            window_ends=window_ends,
            input_hash=hex32(args["input_hash"]),
            request_tx=created.tx_hash,
            finalise_tx=finalise_tx,
            disputes=[int(e.args["dispute_id"]) for e in disputes],
        )

    def _model_name(self, model_id: bytes) -> str:
        registry = self._contract("ModelRegistry")
        for event in registry.events.ModelRegistered().get_logs(
            from_block=self.deployment.block, argument_filters={"model_id": model_id}
        ):
            return str(event["args"]["slug"])
        return hex32(model_id)

    def output_width(self, model_id: bytes, version_id: bytes) -> int:
        """Bytes per output element of a version (its registered graph header)."""
        events = self.events(
            names=("GraphRegistered",),
            filters={"model_id": model_id, "version_id": version_id},
        )
        if not events:
            raise ClientError(f"version {hex32(version_id)} has no graph registered")
        return int(events[0].args["header"]["output_bytes"])

    def dispute_state(self, dispute_id: int) -> DisputeState:
        """A dispute as DisputeGame keeps it: phase, deadline, the node in play (`game`'s
        `DisputeState`)."""
        bound = self._game().functions.disputes(dispute_id)
        values = bound.call()
        state = DisputeState.from_abi(dispute_id, values)
        if not state.request_id:
            raise ClientError(f"no dispute {dispute_id}")
        return state

    # -- maintainer ----------------------------------------------------------------------------

    def register_graph(self, reference: str, *, package: ModelPackage | None = None) -> str:
        """Give the DisputeGame the graph header of a version (anyone may, once): proven against
        the graph root the registry records for it, which must be the package's; returns the
        root. A no-op when the header is already there."""
        from aicommons.market.graph import graph_commitment

        version = self._client.registry.resolve(reference)
        recorded = bytes.fromhex(version.graph_root[2:])
        if recorded == bytes(32):
            raise ClientError(
                f"{version.model} {version.version_id[:10]}… records no graph root in the "
                "registry (publish it with the optimistic or redundant mode)"
            )
        commitment = graph_commitment(package or self.package_of(version))
        if commitment.root != recorded:
            raise ClientError(
                f"the registry records graph root {version.graph_root} for {version.model}, "
                f"but its package's is {hex32(commitment.root)}: refusing it"
            )
        if bytes(self.graph(version)["graph_root"]) == recorded:
            return version.graph_root
        self._transact(
            self._game().functions.register_graph(
                version.model_bytes,
                version.version_bytes,
                commitment.header.as_abi(),
                commitment.proof(0),
            ),
            f"registering the graph of {version.model}",
        )
        return version.graph_root

    @staticmethod
    def _model_id(version: VersionInfo) -> str:
        from aicommons.sdk.registry import model_id_of

        return hex32(model_id_of(version.model))

    # -- providers -----------------------------------------------------------------------------

    def _ensure_allowance(self, amount: int, what: str) -> None:
        account = self._require_account()
        tokens = self._client.tokens
        balance = tokens.balance(account.address)
        if balance < amount:
            raise ClientError(f"insufficient AIC for {what}: have {balance}, need {amount}")
        if tokens.allowance(account.address, self.address) < amount:
            tokens.approve(self.address, amount)

    def register_provider(
        self, *, stake: int, models: Sequence[str], price: int = 0
    ) -> ProviderInfo:
        """Stake `stake` more AIC (base units) and offer each `NAME[@VER]` at `price`.

        Every version is resolved and checked (live, graph registered) before the first
        transaction; the stake must reach the market's minimum."""
        account = self._require_account()
        if stake < 0 or price < 0:
            raise ClientError("stake and price cannot be negative")
        if not models:
            raise ClientError("offer at least one model (--model NAME[@VER])")
        for reference in models:
            self.register_graph(reference)  # a no-op once the game has the version's header
        versions = [self._servable(reference) for reference in models]
        current = self.provider(account.address)
        minimum = self.params()["min_stake"]
        if current.stake + current.locked + stake < minimum:
            raise ClientError(
                f"a provider needs a stake of at least {minimum}; "
                f"it has {current.stake + current.locked}, adding {stake}"
            )
        market = self._market()
        if stake:
            self._ensure_allowance(stake, "the stake")
            self._transact(market.functions.stake(stake), "staking")
        for version in versions:
            self._transact(
                market.functions.offer(
                    bytes.fromhex(self._model_id(version)[2:]), version.version_bytes, price
                ),
                f"offering {version.model}",
            )
        return self.provider(account.address)

    def _servable(self, reference: str, *, mode: str | None = None) -> VersionInfo:
        """A live version the market can serve (in `mode`, when given): its registry record
        offers the mode and a graph root, and the DisputeGame holds its header."""
        from aicommons.sdk import protocol

        version = self._client.registry.resolve(reference)
        if version.deprecated:
            raise ClientError(f"version {version.version_id} of {version.model} is deprecated")
        if mode is not None and not version.modes & protocol.MODES[mode]:
            raise ClientError(
                f"{version.model} {version.version_id[:10]}… does not offer the {mode} mode "
                f"(it offers {', '.join(version.mode_names)})"
            )
        if bytes(self.graph(version)["graph_root"]) == bytes(32):
            raise ClientError(
                f"{version.model} {version.version_id[:10]}… has no graph registered with the "
                "market (anyone may: `aic provider graph`)"
            )
        return version

    def unstake(self, amount: int) -> str:
        """Start unbonding `amount` of free stake."""
        receipt = self._transact(self._market().functions.unstake(amount), "unstaking")
        return hex32(receipt["transactionHash"])

    def withdraw(self) -> int:
        """Release unbonded stake (when its delay has passed) and withdraw everything owed
        (earnings, refunds, released stake); returns the amount paid out."""
        account = self._require_account()
        market = self._market()
        info = self.provider(account.address)
        now = int(self.w3.eth.get_block("latest")["timestamp"])
        if info.unbonding and now >= info.unbonding_until:
            self._transact(market.functions.withdraw_stake(), "withdrawing stake")
        owed = int(market.functions.owed(account.address).call())
        if not owed:
            if info.unbonding:
                raise ClientError(
                    f"nothing to withdraw yet: {info.unbonding} unbonding until "
                    f"{info.unbonding_until}"
                )
            raise ClientError("nothing to withdraw")
        self._transact(market.functions.withdraw(), "withdrawing")
        return owed

    def claim(self, request_id: int) -> str:
        receipt = self._transact(
            self._market().functions.claim(request_id), "claiming", gas=TX_GAS["claim"]
        )
        return hex32(receipt["transactionHash"])

    def result_of(
        self, trace: Trace, *, package: ModelPackage, sample: int = 0
    ) -> tuple[bytes, bytes]:
        """(output bytes, trace root) of one sample of `trace`, as a batch leaf carries them."""
        from aicommons.market.graph import graph_commitment

        header = graph_commitment(package).header
        if not 0 <= sample < len(trace.roots):
            raise ClientError(f"the trace has no sample {sample}")
        value = np.asarray(trace.values[header.output_leaf][sample])
        return output_bytes(value), bytes(trace.roots[sample])

    def _sign(self, created: dict[str, Any], *, output: bytes, trace_root: bytes) -> bytes:
        """The account's EIP-712 `Result` signature (`market.receipts`) of a result for the
        request `created` (its RequestCreated arguments): posted with it, so any machine can
        rebuild and check the receipt from chain data."""
        from aicommons.market.receipts import ResultStatement, sign_result

        statement = ResultStatement(
            request_id=int(created["request_id"]),
            version_id=hex32(created["version_id"]),
            input_hash=hex32(created["input_hash"]),
            output_hash=hex32(keccak256(output)),
            trace_root=hex32(trace_root),
        )
        signature = sign_result(
            self._require_account(), statement, chain_id=self._client.chain_id, market=self.address
        )
        return bytes.fromhex(signature[2:])

    def post_result(
        self, request_id: int, trace: Trace, *, package: ModelPackage | None = None
    ) -> PostedBatch:
        """Post `trace` (sample 0) as the result of `request_id`, exactly as given."""
        return self.post_results([(request_id, trace, 0)], package=package)

    def post_results(
        self,
        results: Sequence[tuple[int, Trace, int]],
        *,
        package: ModelPackage | None = None,
    ) -> PostedBatch:
        """Post many results in one transaction: `(request_id, trace, sample)` each, one batch
        commitment over all of them. The requests must be optimistic and claimed by the
        account; `package` (else fetched per version) fixes the output leaf and width."""
        if not results:
            raise ClientError("a batch needs at least one result")
        packages: dict[str, ModelPackage] = {}
        leaves, signatures = [], []
        for request_id, trace, sample in results:
            created = self._created(request_id).args
            version_id = hex32(created["version_id"])
            pkg = package
            if pkg is None:
                if version_id not in packages:
                    name = self._model_name(bytes(created["model_id"]))
                    packages[version_id] = self.package_of(
                        self._client.registry.version(name, bytes.fromhex(version_id[2:]))
                    )
                pkg = packages[version_id]
            output, root = self.result_of(trace, package=pkg, sample=sample)
            leaves.append((request_id, root, output))
            signatures.append(self._sign(created, output=output, trace_root=root))
        batch = BatchCommitment(
            [CommittedResult(request_id, root, output) for request_id, root, output in leaves]
        )
        market = self._market()
        receipt = self._transact(
            market.functions.post_batch(*batch.post_args(signatures)),
            f"posting a batch of {len(leaves)}",
            gas=POST_GAS_BASE + POST_GAS_PER_RESULT * len(leaves),
        )
        events = market.events.BatchPosted().process_receipt(receipt, errors=_discard())
        if len(events) != 1:
            raise ClientError("the post transaction logged no BatchPosted event")
        event = _as_market_event("BatchPosted", events[0])
        return PostedBatch(
            batch_id=int(event.args["batch_id"]),
            tx_hash=event.tx_hash,
            window_ends=int(event.args["window_ends"]),
            results=tuple(batch_results(event)),
            gas_used=int(receipt["gasUsed"]),
        )

    def finalise(self, request_id: int, *, posted: PostedResult | None = None) -> str:
        """Finalise a posted optimistic result after its window; returns the transaction."""
        result = posted or self._standing_result(request_id)
        receipt = self._transact(
            self._market().functions.finalise(
                request_id,
                result.batch_id,
                result.index,
                result.output,
                bytes.fromhex(result.trace_root[2:]),
                list(result.siblings),
            ),
            f"finalising request {request_id}",
            gas=TX_GAS["finalise"] + self.params()["max_callback_gas"],
        )
        return hex32(receipt["transactionHash"])

    def _standing_result(self, request_id: int) -> PostedResult:
        claims = self.events(names=("Claimed",), filters={"request_id": request_id})
        claimants = {str(e.args["provider"]).lower() for e in claims}
        posted = [r for r in self.posted_results(request_id) if r.provider.lower() in claimants]
        if not posted:
            raise ClientError(f"request {request_id} has no posted result")
        return posted[0]

    def expire(self, request_id: int) -> str:
        """Expire what nobody answered (anyone may): an open request past its deadline, an
        optimistic claim never answered past deadline + window + grace, or a redundant request
        whose k claimants did not all commit by the deadline (through RedundantMode)."""
        created = self._created(request_id).args
        redundant = int(created["mode"]) == MODES["redundant"]
        if redundant and self.status(request_id) == "claimed":
            contract, name = self._redundant(), "RedundantMode"
        else:
            contract, name = self._market(), CONTRACT
        receipt = self._transact(
            contract.functions.expire(request_id),
            f"expiring {request_id} ({name})",
            gas=TX_GAS["expire"],
        )
        return hex32(receipt["transactionHash"])

    # redundant mode

    def commit_result(
        self, request_id: int, *, output: bytes, trace_root: bytes, salt: bytes
    ) -> str:
        """Commit to a redundant result (`commitments.redundant_commitment`)."""
        account = self._require_account()
        commitment = redundant_commitment(
            request_id=request_id,
            provider=account.address,
            output_hash=keccak256(output),
            trace_root=trace_root,
            salt=salt,
        )
        receipt = self._transact(
            self._redundant().functions.commit(request_id, commitment),
            f"committing to request {request_id}",
            gas=TX_GAS["commit"],
        )
        return hex32(receipt["transactionHash"])

    def reveal_result(
        self, request_id: int, *, output: bytes, trace_root: bytes, salt: bytes
    ) -> str:
        signature = self._sign(self._created(request_id).args, output=output, trace_root=trace_root)
        receipt = self._transact(
            self._redundant().functions.reveal(request_id, output, trace_root, salt, signature),
            f"revealing request {request_id}",
            gas=TX_GAS["reveal"],
        )
        return hex32(receipt["transactionHash"])

    def reveal_ends(self, request_id: int) -> int:
        """When the reveals of a redundant request close (0 before all k committed)."""
        return int(self._redundant().functions.reveal_ends(request_id).call())

    def finalise_redundant(self, request_id: int) -> str:
        """Settle a redundant request by majority (or expire it without one)."""
        reveals = self.events(names=("Revealed",), filters={"request_id": request_id})
        votes: dict[bytes, int] = {}
        for event in reveals:
            output = bytes(event.args["output"])
            votes[output] = votes.get(output, 0) + 1
        output = max(votes, key=lambda o: votes[o]) if votes else b""
        receipt = self._transact(
            self._redundant().functions.finalise(request_id, output),
            f"finalising request {request_id}",
            gas=TX_GAS["finalise_redundant"] + self.params()["max_callback_gas"],
        )
        return hex32(receipt["transactionHash"])

    # -- requesters ----------------------------------------------------------------------------

    def request(
        self,
        reference: str,
        x: Any,
        *,
        mode: str = "optimistic",
        providers: int = 1,
        provider: str | None = None,
        max_fee: int | None = None,
        ttl_s: int = DEFAULT_TTL_S,
        blob: bool | None = None,
    ) -> RequestTicket:
        """Escrow a fee and ask the market for `reference` on one sample `x`.

        `x` is integers (taken as is), floats (quantised with the package's input scale) or,
        for a text model, a str (tokenised with the package's tokenizer; a cut to max_length is
        reported as `ticket.truncated`).
        `max_fee` defaults to the version fee plus the dearest live offer per provider. The
        input travels in calldata, or (`blob=True`, and by default when it is too large for
        calldata) as a storage blob named by id, keccak hash and tensor root. The paid request
        is kept as a pending receipt under `$AIC_HOME/receipts` before anything else can fail."""
        (ticket,) = self.request_many(
            reference,
            [x],
            mode=mode,
            providers=providers,
            provider=provider,
            max_fee=max_fee,
            ttl_s=ttl_s,
            blob=blob,
        )
        return ticket

    def request_many(
        self,
        reference: str,
        samples: Sequence[Any],
        *,
        mode: str = "optimistic",
        providers: int = 1,
        provider: str | None = None,
        max_fee: int | None = None,
        ttl_s: int = DEFAULT_TTL_S,
        blob: bool | None = None,
    ) -> list[RequestTicket]:
        """One request per sample, with the same terms: everything is checked (and the fee
        approved) once, for all of them, before the first transaction."""
        from aicommons.market.commitments import (
            MAX_INPUT_BYTES,
            MAX_INPUT_ROWS,
            input_root,
            tensor_bytes,
        )
        from aicommons.market.inputs import prepare

        account = self._require_account()
        if mode not in MODES:
            raise ClientError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
        if mode == "optimistic" and providers != 1:
            raise ClientError("optimistic mode takes one provider (--providers 1)")
        if mode == "redundant":
            if provider is not None:
                raise ClientError("redundant mode cannot name a provider")
            if not 2 <= providers <= 9:
                raise ClientError(f"redundant mode takes 2..9 providers, got {providers}")
        version = self._servable(reference, mode=mode)
        package = self.package_of(version)
        prepared = [prepare(package, x) for x in samples]
        inputs = [p.values for p in prepared]
        size = int(np.prod(package.input_shape))
        if blob is None:
            blob = size > MAX_INPUT_BYTES or int(package.input_shape[0]) > MAX_INPUT_ROWS
        if blob and not self._client.storage.nodes:
            raise ClientError("a blob input needs a storage node (--node)")
        offers = dict(self._offers_by(version))
        if provider is not None:
            from web3 import Web3

            if not Web3.is_address(provider):
                raise ClientError(f"{provider!r} is not an address")
            provider = Web3.to_checksum_address(provider)
            if provider.lower() not in offers:
                raise ClientError(f"provider {provider} does not offer {version.model}")
            offers = {provider.lower(): offers[provider.lower()]}
        if max_fee is None:
            max_fee = version.fee + providers * max(offers.values(), default=0)
        if max_fee < version.fee:
            raise ClientError(f"--max-fee {max_fee} is below the version fee {version.fee}")
        params = self.params()
        if not 0 < ttl_s <= params["max_request_ttl"]:
            raise ClientError(f"the deadline must be 1..{params['max_request_ttl']} s ahead")
        total = max_fee * len(inputs)
        balance = self._client.tokens.balance(account.address)
        if balance < total:
            raise ClientError(f"insufficient AIC for the fee: have {balance}, need {total}")
        self._ensure_allowance(total, "the fee")
        model_id = bytes.fromhex(self._model_id(version)[2:])
        zero = "0x" + "00" * 20
        tickets = []
        for sample, cut in zip(inputs, (p.truncated for p in prepared), strict=True):
            ref = (bytes(32), bytes(32), bytes(32))
            if blob:
                data = tensor_bytes(sample)
                stored = self._client.storage.put_bytes(data, name="input.bin")
                ref = (bytes.fromhex(stored.blob_id[2:]), keccak256(data), input_root(sample[0]))
            else:
                data = input_bytes(sample)
            now = int(self.w3.eth.get_block("latest")["timestamp"])
            deadline = max(now, int(time.time())) + ttl_s
            call = self._market().functions.request(
                model_id,
                version.version_bytes,
                b"" if blob else data,
                ref,
                MODES[mode],
                providers,
                max_fee,
                deadline,
                provider or zero,
                zero,
                0,
            )
            receipt = self._transact(call, f"requesting {version.model}", gas=TX_GAS["request"])
            events = (
                self._market().events.RequestCreated().process_receipt(receipt, errors=_discard())
            )
            if len(events) != 1:
                raise ClientError("the request transaction logged no RequestCreated event")
            ticket = RequestTicket(
                request_id=int(events[0]["args"]["request_id"]),
                tx_hash=hex32(receipt["transactionHash"]),
                block_number=int(receipt["blockNumber"]),
                block_hash=hex32(receipt["blockHash"]),
                model=version.model,
                version_id=version.version_id,
                mode=mode,
                # The request's input bytes as signed bytes, as `receipt_of` rebuilds them:
                # an int32 token id is four of them, so a text request's receipt verifies too.
                input=[int(v) for v in np.frombuffer(data, dtype=np.int8)],
                input_hash=hex32(keccak256(data)),
                max_fee=max_fee,
                deadline=deadline,
                truncated=cut,
            )
            keep_receipt(self._pending_receipt(ticket, account.address))
            tickets.append(ticket)
        return tickets

    def _offers_by(self, version: VersionInfo) -> list[tuple[str, int]]:
        """(provider, price) of every live offer of the version."""
        latest: dict[str, tuple[int, bool]] = {}
        filters = {"model_id": bytes.fromhex(self._model_id(version)[2:])}
        filters["version_id"] = version.version_bytes
        for event in self.events(names=("OfferSet",), filters=filters):
            latest[str(event.args["provider"]).lower()] = (
                int(event.args["price"]),
                bool(event.args["active"]),
            )
        return [(who, price) for who, (price, active) in latest.items() if active]

    def _pending_receipt(self, ticket: RequestTicket, requester: str) -> MarketReceipt:
        return MarketReceipt(
            chain_id=self._client.chain_id,
            market=self.address,
            registry=self.deployment.address("ModelRegistry"),
            request_id=ticket.request_id,
            model=ticket.model,
            version_id=ticket.version_id,
            mode=ticket.mode,
            requester=requester,
            provider="",
            signature="",
            tx_hash=ticket.tx_hash,
            block_number=ticket.block_number,
            block_hash=ticket.block_hash,
            input=ticket.input,
            input_hash=ticket.input_hash,
            output=[],
            output_hash="",
            trace_root="",
            max_fee=ticket.max_fee,
            fee=None,
        )

    def wait(
        self, request_id: int, *, timeout_s: float = 300.0, poll_s: float = 0.5
    ) -> MarketRequest:
        """Block until the request is settled (finalised, overturned or expired)."""
        limit = time.monotonic() + timeout_s
        while True:
            info = self.request_info(request_id)
            if info.status in SETTLED:
                return info
            if time.monotonic() >= limit:
                raise ClientError(
                    f"request {request_id} is still {info.status} after {timeout_s:.0f} s"
                )
            time.sleep(poll_s)

    def receipt(self, ticket: RequestTicket) -> MarketReceipt:
        """The receipt of a request just made (`receipt_of` its id), kept under
        `$AIC_HOME/receipts`."""
        receipt = self.receipt_of(ticket.request_id)
        keep_receipt(receipt)
        return receipt

    def receipt_of(self, request_id: int) -> MarketReceipt:
        """The receipt of any request, rebuilt from chain data alone (and, for a blob input,
        the blob from storage): the request transaction, the answering provider's signature as
        it posted it (BatchPosted, or Revealed in redundant mode), the output and, once final,
        the finalisation. Anyone can build it, on any machine; `aic verify` checks it."""
        created = self._created(request_id)
        args = created.args
        model = self._model_name(bytes(args["model_id"]))
        tx = self.w3.eth.get_transaction_receipt(created.tx_hash)
        data = self.input_of(args, package=None)
        info = self.request_info(request_id)
        receipt = MarketReceipt(
            chain_id=self._client.chain_id,
            market=self.address,
            registry=self.deployment.address("ModelRegistry"),
            request_id=request_id,
            model=model,
            version_id=hex32(args["version_id"]),
            mode=mode_name(int(args["mode"])),
            requester=str(args["requester"]),
            provider="",
            signature="",
            tx_hash=created.tx_hash,
            block_number=created.block_number,
            block_hash=hex32(tx["blockHash"]),
            input=[int(v) for v in np.frombuffer(data, dtype=np.int8)],
            input_hash=hex32(args["input_hash"]),
            output=[],
            output_hash="",
            trace_root="",
            max_fee=int(args["max_fee"]),
            fee=None,
        )
        if info.output is None or info.provider is None:
            return receipt
        return MarketReceipt(
            **{
                **receipt.to_json(),
                "provider": info.provider,
                "signature": self._posted_signature(request_id, info) or "",
                "output": info.output,
                "output_hash": info.output_hash or "",
                "trace_root": info.trace_root or "",
                "fee": info.fee,
                "finalise_tx": info.finalise_tx or "",
            }
        )

    def _posted_signature(self, request_id: int, info: MarketRequest) -> str | None:
        """The signature the answering provider posted with this output and trace root."""
        assert info.provider is not None
        who = info.provider.lower()
        if info.mode == "redundant":
            reveals = self.events(names=("Revealed",), filters={"request_id": request_id})
            posted = [
                (hex32(e.args["output_hash"]), hex32(e.args["trace_root"]), e.args["signature"])
                for e in reveals
                if str(e.args["provider"]).lower() == who
            ]
        else:
            posted = [
                (r.output_hash, r.trace_root, r.signature)
                for r in self.posted_results(request_id)
                if r.provider.lower() == who
            ]
        for output_hash, trace_root, signature in posted:
            if (output_hash, trace_root) == (info.output_hash, info.trace_root):
                return signature if isinstance(signature, str) else hex32(signature)
        return None

    # -- disputes ------------------------------------------------------------------------------

    def challenge(self, request_id: int, *, posted: PostedResult | None = None) -> int:
        """Dispute a posted result (the bond is taken); returns the dispute id."""
        result = posted or self._standing_result(request_id)
        self._ensure_allowance(self.params()["challenge_bond"], "the challenge bond")
        game = self._game()
        receipt = self._transact(
            game.functions.challenge(
                request_id,
                result.batch_id,
                result.index,
                bytes.fromhex(result.output_hash[2:]),
                bytes.fromhex(result.trace_root[2:]),
                list(result.siblings),
            ),
            f"challenging request {request_id}",
            gas=TX_GAS["challenge"],
        )
        events = game.events.Challenged().process_receipt(receipt, errors=_discard())
        if len(events) != 1:
            raise ClientError("the challenge logged no Challenged event")
        return int(events[0]["args"]["dispute_id"])

    def send_move(self, move: Move) -> str:
        """Send one dispute move (`aicommons.market.game.Move`) to the DisputeGame, with the
        move's fixed gas limit; returns the transaction hash."""
        call = getattr(self._game().functions, move.function)(*move.args)
        what = f"{move.function.replace('_', ' ')} in dispute {move.args[0]}"
        receipt = self._transact(call, what, gas=MOVE_GAS[move.function])
        return hex32(receipt["transactionHash"])

    def timeout(self, dispute_id: int) -> str:
        """Settle a dispute whose side to move missed its deadline (anyone may)."""
        return self.send_move(Move("timeout", (dispute_id,)))

    def cancel_dispute(self, dispute_id: int) -> str:
        return self.send_move(Move("cancel_dispute", (dispute_id,)))


def _discard() -> Any:
    from web3.logs import DISCARD

    return DISCARD


def _as_market_event(name: str, log: Any) -> MarketEvent:
    return MarketEvent(
        name=name,
        args=dict(log["args"]),
        block_number=int(log["blockNumber"]),
        log_index=int(log["logIndex"]),
        tx_hash=hex32(log["transactionHash"]),
    )
