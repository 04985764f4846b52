"""The shipped demo models: int8 packages keep float accuracy and top-1 agreement on held-out data.

Targets from issue 3: agreement >= 99% and accuracy drop <= 0.5 points; the fast kernels must
also equal the pure-int reference on real data.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from aicommons.demo import DIGITS_CNN, DIGITS_DATA, DIGITS_MLP
from aicommons.runtime.quantize import quantize_onnx


@pytest.mark.parametrize(("model", "shape"), [(DIGITS_MLP, (64,)), (DIGITS_CNN, (1, 8, 8))])
def test_demo_model_keeps_accuracy(model, shape) -> None:
    data = np.load(DIGITS_DATA)
    x_test = data["x_test"].reshape(-1, *shape)
    y_test = data["y_test"]
    assert len(x_test) == 360 and data["x_calib"].shape == (256, 64)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    float_top1 = session.run(None, {"input": x_test})[0].argmax(axis=1)
    package = quantize_onnx(model, data["x_calib"].reshape(-1, *shape))
    x_int8 = package.quantize_input(x_test)
    logits = package.run(x_int8)
    int_top1 = logits.argmax(axis=1)
    acc_float = (float_top1 == y_test).mean()
    acc_int8 = (int_top1 == y_test).mean()
    assert acc_float >= 0.95
    assert (int_top1 == float_top1).mean() >= 0.99
    assert acc_float - acc_int8 <= 0.005
    np.testing.assert_array_equal(logits[:8], package.run_reference(x_int8[:8]))
