"""`measure_market_gas()`: what the compute market costs, measured in titanoboa.

For the digits CNN and a synthetic model with one layer of width 4096 and fan-in 1024: a
request, batch posts of 1 and 64 results, a finalise, and a whole dispute against a provider
that corrupted one element of the widest layer (rounds, the one-step, each side's total). Gas
is whole-transaction gas (21 000 + calldata + execution), as `aic bench gas` counts it.
Measures and returns numbers; asserts nothing about targets (the caller compares).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from aicommons.chain.deploy import MarketParams, deploy_market_boa, deploy_suite_boa
from aicommons.chain.gasbench import calldata_gas
from aicommons.commit import keccak256
from aicommons.market.commitments import (
    BatchCommitment,
    PostedResult,
    input_bytes,
    input_root,
    output_bytes,
)
from aicommons.market.dispute import TraceCommitments
from aicommons.market.game import DisputeState, challenger_move, provider_move
from aicommons.market.graph import graph_commitment
from aicommons.runtime import Layer, ModelPackage

AIC = 10**18
BATCH = 64
_ZERO_REF = (b"\x00" * 32, b"\x00" * 32, b"\x00" * 32)
_ZERO = "0x" + "00" * 20


@dataclass(frozen=True)
class MarketGasRow:
    """One model's figures (the keys of `aic bench market`, settle_s aside)."""

    model: str
    macs: int
    layers: int
    request_gas: int
    post_gas_per_request_batch1: int
    post_gas_per_request_batch64: int
    finalise_gas: int
    dispute_rounds: int
    one_step_gas: int
    dispute_gas_challenger: int
    dispute_gas_provider: int
    disputed_layer: int
    widest_rows: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def synthetic_wide_package(seed: int = 0, *, fan_in: int = 1024, width: int = 4096) -> ModelPackage:
    """input [fan_in] -> dense `width` (ReLU, int8) -> dense 10 (int32 logits), random weights:
    one layer of width 4096 and fan-in 1024 (its head then has fan-in 4096, the market's limit)."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    layers = []
    previous, shape = "input", fan_in
    for name, out, last in (("wide", width, False), ("head", 10, True)):
        tensors[f"{name}.weight"] = rng.integers(-127, 128, (out, shape)).astype(np.int8)
        tensors[f"{name}.bias"] = rng.integers(-(2**16), 2**16, out).astype(np.int32)
        tensors[f"{name}.multiplier"] = rng.integers(2**20, 2**22, out).astype(np.int32)
        tensors[f"{name}.shift"] = np.full(out, 20 if last else 32, np.int32)
        dtype, lo, hi = ("int32", -(2**31), 2**31 - 1) if last else ("int8", 0, 127)
        output = "logits" if last else "hidden"
        layers.append(
            Layer(
                name,
                "dense",
                (previous,),
                output,
                (out,),
                dtype,
                "1",
                {role: f"{name}.{role}" for role in ("weight", "bias", "multiplier", "shift")},
                {"channels": out, "lo": lo, "hi": hi},
            )
        )
        previous, shape = output, out
    return ModelPackage.build(
        {"name": "input", "shape": [fan_in], "scale": "1"},
        layers,
        [{"name": "logits", "dtype": "int32", "scale": "1"}],
        tensors,
    )


def _digits_cnn() -> tuple[ModelPackage, np.ndarray]:
    from aicommons.demo import DIGITS_CNN, DIGITS_DATA
    from aicommons.runtime import quantize_onnx

    data = np.load(DIGITS_DATA)
    package = quantize_onnx(DIGITS_CNN, data["x_calib"].reshape(-1, 1, 8, 8))
    return package, package.quantize_input(data["x_test"][:1].reshape(-1, 1, 8, 8))[0]


class _Bench:
    """The suite in titanoboa, one version, one provider, one requester, one watcher."""

    def __init__(self, package: ModelPackage, slug: str) -> None:
        import boa

        self.boa = boa
        self.package = package
        self.input_hashes: dict[int, bytes] = {}
        self.params = MarketParams()
        self.governance = boa.env.generate_address("bench-governance")
        self.treasury = boa.env.generate_address("bench-treasury")
        self.token, self.registry, _ = deploy_suite_boa(self.treasury, sender=self.governance)
        contracts = deploy_market_boa(
            self.token.address,
            self.registry.address,
            self.treasury,
            params=self.params,
            sender=self.governance,
        )
        self.market, self.game = contracts.market, contracts.dispute_game
        self.model_id = keccak256(slug.encode())
        graph = graph_commitment(package)
        with boa.env.prank(self.governance):
            self.registry.register_model(slug, [])
            self.registry.publish_version(
                self.model_id,
                package.version_id,
                package.weights_root,
                b"\x00" * 32,
                ["ipfs://bench"],
                "MIT",
                [],
                6,
                AIC,
                graph.root,
            )
            self.game.register_graph(
                self.model_id, package.version_id, graph.header.as_abi(), graph.proof(0)
            )
        # The provider has a key so its posts carry real signatures (calldata gas counts bytes).
        from eth_account import Account

        self.provider_key = Account.from_key(keccak256(b"aicommons bench provider"))
        self.provider = self._funded("bench-provider", address=self.provider_key.address)
        self.requester = self._funded("bench-requester")
        self.watcher = self._funded("bench-watcher")
        with boa.env.prank(self.provider):
            self.market.stake(10_000 * AIC)
            self.market.offer(self.model_id, package.version_id, AIC)

    def _funded(self, name: str, *, address: str | None = None) -> str:
        account = address or self.boa.env.generate_address(name)
        with self.boa.env.prank(self.treasury):
            self.token.transfer(account, 10**6 * AIC)
        with self.boa.env.prank(account):
            self.token.approve(self.market.address, 2**256 - 1)
        return account

    def send(self, contract: Any, sender: str, function: str, *args: Any) -> tuple[Any, int]:
        """Call `function` from `sender`; returns (result, whole-transaction gas)."""
        with self.boa.env.prank(sender):
            result = getattr(contract, function)(*args)
        computation = contract._computation
        return result, int(computation.get_gas_used()) + calldata_gas(bytes(computation.msg.data))

    def request(self, x: np.ndarray, *, blob: bool = False) -> tuple[int, int]:
        """Request and claim one inference of `x`: its bytes in calldata, or (`blob`) by
        reference, which skips hashing its tensor root on-chain (the batch's other requests:
        post gas does not depend on how the input came)."""
        deadline = self.boa.env.evm.patch.timestamp + 3600
        data, ref = input_bytes(x), _ZERO_REF
        if blob:
            data, ref = b"", (keccak256(b"bench-blob"), keccak256(data), input_root(x))
        args = (self.model_id, self.package.version_id, data, ref, 1, 1)
        request_id, gas = self.send(
            self.market, self.requester, "request", *args, 10 * AIC, deadline, _ZERO, _ZERO, 0
        )
        self.send(self.market, self.provider, "claim", request_id)
        self.input_hashes[request_id] = ref[1] if blob else keccak256(data)
        return request_id, gas

    def post(self, results: list[PostedResult]) -> tuple[int, BatchCommitment, int]:
        batch = BatchCommitment(results)
        signatures = [self._sign(result) for result in results]
        batch_id, gas = self.send(
            self.market, self.provider, "post_batch", *batch.post_args(signatures)
        )
        return batch_id, batch, gas

    def _sign(self, result: PostedResult) -> bytes:
        """The provider's EIP-712 Result of one posted result (as a real provider posts it)."""
        from aicommons.market.receipts import ResultStatement, sign_result

        statement = ResultStatement(
            request_id=result.request_id,
            version_id="0x" + self.package.version_id.hex(),
            input_hash="0x" + self.input_hashes[result.request_id].hex(),
            output_hash="0x" + result.output_hash.hex(),
            trace_root="0x" + result.trace_root.hex(),
        )
        chain_id = int(self.boa.env.evm.patch.chain_id)
        signature = sign_result(
            self.provider_key, statement, chain_id=chain_id, market=str(self.market.address)
        )
        return bytes.fromhex(signature[2:])


