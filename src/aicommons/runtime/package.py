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
from aicommons.runtime.manifest import (
    FORMAT,
    SEMANTICS,
    SEMANTICS_V2,
    check_manifest,
    semantics_version,
)
from aicommons.runtime.ops import DTYPE_RANGE, OPS, macs_per_sample
from aicommons.runtime.plan import compile_layer, compile_plan
from aicommons.runtime.schema import is_integer

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
    """`x` as a batch [N, *shape], or None when it is in no accepted layout.

    Accepted: one sample of the model's shape, a batch [N, *shape], and flat samples in C order
    (one row of prod(shape) values, or rows [N, prod(shape)]). Any other shape of the same size,
    such as NHWC planes for an NCHW model, is another layout, and reshaping it would silently
    scramble the values, so it is refused.
    """
    size = math.prod(shape)
    if x.shape == shape:
        return x[None]
    if x.shape[1:] == shape:
        return x
    if x.shape == (size,):
        return x.reshape(1, *shape)
    if x.ndim == 2 and x.shape[1] == size:
        return x.reshape(x.shape[0], *shape)
    return None


def shape_mismatch(what: str, x: np.ndarray, shape: tuple[int, ...]) -> str:
    """The one-line message for samples in a layout the model input does not accept."""
    wanted = f"[N, {', '.join(map(str, shape))}]"
    if len(shape) > 1:
        wanted += f" or flat rows [N, {math.prod(shape)}] in C order"
    message = f"{what} shape {list(x.shape)} does not match the model input {wanted}"
    if x.size and x.ndim >= 1 and math.prod(x.shape[1:]) == math.prod(shape) and len(shape) > 1:
        message += " (another layout, such as NHWC for an NCHW model, must be transposed first)"
    return message


def _int8_range_error(
    what: str, value: int, index: tuple[Any, ...], dtype: str = "int8"
) -> InputError:
    low, high = DTYPE_RANGE[dtype]
    meaning = (
        "integer inputs are the token ids themselves"
        if dtype == "int32"
        else f"integer inputs are the quantised {dtype} values themselves (pass floats to have "
        "them quantised)"
    )
    return InputError(
        f"{what} value {value} at index {[int(i) for i in index]} is outside {dtype} "
        f"[{low}, {high}]: {meaning}"
    )


def _json_leaves(values: Any, what: str) -> tuple[tuple[int, ...], list[int | float]]:
    """Shape and row-major leaves of nested lists of numbers; ragged lists, bools and other
    leaves are refused by name."""
    shape: list[int] = []
    level = values
    while isinstance(level, list):
        shape.append(len(level))
        if not level:
            break
        level = level[0]
    leaves: list[int | float] = []

    def walk(node: Any, depth: int, index: tuple[int, ...]) -> None:
        if depth == len(shape):
            if isinstance(node, bool) or not isinstance(node, int | float):
                raise InputError(
                    f"{what} holds {json.dumps(node)[:40]} at index {list(index)}; "
                    "expected a number"
                )
            leaves.append(node)
            return
        if not isinstance(node, list) or len(node) != shape[depth]:
            raise InputError(f"{what} is not a rectangular array (ragged at index {list(index)})")
        for position, child in enumerate(node):
            walk(child, depth + 1, (*index, position))

    walk(values, 0, ())
    return tuple(shape), leaves


