"""The on-chain executor computes aicommons-int/1 only: a version-2 package is refused by name,
even one whose layers are all dense (its int16 values would be misread as int8)."""

from __future__ import annotations

import numpy as np
import pytest

from aicommons.chain.errors import ExecutorError
from aicommons.chain.executor import program_from_manifest
from aicommons.runtime import Layer, ModelPackage


def _dense_package(out_dtype: str) -> ModelPackage:
    limit = 127 if out_dtype == "int8" else 32767
    tensors = {
        "w": np.array([[1, -2], [3, 4]], np.int8),
        "b": np.zeros(2, np.int32),
        "m": np.ones(2, np.int32),
        "s": np.zeros(2, np.int32),
    }
    layer = Layer(
        "fc", "dense", ("x",), "y", (2,), out_dtype=out_dtype,
        tensors={"weight": "w", "bias": "b", "multiplier": "m", "shift": "s"},
        attrs={"channels": 2, "lo": -limit - 1, "hi": limit},
    )  # fmt: skip
    outputs = [{"name": "y", "dtype": out_dtype, "scale": "1"}]
    return ModelPackage.build({"name": "x", "shape": [2], "scale": "1"}, [layer], outputs, tensors)


def test_executor_takes_version_1_and_refuses_version_2() -> None:
    v1 = _dense_package("int8")
    assert v1.manifest["semantics"] == "aicommons-int/1" and "dtype" not in v1.manifest["input"]
    assert program_from_manifest(v1.manifest)
    v2 = _dense_package("int16")
    assert v2.manifest["semantics"] == "aicommons-int/2"
    with pytest.raises(ExecutorError, match="runs aicommons-int/1 .int8. graphs only"):
        program_from_manifest(v2.manifest)
