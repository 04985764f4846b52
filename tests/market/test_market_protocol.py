"""Every Python mirror of a market protocol constant equals the contracts' (one source of truth
per rule, pinned here), and the graph commitment refuses what the one-step cannot check.
"""

from __future__ import annotations

import boa
import numpy as np
import pytest
from market_fixtures import deploy_market_suite

from aicommons.chain.compile import compile_contract
from aicommons.chain.deploy import MarketParams
from aicommons.market import commitments, graph
from aicommons.market.errors import NotDisputable
from aicommons.runtime import Layer, ModelPackage


@pytest.fixture(scope="module")
def suite():
    with boa.env.anchor():
        yield deploy_market_suite()


def test_python_limits_equal_the_contracts(suite) -> None:
    assert suite.verifier.MAX_FAN_IN() == graph.MAX_FAN_IN
    assert suite.verifier.MAX_STEP_BYTES() == graph.MAX_STEP_BYTES
    assert suite.verifier.MAX_ROW_BYTES() == graph.MAX_ROW_BYTES
    assert suite.game.MAX_LAYERS() == graph.MAX_LAYERS
    assert suite.market.MAX_OUTPUT_BYTES() == commitments.MAX_OUTPUT_BYTES == graph.MAX_OUTPUT_BYTES
    assert suite.market.MAX_BATCH() == commitments.MAX_BATCH
    assert suite.market.MAX_BATCH_BYTES() == commitments.MAX_BATCH_BYTES
    assert suite.market.MAX_INPUT_BYTES() == commitments.MAX_INPUT_BYTES
    assert suite.market.MAX_INPUT_ROWS() == commitments.MAX_INPUT_ROWS
    assert suite.market.SIGNATURE_BYTES() == commitments.SIGNATURE_BYTES


def test_market_params_mirror_the_contract_struct(suite) -> None:
    (constructor,) = [
        e for e in compile_contract("ComputeMarket").abi if e["type"] == "constructor"
    ]
    fields = [c["name"] for c in constructor["inputs"][-1]["components"]]
    assert fields == list(MarketParams.__dataclass_fields__)
    assert MarketParams.from_abi(suite.market.params()) == suite.params


def _dense(fan_in: int) -> ModelPackage:
    rng = np.random.default_rng(0)
    tensors = {
        "d.weight": rng.integers(-127, 128, (2, fan_in)).astype(np.int8),
        "d.bias": np.zeros(2, np.int32),
        "d.multiplier": np.ones(2, np.int32),
        "d.shift": np.zeros(2, np.int32),
    }
    roles = {role: f"d.{role}" for role in ("weight", "bias", "multiplier", "shift")}
    layer = Layer(
        "d",
        "dense",
        ("input",),
        "y",
        (2,),
        "int32",
        "1",
        roles,
        {"channels": 2, "lo": -(2**31), "hi": 2**31 - 1},
    )
    return ModelPackage.build(
        {"name": "input", "shape": [fan_in], "scale": "1"},
        [layer],
        [{"name": "y", "dtype": "int32", "scale": "1"}],
        tensors,
    )


def test_graph_commitment_refuses_layers_the_one_step_cannot_check(suite) -> None:
    assert graph.graph_commitment(_dense(graph.MAX_FAN_IN)).specs[0].in_shape == (graph.MAX_FAN_IN,)
    with pytest.raises(NotDisputable, match="fan-in 4097 exceeds 4096"):
        graph.graph_commitment(_dense(graph.MAX_FAN_IN + 1))
    # The verifier agrees: the same spec is unsupported on-chain (decided for the challenger).
    spec = graph.graph_commitment(_dense(8)).specs[0]
    wide = spec.__class__(**{**spec.__dict__, "in_shape": (graph.MAX_FAN_IN + 1,)})
    assert suite.verifier.supported(spec.as_abi()) and not suite.verifier.supported(wide.as_abi())
    grouped = spec.__class__(
        op=2,
        inputs=(0,),
        in_shape=(2 * (graph.MAX_RANGE_ROWS + 1), 1, 1),
        out_shape=(2, 1, 1),
        out_bytes=1,
        tensors=(0, 1, 2, 3),
        attrs=(1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 2, -128, 127),
    )
    assert not suite.verifier.supported(grouped.as_abi())
    full = grouped.__class__(**{**grouped.__dict__, "attrs": (*grouped.attrs[:10], 1, -128, 127)})
    full = full.__class__(**{**full.__dict__, "in_shape": (graph.MAX_RANGE_ROWS + 1, 1, 1)})
    assert suite.verifier.supported(full.as_abi())
