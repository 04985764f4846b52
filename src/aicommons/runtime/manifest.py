"""The package manifest schema: every field's type and range, declared once, checked at load.

`check_manifest` refuses a manifest before anything reads it, with one line naming the field
(`manifest.layers[2].attrs.lo must be an integer, got true`); each op's attributes and tensor
roles come from the op registry. Relations between fields (shapes, bounds, the graph) are
checked afterwards by `graph.validate_graph`. Never coerces a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aicommons.runtime.errors import ManifestError
from aicommons.runtime.ops import OPS, SHAPE, OpSpec
from aicommons.runtime.schema import (
    Canonical,
    Choice,
    Decimal,
    Int,
    ListOf,
    Obj,
    Tagged,
    Text,
)

FORMAT = "aicommons-model/1"
SEMANTICS = "aicommons-int/1"
"""Version 1: int8 values and the int8 ops."""
SEMANTICS_V2 = "aicommons-int/2"
"""Version 2: version 1 plus int16 values, token-id inputs and the transformer ops."""
SEMANTICS_VERSIONS = {SEMANTICS: 1, SEMANTICS_V2: 2}
MAX_LAYERS = 4096
MAX_TENSORS = 4 * MAX_LAYERS
MAX_TENSOR_DIM = 2**31 - 1

NAME = Text(max_length=256)
SCALE = Decimal()
DTYPE = Choice(("int8", "int32"))
DTYPE_V2 = Choice(("int8", "int16", "int32"))
ROOT = Text(pattern="0x[0-9a-f]{64}", wanted='a 32-byte hex string "0x" + 64 lowercase digits')


def layer_schema(spec: OpSpec, dtype: Choice) -> Obj:
    """A layer entry of op `spec.name`: the common fields, its tensor roles and attributes."""
    return Obj(
        {
            "name": NAME,
            "op": Choice((spec.name,)),
            "inputs": ListOf(NAME, spec.arity, spec.arity),
            "output": NAME,
            "out_shape": SHAPE,
            "out_dtype": dtype,
            "out_scale": SCALE,
            "tensors": spec.tensors_schema,
            "attrs": spec.attrs_schema,
        }
    )


def manifest_schema(version: int, semantics: tuple[str, ...] | None = None) -> Obj:
    """The manifest of semantics `version`: version 1 knows int8/int32 and the version-1 ops
    only, and its input has no dtype (int8); version 2 adds int16, its ops and `input.dtype`.
    `semantics` overrides the accepted names (to refuse an unknown one by listing all)."""
    dtype = DTYPE if version == 1 else DTYPE_V2
    names = semantics or tuple(n for n, v in SEMANTICS_VERSIONS.items() if v == version)
    input_fields = {"name": NAME, "shape": SHAPE, "scale": SCALE}
    if version > 1:
        input_fields["dtype"] = dtype
    ops = {name: spec for name, spec in OPS.items() if spec.version <= version}
    return Obj(
        {
            "format": Choice((FORMAT,)),
            "semantics": Choice(names),
            "input": Obj(input_fields),
            "layers": ListOf(
                Tagged("op", {name: layer_schema(spec, dtype) for name, spec in ops.items()}),
                1,
                MAX_LAYERS,
            ),
            "outputs": ListOf(Obj({"name": NAME, "dtype": dtype, "scale": SCALE}), 1, MAX_LAYERS),
            "tensors": ListOf(
                Obj(
                    {
                        "name": NAME,
                        "dtype": dtype,
                        "shape": ListOf(Int(1, MAX_TENSOR_DIM), 0, 4),
                        "root": ROOT,
                    }
                ),
                0,
                MAX_TENSORS,
            ),
            "weights_root": ROOT,
            "metadata": Obj(rest=Canonical()),
        }
    )


MANIFESTS = {number: manifest_schema(number) for number in SEMANTICS_VERSIONS.values()}
MANIFEST = MANIFESTS[1]
UNKNOWN_SEMANTICS = manifest_schema(max(SEMANTICS_VERSIONS.values()), tuple(SEMANTICS_VERSIONS))
"""Checks a manifest whose semantics is none of ours: names every field error up to it."""


def semantics_version(manifest: Mapping[str, Any]) -> int:
    """The version number of a (schema-checked) manifest's semantics."""
    return SEMANTICS_VERSIONS[manifest["semantics"]]


def _unique(entries: list[Mapping[str, Any]], key: str, where: str) -> None:
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        if entry[key] in seen:
            raise ManifestError(f"{where}[{index}].{key} {entry[key]!r} is used twice")
        seen.add(entry[key])


def check_manifest(manifest: Any) -> None:
    """Refuse a manifest whose any field has the wrong type or range, or whose names clash, or
    whose declared outputs disagree with the layers producing them."""
    semantics = manifest.get("semantics") if isinstance(manifest, Mapping) else None
    version = SEMANTICS_VERSIONS.get(semantics) if isinstance(semantics, str) else None
    (MANIFESTS[version] if version else UNKNOWN_SEMANTICS).check(manifest, "manifest")
    _unique(manifest["layers"], "name", "manifest.layers")
    _unique(manifest["tensors"], "name", "manifest.tensors")
    _unique(manifest["outputs"], "name", "manifest.outputs")
    producers = {layer["output"]: layer for layer in manifest["layers"]}
    for index, output in enumerate(manifest["outputs"]):
        layer = producers.get(output["name"])
        if layer is None:
            continue  # validate_graph names a graph output no layer produces
        for field, layer_field in (("dtype", "out_dtype"), ("scale", "out_scale")):
            if output[field] != layer[layer_field]:
                raise ManifestError(
                    f"manifest.outputs[{index}].{field} {output[field]!r} differs from "
                    f"{layer_field} {layer[layer_field]!r} of layer {layer['name']!r}"
                )
