"""Model packages: commitment formats, version ids, traces, Merkle proofs and tamper detection.

The byte layouts here are protocol (docs/integer-semantics.md), so the vectors are spelled out
by hand rather than recomputed with the code under test.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from aicommons.commit import (
    MerkleTree,
    canonical_json,
    keccak256,
    leaf_hash,
    merkle_root,
    verify_proof,
)
from aicommons.demo import DIGITS_CNN, DIGITS_DATA, DIGITS_MLP
from aicommons.runtime import (
    CalibrationError,
    InputError,
    Layer,
    ModelPackage,
    PackageError,
    load_package,
    package_from_bytes,
    tensor_root,
    tensor_rows,
    weights_root,
)
from aicommons.runtime.quantize import quantize_onnx


@pytest.fixture(scope="module")
def mlp() -> ModelPackage:
    return quantize_onnx(DIGITS_MLP, np.load(DIGITS_DATA)["x_calib"])


@pytest.fixture(scope="module")
def cnn() -> ModelPackage:
    return quantize_onnx(DIGITS_CNN, np.load(DIGITS_DATA)["x_calib"].reshape(-1, 1, 8, 8))


def test_tensor_rows_are_big_endian_rows_along_the_first_axis() -> None:
    assert tensor_rows(np.array([[1, -1], [127, -128]], np.int8)) == [b"\x01\xff", b"\x7f\x80"]
    assert tensor_rows(np.array([-2, 258], np.int32)) == [b"\xff\xff\xff\xfe", b"\x00\x00\x01\x02"]
    assert tensor_rows(np.array(5, np.int32)) == [b"\x00\x00\x00\x05"]
    three_d = np.arange(8, dtype=np.int8).reshape(2, 2, 2)
    assert tensor_rows(three_d) == [bytes([0, 1, 2, 3]), bytes([4, 5, 6, 7])]
    assert tensor_root(np.array([[1, -1]], np.int8)) == merkle_root([b"\x01\xff"])
    # int16 (semantics version 2): 2-byte big-endian elements.
    assert tensor_rows(np.array([[-2, 258]], np.int16)) == [b"\xff\xfe\x01\x02"]
    with pytest.raises(ValueError, match="int8, int16 and int32"):
        tensor_rows(np.zeros(2, np.int64))


def test_weights_root_orders_tensor_roots_by_name() -> None:
    roots = {"b": b"\x02" * 32, "a": b"\x01" * 32, "B": b"\x03" * 32}
    assert weights_root(roots) == merkle_root([b"\x03" * 32, b"\x01" * 32, b"\x02" * 32])


def test_version_id_is_keccak_of_the_canonical_manifest(mlp: ModelPackage) -> None:
    assert mlp.version_id == keccak256(canonical_json(mlp.manifest))
    entries = {entry["name"]: entry for entry in mlp.manifest["tensors"]}
    for name, tensor in mlp.tensors.items():
        assert entries[name]["root"] == "0x" + tensor_root(tensor).hex()
        assert entries[name]["shape"] == list(tensor.shape)
    roots = {name: tensor_root(t) for name, t in mlp.tensors.items()}
    assert mlp.weights_root == weights_root(roots)
    assert mlp.manifest["weights_root"] == "0x" + mlp.weights_root.hex()


def test_a_weight_row_is_provable_up_to_the_weights_root(mlp: ModelPackage) -> None:
    """The on-chain flow: row -> tensor root -> weights root, with position-aware proofs."""
    names = sorted(mlp.tensors)
    weight_name = "fc1.weight"
    rows = tensor_rows(mlp.tensors[weight_name])
    row_tree = MerkleTree.from_leaves(rows)
    proof = row_tree.prove(5)
    assert verify_proof(row_tree.root, leaf_hash(rows[5]), proof)
    assert not verify_proof(row_tree.root, leaf_hash(rows[6]), proof)  # wrong leaf
    assert not verify_proof(row_tree.root, leaf_hash(rows[5]), row_tree.prove(6))  # wrong index
    assert not verify_proof(mlp.weights_root, leaf_hash(rows[5]), proof)  # wrong root
    root_tree = MerkleTree.from_leaves([tensor_root(mlp.tensors[n]) for n in names])
    assert root_tree.root == mlp.weights_root
    position = names.index(weight_name)
    assert verify_proof(mlp.weights_root, leaf_hash(row_tree.root), root_tree.prove(position))


def test_round_trip_and_layer_list(tmp_path, cnn: ModelPackage) -> None:
    path = cnn.save(tmp_path / "cnn.aicm")
    loaded = load_package(path)
    assert loaded.version_id == cnn.version_id
    x = cnn.quantize_input(np.load(DIGITS_DATA)["x_test"][:20].reshape(-1, 1, 8, 8))
    np.testing.assert_array_equal(loaded.run(x), cnn.run(x))
    layers = loaded.layer_list()
    assert [layer["op"] for layer in layers] == ["conv2d", "maxpool", "conv2d", "reshape", "dense"]
    assert layers[0]["tensors"] == {
        "weight": "conv1.weight",
        "bias": "conv1.bias",
        "multiplier": "conv1.multiplier",
        "shift": "conv1.shift",
    }
    assert [p.name for p in tmp_path.iterdir()] == ["cnn.aicm"]


def test_trace_has_every_layer_and_a_root_per_sample(cnn: ModelPackage) -> None:
    x = cnn.quantize_input(np.load(DIGITS_DATA)["x_test"][:3].reshape(-1, 1, 8, 8))
    trace = cnn.trace(x)
    assert trace.names[0] == "input" and len(trace.values) == len(cnn.layers) + 1
    np.testing.assert_array_equal(trace.values[-1], cnn.run(x))
    np.testing.assert_array_equal(trace.values[0], x)
    reference = cnn.run_reference(x)
    np.testing.assert_array_equal(trace.values[-1], reference)
    for sample in range(3):
        leaves = [tensor_root(value[sample]) for value in trace.values]
        assert trace.roots[sample] == merkle_root(leaves)
    assert trace.values[1].shape == (3, 8, 8, 8)  # NCHW, as the semantics define it
    assert len(set(trace.roots)) == 3


def test_tampered_and_truncated_packages_are_refused(mlp: ModelPackage) -> None:
    data = mlp.to_bytes()
    for cut in (3, 20, len(data) // 2, len(data) - 1):
        with pytest.raises(PackageError, match="truncated|corrupt|JSON"):
            package_from_bytes(data[:cut])
    # Locate fc0.weight through the safetensors header that follows the manifest.
    manifest_end = 14 + int.from_bytes(data[6:14], "big")
    header_length = int.from_bytes(data[manifest_end : manifest_end + 8], "little")
    header = json.loads(data[manifest_end + 8 : manifest_end + 8 + header_length])
    start = manifest_end + 8 + header_length + header["fc0.weight"]["data_offsets"][0]
    tampered = bytearray(data)
    tampered[start + 3] ^= 0x01
    with pytest.raises(PackageError, match="tensor 'fc0.weight' does not match its Merkle root"):
        package_from_bytes(bytes(tampered))
    manifest_bad = data.replace(b'"format":"aicommons-model/1"', b'"format":"aicommons-model/9"')
    with pytest.raises(PackageError, match="format"):
        package_from_bytes(manifest_bad)
    with pytest.raises(PackageError, match="bad magic"):
        package_from_bytes(b"XXXX" + data[4:])


def test_load_refuses_packages_that_break_the_semantics_bounds(mlp: ModelPackage) -> None:
    manifest = mlp.manifest
    bad = dict(mlp.tensors)
    bad["fc0.weight"] = bad["fc0.weight"].copy()
    bad["fc0.weight"][0, 0] = -128
    with pytest.raises(PackageError, match=r"weights outside \[-127, 127\]"):
        ModelPackage.build(manifest["input"], mlp.layers, manifest["outputs"], bad)
    huge_bias = dict(mlp.tensors)
    huge_bias["fc0.bias"] = np.full(64, 2**31 - 1, np.int32)
    with pytest.raises(PackageError, match="fan-in 64 .* can overflow int32"):
        ModelPackage.build(manifest["input"], mlp.layers, manifest["outputs"], huge_bias)
    wide_hidden = [
        Layer.from_json({**mlp.layers[0].to_json(), "out_dtype": "int32"}),
        *mlp.layers[1:],
    ]
    with pytest.raises(PackageError, match="only a graph output may be int32"):
        ModelPackage.build(manifest["input"], wide_hidden, manifest["outputs"], mlp.tensors)


def test_bad_inputs_are_clear_errors(mlp: ModelPackage) -> None:
    with pytest.raises(InputError, match="int8"):
        mlp.run(np.zeros((2, 64), np.float32))
    with pytest.raises(InputError, match=r"shape \[2, 63\]"):
        mlp.run(np.zeros((2, 63), np.int8))
    with pytest.raises(InputError, match="NaN"):
        mlp.quantize_input(np.full((1, 64), np.inf))
    single = mlp.run(np.zeros(64, np.int8))
    assert single.shape == (1, 10)


def test_integer_inputs_are_the_int8_values_they_hold(mlp: ModelPackage) -> None:
    """Issue 14 item 13: an int64 array or JSON integers are the committed int8 values, never
    re-quantised as floats; out-of-range integers are refused by name."""
    x = mlp.quantize_input(np.load(DIGITS_DATA)["x_test"][:6])
    expected = mlp.run(x)
    for dtype in (np.int16, np.int32, np.int64, np.uint8):
        held = np.abs(x).astype(dtype) if dtype == np.uint8 else x.astype(dtype)
        want = mlp.run(np.abs(x)) if dtype == np.uint8 else expected
        np.testing.assert_array_equal(mlp.run(mlp.prepare_input(held)), want)
    np.testing.assert_array_equal(mlp.run(mlp.prepare_input(x.tolist())), expected)
    np.testing.assert_array_equal(mlp.prepare_input(x[0].tolist()), x[:1])
    floats = np.load(DIGITS_DATA)["x_test"][:6]
    np.testing.assert_array_equal(mlp.prepare_input(floats), x)
    np.testing.assert_array_equal(mlp.prepare_input(floats.tolist()), x)  # JSON floats
    too_big = x.astype(np.int64)
    too_big[2, 5] = 300
    with pytest.raises(InputError, match=r"input value 300 at index \[2, 5\] is outside int8"):
        mlp.prepare_input(too_big)
    with pytest.raises(InputError, match=r"input value 200 at index \[0, 1\] is outside int8"):
        mlp.prepare_input(np.array([[0, 200] + [0] * 62], np.uint8))
    with pytest.raises(InputError, match=r"value -129 at index \[3\]"):
        mlp.prepare_input([0, 0, 0, -129] + [0] * 60)
    with pytest.raises(InputError, match=r"value 1180591620717411303424 at index \[1\]"):
        mlp.prepare_input([0, 2**70] + [0] * 62)
    with pytest.raises(InputError, match=r"holds true at index \[0, 3\]; expected a number"):
        mlp.prepare_input([[0, 0, 0, True] + [0] * 60])
    with pytest.raises(InputError, match=r"not a rectangular array \(ragged at index \[1\]\)"):
        mlp.prepare_input([[0] * 64, [0] * 63])
    with pytest.raises(InputError, match="must be numeric .* got dtype bool"):
        mlp.prepare_input(np.zeros((1, 64), bool))
    with pytest.raises(InputError, match="quantize_input takes floats, got dtype int64"):
        mlp.quantize_input(x.astype(np.int64))


def test_only_the_model_layout_or_flat_rows_are_accepted(cnn: ModelPackage) -> None:
    """Issue 14 item 17: NHWC planes for an NCHW model were silently reshaped; now the model's
    per-sample shape (with or without batch axis) or flat rows only, others refused by name."""
    floats = np.load(DIGITS_DATA)["x_test"][:4]
    x = cnn.quantize_input(floats.reshape(-1, 1, 8, 8))
    expected = cnn.run(x)
    np.testing.assert_array_equal(cnn.run(x.reshape(4, 64)), expected)  # flat rows
    np.testing.assert_array_equal(cnn.run(x[0]), expected[:1])  # one sample, no batch axis
    np.testing.assert_array_equal(cnn.run(x[0].reshape(64)), expected[:1])  # one flat row
    np.testing.assert_array_equal(cnn.prepare_input(floats), x)
    nhwc = "does not match the model input [N, 1, 8, 8] or flat rows [N, 64] in C order"
    for shape in ((4, 8, 8, 1), (4, 8, 8), (4, 2, 32), (2, 128), (1, 4, 64)):
        with pytest.raises(InputError, match=re.escape(f"input shape {list(shape)} {nhwc}")):
            cnn.run(x.reshape(shape))
        with pytest.raises(InputError, match=re.escape(f"input shape {list(shape)} {nhwc}")):
            cnn.quantize_input(floats.reshape(shape))
        with pytest.raises(InputError, match=re.escape(f"input shape {list(shape)} {nhwc}")):
            cnn.prepare_input(x.reshape(shape).astype(np.int64))
    with pytest.raises(InputError, match="must be transposed first"):
        cnn.run(x.transpose(0, 2, 3, 1))
    with pytest.raises(InputError, match=re.escape(f"input shape [8, 8] {nhwc}")):
        cnn.run(x[0].reshape(8, 8))
    with pytest.raises(CalibrationError, match=re.escape("calibration data shape [4, 8, 8, 1]")):
        quantize_onnx(DIGITS_CNN, floats.reshape(4, 8, 8, 1))
    with pytest.raises(InputError, match=r"input holds no samples"):
        cnn.run(np.zeros((0, 1, 8, 8), np.int8))
