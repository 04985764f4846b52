"""The one-step registry (`aicommons.market.steps`) mirrors the verifiers: one rule per op code,
the codes of step_rows.vy, a `<op>_step` in int_ops.vy for every runtime op, and each layer
takes the classic form only when the classic verifier can read it (int8 in, int8/int32 out).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from aicommons.chain.compile import CONTRACTS_DIR
from aicommons.market import steps
from aicommons.market.errors import NotDisputable
from aicommons.market.gasbench import synthetic_transformer_package
from aicommons.market.graph import graph_commitment
from aicommons.runtime import Layer, ModelPackage
from aicommons.runtime.ops import OPS


def test_codes_match_the_contracts_and_every_runtime_op_has_a_rule() -> None:
    source = (CONTRACTS_DIR / "step_rows.vy").read_text()
    vyper = {
        name.lower(): int(code)
        for name, code in re.findall(
            r"^OP_([A-Z0-9_]+): constant\(uint256\) = (\d+)$", source, re.M
        )
    }
    v2 = {rule.op: rule.code for rule in steps.rules() if rule.widths_in_attrs}
    assert v2 == vyper
    codes = [rule.code for rule in steps.rules()]
    assert codes == sorted(set(codes)) == list(range(1, 20))
    int_ops = (CONTRACTS_DIR / "int_ops.vy").read_text()
    for op in OPS:
        assert any(rule.op == op for rule in steps.rules()), op
        assert f"def {op}_step(" in int_ops, op


def _context(op: str, in_bytes: tuple[int, ...], out_bytes: int, shape: tuple[int, ...]):
    layer = Layer("l", op, ("x",) * len(in_bytes), "y", shape)
    return steps.LayerContext(layer, (shape,) * len(in_bytes), in_bytes, out_bytes, {})


@pytest.mark.parametrize(
    ("op", "in_bytes", "out_bytes", "shape", "code"),
    [
        ("dense", (1,), 1, (16,), 1),
        ("dense", (1,), 4, (16,), 1),
        ("dense", (1,), 2, (16,), 8),
        ("dense", (2,), 2, (16,), 8),
        ("dense", (1,), 1, (4, 16), 8),
        ("add", (1, 1), 1, (4, 4), 5),
        ("add", (2, 1), 2, (4, 4), 9),
        ("reshape", (1,), 1, (4, 4), 7),
        ("reshape", (2,), 2, (4, 4), 10),
        ("softmax", (2, 1), 2, (2, 4, 4), 15),
    ],
)
def test_each_layer_takes_the_form_its_verifier_reads(op, in_bytes, out_bytes, shape, code):
    rule = steps.select(_context(op, in_bytes, out_bytes, shape))
    assert rule is not None and rule.code == code


def test_classic_ops_on_int16_values_are_not_disputable() -> None:
    rng = np.random.default_rng(0)
    layers = [
        Layer("c", "clamp", ("x",), "y", (4, 4), out_dtype="int16", attrs={"lo": -9, "hi": 9}),
    ]
    package = ModelPackage.build(
        {"name": "x", "shape": [4, 4], "scale": "1", "dtype": "int16"},
        layers,
        [{"name": "y", "dtype": "int16", "scale": "1"}],
        {"unused": rng.integers(-3, 3, 2).astype(np.int8)},
    )
    with pytest.raises(NotDisputable, match="reads int8 inputs only"):
        graph_commitment(package)


def test_every_layer_of_the_synthetic_transformer_takes_a_v2_form() -> None:
    package = synthetic_transformer_package()
    graph = graph_commitment(package)
    assert graph.header.input_bytes == 4 and graph.header.output_bytes == 2
    assert all(spec.op >= 8 for spec in graph.specs)
    pooled = graph.specs[[layer.name for layer in package.layers].index("pooled")]
    assert pooled.in_shape == (32, 8) and pooled.attrs == (2, 1, 8, 1)