def numeric_array(values: Any, what: str = "input") -> np.ndarray:
    """`values` as an array that keeps its kind of number.

    A numpy array is returned as it is. Nested lists (parsed JSON) become int64 when every
    leaf is an integer and float64 otherwise; a bool, string, null or ragged list is refused by
    name, and an integer beyond int64 is refused as outside int8 (see `prepare_input`).
    """
    if isinstance(values, np.ndarray):
        return values
    if isinstance(values, bool) or not isinstance(values, list | int | float):
        raise InputError(f"{what} must be an array of numbers, got {type(values).__name__}")
    shape, leaves = _json_leaves(values, what)
    if all(isinstance(v, int) for v in leaves):
        for position, value in enumerate(leaves):
            if not -(2**63) <= value < 2**63:
                raise _int8_range_error(what, value, np.unravel_index(position, shape))
        return np.array(leaves, dtype=np.int64).reshape(shape)
    return np.array(leaves, dtype=np.float64).reshape(shape)


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
        *,
        _tensor_roots: Mapping[str, bytes] | None = None,
    ) -> None:
        check_manifest(manifest)
        self.manifest: dict[str, Any] = json.loads(canonical_json(dict(manifest)))
        self.tensors: dict[str, np.ndarray] = dict(tensors)
        self._verify(_tensor_roots or {})
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
            input_dtype=self.input_dtype,
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
        """Assemble the manifest (tensor roots, weights root) for a freshly quantised graph.

        The manifest names the lowest semantics version the graph needs: version 1 (and no
        `input.dtype`) unless the input is not int8, a value or tensor is int16, or an op is
        newer, so a graph of version-1 ops and int8 values gives the same bytes as ever."""
        roots = {name: tensor_root(tensor) for name, tensor in tensors.items()}
        input_fields = dict(input_spec)
        needs_v2 = (
            input_fields.get("dtype", "int8") != "int8"
            or any(OPS[layer.op].version > 1 for layer in layers if layer.op in OPS)
            or any(layer.out_dtype == "int16" for layer in layers)
            or any(tensor.dtype == np.int16 for tensor in tensors.values())
        )
        if needs_v2:
            input_fields.setdefault("dtype", "int8")
        elif input_fields.get("dtype") == "int8":
            del input_fields["dtype"]
        manifest = {
            "format": FORMAT,
            "semantics": SEMANTICS_V2 if needs_v2 else SEMANTICS,
            "input": input_fields,
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
        # The roots were just computed from these very arrays: verification reuses them rather
        # than hashing every tensor a second time (every other check still runs).
        return cls(manifest, tensors, _tensor_roots=roots)

    def _verify(self, known_roots: Mapping[str, bytes]) -> None:
        """The tensors against the (schema-checked) manifest, then the graph's every bound.

        `known_roots` are roots `build` computed from these same arrays; any tensor not in it
        (always the case for a package read from bytes) is hashed here."""
        manifest = self.manifest
        declared = {entry["name"]: entry for entry in manifest["tensors"]}
        missing = sorted(set(declared) - set(self.tensors))
        extra = sorted(set(self.tensors) - set(declared))
        if missing:
            raise PackageError(f"tensor {missing[0]!r} is in the manifest but not in the file")
        if extra:
            raise PackageError(f"tensor {extra[0]!r} is in the file but not in the manifest")
        roots = {}
        for name, entry in sorted(declared.items()):
            tensor = self.tensors[name]
            if tensor.dtype.name not in COMMITTED_DTYPES or tensor.dtype.name != entry["dtype"]:
                raise PackageError(
                    f"tensor {name!r} has dtype {tensor.dtype}, manifest says {entry['dtype']}"
                )
            if list(tensor.shape) != entry["shape"]:
                raise PackageError(
                    f"tensor {name!r} has shape {list(tensor.shape)}, "
                    f"manifest says {entry['shape']}"
                )
            roots[name] = known_roots[name] if name in known_roots else tensor_root(tensor)
            if "0x" + roots[name].hex() != entry["root"]:
                raise PackageError(
                    f"tensor {name!r} does not match its Merkle root (tampered or corrupt)"
                )
        if "0x" + weights_root(roots).hex() != manifest["weights_root"]:
            raise PackageError("weights_root does not match the tensor roots")
        self.layers = [Layer.from_json(entry) for entry in manifest["layers"]]
        self.input_name = manifest["input"]["name"]
        self.input_shape = tuple(manifest["input"]["shape"])
        self.input_scale = float(Decimal(manifest["input"]["scale"]))
        self.input_dtype: str = manifest["input"].get("dtype", "int8")
        self.semantics_version = semantics_version(manifest)
        self.output_names = [output["name"] for output in manifest["outputs"]]
        validate_graph(
            self.input_name,
            self.input_shape,
            self.layers,
            self.output_names,
            self.tensors,
            input_dtype=self.input_dtype,
            version=self.semantics_version,
        )
        by_output = {layer.output: layer for layer in self.layers}
        self.output_layers = [by_output[name] for name in self.output_names]

    def _compile(self) -> list[tuple[Layer, Kernel]]:
        shapes = {self.input_name: self.input_shape}
        dtypes = {self.input_name: self.input_dtype}
        kernels = []
        for layer in self.layers:
            kernel = compile_layer(
                layer,
                self.tensors,
                shapes[layer.inputs[0]],
                self.matmul_path,
                in_dtypes=tuple(dtypes[name] for name in layer.inputs),
            )
            kernels.append((layer, kernel))
            shapes[layer.output] = layer.out_shape
            dtypes[layer.output] = layer.out_dtype
        return kernels

    # -- execution ----------------------------------------------------------------------------

    @property
    def output_scales(self) -> list[float]:
        return [float(Decimal(layer.out_scale)) for layer in self.output_layers]

    def check_input(self, x_int8: np.ndarray) -> np.ndarray:
        """The batch as the input dtype (int8 unless the manifest says otherwise)
        [N, *input_shape], N >= 1: a batch, one sample without the batch axis, or flat rows in
        C order (see `as_samples`); any other layout is refused, and so is a value outside the
        domain of a layer reading the input (a token id beyond the embedding table)."""
        x = np.asarray(x_int8)
        if x.dtype != np.dtype(self.input_dtype):
            raise InputError(f"input must be {self.input_dtype} (see prepare_input), got {x.dtype}")
        batch = as_samples(x, self.input_shape)
        if batch is None:
            raise InputError(shape_mismatch("input", x, self.input_shape))
        if batch.shape[0] == 0:
            raise InputError("input holds no samples (a batch of 0)")
        for layer in self.layers:
            domain = OPS[layer.op].input_domain
            if domain is not None and self.input_name in layer.inputs:
                problem = domain(layer, self.tensors, batch)
                if problem:
                    raise InputError(f"input {problem}")
        return batch

    def prepare_input(self, x: Any) -> np.ndarray:
        """The int8 batch [N, *input_shape] to run, from whatever input a caller holds.

        Integers are integers: an integer array (any int or uint dtype, or nested lists of JSON
        integers) is taken as the int8 values it holds, which must all lie in [-128, 127]; an
        integer outside is refused by name, never re-quantised. Floats are quantised with the
        input scale (`quantize_input`). Bools and other dtypes are refused. Layouts as in
        `check_input`. This is the one entry point for CLI, SDK and services alike.
        """
        values = numeric_array(x)
        kind = values.dtype.kind
        if kind in "iu":
            if values.size:
                low, high = values.min(), values.max()
                least, most = DTYPE_RANGE[self.input_dtype]
                if low < least or high > most:
                    bad = low if low < least else high
                    index = np.unravel_index(int(np.argmax(values == bad)), values.shape)
                    raise _int8_range_error("input", int(bad), index, self.input_dtype)
            return self.check_input(values.astype(self.input_dtype))
        if kind == "f":
            return self.check_input(self.quantize_input(values))
        raise InputError(f"input must be numeric (integers or floats), got dtype {values.dtype}")

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
        dtypes = (self.input_dtype, *(layer.out_dtype for layer in self.layers))
        ordered = tuple(to_external(values[n], d) for n, d in zip(names, dtypes, strict=True))
        roots = tuple(trace_root([value[i] for value in ordered]) for i in range(x.shape[0]))
        return Trace(names, ordered, roots)

    def run_reference(self, x_int8: np.ndarray) -> np.ndarray:
        """The first output computed by the pure-int reference (slow; for verification)."""
        values = run_reference(self.input_name, self.layers, self.tensors, self.check_input(x_int8))
        return values[self.output_names[0]]

    def quantize_input(self, x_float: np.ndarray) -> np.ndarray:
        """round_half_even(x / input_scale) clamped to int8, for float inputs; refuses NaN/inf
        and integer arrays (those are int8 values already: see `prepare_input`). Convenience,
        not protocol. One sample comes back as one sample; a batch or flat rows come back as
        [N, *input_shape]; other layouts are refused (see `as_samples`)."""
        values = np.asarray(x_float)
        if self.input_dtype == "int32":
            raise InputError("this model takes token ids (integers), not floats")
        if values.dtype.kind != "f":
            raise InputError(
                f"quantize_input takes floats, got dtype {values.dtype} "
                "(integer inputs are int8 values already: use prepare_input)"
            )
        x = values.astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise InputError("input contains NaN or infinity")
        batch = as_samples(x, self.input_shape)
        if batch is None:
            raise InputError(shape_mismatch("input", x, self.input_shape))
        if x.shape == self.input_shape:
            batch = x  # one sample in, one sample out
        low, high = DTYPE_RANGE[self.input_dtype]
        return np.clip(np.rint(batch / self.input_scale), low, high).astype(self.input_dtype)

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


def _check_blob_length(blob: bytes) -> None:
    """Tell trailing bytes from truncation: the safetensors header says where the data ends
    (8-byte little-endian header length, JSON header, data up to the largest end offset).
    Headers it cannot read are left for safetensors to refuse as corrupt."""
    if len(blob) < 8:
        raise PackageError("package is truncated (tensor header cut short)")
    header_end = 8 + int.from_bytes(blob[:8], "little")
    if header_end > len(blob):
        raise PackageError("package is truncated (tensor header cut short)")
    try:
        header = parse_json(
            blob[8:header_end], what="package tensor header", max_bytes=header_end - 8
        )
    except JsonInputError:
        return
    if not isinstance(header, dict):
        return
    ends = [
        entry.get("data_offsets", [0, 0])[-1] if isinstance(entry, dict) else None
        for key, entry in header.items()
        if key != "__metadata__"
    ]
    if not all(is_integer(end) and end >= 0 for end in ends):
        return
    expected = header_end + max(ends, default=0)
    if len(blob) > expected:
        raise PackageError(
            f"package has {len(blob) - expected} trailing bytes after its tensor data "
            "(appended to or corrupt)"
        )
    if len(blob) < expected:
        raise PackageError(
            f"package is truncated (tensor data has {len(blob) - header_end} of "
            f"{expected - header_end} bytes)"
        )


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
    _check_blob_length(data[manifest_end:])
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
