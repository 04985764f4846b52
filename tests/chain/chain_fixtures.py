"""Shared helpers for the chain tests: the suite deployed in boa, random runtime packages.

Random models are real `aicommons.runtime` packages (manifest, tensor roots, version id), so the
executor is always compared with the runtime's own kernels and pure-int reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boa
import numpy as np

from aicommons.chain.deploy import deploy_suite_boa
from aicommons.chain.executor import model_from_package, program_hash, send_boa, upload_calls
from aicommons.commit import keccak256
from aicommons.runtime import Layer, ModelPackage

SUPPLY = 10**9 * 10**18
PROTOCOL_BPS = 500
ZERO_ADDRESS = "0x" + "00" * 20
LOCATOR = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


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
    token, registry, executor = deploy_suite_boa(
        treasury, supply=SUPPLY, protocol_share_bps=protocol_bps, sender=governance
    )
    return Suite(token, registry, executor, governance, treasury)


def dense_package(
    rng: np.random.Generator,
    widths: list[int],
    *,
    weight_values: tuple[int, int] = (-127, 127),
    hidden_lo: int | None = None,
) -> ModelPackage:
    """A random dense chain `widths[0] -> ... -> widths[-1]` with an int32 output layer."""
    layers = []
    tensors: dict[str, np.ndarray] = {}
    previous = "input"
    for index, (fan_in, fan_out) in enumerate(zip(widths, widths[1:], strict=False)):
        last = index == len(widths) - 2
        name = f"dense{index}"
        low, high = weight_values
        tensors[f"{name}.weight"] = rng.integers(low, high + 1, (fan_out, fan_in)).astype(np.int8)
        bias_bound = min(2**20, 2**31 - 1 - fan_in * 16256)
        tensors[f"{name}.bias"] = rng.integers(-bias_bound, bias_bound, fan_out).astype(np.int32)
        tensors[f"{name}.multiplier"] = rng.integers(1, 2**31, fan_out).astype(np.int32)
        # Shifts that bring products back near int8 for hidden layers, anything for the output.
        shifts = rng.integers(0, 63, fan_out) if last else rng.integers(36, 48, fan_out)
        tensors[f"{name}.shift"] = shifts.astype(np.int32)
        if last:
            lo, hi, dtype = -(2**31), 2**31 - 1, "int32"
        else:
            lo = hidden_lo if hidden_lo is not None else int(rng.choice([-128, 0]))
            hi, dtype = 127, "int8"
        output = "logits" if last else f"act{index}"
        layers.append(
            Layer(
                name=name,
                op="dense",
                inputs=(previous,),
                output=output,
                out_shape=(fan_out,),
                out_dtype=dtype,
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


def slug_id(slug: str) -> bytes:
    return keccak256(slug.encode())


def publish(
    suite: Suite,
    package: ModelPackage,
    maintainer: str,
    slug: str,
    fee: int = 0,
    attribution: list[tuple[str, int, int]] | None = None,
) -> tuple[bytes, bytes]:
    """Register `slug` if new and publish `package` under it; returns (model_id, version_id)."""
    model_id = slug_id(slug)
    with boa.env.prank(maintainer):
        if suite.registry.model_owner(model_id) == ZERO_ADDRESS:
            suite.registry.register_model(slug, [])
        suite.registry.publish_version(
            model_id,
            package.version_id,
            package.weights_root,
            program_hash(package),
            [LOCATOR],
            "MIT",
            attribution or [],
            1,
            fee,
        )
    return model_id, package.version_id


def upload(suite: Suite, package: ModelPackage, maintainer: str, slug: str) -> int:
    """Upload every chunk of `package` as a version of `slug`; returns the total gas used."""
    calls = upload_calls(slug_id(slug), package.version_id, model_from_package(package))
    return send_boa(suite.executor, calls, sender=maintainer)
