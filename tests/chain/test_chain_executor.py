"""OnchainExecutor computes exactly what the runtime computes, and charges and logs correctly.

Random dense graphs, lane-layout edge cases, and the digits MLP on its whole held-out split are
compared element for element with `ModelPackage.run` and the pure-int reference.
"""

from __future__ import annotations

import boa
import numpy as np
import pytest
from chain_fixtures import dense_package, deploy_suite, publish, upload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aicommons.chain.executor import (
    InputOutOfRange,
    encode_input,
    input_hash,
    model_from_package,
    output_hash,
)
from aicommons.demo import DIGITS_DATA, DIGITS_MLP
from aicommons.runtime import reference
from aicommons.runtime.quantize import quantize_onnx


@pytest.fixture(scope="module")
def suite():
    with boa.env.anchor():
        yield deploy_suite()


@pytest.fixture(scope="module")
def maintainer() -> str:
    return boa.env.generate_address("executor-maintainer")


def _predict(suite, key: tuple[bytes, bytes], x: np.ndarray) -> tuple[list[int], int]:
    output, label = suite.executor.predict(*key, encode_input(x))
    return [int(v) for v in output], int(label)


# The contract packs a row's weights in lanes chosen by the fan-in (`lane_layout`): 10 lanes up
# to 64 inputs, 9 up to 258, 8 up to 1024. Every example puts one layer's fan-in in the band
# under test (the first layer or a hidden one). Uploading runs the repacking loop once per
# weight in the (slow, interpreted) EVM, so the wide layer gets at most WIDE_LAYER_WEIGHTS
# weights and the other widths stay small: an example takes a second or two.
LANE_BANDS = {"10-lanes": (1, 64), "9-lanes": (65, 258), "8-lanes": (259, 1024)}
WIDE_LAYER_WEIGHTS = 4096


