"""`aic bench gas`: gas of on-chain inference and upload for the digits MLP and a 64-128-128-10 MLP.

Deploys the contract suite in a fresh in-process titanoboa EVM; measures, never asserts targets.
Gas is whole-transaction gas: 21 000 + calldata (EIP-2028 prices) + execution.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from aicommons.chain.deploy import deploy_suite_boa
from aicommons.chain.errors import ChainError
from aicommons.chain.executor import (
    ContractCall,
    encode_input,
    model_from_package,
    program_hash,
    upload_calls,
)

TX_BASE_GAS = 21_000
GAS_PER_ZERO_BYTE = 4
GAS_PER_NONZERO_BYTE = 16


@dataclass(frozen=True)
class GasRow:
    """One model's figures; `gas_per_mac` = infer_gas / macs."""

    model: str
    macs: int
    infer_gas: int
    gas_per_mac: float
    upload_gas: int
    upload_txs: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def calldata_gas(data: bytes) -> int:
    """Intrinsic gas of a transaction carrying `data` (no access list, not a creation)."""
    zeros = data.count(0)
    return TX_BASE_GAS + zeros * GAS_PER_ZERO_BYTE + (len(data) - zeros) * GAS_PER_NONZERO_BYTE


def _abi_types(contract: Any, function: str) -> tuple[bytes, list[str]]:
    from aicommons.chain.compile import _abi_type
    from aicommons.commit import keccak256

    for entry in contract.abi:
        if entry.get("type") == "function" and entry["name"] == function:
            types = [_abi_type(arg) for arg in entry["inputs"]]
            selector = keccak256(f"{function}({','.join(types)})".encode())[:4]
            return selector, types
    raise ValueError(f"no function {function} in the ABI")


def _transaction_gas(contract: Any, call: ContractCall, sender: str) -> int:
    """Send `call` from `sender`; return its whole-transaction gas."""
    import boa
    from eth_abi import encode

    selector, types = _abi_types(contract, call.function)
    data = selector + encode(types, list(call.args))
    with boa.env.prank(sender):
        getattr(contract, call.function)(*call.args)
    return calldata_gas(data) + int(contract._computation.get_gas_used())


def random_mlp_package(widths: list[int], seed: int = 0) -> Any:
    """A dense MLP with random int8 weights and ReLU, as a runtime package."""
    from aicommons.runtime import Layer, ModelPackage

    rng = np.random.default_rng(seed)
    layers, tensors, previous = [], {}, "input"
    for index, (fan_in, fan_out) in enumerate(zip(widths, widths[1:], strict=False)):
        last = index == len(widths) - 2
        name = f"fc{index}"
        tensors[f"{name}.weight"] = rng.integers(-127, 128, (fan_out, fan_in)).astype(np.int8)
        tensors[f"{name}.bias"] = rng.integers(-(2**16), 2**16, fan_out).astype(np.int32)
        tensors[f"{name}.multiplier"] = rng.integers(2**30, 2**31, fan_out).astype(np.int32)
        tensors[f"{name}.shift"] = np.full(fan_out, 16 if last else 42, dtype=np.int32)
        output = "logits" if last else f"relu{index}"
        lo, hi = (-(2**31), 2**31 - 1) if last else (0, 127)
        layers.append(
            Layer(
                name=name,
                op="dense",
                inputs=(previous,),
                output=output,
                out_shape=(fan_out,),
                out_dtype="int32" if last else "int8",
                tensors={
                    role: f"{name}.{role}" for role in ("weight", "bias", "multiplier", "shift")
                },
                attrs={"channels": fan_out, "lo": lo, "hi": hi},
            )
        )
        previous = output
    return ModelPackage.build(
        {"name": "input", "shape": [widths[0]], "scale": "1"},
        layers,
        [{"name": "logits", "dtype": "int32", "scale": "1"}],
        tensors,
    )


def _measure(suite: dict[str, Any], name: str, package: Any, sample: np.ndarray) -> GasRow:
    import boa

    registry, executor = suite["registry"], suite["executor"]
    maintainer = boa.env.generate_address(f"maintainer-{name}")
    slug = name.lower().replace(" ", "-")
    with boa.env.prank(maintainer):
        model_id = registry.register_model(slug, [])
        registry.publish_version(
            model_id,
            package.version_id,
            package.weights_root,
            program_hash(package),
            [f"aicm://{slug}"],
            "MIT",
            [],
            1,
            0,
        )
    calls = upload_calls(model_id, package.version_id, model_from_package(package))
    upload_gas = sum(_transaction_gas(executor, call, maintainer) for call in calls)
    caller = boa.env.generate_address(f"caller-{name}")
    infer = ContractCall("infer", (model_id, package.version_id, encode_input(sample)))
    infer_gas = _transaction_gas(executor, infer, caller)
    macs = model_from_package(package).macs()
    return GasRow(name, macs, infer_gas, round(infer_gas / macs, 2), upload_gas, len(calls))


GAS_PER_MAC_TARGET = 60
"""The executor's target on the digits MLP (docs/contracts.md, "Gas"); reported, not asserted."""


def _digits_mlp() -> tuple[Any, np.ndarray]:
    from aicommons.demo import DIGITS_DATA, DIGITS_MLP
    from aicommons.runtime.quantize import quantize_onnx

    with np.load(DIGITS_DATA) as data:
        package = quantize_onnx(DIGITS_MLP, data["x_calib"])
        return package, package.quantize_input(data["x_test"][:1])[0]


def _wide_mlp() -> tuple[Any, np.ndarray]:
    return random_mlp_package([64, 128, 128, 10]), np.random.default_rng(1).integers(-128, 128, 64)


BENCH_MODELS: dict[str, Callable[[], tuple[Any, np.ndarray]]] = {
    "digits-mlp": _digits_mlp,  # first held-out sample
    "mlp-64-128-128-10": _wide_mlp,  # random weights, random input
}
"""The models `aic bench gas` measures, by name: (package, one int8 input) for each."""


def run_gas_bench(models: Sequence[str] = tuple(BENCH_MODELS)) -> list[GasRow]:
    """Measure each of `models` (names in BENCH_MODELS) in one fresh in-process chain."""
    import boa

    unknown = [name for name in models if name not in BENCH_MODELS]
    if unknown:
        raise ChainError(
            f"unknown gas bench model {unknown[0]!r}; choose from {', '.join(BENCH_MODELS)}"
        )
    with boa.env.anchor():
        deployer = boa.env.generate_address("deployer")
        treasury = boa.env.generate_address("treasury")
        _, registry, executor = deploy_suite_boa(treasury, sender=deployer)
        suite = {"registry": registry, "executor": executor}
        return [_measure(suite, name, *BENCH_MODELS[name]()) for name in models]
