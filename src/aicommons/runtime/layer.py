"""One layer of an integer graph as the manifest records it, and the error naming a layer.

Pure data: what an op computes lives in `ops.py` (the registry); this module never computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aicommons.runtime.errors import PackageError


@dataclass(frozen=True)
class Layer:
    """One integer op. `attrs` hold ints / int lists; `tensors` map a role to a tensor name."""

    name: str
    op: str
    inputs: tuple[str, ...]
    output: str
    out_shape: tuple[int, ...]
    out_dtype: str = "int8"
    out_scale: str = "1"
    tensors: Mapping[str, str] = field(default_factory=dict)
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "op": self.op,
            "inputs": list(self.inputs),
            "output": self.output,
            "out_shape": list(self.out_shape),
            "out_dtype": self.out_dtype,
            "out_scale": self.out_scale,
            "tensors": dict(self.tensors),
            "attrs": {key: list(v) if isinstance(v, tuple) else v for key, v in self.attrs.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Layer:
        try:
            return cls(
                name=str(data["name"]),
                op=str(data["op"]),
                inputs=tuple(str(v) for v in data["inputs"]),
                output=str(data["output"]),
                out_shape=tuple(int(v) for v in data["out_shape"]),
                out_dtype=str(data["out_dtype"]),
                out_scale=str(data["out_scale"]),
                tensors={str(k): str(v) for k, v in dict(data["tensors"]).items()},
                attrs=dict(data["attrs"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PackageError(f"malformed layer entry in manifest: {exc!r}") from None


def layer_error(layer: Layer, message: str) -> PackageError:
    """The one-line error for a layer that breaks a rule: `layer 'fc0' (dense): message`."""
    return PackageError(f"layer {layer.name!r} ({layer.op}): {message}")
