"""OneStepVerifier recomputes any element of any supported layer from proven rows, exactly as
the runtime and the pure-int reference do, and refuses rows that are not under the commitments.
"""

from __future__ import annotations

import boa
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from market_layers import OPS, random_layer_package

from aicommons.chain.compile import load_boa
from aicommons.market.dispute import OneStepArgs, TraceCommitments
from aicommons.market.graph import graph_commitment

ELEMENTS_PER_LAYER = 4


@pytest.fixture(scope="module")
def verifier():
    with boa.env.anchor():
        yield load_boa("OneStepVerifier")


def _recompute(verifier, commitments: TraceCommitments, args: OneStepArgs) -> tuple[bool, int]:
    context = (
        commitments.trace_root,
        len(commitments.layer_roots),
        commitments.package.weights_root,
        commitments.graph.header.tensor_count,
    )
    return verifier.recompute(
        context,
        args.spec.as_abi(),
        args.row,
        args.element,
        [arg.as_abi() for arg in args.inputs],
        [arg.as_abi() for arg in args.tensors],
    )


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("op", OPS)
def test_verifier_equals_runtime_and_reference(verifier, op: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    package, x = random_layer_package(rng, op)
    trace = package.trace(x)
    np.testing.assert_array_equal(trace.values[-1][0], package.run_reference(x)[0])
    commitments = TraceCommitments.from_trace(package, trace)
    layer = len(package.layers)
    spec = commitments.graph.specs[-1]
    assert verifier.supported(spec.as_abi())
    out = trace.values[-1][0].reshape(spec.out_rows, -1)
    for _ in range(ELEMENTS_PER_LAYER):
        row, element = int(rng.integers(0, out.shape[0])), int(rng.integers(0, out.shape[1]))
        args = commitments.one_step(layer, row, element)
        assert args.value == int(out[row, element])
        assert _recompute(verifier, commitments, args) == (True, args.value)


def test_rows_not_under_the_commitments_are_refused(verifier) -> None:
    package, x = random_layer_package(np.random.default_rng(7), "dense")
    commitments = TraceCommitments.from_trace(package, package.trace(x))
    args = commitments.one_step(1, 0, 0)
    flipped = bytes([args.inputs[0].data[0] ^ 1]) + args.inputs[0].data[1:]
    bad_input = args.inputs[0].__class__(**{**args.inputs[0].__dict__, "data": flipped})
    with boa.reverts("InputRowsMismatch"):
        _recompute(verifier, commitments, OneStepArgs(**{**args.__dict__, "inputs": (bad_input,)}))
    weight = args.tensors[0]
    bad_weight = weight.__class__(
        **{**weight.__dict__, "data": bytes([weight.data[0] ^ 2]) + weight.data[1:]}
    )
    tensors = (bad_weight, *args.tensors[1:])
    with boa.reverts("TensorRowsMismatch"):
        _recompute(verifier, commitments, OneStepArgs(**{**args.__dict__, "tensors": tensors}))
    wrong_row = commitments.one_step(1, 1, 0) if package.layers[0].attrs["channels"] > 1 else None
    if wrong_row is not None:  # rows of channel 1 offered for channel 0
        with boa.reverts("TensorRowsMismatch"):
            _recompute(verifier, commitments, OneStepArgs(**{**wrong_row.__dict__, "row": 0}))


def test_unsupported_specs_are_reported_not_reverted(verifier) -> None:
    package, _ = random_layer_package(np.random.default_rng(1), "conv2d")
    spec = graph_commitment(package).specs[0]
    unknown_op = spec.__class__(**{**spec.__dict__, "op": 99})
    zero_kernel = spec.__class__(**{**spec.__dict__, "attrs": (0, *spec.attrs[1:])})
    assert not verifier.supported(unknown_op.as_abi())
    assert not verifier.supported(zero_kernel.as_abi())
    assert verifier.supported(spec.as_abi())
