"""ONNX import: a float ONNX graph (opsets 13-21) becomes a float layer graph, folded and fused.

Models are taken as exporters write them by default (torch.onnx.export, skl2onnx): the label
branch of a classifier (ArgMax, ArrayFeatureExtractor, ZipMap, integer Casts) is dropped with a
note, so the package outputs the class scores; Identity, Dropout and float-to-float Casts vanish;
affine preprocessing (ai.onnx.ml Scaler) and BatchNormalization and bias Adds fold into the
adjacent Conv/Gemm/MatMul, ReLU/Clip fuse into their producer, a trailing Softmax is dropped.
Unsupported models fail with one error listing every offending node (ops before opsets);
nothing is ever silently approximated. Never imports onnxruntime.
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
ML_DOMAIN = "ai.onnx.ml"
SUPPORTED_OPS = (
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
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
SUPPORTED_ML_OPS = ("Scaler",)
PASS_THROUGH = ("Identity", "Dropout", "Cast")
"""Ops that hand their input on unchanged (a Cast only from float to float: see `pass_through`)."""
FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE)
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
    folded_preprocessing: bool = False
    """Affine preprocessing (a Scaler) was folded into `weight`, so its columns can differ in
    magnitude by the preprocessing's scale factors (the quantiser weighs them by the data)."""


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


