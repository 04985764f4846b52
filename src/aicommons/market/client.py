"""A typed client of the market contracts over any web3 endpoint: one method per action.

Keyword-only arguments in, frozen dataclasses out; every transaction goes through
`aicommons.chain.transact.send_call` (a doomed call is refused before it is signed). Ids that
transactions create (request, batch, dispute) are read back from the contracts' events. This is
what the provider and watcher daemons and the SDK call; it makes no decision of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aicommons.chain.compile import compile_contract
from aicommons.chain.deploy import MarketParams
from aicommons.chain.transact import send_call
from aicommons.market.commitments import (
    BatchCommitment,
    PostedResult,
    input_bytes,
    redundant_commitment,
)
from aicommons.market.errors import MarketError
from aicommons.market.game import DisputeState, Move
from aicommons.market.graph import GraphCommitment

ZERO_ADDRESS = "0x" + "00" * 20
STATUS_NAMES = {
    0: "unknown",
    1: "open",
    2: "claimed",
    3: "posted",
    4: "disputed",
    5: "finalised",
    6: "overturned",
    7: "expired",
}
MODE_OPTIMISTIC, MODE_REDUNDANT = 1, 2


@dataclass(frozen=True)
class InputRef:
    """A request input held in storage: blob id, keccak of its bytes, its tensor root."""

    blob_id: bytes
    input_hash: bytes
    input_root: bytes

    def as_abi(self) -> tuple[bytes, bytes, bytes]:
        return (self.blob_id, self.input_hash, self.input_root)


NO_INPUT_REF = InputRef(b"\x00" * 32, b"\x00" * 32, b"\x00" * 32)


@dataclass(frozen=True)
class Sent:
    """A mined transaction."""

    tx_hash: bytes
    gas_used: int


@dataclass(frozen=True)
class RequestInfo:
    request_id: int
    requester: str
    model_id: bytes
    version_id: bytes
    input_hash: bytes
    input_root: bytes
    max_fee: int
    version_fee: int
    provider: str
    callback: str
    callback_gas: int
    prices: int
    open_disputes: int
    mode: int
    deadline: int
    status: str


@dataclass(frozen=True)
class ClaimInfo:
    provider: str
    price: int
    lock: int


@dataclass(frozen=True)
class ProviderInfo:
    address: str
    free: int
    locked: int
    unbonding: int
    unbond_at: int
    owed: int


@dataclass(frozen=True)
class BatchInfo:
    batch_id: int
    root: bytes
    provider: str
    count: int
    posted_at: int
    window_ends: int


@dataclass(frozen=True)
class PostedBatch:
    """A batch as posted (from its BatchPosted event): the results and their commitment."""

    batch_id: int
    provider: str
    window_ends: int
    commitment: BatchCommitment


class MarketClient:
    """ComputeMarket, DisputeGame and RedundantMode at known addresses, acting as `account`."""

    def __init__(
        self,
        w3: Any,
        *,
        market: str,
        dispute_game: str,
        redundant_mode: str,
        account: Any,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.address = getattr(account, "address", account)
        self.market = w3.eth.contract(address=market, abi=compile_contract("ComputeMarket").abi)
        self.game = w3.eth.contract(address=dispute_game, abi=compile_contract("DisputeGame").abi)
        self.redundant = w3.eth.contract(
            address=redundant_mode, abi=compile_contract("RedundantMode").abi
        )
        self.token = w3.eth.contract(
            address=self.market.functions.token().call(), abi=compile_contract("CommonsToken").abi
        )

    # -- plumbing --------------------------------------------------------------------------

    def _send(self, function: Any, what: str) -> tuple[Sent, Any]:
        receipt = send_call(self.w3, self.account, function, what)
        return Sent(bytes(receipt["transactionHash"]), int(receipt["gasUsed"])), receipt

    @staticmethod
    def _event(contract: Any, name: str, receipt: Any) -> Any:
        from web3.logs import DISCARD

        # The receipt also holds other contracts' logs (token, market): skip them quietly.
        events = getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
        if not events:
            raise MarketError(f"the transaction logged no {name} event")
        return events[0]["args"]

    # -- reads -----------------------------------------------------------------------------

    def params(self) -> MarketParams:
        return MarketParams.from_abi(self.market.functions.params().call())

    def provider(self, address: str | None = None) -> ProviderInfo:
        address = address or self.address
        free, locked, unbonding, unbond_at = self.market.functions.providers(address).call()
        owed = self.market.functions.owed(address).call()
        return ProviderInfo(address, free, locked, unbonding, unbond_at, owed)

    def request_info(self, request_id: int) -> RequestInfo:
        fields = self.market.functions.requests(request_id).call()
        model_id, version_id, input_root, _, mode, deadline = self.market.functions.request_terms(
            request_id
        ).call()
        status = self.market.functions.request_status(request_id).call()
        (
            requester,
            _,
            _,
            input_hash,
            _,
            max_fee,
            version_fee,
            provider,
            callback,
            gas,
            prices,
            disputes,
        ) = fields
        return RequestInfo(
            request_id=request_id,
            requester=requester,
            model_id=bytes(model_id),
            version_id=bytes(version_id),
            input_hash=bytes(input_hash),
            input_root=bytes(input_root),
            max_fee=max_fee,
            version_fee=version_fee,
            provider=provider,
            callback=callback,
            callback_gas=gas,
            prices=prices,
            open_disputes=disputes,
            mode=mode,
            deadline=deadline,
            status=STATUS_NAMES.get(status, "unknown"),
        )

    def claims(self, request_id: int) -> list[ClaimInfo]:
        return [ClaimInfo(*claim) for claim in self.market.functions.claims(request_id).call()]

    def batch(self, batch_id: int) -> BatchInfo:
        root, provider, count, posted_at, window_ends = self.market.functions.batch(batch_id).call()
        return BatchInfo(batch_id, bytes(root), provider, count, posted_at, window_ends)

    def dispute(self, dispute_id: int) -> DisputeState:
        return DisputeState.from_abi(dispute_id, self.game.functions.disputes(dispute_id).call())

    def posted_batch(self, batch_id: int, *, from_block: int = 0) -> PostedBatch:
        """The results of a batch, from its BatchPosted event."""
        logs = self.market.events.BatchPosted().get_logs(
            from_block=from_block, argument_filters={"batch_id": batch_id}
        )
        if not logs:
            raise MarketError(f"no BatchPosted event for batch {batch_id}")
        args = logs[0]["args"]
        results, offset = [], 0
        for request_id, trace_root, size in zip(
            args["request_ids"], args["trace_roots"], args["output_sizes"], strict=True
        ):
            results.append(
                PostedResult(
                    request_id, bytes(trace_root), bytes(args["outputs"][offset : offset + size])
                )
            )
            offset += size
        return PostedBatch(
            batch_id, args["provider"], args["window_ends"], BatchCommitment(results)
        )

    def revealed_roots(self, dispute_id: int, *, from_block: int = 0) -> list[bytes]:
        """The provider's layer roots (RootsRevealed), input first."""
        logs = self.game.events.RootsRevealed().get_logs(
            from_block=from_block, argument_filters={"dispute_id": dispute_id}
        )
        if not logs:
            raise MarketError(f"dispute {dispute_id} has no revealed roots yet")
        data = bytes(logs[-1]["args"]["layer_roots"])
        return [data[i : i + 32] for i in range(0, len(data), 32)]

    def revealed_rows(self, dispute_id: int, *, from_block: int = 0) -> list[bytes]:
        """The leaf rows the provider revealed last (RowsRevealed)."""
        logs = self.game.events.RowsRevealed().get_logs(
            from_block=from_block, argument_filters={"dispute_id": dispute_id}
        )
        if not logs:
            raise MarketError(f"dispute {dispute_id} has no revealed rows yet")
        return [bytes(row) for row in logs[-1]["args"]["rows"]]

    # -- versions, stakes, offers ---------------------------------------------------------

    def register_graph(self, *, model_id: bytes, version_id: bytes, graph: GraphCommitment) -> Sent:
        function = self.game.functions.register_graph(
            model_id, version_id, graph.root, graph.header.as_abi(), graph.proof(0)
        )
        return self._send(function, f"registering the graph of version 0x{version_id.hex()}")[0]

    def approve(self, *, amount: int) -> Sent:
        """Let the market take up to `amount` AIC from this account (fees, stakes, bonds)."""
        function = self.token.functions.approve(self.market.address, amount)
        return self._send(function, "approving the market")[0]

    def stake(self, *, amount: int) -> Sent:
        return self._send(self.market.functions.stake(amount), f"staking {amount}")[0]

    def unstake(self, *, amount: int) -> Sent:
        return self._send(self.market.functions.unstake(amount), f"unstaking {amount}")[0]

    def withdraw_stake(self) -> Sent:
        return self._send(self.market.functions.withdraw_stake(), "withdrawing stake")[0]

    def withdraw(self) -> Sent:
        return self._send(self.market.functions.withdraw(), "withdrawing credits")[0]

    def offer(self, *, model_id: bytes, version_id: bytes, price: int) -> Sent:
        function = self.market.functions.offer(model_id, version_id, price)
        return self._send(function, f"offering version 0x{version_id.hex()}")[0]

    def retract(self, *, model_id: bytes, version_id: bytes) -> Sent:
        function = self.market.functions.retract(model_id, version_id)
        return self._send(function, f"retracting version 0x{version_id.hex()}")[0]

    # -- requests ---------------------------------------------------------------------------

    def request(
        self,
        *,
        model_id: bytes,
        version_id: bytes,
        x: np.ndarray | None = None,
        input_ref: InputRef = NO_INPUT_REF,
        mode: int = MODE_OPTIMISTIC,
        redundancy: int = 1,
        max_fee: int,
        deadline: int,
        provider: str = ZERO_ADDRESS,
        callback: str = ZERO_ADDRESS,
        callback_gas: int = 0,
    ) -> tuple[int, Sent]:
        """Request one inference of `x` (one int8 sample) or of a blob input; returns its id."""
        data = input_bytes(x) if x is not None else b""
        function = self.market.functions.request(
            model_id,
            version_id,
            data,
            input_ref.as_abi(),
            mode,
            redundancy,
            max_fee,
            deadline,
            provider,
            callback,
            callback_gas,
        )
        sent, receipt = self._send(function, f"requesting version 0x{version_id.hex()}")
        return int(self._event(self.market, "RequestCreated", receipt)["request_id"]), sent

    def claim(self, *, request_id: int) -> Sent:
        return self._send(
            self.market.functions.claim(request_id), f"claiming request {request_id}"
        )[0]

    def expire(self, *, request_id: int) -> Sent:
        return self._send(
            self.market.functions.expire(request_id), f"expiring request {request_id}"
        )[0]

    # -- optimistic mode --------------------------------------------------------------------

    def post_batch(self, *, results: Sequence[PostedResult]) -> tuple[PostedBatch, Sent]:
        commitment = BatchCommitment(results)
        function = self.market.functions.post_batch(*commitment.post_args())
        sent, receipt = self._send(function, f"posting {len(results)} results")
        event = self._event(self.market, "BatchPosted", receipt)
        return PostedBatch(
            int(event["batch_id"]), self.address, int(event["window_ends"]), commitment
        ), sent

    def finalise(self, *, request_id: int, batch: PostedBatch) -> Sent:
        args = batch.commitment.finalise_args(batch_id=batch.batch_id, request_id=request_id)
        function = self.market.functions.finalise(*args)
        return self._send(function, f"finalising request {request_id}")[0]

    def challenge(self, *, request_id: int, batch: PostedBatch) -> tuple[int, Sent]:
        args = batch.commitment.challenge_args(batch_id=batch.batch_id, request_id=request_id)
        function = self.game.functions.challenge(*args)
        sent, receipt = self._send(function, f"challenging request {request_id}")
        return int(self._event(self.game, "Challenged", receipt)["dispute_id"]), sent

    def move(self, *, move: Move) -> Sent:
        """Send one dispute move (from `aicommons.market.game`)."""
        function = getattr(self.game.functions, move.function)(*move.args)
        return self._send(function, str(move))[0]

    def timeout(self, *, dispute_id: int) -> Sent:
        return self._send(
            self.game.functions.timeout(dispute_id), f"timing out dispute {dispute_id}"
        )[0]

    def cancel_dispute(self, *, dispute_id: int) -> Sent:
        function = self.game.functions.cancel_dispute(dispute_id)
        return self._send(function, f"cancelling dispute {dispute_id}")[0]

    # -- redundant mode ---------------------------------------------------------------------

    def commit(
        self, *, request_id: int, output_hash: bytes, trace_root: bytes, salt: bytes
    ) -> Sent:
        commitment = redundant_commitment(
            request_id=request_id,
            provider=self.address,
            output_hash=output_hash,
            trace_root=trace_root,
            salt=salt,
        )
        function = self.redundant.functions.commit(request_id, commitment)
        return self._send(function, f"committing to request {request_id}")[0]

    def reveal(self, *, request_id: int, output: bytes, trace_root: bytes, salt: bytes) -> Sent:
        function = self.redundant.functions.reveal(request_id, output, trace_root, salt)
        return self._send(function, f"revealing request {request_id}")[0]

    def finalise_redundant(self, *, request_id: int, output: bytes) -> Sent:
        function = self.redundant.functions.finalise(request_id, output)
        return self._send(function, f"settling redundant request {request_id}")[0]

    def expire_redundant(self, *, request_id: int) -> Sent:
        function = self.redundant.functions.expire(request_id)
        return self._send(function, f"expiring redundant request {request_id}")[0]
