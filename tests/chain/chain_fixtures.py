"""Shared helpers for the chain tests: deploy the suite in boa, random dense models, reference.

The pure-int reference here follows docs/integer-semantics.md literally (Python ints, no numpy
arithmetic), so it is an independent oracle for the executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boa
import numpy as np

from aicommons.chain.compile import load_boa
from aicommons.chain.executor import (
    DenseLayer,
    ExecutorModel,
    send_boa,
    upload_calls,
    weights_root,
)
from aicommons.commit import keccak256

SUPPLY = 10**9 * 10**18
PROTOCOL_BPS = 500


@dataclass
class Suite:
    token: Any
    registry: Any
    executor: Any
    governance: str
    treasury: str


def deploy_suite(protocol_bps: int = PROTOCOL_BPS) -> Suite:
    governance = boa.env.generate_address("governance")
    treasury = boa.env.generate_address("treasury")
    with boa.env.prank(governance):
        token = load_boa("CommonsToken", treasury, SUPPLY, sender=governance)
        registry = load_boa("ModelRegistry", sender=governance)
        executor = load_boa(
            "OnchainExecutor",
            registry.address,
            token.address,
            treasury,
            protocol_bps,
            sender=governance,
        )
    return Suite(token, registry, executor, governance, treasury)


def rshift_round(value: int, shift: int) -> int:
    return value if shift == 0 else (value + (1 << (shift - 1))) >> shift


def reference_forward(model: ExecutorModel, x: list[int]) -> list[int]:
    """Pure-int dense + requantise + clamp, layer by layer."""
    values = [int(v) for v in x]
    for layer in model.layers:
        weight = layer.weight.tolist()
        out = []
        for c in range(layer.out_dim):
            acc = int(layer.bias[c]) + sum(a * b for a, b in zip(values, weight[c], strict=True))
            y = rshift_round(acc * int(layer.multiplier[c]), int(layer.shift[c]))
            out.append(max(layer.lo, min(layer.hi, y)))
        values = out
    return values


def random_model(
    rng: np.random.Generator,
    widths: list[int],
    output_range: tuple[int, int] = (-(2**31), 2**31 - 1),
) -> ExecutorModel:
    layers = []
    tensors: dict[str, np.ndarray] = {}
    for index, (fan_in, fan_out) in enumerate(zip(widths, widths[1:], strict=False)):
        last = index == len(widths) - 2
        weight = rng.integers(-127, 128, size=(fan_out, fan_in), dtype=np.int8)
        bias = rng.integers(-(2**20), 2**20, size=fan_out).astype(np.int32)
        # Multipliers around 2**30 with shifts that bring int32 accumulators back to int8 scale.
        multiplier = rng.integers(1, 2**31, size=fan_out)
        shift = rng.integers(0, 63, size=fan_out) if last else rng.integers(38, 47, size=fan_out)
        lo, hi = output_range if last else (int(rng.choice([-128, 0])), 127)
        name = f"layer{index}"
        tensors[f"{name}.weight"] = weight
        tensors[f"{name}.bias"] = bias
        layers.append(
            DenseLayer(f"{name}.weight", f"{name}.bias", weight, bias, multiplier, shift, lo, hi)
        )
    return ExecutorModel(tuple(layers), tensors)


def slug_id(slug: str) -> bytes:
    return keccak256(slug.encode())


def publish(
    suite: Suite,
    model: ExecutorModel,
    maintainer: str,
    slug: str,
    version_seed: int,
    fee: int = 0,
    attribution: tuple[tuple[str, int, int], ...] = (),
) -> bytes:
    """Register `slug` if new and publish a version of `model`; returns its version id."""
    model_id = slug_id(slug)
    version_id = keccak256(b"version" + version_seed.to_bytes(8, "big"))
    with boa.env.prank(maintainer):
        if suite.registry.models(model_id)[1] == 0:
            suite.registry.register_model(slug, [])
        suite.registry.publish_version(
            model_id,
            version_id,
            weights_root(model.tensors),
            ["ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"],
            "MIT",
            list(attribution),
            1,
            fee,
        )
    return version_id


def upload(suite: Suite, model: ExecutorModel, version_id: bytes, maintainer: str) -> int:
    """Upload every chunk of `model`; returns the total gas."""
    return send_boa(suite.executor, upload_calls(version_id, model), sender=maintainer)