@st.composite
def widths_in_band(draw, band: tuple[int, int]) -> list[int]:
    widths = draw(st.lists(st.integers(1, 16), min_size=2, max_size=4))
    position = draw(st.integers(0, len(widths) - 2))  # a fan-in: any width but the output
    widths[position] = draw(st.integers(*band))
    rows = widths[position + 1]
    widths[position + 1] = min(rows, max(1, WIDE_LAYER_WEIGHTS // widths[position]))
    return widths


@pytest.mark.parametrize("band", LANE_BANDS.values(), ids=LANE_BANDS.keys())
@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_random_dense_graphs_match_the_runtime_bit_for_bit(
    suite, maintainer, band, data, seed
) -> None:
    widths = data.draw(widths_in_band(band), label="widths")
    assert any(band[0] <= fan_in <= band[1] for fan_in in widths[:-1])
    rng = np.random.default_rng(seed)
    package = dense_package(rng, widths)
    key = publish(suite, package, maintainer, "random-dense")
    upload(suite, package, maintainer, "random-dense")
    extremes = np.array([np.full(widths[0], -128), np.full(widths[0], 127)], dtype=np.int8)
    inputs = np.concatenate([extremes, rng.integers(-128, 128, (2, widths[0])).astype(np.int8)])
    expected = package.run(inputs)
    for x, want in zip(inputs, expected, strict=True):
        output, label = _predict(suite, key, x)
        assert output == [int(v) for v in want]
        assert label == reference.argmax(output)
    assert np.array_equal(package.run_reference(inputs[:2]), expected[:2])


@pytest.mark.parametrize(
    ("widths", "weights"),
    [
        ([64, 3], (127, 127)),  # 10 lanes: the largest lane sums a 64-wide row can reach
        ([64, 3], (-127, -127)),
        ([258, 2], (127, 127)),  # 9 lanes at their fan-in limit
        ([300, 2], (-127, 127)),  # 8 lanes
        ([1024, 1], (127, 127)),  # widest fan-in, one row per chunk
    ],
)
def test_lane_layouts_hold_extreme_sums(suite, maintainer, widths, weights) -> None:
    rng = np.random.default_rng(widths[0])
    package = dense_package(rng, widths, weight_values=weights)
    key = publish(suite, package, maintainer, "lane-edges")
    upload(suite, package, maintainer, "lane-edges")
    for value in (-128, 127, 0):
        x = np.full(widths[0], value, dtype=np.int8)
        assert _predict(suite, key, x)[0] == [int(v) for v in package.run(x)[0]]


def test_multi_chunk_hidden_layers_match(suite, maintainer) -> None:
    # 70 outputs of fan-in 100 take five chunks of 16 rows, with ReLU (lo = 0) inside.
    rng = np.random.default_rng(7)
    package = dense_package(rng, [100, 70, 5], hidden_lo=0)
    key = publish(suite, package, maintainer, "multi-chunk")
    upload(suite, package, maintainer, "multi-chunk")
    inputs = rng.integers(-128, 128, (3, 100)).astype(np.int8)
    for x, want in zip(inputs, package.run(inputs), strict=True):
        assert _predict(suite, key, x)[0] == [int(v) for v in want]


@pytest.mark.slow
def test_digits_mlp_agrees_on_the_whole_held_out_split(suite, maintainer) -> None:
    data = np.load(DIGITS_DATA)
    package = quantize_onnx(DIGITS_MLP, data["x_calib"])
    key = publish(suite, package, maintainer, "digits-mlp")
    upload(suite, package, maintainer, "digits-mlp")
    inputs = package.quantize_input(data["x_test"])
    expected = package.run(inputs)
    assert inputs.shape[0] == 360
    mismatches = [
        index
        for index, (x, want) in enumerate(zip(inputs, expected, strict=True))
        if _predict(suite, key, x)[0] != [int(v) for v in want]
    ]
    assert mismatches == []


def test_infer_logs_a_receipt_that_matches_predict(suite, maintainer) -> None:
    rng = np.random.default_rng(3)
    package = dense_package(rng, [8, 6, 4])
    model_id, version_id = publish(suite, package, maintainer, "receipt-model")
    upload(suite, package, maintainer, "receipt-model")
    x = rng.integers(-128, 128, 8).astype(np.int8)
    caller = boa.env.generate_address("caller")
    with boa.env.prank(caller):
        output, label = suite.executor.infer(model_id, version_id, encode_input(x))
    receipts = [log for log in suite.executor.get_logs() if type(log).__name__ == "Inference"]
    assert len(receipts) == 1
    receipt = receipts[0]
    assert (receipt.model_id, receipt.version_id) == (model_id, version_id)
    assert receipt.caller == caller
    assert receipt.input_hash == input_hash(x)
    assert receipt.output_hash == output_hash(output)
    assert list(receipt.output) == list(output) == [int(v) for v in package.run(x)[0]]
    assert receipt.label == label == reference.argmax(list(output))
    assert receipt.fee == 0


def test_bad_inputs_revert_with_named_reasons(suite, maintainer) -> None:
    rng = np.random.default_rng(4)
    package = dense_package(rng, [6, 3])
    model_id, version_id = publish(suite, package, maintainer, "bad-inputs")
    upload(suite, package, maintainer, "bad-inputs")
    with boa.reverts("InputLengthMismatch"):
        suite.executor.predict(model_id, version_id, encode_input(np.zeros(5, dtype=np.int8)))
    with boa.reverts("InputLengthMismatch"):
        suite.executor.infer(model_id, version_id, encode_input(np.zeros(7, dtype=np.int8)))
    with boa.reverts("UnknownVersion"):
        suite.executor.infer(model_id, b"\x01" * 32, encode_input(np.zeros(6, dtype=np.int8)))
    # The same version id under another model is another (unpublished) version.
    with boa.reverts("UnknownVersion"):
        suite.executor.infer(b"\x02" * 32, version_id, encode_input(np.zeros(6, dtype=np.int8)))
    # One byte per value cannot carry a value outside int8; the encoder refuses it by name.
    with pytest.raises(InputOutOfRange, match="InputOutOfRange"):
        encode_input([0, 1, 128, 0, 0, 0])
    with pytest.raises(InputOutOfRange):
        encode_input([-129, 0, 0, 0, 0, 0])
    with boa.env.prank(maintainer):
        suite.registry.deprecate_version(model_id, version_id)
    with boa.reverts("VersionDeprecated"):
        suite.executor.infer(model_id, version_id, encode_input(np.zeros(6, dtype=np.int8)))


def test_unsupported_graphs_are_refused_before_any_transaction() -> None:
    package = dense_package(np.random.default_rng(5), [4, 2])
    manifest_layer = package.manifest["layers"][0]
    manifest_layer["op"] = "conv2d"
    with pytest.raises(ValueError, match="dense only"):
        model_from_package(package)
