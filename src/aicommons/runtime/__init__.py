"""Deterministic integer runtime: integer semantics, ONNX import + quantisation, model packages.

Every honest party gets bit-identical outputs (docs/integer-semantics.md). This package imports
nothing of aicommons except `aicommons.commit`, and never imports onnxruntime at module level.
"""

from aicommons.runtime import reference
from aicommons.runtime.commitment import tensor_root, tensor_rows, trace_root, weights_root
from aicommons.runtime.errors import (
    CalibrationError,
    InputError,
    ModelError,
    OnnxImportError,
    PackageError,
)
from aicommons.runtime.layer import Layer
from aicommons.runtime.package import ModelPackage, Trace, load_package, package_from_bytes


def __getattr__(name: str) -> object:
    """ONNX import and quantisation load lazily: most callers only load and run packages."""
    if name in ("quantize_onnx", "import_onnx"):
        from aicommons.runtime import onnx_import, quantize

        return {"quantize_onnx": quantize.quantize_onnx, "import_onnx": onnx_import.import_onnx}[
            name
        ]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CalibrationError",
    "InputError",
    "Layer",
    "ModelError",
    "ModelPackage",
    "OnnxImportError",
    "PackageError",
    "Trace",
    "import_onnx",
    "load_package",
    "package_from_bytes",
    "quantize_onnx",
    "reference",
    "tensor_root",
    "tensor_rows",
    "trace_root",
    "weights_root",
]
