"""ONNX import and quantisation: every supported op against onnxruntime, folds, fusions, refusals.

Float import must match onnxruntime; the quantised package's fast kernels must equal the pure-int
reference on it, and its dequantised outputs must track the float model.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from aicommons.runtime import CalibrationError, OnnxImportError
from aicommons.runtime.onnx_import import import_onnx
from aicommons.runtime.quantize import quantize_multiplier, quantize_onnx

RNG = np.random.default_rng(11)


def const(name: str, value: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def rand(*shape: int, scale: float = 0.3) -> np.ndarray:
    return (RNG.normal(0, scale, shape)).astype(np.float32)


def build(
    nodes: list, inits: list, in_shape: list[int], output: str, opset: int = 17
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def ort_run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x.astype(np.float32)})[0]


def conv_net(opset: int) -> onnx.ModelProto:
    """Conv (stride, pads, dilation, groups) + BN + ReLU, MaxPool, Conv + Clip(0,6), AveragePool,
    GlobalAveragePool, Flatten, Gemm, Softmax."""
    bn = [
        const("bn.s", 1 + rand(4, scale=0.1)),
        const("bn.b", rand(4)),
        const("bn.m", rand(4)),
        const("bn.v", 0.5 + np.abs(rand(4))),
    ]
    nodes = [
        helper.make_node(
            "Conv",
            ["x", "c1.w", "c1.b"],
            ["c1"],
            name="c1",
            strides=[2, 1],
            pads=[1, 2, 0, 1],
            dilations=[1, 2],
            group=2,
        ),
        helper.make_node(
            "BatchNormalization", ["c1", "bn.s", "bn.b", "bn.m", "bn.v"], ["bn"], name="bn"
        ),
        helper.make_node("Relu", ["bn"], ["r1"], name="r1"),
        helper.make_node(
            "MaxPool",
            ["r1"],
            ["p1"],
            name="p1",
            kernel_shape=[2, 2],
            strides=[1, 1],
            pads=[1, 0, 0, 1],
        ),
        helper.make_node(
            "Conv", ["p1", "c2.w"], ["c2"], name="c2", auto_pad="SAME_UPPER", kernel_shape=[3, 3]
        ),
        helper.make_node("Clip", ["c2", "zero", "six"], ["r2"], name="relu6"),
        helper.make_node(
            "AveragePool",
            ["r2"],
            ["p2"],
            name="p2",
            kernel_shape=[2, 2],
            pads=[1, 1, 1, 1],
            count_include_pad=1,
        ),
        helper.make_node(
            "AveragePool", ["p2"], ["p3"], name="p3", kernel_shape=[2, 2], pads=[0, 0, 1, 1]
        ),
        helper.make_node("GlobalAveragePool", ["p3"], ["gap"], name="gap"),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flat"),
        helper.make_node(
            "Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc", transB=1, alpha=0.5, beta=2.0
        ),
        helper.make_node("Softmax", ["logits"], ["probs"], name="softmax"),
    ]
    inits = [
        const("c1.w", rand(4, 1, 3, 3)),
        const("c1.b", rand(4)),
        *bn,
        const("c2.w", rand(6, 4, 3, 3)),
        const("zero", np.array(0.0)),
        const("six", np.array(6.0)),
        const("fc.w", rand(5, 6)),
        const("fc.b", rand(5)),
    ]
    return build(nodes, inits, [2, 9, 8], "probs", opset)


def residual_net() -> onnx.ModelProto:
    """Conv + ReLU, Conv, residual Add + ReLU, Reshape, MatMul + bias Add, BN on a vector."""
    nodes = [
        helper.make_node("Conv", ["x", "a.w", "a.b"], ["a"], name="a", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["ra"], name="ra"),
        helper.make_node("Conv", ["ra", "b.w", "b.b"], ["b"], name="b", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["b", "ra"], ["sum"], name="residual"),
        helper.make_node("Relu", ["sum"], ["rs"], name="rs"),
        helper.make_node("Reshape", ["rs", "shape"], ["flat"], name="reshape"),
        helper.make_node("MatMul", ["flat", "m.w"], ["mm"], name="mm"),
        helper.make_node("Add", ["mm", "m.b"], ["mb"], name="mm_bias"),
        helper.make_node(
            "BatchNormalization", ["mb", "bn.s", "bn.b", "bn.m", "bn.v"], ["out"], name="bn"
        ),
    ]
    inits = [
        const("a.w", rand(3, 2, 3, 3)),
        const("a.b", rand(3)),
        const("b.w", rand(3, 3, 3, 3)),
        const("b.b", rand(3)),
        numpy_helper.from_array(np.array([-1, 48], dtype=np.int64), "shape"),
        const("m.w", rand(48, 7)),
        const("m.b", rand(7)),
        const("bn.s", 1 + rand(7, scale=0.1)),
        const("bn.b", rand(7)),
        const("bn.m", rand(7)),
        const("bn.v", 0.5 + np.abs(rand(7))),
    ]
    return build(nodes, inits, [2, 4, 4], "out")


def clip_first_net() -> onnx.ModelProto:
    """A Clip on the graph input cannot fuse: it becomes a standalone clamp layer."""
    nodes = [
        helper.make_node("Clip", ["x", "lo", "hi"], ["c"], name="clip"),
        helper.make_node("Identity", ["c"], ["ci"], name="id"),
        helper.make_node("Gemm", ["ci", "w", "b"], ["y"], name="fc"),
    ]
    inits = [
        const("lo", np.array(-0.5)),
        const("hi", np.array(0.7)),
        const("w", rand(6, 4)),
        const("b", rand(4)),
    ]
    return build(nodes, inits, [6], "y", opset=13)


CASES = {
    "conv_net_opset13": (lambda: conv_net(13), (2, 9, 8)),
    "conv_net_opset21": (lambda: conv_net(21), (2, 9, 8)),
    "residual_net": (residual_net, (2, 4, 4)),
    "clip_first_net": (clip_first_net, (6,)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_import_matches_onnxruntime_and_quantised_kernels_match_reference(case: str) -> None:
    make, shape = CASES[case]
    model = make()
    x = RNG.normal(0, 1, (64, *shape)).astype(np.float32)
    expected = ort_run(model, x)
    graph = import_onnx(model)
    float_out = graph.run(x)[graph.outputs[0]]
    if graph.metadata["dropped_softmax"]:
        shifted = np.exp(float_out - float_out.max(axis=1, keepdims=True))
        float_out = shifted / shifted.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(float_out, expected, rtol=1e-4, atol=1e-5)

    package = quantize_onnx(model, x[:48])
    x_int8 = package.quantize_input(x)
    fast = package.run(x_int8)
    np.testing.assert_array_equal(fast[:6], package.run_reference(x_int8[:6]))
    logits = graph.run(x)[graph.outputs[0]]
    dequantised = package.dequantize_output(fast)
    error = np.abs(dequantised - logits).max()
    assert error <= 0.1 * np.abs(logits).max(), f"quantisation error {error} too large"


def test_folds_and_fusions_leave_only_integer_ops() -> None:
    package = quantize_onnx(conv_net(17), RNG.normal(0, 1, (16, 2, 9, 8)))
    ops = [(layer.name, layer.op) for layer in package.layers]
    assert ops == [
        ("c1", "conv2d"),
        ("p1", "maxpool"),
        ("c2", "conv2d"),
        ("p2", "avgpool"),
        ("p3", "avgpool"),
        ("gap", "avgpool"),
        ("flat", "reshape"),
        ("fc", "dense"),
    ]
    c1, c2 = package.layers[0], package.layers[2]
    assert c1.attrs["lo"] == 0 and c1.attrs["hi"] == 127  # BN folded, ReLU fused
    assert c2.attrs["lo"] == 0 and 0 < c2.attrs["hi"] <= 127  # Clip(0, 6) fused as ReLU6
    assert package.layers[-1].out_dtype == "int32"
    assert package.manifest["metadata"]["dropped_softmax"] is True
    residual = quantize_onnx(residual_net(), RNG.normal(0, 1, (16, 2, 4, 4)))
    assert [layer.op for layer in residual.layers] == [
        "conv2d",
        "conv2d",
        "add",
        "reshape",
        "dense",
    ]
    assert residual.layers[2].attrs["lo"] == 0


def test_unsupported_ops_are_all_listed() -> None:
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["s"], name="gate"),
        helper.make_node("Tanh", ["s"], ["t"], name="squash"),
        helper.make_node("Relu", ["t"], ["y"], name="ok"),
    ]
    with pytest.raises(OnnxImportError, match=r"Sigmoid \('gate'\), Tanh \('squash'\)"):
        import_onnx(build(nodes, [], [4], "y"))


def test_structural_refusals_name_the_node() -> None:
    opset12 = build([helper.make_node("Relu", ["x"], ["y"], name="r")], [], [4], "y", opset=12)
    with pytest.raises(OnnxImportError, match="opset 12"):
        import_onnx(opset12)
    ceil = build(
        [helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], ceil_mode=1)],
        [],
        [1, 4, 4],
        "y",
    )
    with pytest.raises(OnnxImportError, match="MaxPool node 'mp': ceil_mode=1"):
        import_onnx(ceil)
    lone_bn = [const(n, np.ones(1)) for n in ("s", "b", "m", "v")]
    bn = build(
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")],
        lone_bn,
        [1, 2, 2],
        "y",
    )
    with pytest.raises(OnnxImportError, match="only directly after Conv"):
        import_onnx(bn)


def test_calibration_is_required_and_checked() -> None:
    model = clip_first_net()
    with pytest.raises(CalibrationError, match="required"):
        quantize_onnx(model, None)
    with pytest.raises(CalibrationError, match="shape"):
        quantize_onnx(model, np.zeros((4, 5)))
    with pytest.raises(CalibrationError, match="NaN"):
        quantize_onnx(model, np.full((4, 6), np.nan))
    with pytest.raises(CalibrationError, match="empty"):
        quantize_onnx(model, np.zeros((0, 6)))


@pytest.mark.parametrize("real", [1e-12, 3.3e-7, 0.0123, 0.5, 0.999999, 1.0, 3.75, 1234.5])
def test_quantize_multiplier_is_close_and_in_range(real: float) -> None:
    multiplier, shift = quantize_multiplier(real)
    assert 1 <= multiplier <= 2**31 - 1 and 0 <= shift <= 62
    if real > 2**-31:
        assert abs(multiplier / 2**shift - real) <= real * 2**-29
