"""The manifest schema (issue 14 item 15): every field by type and range, one line naming it.

Each case edits one field of a real package's manifest and loads the bytes: the loader must
refuse it naming the field path, before any of it is used.
"""

from __future__ import annotations

import copy
import json
import struct

import numpy as np
import pytest

from aicommons.demo import DIGITS_CNN, DIGITS_DATA
from aicommons.runtime import ModelPackage, PackageError, package_from_bytes
from aicommons.runtime.errors import ManifestError
from aicommons.runtime.quantize import quantize_onnx


@pytest.fixture(scope="module")
def cnn() -> ModelPackage:
    return quantize_onnx(DIGITS_CNN, np.load(DIGITS_DATA)["x_calib"])


def repack(package: ModelPackage, manifest: dict, tail: bytes = b"") -> bytes:
    """A package file with `manifest` (any JSON, not necessarily canonical) and the same tensors."""
    data = package.to_bytes()
    blob = data[14 + int.from_bytes(data[6:14], "big") :]
    text = json.dumps(manifest).encode()
    return struct.pack(">6sQ", b"AICM\x00\x01", len(text)) + text + blob + tail


def edited(package: ModelPackage, path: str, value: object) -> bytes:
    manifest = copy.deepcopy(package.manifest)
    *parents, last = path.split(".")
    node = manifest
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is DELETE:
        del node[last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return repack(package, manifest)


DELETE = object()
BIG = 2**70
CASES = [
    # Scales: NaN made every prediction class 5 (exit 0); 0, negative and infinite were taken.
    (
        "input.scale",
        "NaN",
        'manifest.input.scale must be a positive decimal string such as "0.0078", got "NaN"',
    ),
    ("input.scale", "0", "manifest.input.scale must be a positive finite decimal string"),
    (
        "input.scale",
        "-0.5",
        'manifest.input.scale must be a positive decimal string such as "0.0078", got "-0.5"',
    ),
    ("input.scale", "Infinity", "manifest.input.scale must be a positive decimal string"),
    ("input.scale", "1e999", "manifest.input.scale must be a positive finite decimal string"),
    (
        "input.scale",
        0.5,
        'manifest.input.scale must be a positive decimal string such as "0.0078", got 0.5',
    ),
    ("layers.4.out_scale", " 1", "manifest.layers[4].out_scale must be a positive decimal string"),
    # Types: strings and bools are not integers; "64" was read as [6, 4].
    (
        "layers.0.attrs.channels",
        "8",
        'manifest.layers[0].attrs.channels must be an integer, got "8"',
    ),
    ("layers.0.attrs.lo", True, "manifest.layers[0].attrs.lo must be an integer, got true"),
    ("input.shape", "64", 'manifest.input.shape must be a list of 1 to 4 items, got "64"'),
    ("input.shape", [1, 8, True], "manifest.input.shape[2] must be an integer, got true"),
    (
        "layers.3.attrs.shape",
        [144.0],
        "manifest.layers[3].attrs.shape[0] must be an integer, got 144.0",
    ),
    (
        "layers.1.attrs.kernel",
        [2],
        "manifest.layers[1].attrs.kernel must be a list of 2 items, got [2]",
    ),
    # JSON integers beyond int64 gave an OverflowError traceback in infer.
    (
        "layers.4.attrs.hi",
        BIG,
        f"manifest.layers[4].attrs.hi must be an integer in [-2147483648, 2147483647], got {BIG}",
    ),
    (
        "layers.0.out_shape",
        [8, BIG, 8],
        f"manifest.layers[0].out_shape[1] must be an integer in [1, 16777216], got {BIG}",
    ),
    (
        "tensors.0.shape",
        [BIG],
        f"manifest.tensors[0].shape[0] must be an integer in [1, 2147483647], got {BIG}",
    ),
    (
        "layers.2.attrs.pads",
        [0, 0, 0, -1],
        "manifest.layers[2].attrs.pads[3] must be an integer in [0, 16777216], got -1",
    ),
    (
        "layers.1.attrs.strides",
        [0, 1],
        "manifest.layers[1].attrs.strides[0] must be an integer in [1, 16777216], got 0",
    ),
    # Structure: unknown ops, fields and roles, missing fields, wrong kinds.
    (
        "layers.1.op",
        "softmax",
        'manifest.layers[1].op must be one of "dense", "conv2d", "maxpool", "avgpool", "add", '
        '"clamp", "reshape", got "softmax"',
    ),
    ("layers.1.op", "avgpool", "manifest.layers[1].attrs.count_include_pad is missing"),
    (
        "layers.0.attrs.alpha",
        1,
        "manifest.layers[0].attrs.alpha is not a known field (known: channels, kernel",
    ),
    ("layers.0.tensors.scale", "x", "manifest.layers[0].tensors.scale is not a known field"),
    (
        "layers.0.out_dtype",
        "int16",
        'manifest.layers[0].out_dtype must be one of "int8", "int32", got "int16"',
    ),
    ("layers.0.inputs", ["input", "input"], "manifest.layers[0].inputs must be a list of 1 items"),
    ("outputs", [], "manifest.outputs must be a list of 1 to 4096 items, got []"),
    (
        "outputs.0.dtype",
        "int8",
        "manifest.outputs[0].dtype 'int8' differs from out_dtype 'int32' of layer 'fc'",
    ),
    ("weights_root", "0xABC", "manifest.weights_root must be a 32-byte hex string"),
    (
        "metadata.calibration_samples",
        2.5,
        "manifest.metadata.calibration_samples must be canonical JSON",
    ),
    ("input.name", "", 'manifest.input.name must be a non-empty string, got ""'),
    ("input.scale", DELETE, "manifest.input.scale is missing"),
    (
        "format",
        "aicommons-model/9",
        'manifest.format must be "aicommons-model/1", got "aicommons-model/9"',
    ),
    ("layers.2.name", "conv1", "manifest.layers[2].name 'conv1' is used twice"),
]


@pytest.mark.parametrize(("path", "value", "message"), CASES, ids=[c[0] for c in CASES])
def test_each_bad_field_is_refused_by_its_path(
    cnn: ModelPackage, path: str, value: object, message: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        package_from_bytes(edited(cnn, path, value))
    text = str(caught.value)
    assert "\n" not in text and text.startswith(message), text


def test_the_unedited_manifest_loads(cnn: ModelPackage) -> None:
    assert package_from_bytes(repack(cnn, cnn.manifest)).version_id == cnn.version_id


def test_manifest_that_is_no_object_is_refused(cnn: ModelPackage) -> None:
    with pytest.raises(PackageError, match="package manifest is not a JSON object"):
        package_from_bytes(repack(cnn, [1, 2]))  # type: ignore[arg-type]
    with pytest.raises(ManifestError, match="manifest.layers must be a list of 1 to 4096 items"):
        package_from_bytes(repack(cnn, {**cnn.manifest, "layers": {"0": 1}}))


def test_trailing_bytes_are_not_called_truncation(cnn: ModelPackage) -> None:
    data = cnn.to_bytes()
    with pytest.raises(PackageError, match="package has 5 trailing bytes after its tensor data"):
        package_from_bytes(data + b"extra")
    with pytest.raises(PackageError, match=r"package is truncated \(tensor data has"):
        package_from_bytes(data[:-5])


def test_values_too_large_per_sample_are_refused_before_allocation(cnn: ModelPackage) -> None:
    """A manifest may not declare planes that would make loading allocate without bound."""
    manifest = copy.deepcopy(cnn.manifest)
    manifest["input"]["shape"] = [1, 8192, 8192]
    with pytest.raises(PackageError, match="holds more than 16777216 values a sample"):
        package_from_bytes(repack(cnn, manifest))