def _widest_layer(package: ModelPackage) -> int:
    """The trace leaf (1-based layer) whose output has the most rows (deepest bisection)."""
    rows = [layer.out_shape[0] for layer in package.layers]
    return 1 + rows.index(max(rows))


def _measure(name: str, package: ModelPackage, x: np.ndarray) -> MarketGasRow:
    import boa

    with boa.env.anchor():
        bench = _Bench(package, name)
        trace = package.trace(x[None])
        honest = TraceCommitments(package, [value[0] for value in trace.values])
        output = output_bytes(trace.values[-1][0])

        # Request, posts of 1 and of 64, finalise.
        request_id, request_gas = bench.request(x)
        batch_id, batch, post1 = bench.post([PostedResult(request_id, honest.trace_root, output)])
        requests = [bench.request(x, blob=True)[0] for _ in range(BATCH)]
        _, _, post64 = bench.post([PostedResult(r, honest.trace_root, output) for r in requests])
        boa.env.time_travel(seconds=bench.params.window)
        args = batch.finalise_args(batch_id=batch_id, request_id=request_id)
        _, finalise_gas = bench.send(bench.market, bench.watcher, "finalise", *args)

        # A dispute: the provider corrupted one element of the widest layer.
        layer = _widest_layer(package)
        values = [value[0].copy() for value in trace.values]
        flat = values[layer].reshape(-1)
        flat[len(flat) // 2 + 1] = flat[len(flat) // 2 + 1] ^ 1
        liar = TraceCommitments(package, values)
        posted = output_bytes(values[-1])
        request_id, _ = bench.request(x)
        batch_id, batch, _ = bench.post([PostedResult(request_id, liar.trace_root, posted)])
        args = batch.challenge_args(batch_id=batch_id, request_id=request_id)
        dispute_id, challenge_gas = bench.send(bench.game, bench.watcher, "challenge", *args)
        record = _play(bench, dispute_id, liar, honest, posted)
        if record["winner"] != bench.watcher:
            raise RuntimeError(f"the honest watcher lost the bench dispute: {record}")
    return MarketGasRow(
        model=name,
        macs=package.macs_per_sample,
        layers=len(package.layers),
        request_gas=request_gas,
        post_gas_per_request_batch1=post1,
        post_gas_per_request_batch64=post64 // BATCH,
        finalise_gas=finalise_gas,
        dispute_rounds=record["challenger_moves"] + 1,
        one_step_gas=record["one_step_gas"],
        dispute_gas_challenger=challenge_gas + record["challenger_gas"],
        dispute_gas_provider=record["provider_gas"],
        disputed_layer=layer,
        widest_rows=package.layers[layer - 1].out_shape[0],
    )


def _play(
    bench: _Bench, dispute_id: int, liar: TraceCommitments, honest: TraceCommitments, posted: bytes
) -> dict[str, Any]:
    """Both sides play their best moves to the end; returns the winner and each side's gas."""
    tally = {"provider_gas": 0, "challenger_gas": 0, "challenger_moves": 0, "one_step_gas": 0}
    roots: list[bytes] | None = None
    rows: list[bytes] | None = None
    for _ in range(256):
        state = DisputeState.from_abi(dispute_id, bench.game.disputes(dispute_id))
        if not state.active:
            break
        if state.provider_to_move:
            move = provider_move(state, liar, posted)
            assert move is not None
            _, gas = bench.send(bench.game, state.provider, move.function, *move.args)
            tally["provider_gas"] += gas
            if move.function == "reveal_roots":
                data = move.args[1]
                roots = [data[i : i + 32] for i in range(0, len(data), 32)]
            elif move.function == "reveal_rows":
                rows = list(move.args[1])
        else:
            move = challenger_move(state, honest, roots, rows)
            assert move is not None
            _, gas = bench.send(bench.game, state.challenger, move.function, *move.args)
            tally["challenger_gas"] += gas
            tally["challenger_moves"] += 1
            if move.function == "one_step":
                tally["one_step_gas"] = gas
    final = DisputeState.from_abi(dispute_id, bench.game.disputes(dispute_id))
    tally["winner"] = final.challenger if final.phase == "challenger_won" else final.provider
    return tally


MODELS: dict[str, Callable[[], tuple[ModelPackage, np.ndarray]]] = {
    "digits-cnn": _digits_cnn,
    "synthetic-wide": lambda: (
        synthetic_wide_package(),
        np.random.default_rng(1).integers(-128, 128, 1024).astype(np.int8),
    ),
}


def measure_market_gas(models: tuple[str, ...] = tuple(MODELS)) -> list[MarketGasRow]:
    """Measure every model in `models` (default: the digits CNN and the synthetic wide model)."""
    rows = []
    for name in models:
        package, x = MODELS[name]()
        rows.append(_measure(name, package, x))
    return rows


def rounds_target(row: MarketGasRow) -> int:
    """ceil(log2 layers) + ceil(log2 width) + 3, the issue's bound on dispute rounds."""
    return (row.layers - 1).bit_length() + (row.widest_rows - 1).bit_length() + 3
