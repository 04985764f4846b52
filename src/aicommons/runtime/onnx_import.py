"""ONNX import: a float ONNX graph (opsets 13-21) becomes a float layer graph, folded and fused.

BatchNormalization and bias Adds fold into the preceding Conv/Gemm/MatMul, ReLU/Clip fuse into
their producer, a trailing Softmax is dropped. Unsupported models fail with one error listing
every offending node; nothing is ever silently approximated. Never imports onnxruntime.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from aicommons.runtime import reference as ref
from aicommons.runtime.errors import OnnxImportError
from aicommons.runtime.kernels import window_indices

MIN_OPSET, MAX_OPSET = 13, 21
SUPPORTED_OPS = (
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Clip",
    "Constant",
    "Conv",
    "Dropout",
    "Flatten",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "MatMul",
    "MaxPool",
    "Relu",
    "Reshape",
    "Softmax",
)
WEIGHTED = ("dense", "conv2d")


@dataclass
class FloatLayer:
    """A float layer mirroring one integer op; `act_lo/act_hi` is a fused ReLU/Clip (or none)."""

    name: str
    op: str
    inputs: list[str]
    output: str
    out_shape: tuple[int, ...]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    act_lo: float = -math.inf
    act_hi: float = math.inf


@dataclass
class FloatGraph:
    input_name: str
    input_shape: tuple[int, ...]
    layers: list[FloatLayer]
    outputs: list[str]
    metadata: dict[str, Any]

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every value of the float graph for a batch (float64), keyed by name."""
        values = {self.input_name: np.asarray(x, dtype=np.float64)}
        for layer in self.layers:
            values[layer.output] = run_float_layer(layer, [values[n] for n in layer.inputs])
        return values


# -- float execution (calibration and import checks) --------------------------------------------


def _gather_windows(
    x: np.ndarray, a: dict[str, Any], pad_value: float
) -> tuple[np.ndarray, np.ndarray]:
    """x [N, C, H, W] -> every window's values [N, C, P, kh*kw] and its in-bounds count."""
    batch, channels, height, width = x.shape
    kernel = a["kernel"]
    dilations = a.get("dilations", (1, 1))
    indices, counts, _ = window_indices((height, width), kernel, a["strides"], a["pads"], dilations)
    padded = np.full((batch, channels, height * width + 1), pad_value)
    padded[:, :, :-1] = x.reshape(batch, channels, -1)
    return padded[:, :, indices], counts  # [N, C, P, kk]


def run_float_layer(layer: FloatLayer, inputs: Sequence[np.ndarray]) -> np.ndarray:
    x = inputs[0]
    batch = x.shape[0]
    if layer.op == "dense":
        out = x @ layer.weight.T + layer.bias
    elif layer.op == "conv2d":
        groups = layer.attrs["groups"]
        channels = layer.weight.shape[0]
        in_channels = x.shape[1]
        parts = []
        for g in range(groups):
            group_in = in_channels // groups
            group_out = channels // groups
            windows, _ = _gather_windows(x[:, g * group_in : (g + 1) * group_in], layer.attrs, 0.0)
            # [N, Cin_g, P, kk] -> [N, P, Cin_g * kk] in (ci, ky, kx) order
            cols = windows.transpose(0, 2, 1, 3).reshape(batch, windows.shape[2], -1)
            w = layer.weight[g * group_out : (g + 1) * group_out].reshape(group_out, -1)
            parts.append(cols @ w.T)
        out = np.concatenate(parts, axis=-1) + layer.bias  # [N, P, C]
        out = out.transpose(0, 2, 1).reshape(batch, *layer.out_shape)
    elif layer.op == "maxpool":
        windows, _ = _gather_windows(x, layer.attrs, -math.inf)
        out = windows.max(axis=-1).reshape(batch, *layer.out_shape)
    elif layer.op == "avgpool":
        windows, counts = _gather_windows(x, layer.attrs, 0.0)
        if layer.attrs["count_include_pad"]:
            counts = np.full_like(counts, layer.attrs["kernel"][0] * layer.attrs["kernel"][1])
        out = (windows.sum(axis=-1) / counts).reshape(batch, *layer.out_shape)
    elif layer.op == "add":
        out = x + inputs[1]
    elif layer.op in ("clamp", "reshape"):
        out = x.reshape(batch, *layer.out_shape)
    else:
        raise OnnxImportError(f"no float evaluation for op {layer.op!r}")
    if layer.act_lo > -math.inf or layer.act_hi < math.inf:
        out = np.clip(out, layer.act_lo, layer.act_hi)
    return out


