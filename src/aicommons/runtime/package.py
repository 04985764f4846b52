"""Model packages (.aicm): one file holding the canonical manifest and every integer tensor.

Loading verifies each tensor against the root the manifest commits to and every bound of the
integer semantics; a bad file is refused with an error naming what failed, never half-loaded.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as safetensors_load
from safetensors.numpy import save as safetensors_save

from aicommons.commit import JsonInputError, canonical_json, keccak256, parse_json
from aicommons.runtime.commitment import COMMITTED_DTYPES, tensor_root, trace_root, weights_root
from aicommons.runtime.errors import InputError, PackageError
from aicommons.runtime.graph import run_reference, validate_graph
from aicommons.runtime.kernels import Kernel, default_matmul_path, to_external, to_internal
from aicommons.runtime.layer import Layer
from aicommons.runtime.ops import macs_per_sample
from aicommons.runtime.plan import compile_layer, compile_plan

FORMAT = "aicommons-model/1"
SEMANTICS = "aicommons-int/1"
MAGIC = b"AICM\x00\x01"
"""File header: magic, then uint64 big-endian manifest length, manifest, safetensors blob."""
_HEADER = struct.Struct(">6sQ")


@dataclass(frozen=True)
class Trace:
    """Every layer's integer output for a batch, and each sample's trace root.

    `values[0]` is the input; `values[i]` is layer i-1's output ([N, ...] each). A sample's trace
    root is the Merkle root over the tensor roots of its input and its layer outputs, in order.
    """

    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]
    roots: tuple[bytes, ...]

    def sample_values(self, sample: int) -> list[np.ndarray]:
        return [value[sample] for value in self.values]


def as_samples(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """`x` as a batch [N, *shape]: one sample, a batch, or samples of the same size in another
    shape (such as flat rows), reshaped in C order; None when the per-sample size differs."""
    if x.shape == shape:
        return x[None]
    if x.shape[1:] == shape:
        return x
    size = math.prod(shape)
    if x.ndim == 1 and x.size == size:
        return x.reshape(1, *shape)
    if x.ndim >= 2 and math.prod(x.shape[1:]) == size:
        return x.reshape(x.shape[0], *shape)
    return None


def shape_mismatch(what: str, x: np.ndarray, shape: tuple[int, ...]) -> str:
    """The one-line message for samples whose size does not fit the model input."""
    wanted = f"[N, {', '.join(map(str, shape))}]"
    if len(shape) > 1:
        wanted += f" (or samples of {math.prod(shape)} values, reshaped in C order)"
    return f"{what} shape {list(x.shape)} does not match {wanted}"


def scale_text(scale: float) -> str:
    """A scale as the shortest round-tripping decimal string (canonical JSON has no floats)."""
    return repr(float(scale))


class ModelPackage:
    """A verified model version: manifest, tensors, and fast exact execution."""

    def __init__(
        self,
        manifest: Mapping[str, Any],
        tensors: Mapping[str, np.ndarray],
        matmul_path: str | None = None,
    ) -> None:
        self.manifest: dict[str, Any] = json.loads(canonical_json(dict(manifest)))
        self.tensors: dict[str, np.ndarray] = dict(tensors)
        try:
            self._verify()
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            # A manifest of the wrong structure (a list where an object belongs, ...).
            raise PackageError(f"malformed manifest: {type(exc).__name__}: {exc}") from None
        self.version_id: bytes = keccak256(canonical_json(self.manifest))
        self.weights_root: bytes = bytes.fromhex(self.manifest["weights_root"].removeprefix("0x"))
        self.matmul_path = matmul_path or default_matmul_path()
        self._kernels = self._compile()
        self._plan = compile_plan(
            self.input_name,
            self.input_shape,
            self.layers,
            self.output_names,
            self.tensors,
            self.matmul_path,
        )

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        input_spec: Mapping[str, Any],
        layers: Sequence[Layer],
        outputs: Sequence[Mapping[str, Any]],
        tensors: Mapping[str, np.ndarray],
        metadata: Mapping[str, Any] | None = None,
    ) -> ModelPackage:
        """Assemble the manifest (tensor roots, weights root) for a freshly quantised graph."""
        roots = {name: tensor_root(tensor) for name, tensor in tensors.items()}
        manifest = {
            "format": FORMAT,
            "semantics": SEMANTICS,
            "input": dict(input_spec),
            "layers": [layer.to_json() for layer in layers],
            "outputs": [dict(output) for output in outputs],
            "tensors": [
                {
                    "name": name,
                    "dtype": tensors[name].dtype.name,
                    "shape": list(tensors[name].shape),
                    "root": "0x" + roots[name].hex(),
                }
                for name in sorted(tensors)
            ],
            "weights_root": "0x" + weights_root(roots).hex(),
            "metadata": dict(metadata or {}),
        }
        return cls(manifest, tensors)

    def _verify(self) -> None:
        manifest = self.manifest
        if manifest.get("format") != FORMAT:
            raise PackageError(
                f"unknown package format {manifest.get('format')!r}, expected {FORMAT}"
            )
        if manifest.get("semantics") != SEMANTICS:
            raise PackageError(
                f"unknown semantics {manifest.get('semantics')!r}, expected {SEMANTICS}"
            )
        entries = manifest.get("tensors")
        if not isinstance(entries, list):
            raise PackageError("manifest has no tensor list")
        declared = {str(entry.get("name")): entry for entry in entries}
        missing = sorted(set(declared) - set(self.tensors))
        extra = sorted(set(self.tensors) - set(declared))
        if missing:
            raise PackageError(f"tensor {missing[0]!r} is in the manifest but not in the file")
        if extra:
            raise PackageError(f"tensor {extra[0]!r} is in the file but not in the manifest")
        roots = {}
        for name, entry in sorted(declared.items()):
            tensor = self.tensors[name]
            if tensor.dtype.name not in COMMITTED_DTYPES or tensor.dtype.name != entry.get("dtype"):
                raise PackageError(
                    f"tensor {name!r} has dtype {tensor.dtype}, manifest says {entry.get('dtype')}"
                )
            if list(tensor.shape) != entry.get("shape"):
                raise PackageError(
                    f"tensor {name!r} has shape {list(tensor.shape)}, "
                    f"manifest says {entry.get('shape')}"
                )
            roots[name] = tensor_root(tensor)
            if "0x" + roots[name].hex() != entry.get("root"):
                raise PackageError(
                    f"tensor {name!r} does not match its Merkle root (tampered or corrupt)"
                )
        if "0x" + weights_root(roots).hex() != manifest.get("weights_root"):
            raise PackageError("weights_root does not match the tensor roots")
        try:
            self.layers = [Layer.from_json(entry) for entry in manifest["layers"]]
            self.input_name = str(manifest["input"]["name"])
            self.input_shape = tuple(int(v) for v in manifest["input"]["shape"])
            self.input_scale = float(Decimal(manifest["input"]["scale"]))
            self.output_names = [str(output["name"]) for output in manifest["outputs"]]
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise PackageError(f"malformed manifest: {exc!r}") from None
        validate_graph(
            self.input_name, self.input_shape, self.layers, self.output_names, self.tensors
        )
        by_output = {layer.output: layer for layer in self.layers}
        self.output_layers = [by_output[name] for name in self.output_names]

    def _compile(self) -> list[tuple[Layer, Kernel]]:
        shapes = {self.input_name: self.input_shape}
        kernels = []
        for layer in self.layers:
            kernels.append(
                (
                    layer,
                    compile_layer(layer, self.tensors, shapes[layer.inputs[0]], self.matmul_path),
                )
            )
            shapes[layer.output] = layer.out_shape
        return kernels

    # -- execution ----------------------------------------------------------------------------

    @property
    def output_scales(self) -> list[float]:
        return [float(Decimal(layer.out_scale)) for layer in self.output_layers]

    def check_input(self, x_int8: np.ndarray) -> np.ndarray:
        """The batch as int8 [N, *input_shape]; a single sample (no batch axis) and samples of the
        same size in another shape (such as flat rows, reshaped in C order) are accepted too."""
        x = np.asarray(x_int8)
        if x.dtype != np.int8:
            raise InputError(f"input must be int8 (see quantize_input), got {x.dtype}")
        batch = as_samples(x, self.input_shape)
        if batch is None:
            raise InputError(shape_mismatch("input", x, self.input_shape))
        return batch

    def _values(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every value in the kernels' internal layout (NHWC for planes)."""
        values = {self.input_name: to_internal(x)}
        for layer, kernel in self._kernels:
            values[layer.output] = kernel(*[values[name] for name in layer.inputs])
        return values

    def _plan_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """The graph outputs by the fused plan, internal layout."""
        values = {self.input_name: to_internal(x)}
        for inputs, output, kernel in self._plan:
            values[output] = kernel(*[values[name] for name in inputs])
        return [values[layer.output] for layer in self.output_layers]

    def run_all(self, x_int8: np.ndarray) -> list[np.ndarray]:
        """Every graph output (int8 or int32 arrays, batch first)."""
        outputs = self._plan_outputs(self.check_input(x_int8))
        return [
            to_external(value, layer.out_dtype)
            for value, layer in zip(outputs, self.output_layers, strict=True)
        ]

    def run(self, x_int8: np.ndarray) -> np.ndarray:
        """The first graph output for a batch of int8 inputs."""
        return self.run_all(x_int8)[0]

    def trace(self, x_int8: np.ndarray) -> Trace:
        """Every layer's integer output and each sample's trace root."""
        x = self.check_input(x_int8)
        values = self._values(x)
        names = (self.input_name, *(layer.output for layer in self.layers))
        dtypes = ("int8", *(layer.out_dtype for layer in self.layers))
        ordered = tuple(to_external(values[n], d) for n, d in zip(names, dtypes, strict=True))
        roots = tuple(trace_root([value[i] for value in ordered]) for i in range(x.shape[0]))
        return Trace(names, ordered, roots)

    def run_reference(self, x_int8: np.ndarray) -> np.ndarray:
        """The first output computed by the pure-int reference (slow; for verification)."""
        values = run_reference(self.input_name, self.layers, self.tensors, self.check_input(x_int8))
        return values[self.output_names[0]]

    def quantize_input(self, x_float: np.ndarray) -> np.ndarray:
        """round(x / input_scale) clamped to int8; refuses NaN/inf. Convenience, not protocol.

        Samples of the input's size in another shape (such as flat rows) come back as
        [N, *input_shape]."""
        x = np.asarray(x_float, dtype=np.float64)
        if not np.all(np.isfinite(x)):
            raise InputError("input contains NaN or infinity")
        batch = as_samples(x, self.input_shape)
        if batch is None:
            raise InputError(shape_mismatch("input", x, self.input_shape))
        if x.shape == self.input_shape:
            batch = x  # one sample in, one sample out
        return np.clip(np.rint(batch / self.input_scale), -128, 127).astype(np.int8)

    def dequantize_output(self, y: np.ndarray, output: int = 0) -> np.ndarray:
        """Integer output times its scale, as float32."""
        return (np.asarray(y, dtype=np.float64) * self.output_scales[output]).astype(np.float32)

    # -- description --------------------------------------------------------------------------

    def layer_list(self) -> list[dict[str, Any]]:
        """Layers in execution order: name, op, inputs, output, tensor names by role, attributes."""
        return [layer.to_json() for layer in self.layers]

    @property
    def parameter_count(self) -> int:
        return int(sum(tensor.size for tensor in self.tensors.values()))

    @property
    def macs_per_sample(self) -> int:
        """Multiply-accumulates of the weighted (dense, conv) layers for one sample."""
        return macs_per_sample(self.layers, self.tensors)

    # -- serialisation ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        manifest_bytes = canonical_json(self.manifest)
        blob = safetensors_save(
            {name: np.ascontiguousarray(t) for name, t in sorted(self.tensors.items())}
        )
        return _HEADER.pack(MAGIC, len(manifest_bytes)) + manifest_bytes + blob

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (temp file in the same directory, then rename)."""
        return write_atomic(Path(path), self.to_bytes())


def write_atomic(path: Path, data: bytes) -> Path:
    """Write `data` to `path` so that a failure never leaves a partial file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return path


