"""The op registry: every op is registered once with its four places (spec, reference, kernel).

A new op that is registered without its documented section, reference function or kernel fails
here; graph validation, the reference executor and the kernel compiler only ever use the registry.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from aicommons.runtime import kernels
from aicommons.runtime import reference as ref
from aicommons.runtime.errors import PackageError
from aicommons.runtime.graph import run_reference_layer
from aicommons.runtime.layer import Layer
from aicommons.runtime.ops import OPS, infer_out_shape
from aicommons.runtime.plan import compile_layer

SEMANTICS_DOC = Path(__file__).resolve().parents[2] / "docs" / "integer-semantics.md"


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_has_its_documented_section_reference_and_kernel(name: str) -> None:
    spec = OPS[name]
    assert spec.name == name
    headings = re.findall(r"^### `([a-z0-9_]+)`", SEMANTICS_DOC.read_text(), flags=re.M)
    assert name in headings, f"docs/integer-semantics.md has no section ### `{name}`"
    assert callable(getattr(ref, name, None)), f"reference.{name} is missing"
    assert spec.kernel is getattr(kernels, f"{name}_kernel", None), f"kernels.{name}_kernel"
    # The reference adapter calls the op's own reference function, nothing else.
    assert f"ref.{name}(" in inspect.getsource(spec.reference)
    assert spec.step_name == f"{name}_step"
    assert spec.arity in (1, 2)


def test_the_scalar_and_tensor_clamps_are_named_apart() -> None:
    assert ref.clamp_value(300, -128, 127) == 127
    assert ref.clamp(np.array([[-200, 5, 200]]), -128, 127).tolist() == [[-128, 5, 127]]
    assert not hasattr(ref, "clamp_op")


def test_an_unregistered_op_is_refused_by_name_everywhere() -> None:
    layer = Layer("s", "attention", ("x",), "y", (4,))
    for call in (
        lambda: infer_out_shape(layer, [(4,)], {}, True),
        lambda: run_reference_layer(layer, [np.zeros((1, 4), np.int64)], {}),
        lambda: compile_layer(layer, {}, (4,), "float32"),
    ):
        with pytest.raises(PackageError, match=r"layer 's' \(attention\): unknown op; supported"):
            call()