# -- import -------------------------------------------------------------------------------------


def load_onnx(model: str | Path | bytes | onnx.ModelProto) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        if isinstance(model, bytes):
            return onnx.load_from_string(model)
        return onnx.load(str(model))
    except FileNotFoundError:
        raise OnnxImportError(f"ONNX model not found: {model}") from None
    except Exception as exc:  # onnx raises protobuf DecodeError and others for a bad file
        raise OnnxImportError(f"cannot read ONNX model {model}: {type(exc).__name__}") from None


class _Importer:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self.constants: dict[str, np.ndarray] = {
            init.name: numpy_helper.to_array(init).astype(np.float64)
            for init in self.graph.initializer
        }
        self.alias: dict[str, str] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.layers: list[FloatLayer] = []
        self.producer: dict[str, FloatLayer] = {}
        self.consumers: Counter[str] = Counter()
        self.dropped_softmax = False

    def fail(self, node: onnx.NodeProto, message: str) -> OnnxImportError:
        return OnnxImportError(f"{node.op_type} node {node.name or node.output[0]!r}: {message}")

    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def const(self, node: onnx.NodeProto, name: str, what: str) -> np.ndarray:
        if name not in self.constants:
            raise self.fail(
                node, f"{what} must be a constant (initializer), got activation {name!r}"
            )
        return self.constants[name]

    def activation(self, node: onnx.NodeProto, name: str) -> str:
        resolved = self.resolve(name)
        if resolved not in self.shapes:
            raise self.fail(node, f"input {name!r} is not an activation of this graph")
        return resolved

    def run(self) -> FloatGraph:
        self.check_opset()
        self.check_supported()
        input_name, input_shape = self.graph_input()
        self.shapes[input_name] = input_shape
        for node in self.graph.node:
            for name in node.input:
                if name:
                    self.consumers[self.resolve(name)] += 1
        graph_outputs = [output.name for output in self.graph.output]
        for name in graph_outputs:
            self.consumers[name] += 1
        for node in self.graph.node:
            self.convert(node, graph_outputs)
        outputs = [self.resolve(name) for name in graph_outputs]
        for name in outputs:
            if name not in self.producer:
                raise OnnxImportError(
                    f"graph output {name!r} is not computed by any supported layer"
                )
        metadata = {
            "source_graph": self.graph.name,
            "opset": self.opset,
            "dropped_softmax": self.dropped_softmax,
        }
        return FloatGraph(input_name, input_shape, self.layers, outputs, metadata)

    def check_opset(self) -> None:
        versions = [o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")]
        self.opset = versions[0] if versions else 0
        if not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise OnnxImportError(
                f"ONNX opset {self.opset} is not supported (need {MIN_OPSET}-{MAX_OPSET})"
            )

    def check_supported(self) -> None:
        unsupported = [
            f"{node.op_type} ({node.name or node.output[0]!r})"
            for node in self.graph.node
            if node.op_type not in SUPPORTED_OPS or node.domain not in ("", "ai.onnx")
        ]
        if unsupported:
            raise OnnxImportError(f"unsupported ONNX ops: {', '.join(unsupported)}")

    def graph_input(self) -> tuple[str, tuple[int, ...]]:
        inputs = [i for i in self.graph.input if i.name not in self.constants]
        if len(inputs) != 1:
            raise OnnxImportError(f"the model must have exactly one input, it has {len(inputs)}")
        dims = inputs[0].type.tensor_type.shape.dim
        shape = []
        for dim in dims[1:]:
            if not dim.HasField("dim_value") or dim.dim_value < 1:
                raise OnnxImportError(
                    f"input {inputs[0].name!r} needs static dimensions after the batch axis"
                )
            shape.append(int(dim.dim_value))
        if not shape:
            raise OnnxImportError(f"input {inputs[0].name!r} needs a batch axis and a sample shape")
        return inputs[0].name, tuple(shape)

    def add_layer(self, layer: FloatLayer) -> None:
        self.layers.append(layer)
        self.producer[layer.output] = layer
        self.shapes[layer.output] = layer.out_shape

    def fusable_producer(self, value: str, ops: Sequence[str]) -> FloatLayer | None:
        """The producer of `value` if this node is its only consumer and it can absorb a fold."""
        layer = self.producer.get(value)
        if layer is None or layer.op not in ops or self.consumers[value] != 1:
            return None
        if layer.act_lo > -math.inf or layer.act_hi < math.inf:
            return None  # an activation already fused: later linear folds would move across it
        return layer

    def rename_output(self, layer: FloatLayer, new_name: str) -> None:
        del self.producer[layer.output]
        layer.output = new_name
        self.producer[new_name] = layer
        self.shapes[new_name] = layer.out_shape

    def convert(self, node: onnx.NodeProto, graph_outputs: Sequence[str]) -> None:
        op = node.op_type
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        name = node.name or f"{op.lower()}_{len(self.layers)}"
        out = node.output[0]
        if op == "Constant":
            self.constants[out] = (
                numpy_helper.to_array(attrs["value"]).astype(np.float64)
                if "value" in attrs
                else self._constant_value(node, attrs)
            )
        elif op in ("Identity", "Dropout"):
            if node.input[0] in self.constants:
                self.constants[out] = self.constants[node.input[0]]
            else:
                self.alias[out] = self.resolve(node.input[0])
        elif op == "MatMul":
            self.convert_matmul(node, name, out)
        elif op == "Gemm":
            self.convert_gemm(node, name, out, attrs)
        elif op == "Add":
            self.convert_add(node, name, out)
        elif op == "BatchNormalization":
            self.convert_batchnorm(node, out, attrs)
        elif op in ("Relu", "Clip"):
            self.convert_activation(node, name, out)
        elif op == "Conv":
            self.convert_conv(node, name, out, attrs)
        elif op in ("MaxPool", "AveragePool", "GlobalAveragePool"):
            self.convert_pool(node, name, out, attrs)
        elif op in ("Flatten", "Reshape"):
            self.convert_reshape(node, name, out, attrs)
        elif op == "Softmax":
            source = self.activation(node, node.input[0])
            if out not in graph_outputs or self.consumers[out] != 1 or self.consumers[source] != 1:
                raise self.fail(
                    node, "only a Softmax producing a graph output (and nothing else) is supported"
                )
            self.dropped_softmax = True
            self.alias[out] = source

    def _constant_value(self, node: onnx.NodeProto, attrs: dict[str, Any]) -> np.ndarray:
        for key in ("value_float", "value_int"):
            if key in attrs:
                return np.asarray(attrs[key], dtype=np.float64)
        for key in ("value_floats", "value_ints"):
            if key in attrs:
                return np.asarray(list(attrs[key]), dtype=np.float64)
        raise self.fail(node, "only numeric tensor constants are supported")

    def convert_matmul(self, node: onnx.NodeProto, name: str, out: str) -> None:
        x = self.activation(node, node.input[0])
        weight = self.const(node, node.input[1], "the second MatMul input")
        if weight.ndim != 2 or len(self.shapes[x]) != 1 or weight.shape[0] != self.shapes[x][0]:
            raise self.fail(
                node, f"needs a 2-D weight matching input features {list(self.shapes[x])}"
            )
        self.add_layer(
            FloatLayer(
                name,
                "dense",
                [x],
                out,
                (weight.shape[1],),
                weight.T.copy(),
                np.zeros(weight.shape[1]),
            )
        )

    def convert_gemm(
        self, node: onnx.NodeProto, name: str, out: str, attrs: dict[str, Any]
    ) -> None:
        x = self.activation(node, node.input[0])
        if attrs.get("transA", 0):
            raise self.fail(node, "transA=1 is not supported")
        b = self.const(node, node.input[1], "Gemm input B")
        weight = (b if attrs.get("transB", 0) else b.T) * float(attrs.get("alpha", 1.0))
        if weight.ndim != 2 or len(self.shapes[x]) != 1 or weight.shape[1] != self.shapes[x][0]:
            raise self.fail(
                node, f"needs a 2-D weight matching input features {list(self.shapes[x])}"
            )
        channels = weight.shape[0]
        bias = np.zeros(channels)
        if len(node.input) > 2 and node.input[2]:
            c = self.const(node, node.input[2], "Gemm input C") * float(attrs.get("beta", 1.0))
            try:
                bias = np.broadcast_to(c, (1, channels)).reshape(channels).astype(np.float64)
            except ValueError:
                raise self.fail(
                    node, f"bias shape {list(c.shape)} is not per output channel"
                ) from None
        self.add_layer(FloatLayer(name, "dense", [x], out, (channels,), weight.copy(), bias))

    def convert_add(self, node: onnx.NodeProto, name: str, out: str) -> None:
        left, right = node.input[0], node.input[1]
        if left in self.constants and right in self.constants:
            self.constants[out] = self.constants[left] + self.constants[right]
            return
        if left in self.constants or right in self.constants:
            value = self.activation(node, right if left in self.constants else left)
            constant = self.constants[left if left in self.constants else right]
            producer = self.fusable_producer(value, WEIGHTED)
            if producer is None:
                raise self.fail(
                    node, "adding a constant is supported only as the bias of MatMul/Gemm/Conv"
                )
            producer.bias = producer.bias + self._per_channel(node, constant, producer)
            self.rename_output(producer, out)
            return
        a, b = self.activation(node, left), self.activation(node, right)
        if self.shapes[a] != self.shapes[b]:
            raise self.fail(
                node,
                f"cannot broadcast Add of {list(self.shapes[a])} and {list(self.shapes[b])}",
            )
        self.add_layer(FloatLayer(name, "add", [a, b], out, self.shapes[a]))

    def _per_channel(
        self, node: onnx.NodeProto, constant: np.ndarray, layer: FloatLayer
    ) -> np.ndarray:
        """A constant that varies only along the channel axis, as a [C] vector."""
        channels = layer.out_shape[0]
        trailing = (1,) * (len(layer.out_shape) - 1)
        try:
            full = np.broadcast_to(constant, (1, *layer.out_shape))
        except ValueError:
            raise self.fail(
                node, f"constant shape {list(constant.shape)} does not broadcast to the layer"
            ) from None
        per_channel = full.reshape(channels, -1)[:, 0]
        if not np.array_equal(
            full, np.broadcast_to(per_channel.reshape(1, channels, *trailing), full.shape)
        ):
            raise self.fail(node, "the added constant must be per channel")
        return per_channel.astype(np.float64)

    def convert_batchnorm(self, node: onnx.NodeProto, out: str, attrs: dict[str, Any]) -> None:
        if len(node.output) > 1 and any(node.output[1:]):
            raise self.fail(node, "training-mode BatchNormalization is not supported")
        value = self.activation(node, node.input[0])
        producer = self.fusable_producer(value, WEIGHTED)
        if producer is None:
            raise self.fail(
                node, "BatchNormalization is supported only directly after Conv/Gemm/MatMul"
            )
        scale, offset, mean, var = (
            self.const(node, n, "BatchNormalization parameter") for n in node.input[1:5]
        )
        factor = scale / np.sqrt(var + float(attrs.get("epsilon", 1e-5)))
        producer.weight = producer.weight * factor.reshape(-1, *([1] * (producer.weight.ndim - 1)))
        producer.bias = (producer.bias - mean) * factor + offset
        self.rename_output(producer, out)

    def convert_activation(self, node: onnx.NodeProto, name: str, out: str) -> None:
        value = self.activation(node, node.input[0])
        lo, hi = 0.0, math.inf
        if node.op_type == "Clip":
            lo, hi = -math.inf, math.inf
            if len(node.input) > 1 and node.input[1]:
                lo = float(self.const(node, node.input[1], "Clip min"))
            if len(node.input) > 2 and node.input[2]:
                hi = float(self.const(node, node.input[2], "Clip max"))
        producer = self.fusable_producer(value, (*WEIGHTED, "add"))
        if producer is not None:
            producer.act_lo, producer.act_hi = lo, hi
            self.rename_output(producer, out)
            return
        layer = FloatLayer(name, "clamp", [value], out, self.shapes[value])
        layer.act_lo, layer.act_hi = lo, hi
        self.add_layer(layer)

    def _window_attrs(
        self,
        node: onnx.NodeProto,
        attrs: dict[str, Any],
        in_shape: tuple[int, ...],
        kernel: Sequence[int],
    ) -> dict[str, Any]:
        if len(in_shape) != 3:
            raise self.fail(node, f"needs a [C, H, W] input, got {list(in_shape)}")
        if attrs.get("ceil_mode", 0):
            raise self.fail(node, "ceil_mode=1 is not supported")
        strides = list(attrs.get("strides", [1, 1]))
        dilations = list(attrs.get("dilations", [1, 1]))
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            pads = [0, 0, 0, 0]
            for axis in range(2):
                size = in_shape[1 + axis]
                out_size = -(-size // strides[axis])
                total = max(
                    (out_size - 1) * strides[axis]
                    + (kernel[axis] - 1) * dilations[axis]
                    + 1
                    - size,
                    0,
                )
                small, large = total // 2, total - total // 2
                pads[axis], pads[axis + 2] = (
                    (small, large) if auto_pad == "SAME_UPPER" else (large, small)
                )
        elif auto_pad == "VALID":
            pads = [0, 0, 0, 0]
        elif auto_pad != "NOTSET":
            raise self.fail(node, f"auto_pad={auto_pad} is not supported")
        if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
            raise self.fail(node, "only 2-D windows are supported")
        return {"kernel": list(kernel), "strides": strides, "pads": pads, "dilations": dilations}

    def _window_out(
        self, node: onnx.NodeProto, in_shape: tuple[int, ...], window: dict[str, Any]
    ) -> tuple[int, int]:
        k, s, p, d = window["kernel"], window["strides"], window["pads"], window["dilations"]
        out_h = ref.conv_output_size(in_shape[1], k[0], s[0], p[0], p[2], d[0])
        out_w = ref.conv_output_size(in_shape[2], k[1], s[1], p[1], p[3], d[1])
        if out_h < 1 or out_w < 1:
            raise self.fail(node, "window larger than the padded input")
        return out_h, out_w

    def convert_conv(
        self, node: onnx.NodeProto, name: str, out: str, attrs: dict[str, Any]
    ) -> None:
        x = self.activation(node, node.input[0])
        weight = self.const(node, node.input[1], "the Conv weight")
        if weight.ndim != 4:
            raise self.fail(node, "only 2-D convolutions are supported")
        in_shape = self.shapes[x]
        groups = int(attrs.get("group", 1))
        window = self._window_attrs(node, attrs, in_shape, weight.shape[2:])
        if in_shape[0] != weight.shape[1] * groups or weight.shape[0] % groups:
            raise self.fail(
                node,
                f"weight {list(weight.shape)} does not fit input {list(in_shape)}, group={groups}",
            )
        bias = np.zeros(weight.shape[0])
        if len(node.input) > 2 and node.input[2]:
            bias = self.const(node, node.input[2], "the Conv bias").reshape(-1).astype(np.float64)
        window["groups"] = groups
        out_shape = (weight.shape[0], *self._window_out(node, in_shape, window))
        self.add_layer(FloatLayer(name, "conv2d", [x], out, out_shape, weight.copy(), bias, window))

    def convert_pool(
        self, node: onnx.NodeProto, name: str, out: str, attrs: dict[str, Any]
    ) -> None:
        x = self.activation(node, node.input[0])
        in_shape = self.shapes[x]
        if len(node.output) > 1 and any(node.output[1:]):
            raise self.fail(node, "the Indices output is not supported")
        if node.op_type == "GlobalAveragePool":
            if len(in_shape) != 3:
                raise self.fail(node, f"needs a [C, H, W] input, got {list(in_shape)}")
            window = {
                "kernel": list(in_shape[1:]),
                "strides": [1, 1],
                "pads": [0, 0, 0, 0],
                "dilations": [1, 1],
            }
        else:
            if attrs.get("storage_order", 0):
                raise self.fail(node, "storage_order=1 is not supported")
            window = self._window_attrs(node, attrs, in_shape, attrs["kernel_shape"])
        if node.op_type == "MaxPool":
            k, p, d = window["kernel"], window["pads"], window["dilations"]
            if any(p[i] > (k[i % 2] - 1) * d[i % 2] for i in range(4)):
                raise self.fail(
                    node, "a padding exceeds the window, so a window can be all padding"
                )
            op = "maxpool"
        else:
            if window["dilations"] != [1, 1]:
                raise self.fail(node, "dilated AveragePool is not supported")
            k, p = window["kernel"], window["pads"]
            if any(p[i] >= k[i % 2] for i in range(4)):
                raise self.fail(
                    node, "a padding is at least the window, so a window can be all padding"
                )
            window["count_include_pad"] = int(attrs.get("count_include_pad", 0))
            op = "avgpool"
        out_shape = (in_shape[0], *self._window_out(node, in_shape, window))
        self.add_layer(FloatLayer(name, op, [x], out, out_shape, attrs=window))

    def convert_reshape(
        self, node: onnx.NodeProto, name: str, out: str, attrs: dict[str, Any]
    ) -> None:
        x = self.activation(node, node.input[0])
        in_shape = self.shapes[x]
        size = int(np.prod(in_shape))
        if node.op_type == "Flatten":
            axis = int(attrs.get("axis", 1))
            if axis not in (1, 1 - (len(in_shape) + 1)):
                raise self.fail(
                    node, "only Flatten with axis=1 (keeping the batch axis) is supported"
                )
            target = (size,)
        else:
            shape = [int(v) for v in self.const(node, node.input[1], "the Reshape shape")]
            if attrs.get("allowzero", 0) or not shape or shape[0] not in (0, -1):
                raise self.fail(node, "Reshape must keep the batch axis (first dim 0 or -1)")
            rest = [
                in_shape[i] if v == 0 and i < len(in_shape) else v for i, v in enumerate(shape[1:])
            ]
            if shape[0] == -1 and -1 in rest:
                raise self.fail(node, "Reshape with two inferred dims")
            if -1 in rest:
                known = int(np.prod([v for v in rest if v != -1]))
                rest[rest.index(-1)] = size // known if known else 0
            target = tuple(rest)
            if any(v < 1 for v in target) or int(np.prod(target)) != size:
                raise self.fail(node, f"cannot reshape {list(in_shape)} to {shape}")
        self.add_layer(FloatLayer(name, "reshape", [x], out, target))


def import_onnx(model: str | Path | bytes | onnx.ModelProto) -> FloatGraph:
    """Read an ONNX model into a float layer graph; raises OnnxImportError listing what failed."""
    return _Importer(load_onnx(model)).run()
