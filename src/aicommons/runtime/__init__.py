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
from aicommons.runtime.graph import Layer
from aicommons.runtime.package import ModelPackage, Trace, load_package, package_from_bytes

__all__ = [
    "CalibrationError",
    "InputError",
    "Layer",
    "ModelError",
    "ModelPackage",
    "OnnxImportError",
    "PackageError",
    "Trace",
    "load_package",
    "package_from_bytes",
    "reference",
    "tensor_root",
    "tensor_rows",
    "trace_root",
    "weights_root",
]
