"""Shared helpers of the market tests: the whole suite in titanoboa, versions, funded actors,
and a driver that plays dispute moves from `aicommons.market.game`.

The suite is deployed once per test module; tests run under `boa.env.anchor()` so each starts
from the same state without redeploying (titanoboa compiles and deploys are the slow part).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boa
import numpy as np

from aicommons.chain.deploy import MarketParams, deploy_market_boa, deploy_suite_boa
from aicommons.commit import keccak256
from aicommons.market.commitments import BatchCommitment, PostedResult, input_bytes, output_bytes
from aicommons.market.dispute import TraceCommitments
from aicommons.market.game import DisputeState, Move, challenger_move, provider_move
from aicommons.market.graph import graph_commitment
from aicommons.runtime import ModelPackage

AIC = 10**18
SUPPLY = 10**9 * AIC
LOCATOR = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
MODES_MARKET = 2 | 4
ZERO_REF = (b"\x00" * 32, b"\x00" * 32, b"\x00" * 32)


@dataclass
class MarketSuite:
    token: Any
    registry: Any
    executor: Any
    market: Any
    game: Any
    redundant: Any
    verifier: Any
    governance: str
    treasury: str
    params: MarketParams
    versions: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)

    def fund(self, account: str, amount: int = 10_000 * AIC) -> None:
        with boa.env.prank(self.treasury):
            self.token.transfer(account, amount)
        with boa.env.prank(account):
            self.token.approve(self.market.address, 2**256 - 1)

    def publish(
        self,
        package: ModelPackage,
        slug: str,
        *,
        fee: int = 0,
        attribution: list[tuple[str, int, int]] | None = None,
        maintainer: str | None = None,
    ) -> tuple[bytes, bytes]:
        """Publish `package` as a market version of `slug` with its graph root, and bring its
        graph header into the game."""
        maintainer = maintainer or self.governance
        model_id = keccak256(slug.encode())
        graph = graph_commitment(package)
        with boa.env.prank(maintainer):
            if self.registry.model_owner(model_id) == "0x" + "00" * 20:
                self.registry.register_model(slug, [])
            self.registry.publish_version(
                model_id,
                package.version_id,
                package.weights_root,
                b"\x00" * 32,
                [LOCATOR],
                "MIT",
                attribution or [],
                MODES_MARKET,
                fee,
                graph.root,
            )
            self.game.register_graph(
                model_id, package.version_id, graph.header.as_abi(), graph.proof(0)
            )
        self.versions[slug] = (model_id, package.version_id)
        return model_id, package.version_id

    def provider(
        self, name: str, slugs: list[str], *, price: int = AIC, stake: int = 200 * AIC
    ) -> str:
        account = boa.env.generate_address(name)
        self.fund(account)
        with boa.env.prank(account):
            self.market.stake(stake)
            for slug in slugs:
                self.market.offer(*self.versions[slug], price)
        return account

    def request(
        self,
        requester: str,
        slug: str,
        x: np.ndarray,
        *,
        mode: int = 1,
        redundancy: int = 1,
        max_fee: int = 10 * AIC,
        ttl: int = 600,
        provider: str = "0x" + "00" * 20,
        callback: str = "0x" + "00" * 20,
        callback_gas: int = 0,
    ) -> int:
        with boa.env.prank(requester):
            return self.market.request(
                *self.versions[slug],
                input_bytes(x),
                ZERO_REF,
                mode,
                redundancy,
                max_fee,
                boa.env.evm.patch.timestamp + ttl,
                provider,
                callback,
                callback_gas,
            )

    def balance_sum(self, accounts: list[str]) -> int:
        return sum(self.token.balanceOf(a) for a in accounts)


def deploy_market_suite(params: MarketParams | None = None) -> MarketSuite:
    governance = boa.env.generate_address("governance")
    treasury = boa.env.generate_address("treasury")
    params = params or MarketParams()
    token, registry, executor = deploy_suite_boa(treasury, supply=SUPPLY, sender=governance)
    contracts = deploy_market_boa(
        token.address, registry.address, treasury, params=params, sender=governance
    )
    return MarketSuite(
        token,
        registry,
        executor,
        contracts.market,
        contracts.dispute_game,
        contracts.redundant_mode,
        contracts.verifier,
        governance,
        treasury,
        params,
    )


def advance(seconds: int) -> None:
    boa.env.time_travel(seconds=seconds)


def post(
    suite: MarketSuite, provider: str, results: list[PostedResult]
) -> tuple[int, BatchCommitment]:
    batch = BatchCommitment(results)
    with boa.env.prank(provider):
        batch_id = suite.market.post_batch(*batch.post_args())
    return batch_id, batch


def honest_result(
    package: ModelPackage, request_id: int, x: np.ndarray
) -> tuple[PostedResult, TraceCommitments]:
    trace = package.trace(x)
    commitments = TraceCommitments.from_trace(package, trace)
    output = output_bytes(trace.values[-1][0])
    return PostedResult(request_id, trace.roots[0], output), commitments


def finalise(
    suite: MarketSuite, batch_id: int, batch: BatchCommitment, request_id: int, sender: str
) -> None:
    with boa.env.prank(sender):
        suite.market.finalise(*batch.finalise_args(batch_id=batch_id, request_id=request_id))


def challenge(
    suite: MarketSuite, challenger: str, batch_id: int, batch: BatchCommitment, request_id: int
) -> int:
    with boa.env.prank(challenger):
        return suite.game.challenge(*batch.challenge_args(batch_id=batch_id, request_id=request_id))


def state(suite: MarketSuite, dispute_id: int) -> DisputeState:
    return DisputeState.from_abi(dispute_id, suite.game.disputes(dispute_id))


def send(suite: MarketSuite, sender: str, move: Move) -> int:
    """Send `move` from `sender`; returns the gas it used (execution + calldata, as a tx)."""
    from aicommons.chain.gasbench import calldata_gas

    with boa.env.prank(sender):
        getattr(suite.game, move.function)(*move.args)
    computation = suite.game._computation
    return int(computation.get_gas_used()) + calldata_gas(bytes(computation.msg.data))


def _resolved(suite: MarketSuite) -> Any:
    logs = [log for log in suite.game.get_logs() if type(log).__name__ == "DisputeResolved"]
    return logs[0] if logs else None


@dataclass
class GameRecord:
    """What a played dispute cost and how it ended."""

    winner: str
    rounds: int
    provider_gas: int
    challenger_gas: int
    moves: list[str]
    errors: list[str] = field(default_factory=list)
    resolved: Any = None  # the DisputeResolved log


def play(
    suite: MarketSuite,
    dispute_id: int,
    *,
    provider: TraceCommitments | None,
    challenger: TraceCommitments | None,
    output: bytes,
    challenge_gas: int = 0,
) -> GameRecord:
    """Play both sides to the end; a side given None stays silent (and times out)."""
    roots: list[bytes] | None = None
    rows: list[bytes] | None = None
    record = GameRecord("", 0, 0, challenge_gas, ["challenge"])
    for _ in range(200):
        current = state(suite, dispute_id)
        if not current.active:
            break
        if current.provider_to_move:
            move = provider_move(current, provider, output) if provider else None
            who = current.provider
        else:
            move = challenger_move(current, challenger, roots, rows) if challenger else None
            who = current.challenger
        gas = None
        if move is not None:
            try:
                gas = send(suite, who, move)
                record.resolved = _resolved(suite) or record.resolved
            except boa.BoaError as exc:
                record.errors.append(f"{move.function}: {str(exc)[:400]}")
                gas = None  # the commitments do not open this way: the mover cannot move
        if gas is None:
            advance(suite.params.move_period + 1)
            suite.game.timeout(dispute_id)
            record.resolved = _resolved(suite) or record.resolved
            record.moves.append("timeout")
            continue
        record.moves.append(move.function)
        if current.provider_to_move:
            record.provider_gas += gas
            if move.function == "reveal_roots":
                data = move.args[1]
                roots = [data[i : i + 32] for i in range(0, len(data), 32)]
            if move.function == "reveal_rows":
                rows = list(move.args[1])
        else:
            record.challenger_gas += gas
            record.rounds += 1
    final = state(suite, dispute_id)
    record.winner = final.challenger if final.phase == "challenger_won" else final.provider
    record.rounds += 1  # the challenge itself
    return record