def _load_external_data(proto: onnx.ModelProto, path: Path, what: str) -> None:
    """Weights kept in external data files beside the model (torch's default) are read in;
    a missing file is named. onnx itself refuses locations outside the model's directory."""
    base = path.resolve().parent
    for tensor in proto.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if not (base / location).is_file():
            raise OnnxImportError(
                f"{what} keeps its weights in an external data file that is missing: "
                f"{location} (keep it beside the .onnx file)"
            )
    try:
        onnx.load_external_data_for_model(proto, str(base))
    except Exception as exc:  # onnx's ValidationError for a location it refuses, OSError
        raise OnnxImportError(
            f"{what}: cannot read its external data ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None


def load_onnx(model: str | Path | bytes | onnx.ModelProto) -> onnx.ModelProto:
    """A ModelProto from a path (with its external data file, as torch writes by default),
    bytes, or a proto; an empty, non-ONNX or graph-less file is refused by name."""
    if isinstance(model, onnx.ModelProto):
        proto = model
        what = "the ONNX model"
    else:
        what = "the ONNX bytes" if isinstance(model, bytes) else f"ONNX model {model}"
        if isinstance(model, bytes):
            data = model
        else:
            try:
                data = Path(model).read_bytes()
            except FileNotFoundError:
                raise OnnxImportError(f"ONNX model not found: {model}") from None
        if not data:
            raise OnnxImportError(f"{what} is empty (0 bytes), not an ONNX model")
        try:
            proto = onnx.load_from_string(data)
        except Exception as exc:  # protobuf DecodeError and others for a file of another kind
            raise OnnxImportError(
                f"{what} is not an ONNX model (cannot parse it: {type(exc).__name__})"
            ) from None
        if not isinstance(model, bytes):
            _load_external_data(proto, Path(model), what)
    if not proto.HasField("graph") or not proto.graph.node:
        raise OnnxImportError(f"{what} holds no ONNX graph (no nodes): not an ONNX model?")
    return proto


def _numeric_initializers(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Numeric initializers as float64 (string tensors, such as class names, are left out)."""
    constants = {}
    for init in graph.initializer:
        if init.data_location == onnx.TensorProto.EXTERNAL:
            raise OnnxImportError(
                f"initializer {init.name!r} lives in an external data file that was not loaded: "
                "pass the .onnx path (with its data file beside it), not bytes"
            )
        array = numpy_helper.to_array(init)
        if array.dtype.kind in "biuf":
            constants[init.name] = array.astype(np.float64)
    return constants


def _op_name(node: onnx.NodeProto) -> str:
    domain = "" if node.domain in ("", "ai.onnx") else f"{node.domain}."
    return f"{domain}{node.op_type}"


class _Importer:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self.constants: dict[str, np.ndarray] = _numeric_initializers(self.graph)
        self.alias: dict[str, str] = {}
        self.affine: dict[str, tuple[str, np.ndarray, np.ndarray, str]] = {}
        """Scaler outputs: value -> (source, scale, offset, node name), y = (x - offset) * scale,
        waiting to fold into the dense layers that read them."""
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.layers: list[FloatLayer] = []
        self.producer: dict[str, FloatLayer] = {}
        self.consumers: Counter[str] = Counter()
        self.dropped_softmax = False
        self.notes: list[str] = []
        self.static_batch: int | None = None
        self.class_labels: list[Any] | None = None

    def fail(self, node: onnx.NodeProto, message: str) -> OnnxImportError:
        return OnnxImportError(f"{node.op_type} node {node.name or node.output[0]!r}: {message}")

    def resolve(self, name: str) -> str:
        while name in self.alias:
            name = self.alias[name]
        return name

    def is_const(self, name: str) -> bool:
        return self.resolve(name) in self.constants

    def const(self, node: onnx.NodeProto, name: str, what: str) -> np.ndarray:
        if not self.is_const(name):
            raise self.fail(
                node, f"{what} must be a constant (initializer), got activation {name!r}"
            )
        return self.constants[self.resolve(name)]

    def activation(self, node: onnx.NodeProto, name: str, *, affine_ok: bool = False) -> str:
        resolved = self.resolve(name)
        if resolved not in self.shapes:
            raise self.fail(node, f"input {name!r} is not an activation of this graph")
        if resolved in self.affine and not affine_ok:
            scaler = self.affine[resolved][3]
            raise self.fail(
                node,
                f"reads the output of Scaler {scaler!r}; affine preprocessing folds only into "
                "a MatMul/Gemm that reads it directly",
            )
        return resolved

    def run(self) -> FloatGraph:
        graph_outputs = self.select_outputs()
        nodes = self.needed_nodes(graph_outputs)
        self.check_supported(nodes)
        self.check_opset(nodes)
        input_name, input_shape = self.graph_input()
        self.shapes[input_name] = input_shape
        nodes = self.pass_through(nodes)
        graph_outputs = [self.resolve(name) for name in graph_outputs]
        for node in nodes:
            for name in node.input:
                if name:
                    self.consumers[self.resolve(name)] += 1
        for name in graph_outputs:
            self.consumers[name] += 1
        for node in nodes:
            self.convert(node, graph_outputs)
        outputs = [self.resolve(name) for name in graph_outputs]
        for name in outputs:
            if name not in self.producer:
                raise OnnxImportError(
                    f"graph output {name!r} is not computed by any supported layer"
                )
        metadata: dict[str, Any] = {
            "source_graph": self.graph.name,
            "opset": self.opset,
            "dropped_softmax": self.dropped_softmax,
        }
        if self.class_labels is not None:
            metadata["class_labels"] = self.class_labels
        if self.notes:
            metadata["import_notes"] = list(self.notes)
        return FloatGraph(input_name, input_shape, self.layers, outputs, metadata)

    def select_outputs(self) -> list[str]:
        """The graph outputs to import: float tensors. A classifier's label output (an integer
        tensor) and its score dictionaries (ZipMap: a sequence of maps) are dropped; when no
        float output is left, the scores that feed the ZipMap become the output."""
        kept, dropped = [], []
        for output in self.graph.output:
            tensor = output.type.tensor_type if output.type.HasField("tensor_type") else None
            is_float = tensor is not None and tensor.elem_type in FLOAT_TYPES
            (kept if is_float else dropped).append(output.name)
        if not dropped:
            return kept
        zipmaps = [
            node
            for node in self.graph.node
            if node.op_type == "ZipMap" and node.domain == ML_DOMAIN and node.output[0] in dropped
        ]
        if not kept:
            kept = [node.input[0] for node in zipmaps]
        if not kept:
            raise OnnxImportError(
                f"the model has no float tensor output to import (outputs: {', '.join(dropped)})"
            )
        for node in zipmaps:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            labels = attrs.get("classlabels_int64s") or attrs.get("classlabels_strings")
            if labels and node.input[0] in kept:
                self.class_labels = [v.decode() if isinstance(v, bytes) else int(v) for v in labels]
        needed = self.needed_nodes(kept)
        branch = [_op_name(node) for node in self.graph.node if node not in needed]
        mapping = " (class i is class_labels[i])" if self.class_labels is not None else ""
        self.notes.append(
            f"dropped the label outputs {', '.join(dropped)} ({', '.join(dict.fromkeys(branch))}):"
            f" the package outputs the class scores {', '.join(kept)}{mapping}"
        )
        return kept

    def needed_nodes(self, outputs: Sequence[str]) -> list[onnx.NodeProto]:
        """The nodes the given values depend on, in graph order."""
        producers = {name: node for node in self.graph.node for name in node.output if name}
        needed: set[int] = set()
        pending = list(outputs)
        while pending:
            node = producers.get(pending.pop())
            if node is None or id(node) in needed:
                continue
            needed.add(id(node))
            pending.extend(name for name in node.input if name)
        return [node for node in self.graph.node if id(node) in needed]

    def check_opset(self, nodes: Sequence[onnx.NodeProto]) -> None:
        versions = [o.version for o in self.model.opset_import if o.domain in ("", "ai.onnx")]
        self.opset = versions[0] if versions else 0
        uses_default = any(node.domain in ("", "ai.onnx") for node in nodes)
        if uses_default and not MIN_OPSET <= self.opset <= MAX_OPSET:
            raise OnnxImportError(
                f"ONNX opset {self.opset} is not supported (need {MIN_OPSET}-{MAX_OPSET})"
            )

    def check_supported(self, nodes: Sequence[onnx.NodeProto]) -> None:
        """Every node the outputs need must be a supported op: all offenders in one error."""
        unsupported = [
            f"{_op_name(node)} ({node.name or node.output[0]!r})"
            for node in nodes
            if not (
                (node.domain in ("", "ai.onnx") and node.op_type in SUPPORTED_OPS)
                or (node.domain == ML_DOMAIN and node.op_type in SUPPORTED_ML_OPS)
            )
        ]
        if unsupported:
            raise OnnxImportError(f"unsupported ONNX ops: {', '.join(unsupported)}")

    def pass_through(self, nodes: Sequence[onnx.NodeProto]) -> list[onnx.NodeProto]:
        """Identity, Dropout and float-to-float Casts vanish: their output becomes an alias of
        their input. Returns the remaining nodes."""
        kept = []
        for node in nodes:
            if node.op_type not in PASS_THROUGH or node.domain not in ("", "ai.onnx"):
                kept.append(node)
                continue
            if node.op_type == "Cast":
                to = next((a.i for a in node.attribute if a.name == "to"), None)
                if to not in FLOAT_TYPES:
                    type_name = onnx.TensorProto.DataType.Name(to) if to else "?"
                    raise self.fail(
                        node,
                        f"a Cast to {type_name} is not supported (only float-to-float Casts, "
                        "which change no value the integer model sees)",
                    )
            if node.op_type == "Dropout" and len(node.output) > 1 and any(node.output[1:]):
                raise self.fail(node, "the Dropout mask output is not supported")
            self.alias[node.output[0]] = self.resolve(node.input[0])
        return kept

    def graph_input(self) -> tuple[str, tuple[int, ...]]:
        initializers = {init.name for init in self.graph.initializer}
        inputs = [i for i in self.graph.input if i.name not in initializers]
        if len(inputs) != 1:
            raise OnnxImportError(f"the model must have exactly one input, it has {len(inputs)}")
        tensor = inputs[0].type.tensor_type
        if not inputs[0].type.HasField("tensor_type") or tensor.elem_type not in FLOAT_TYPES:
            raise OnnxImportError(f"input {inputs[0].name!r} must be a float tensor")
        dims = tensor.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
            self.static_batch = int(dims[0].dim_value)
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
        elif node.domain == ML_DOMAIN and op == "Scaler":
            self.convert_scaler(node, out, attrs)
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

    def convert_scaler(self, node: onnx.NodeProto, out: str, attrs: dict[str, Any]) -> None:
        """ai.onnx.ml Scaler, y = (x - offset) * scale per feature: kept aside to fold into the
        dense layers that read it (W' = W diag(scale), b' = b - W' offset)."""
        x = self.activation(node, node.input[0])
        shape = self.shapes[x]
        if len(shape) != 1:
            raise self.fail(node, f"needs [K] features to fold into a dense layer, got {shape}")
        vectors = []
        for key, default in (("scale", 1.0), ("offset", 0.0)):
            values = np.asarray(list(attrs.get(key, [default])), dtype=np.float64)
            if values.size not in (1, shape[0]):
                raise self.fail(node, f"{key} has {values.size} values for {shape[0]} features")
            vectors.append(np.broadcast_to(values, shape).copy())
        self.shapes[out] = shape
        self.affine[out] = (x, vectors[0], vectors[1], node.name or out)

    def dense_layer(
        self, name: str, x: str, out: str, weight: np.ndarray, bias: np.ndarray
    ) -> FloatLayer:
        """A dense layer [C, K]; one reading a Scaler's output reads its input instead:
        W (scale * (x - offset)) + b = (W diag(scale)) x + (b - W diag(scale) offset)."""
        if x not in self.affine:
            return FloatLayer(name, "dense", [x], out, (weight.shape[0],), weight, bias)
        source, scale, offset, scaler = self.affine[x]
        folded = weight * scale[None, :]
        self.notes.append(f"folded the affine preprocessing Scaler {scaler!r} into layer {name!r}")
        layer = FloatLayer(
            name, "dense", [source], out, (weight.shape[0],), folded, bias - folded @ offset
        )
        layer.folded_preprocessing = True
        return layer

    def convert_matmul(self, node: onnx.NodeProto, name: str, out: str) -> None:
        x = self.activation(node, node.input[0], affine_ok=True)
        weight = self.const(node, node.input[1], "the second MatMul input")
        if weight.ndim != 2 or len(self.shapes[x]) != 1 or weight.shape[0] != self.shapes[x][0]:
            raise self.fail(
                node, f"needs a 2-D weight matching input features {list(self.shapes[x])}"
            )
        self.add_layer(self.dense_layer(name, x, out, weight.T.copy(), np.zeros(weight.shape[1])))

    def convert_gemm(
        self, node: onnx.NodeProto, name: str, out: str, attrs: dict[str, Any]
    ) -> None:
        x = self.activation(node, node.input[0], affine_ok=True)
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
        self.add_layer(self.dense_layer(name, x, out, weight.copy(), bias))

    def convert_add(self, node: onnx.NodeProto, name: str, out: str) -> None:
        left, right = node.input[0], node.input[1]
        if self.is_const(left) and self.is_const(right):
            self.constants[out] = (
                self.constants[self.resolve(left)] + self.constants[self.resolve(right)]
            )
            return
        if self.is_const(left) or self.is_const(right):
            value = self.activation(node, right if self.is_const(left) else left)
            constant = self.constants[self.resolve(left if self.is_const(left) else right)]
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
            allowzero = int(attrs.get("allowzero", 0))
            if allowzero and 0 in shape:
                # allowzero=1 only changes what a 0 means (an empty axis instead of a copy).
                raise self.fail(node, f"allowzero=1 with a 0 in the shape {shape} (an empty axis)")
            batch_dims = (0, -1) if self.static_batch is None else (0, -1, self.static_batch)
            if not shape or shape[0] not in batch_dims:
                static = (
                    ""
                    if self.static_batch is None
                    else f" or the static batch size {self.static_batch}"
                )
                raise self.fail(
                    node,
                    f"Reshape to {shape} must keep the batch axis (first dim 0 or -1{static})",
                )
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
