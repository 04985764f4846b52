"""int_ops.vy recomputes single elements exactly as the runtime and the pure-int reference do.

Random layers of every op (hypothesis over seeds), element by element, plus the rounding corner
cases and the widest fan-in the market's one-step takes with the accumulator at its bound.
"""

from __future__ import annotations

from pathlib import Path

import boa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from market_layers import OPS, random_layer_package

from aicommons.chain.compile import compile_source_file, load_boa
from aicommons.runtime import reference as ref

HARNESS = Path(__file__).resolve().parent / "ops_harness.vy"
ELEMENTS_PER_LAYER = 6


@pytest.fixture(scope="module")
def ops():
    with boa.env.anchor():
        yield load_boa(compile_source_file(HARNESS))


def _window(attrs: dict) -> tuple[int, ...]:
    kernel, strides, pads = attrs["kernel"], attrs["strides"], attrs["pads"]
    dilations = attrs.get("dilations", [1, 1])
    return (*kernel, *strides, pads[0], pads[1], *dilations)


def _step(ops, package, x: np.ndarray, position: tuple[int, ...]) -> int:
    """The harness's value of output element `position` of the package's last layer."""
    layer = package.layers[-1]
    tensors = {role: package.tensors[name] for role, name in layer.tensors.items()}
    attrs = layer.attrs
    if layer.op == "dense":
        (c,) = position
        return ops.dense_step(
            x.astype(np.int8).tobytes(),
            tensors["weight"][c].tobytes(),
            int(tensors["bias"][c]),
            int(tensors["multiplier"][c]),
            int(tensors["shift"][c]),
            attrs["lo"],
            attrs["hi"],
        )
    if layer.op == "conv2d":
        c, oy, ox = position
        group_in = tensors["weight"].shape[1]
        group = c // (layer.attrs["channels"] // attrs["groups"])
        planes = x[group * group_in : (group + 1) * group_in].astype(np.int8).tobytes()
        return ops.conv2d_step(
            planes,
            x.shape[1],
            x.shape[2],
            tensors["weight"][c].tobytes(),
            _window(attrs),
            oy,
            ox,
            int(tensors["bias"][c]),
            int(tensors["multiplier"][c]),
            int(tensors["shift"][c]),
            attrs["lo"],
            attrs["hi"],
        )
    if layer.op == "maxpool":
        c, oy, ox = position
        plane = x[c].astype(np.int8).tobytes()
        return ops.maxpool_step(plane, x.shape[1], x.shape[2], _window(attrs), oy, ox)
    if layer.op == "avgpool":
        c, oy, ox = position
        plane = x[c].astype(np.int8).tobytes()
        return ops.avgpool_step(
            plane, x.shape[1], x.shape[2], _window(attrs), bool(attrs["count_include_pad"]), oy, ox
        )
    if layer.op == "add":
        a = int(x[position])
        first = package.layers[0].attrs  # the clamp feeding the add
        b = max(first["lo"], min(first["hi"], a))
        multiplier, shift = tensors["multiplier"], tensors["shift"]
        return ops.add_step(
            a, b, int(multiplier[0]), int(multiplier[1]), int(shift[0]), attrs["lo"], attrs["hi"]
        )
    if layer.op == "clamp":
        return ops.clamp_step(int(x[position]), attrs["lo"], attrs["hi"])
    if layer.op == "reshape":
        flat = int(np.ravel_multi_index(position, layer.out_shape))
        row_length = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
        row = x.reshape(x.shape[0], -1)[flat // row_length].astype(np.int8).tobytes()
        return ops.reshape_step(row, flat % row_length)
    raise AssertionError(layer.op)


@settings(max_examples=14, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("op", OPS)
def test_steps_equal_runtime_and_reference(ops, op: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    package, x = random_layer_package(rng, op)
    runtime_out = package.trace(x).values[-1][0]
    reference_out = package.run_reference(x)[0]
    np.testing.assert_array_equal(runtime_out, reference_out)
    for _ in range(ELEMENTS_PER_LAYER):
        position = tuple(int(rng.integers(0, n)) for n in runtime_out.shape)
        assert _step(ops, package, x, position) == int(runtime_out[position]), (op, position)


def test_widest_market_fan_in_at_the_accumulator_bound(ops) -> None:
    """K = 4096 (the market's limit) with |bias| + K*128*127 = 2**31 - 1, extremes of x and W."""
    k = 4096
    bias = 2**31 - 1 - k * 128 * 127
    x = np.full(k, -128, np.int8)
    for weights, sign in ((np.full(k, 127, np.int8), -1), (np.full(k, -127, np.int8), 1)):
        acc = bias + sign * k * 128 * 127
        for multiplier, shift in ((1, 0), (2**31 - 1, 62), (2**31 - 1, 31), (12345, 17)):
            expected = ref.requantize(acc, multiplier, shift, -(2**31), 2**31 - 1)
            got = ops.dense_step(
                x.tobytes(), weights.tobytes(), bias, multiplier, shift, -(2**31), 2**31 - 1
            )
            assert got == expected
    assert abs(-bias - k * 128 * 127) == 2**31 - 1


@settings(max_examples=60, deadline=None)
@given(
    value=st.integers(-(2**62), 2**62),
    shift=st.integers(0, 62),
    total=st.integers(-(2**20), 2**20),
    count=st.integers(1, 4096),
)
def test_rounding_matches_reference(ops, value: int, shift: int, total: int, count: int) -> None:
    assert ops.rshift_round(value, shift) == ref.rshift_round(value, shift)
    assert ops.div_round(total, count) == ref.div_round(total, count)


def test_rounding_ties_go_up(ops) -> None:
    assert [ops.rshift_round(v, 1) for v in (-3, -1, 1, 3)] == [-1, 0, 1, 2]
    assert [ops.div_round(t, 2) for t in (-3, -1, 1, 3)] == [-1, 0, 1, 2]
    assert ops.div_round(-5, 4) == ref.div_round(-5, 4) == -1