def package_from_bytes(data: bytes, matmul_path: str | None = None) -> ModelPackage:
    """Parse and verify a package held in memory."""
    if len(data) < _HEADER.size:
        raise PackageError("package is truncated (no header)")
    magic, manifest_length = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise PackageError("not an aicommons model package (bad magic bytes)")
    manifest_end = _HEADER.size + manifest_length
    if manifest_end > len(data):
        raise PackageError("package is truncated (manifest cut short)")
    try:
        manifest = parse_json(
            data[_HEADER.size : manifest_end], what="package manifest", max_bytes=manifest_length
        )
    except JsonInputError as exc:
        raise PackageError(str(exc)) from None
    if not isinstance(manifest, dict):
        raise PackageError("package manifest is not a JSON object")
    try:
        tensors = safetensors_load(data[manifest_end:])
    except (SafetensorError, ValueError, OverflowError) as exc:
        raise PackageError(
            f"package tensor data is truncated or corrupt: {str(exc).splitlines()[0]}"
        ) from None
    return ModelPackage(manifest, tensors, matmul_path)


def load_package(path: str | os.PathLike[str], matmul_path: str | None = None) -> ModelPackage:
    """Read and verify a .aicm file; raises PackageError naming what failed."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise PackageError(f"package file not found: {path}") from None
    return package_from_bytes(data, matmul_path)
