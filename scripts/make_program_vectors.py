"""Regenerate docs/test-vectors/program-hash.json: a small package and its executor program hash.

Run only when the program hash format changes on purpose (a protocol change): the tests check the
committed file against `aicommons.chain.executor.program_hash` and against OnchainExecutor.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from aicommons.chain.executor import program_from_manifest
from aicommons.runtime import Layer, ModelPackage

OUT = Path(__file__).resolve().parent.parent / "docs" / "test-vectors" / "program-hash.json"


def vector_package() -> ModelPackage:
    """3 -> 2 (ReLU) -> 2 (int32 logits), fixed integer tensors (no RNG)."""
    tensors = {
        "fc0.weight": np.array([[1, -2, 3], [-127, 0, 127]], dtype=np.int8),
        "fc0.bias": np.array([10, -10], dtype=np.int32),
        "fc0.multiplier": np.array([1 << 30, 3 << 28], dtype=np.int32),
        "fc0.shift": np.array([31, 32], dtype=np.int32),
        "fc1.weight": np.array([[5, 6], [-7, 8]], dtype=np.int8),
        "fc1.bias": np.array([0, 1], dtype=np.int32),
        "fc1.multiplier": np.array([1, 2], dtype=np.int32),
        "fc1.shift": np.array([0, 1], dtype=np.int32),
    }
    roles = ("weight", "bias", "multiplier", "shift")
    layers = [
        Layer(
            name="fc0",
            op="dense",
            inputs=("input",),
            output="relu0",
            out_shape=(2,),
            out_dtype="int8",
            tensors={role: f"fc0.{role}" for role in roles},
            attrs={"channels": 2, "lo": 0, "hi": 127},
        ),
        Layer(
            name="fc1",
            op="dense",
            inputs=("relu0",),
            output="logits",
            out_shape=(2,),
            out_dtype="int32",
            tensors={role: f"fc1.{role}" for role in roles},
            attrs={"channels": 2, "lo": -(2**31), "hi": 2**31 - 1},
        ),
    ]
    return ModelPackage.build(
        {"name": "input", "shape": [3], "scale": "1"},
        layers,
        [{"name": "logits", "dtype": "int32", "scale": "1"}],
        tensors,
    )


def main() -> None:
    package = vector_package()
    program = program_from_manifest(package.manifest)
    vector = {
        "manifest": package.manifest,
        "version_id": "0x" + package.version_id.hex(),
        "program": [list(layer.as_abi()) for layer in program.layers],
        "tensor_roots": ["0x" + root.hex() for root in program.tensor_roots],
        "program_hash": "0x" + program.program_hash().hex(),
    }
    OUT.write_text(json.dumps(vector, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
