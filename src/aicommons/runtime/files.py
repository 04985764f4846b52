"""Reading arrays for the CLI (.npy / .npz) and writing outputs atomically.

Failures are one-line `ModelError`s naming the file; a write never leaves a partial file.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from aicommons.runtime.errors import CalibrationError, InputError
from aicommons.runtime.package import ModelPackage, write_atomic


def load_array(path: str | Path, role: str, npz_key: str | None = None) -> np.ndarray:
    """An array from .npy, or from .npz (key `npz_key`, or its only array); no pickles."""
    error = CalibrationError if role == "calibration" else InputError
    source = Path(path)
    if not source.is_file():
        raise error(f"{role} file not found: {source}")
    try:
        loaded = np.load(source, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise error(f"cannot read {role} file {source}: {str(exc).splitlines()[0]}") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            keys = list(loaded.keys())
            if npz_key in keys:
                return loaded[npz_key]
            if len(keys) == 1:
                return loaded[keys[0]]
            raise error(f"{role} file {source} holds {keys}; expected one array or {npz_key!r}")
    return loaded


def save_array(path: str | Path, array: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return write_atomic(Path(path), buffer.getvalue())


def prepare_input(package: ModelPackage, x: np.ndarray) -> np.ndarray:
    """int8 inputs are used as they are (the committed form); floats are quantised."""
    if x.dtype == np.int8:
        return x
    if x.dtype.kind not in "fiu":
        raise InputError(f"input must be numeric, got dtype {x.dtype}")
    return package.quantize_input(x)


def describe(package: ModelPackage) -> dict[str, Any]:
    """What `aic model inspect` shows: id, input/outputs, layers, sizes and every tensor root."""
    manifest = package.manifest
    return {
        "version_id": "0x" + package.version_id.hex(),
        "weights_root": "0x" + package.weights_root.hex(),
        "format": manifest["format"],
        "semantics": manifest["semantics"],
        "input": manifest["input"],
        "outputs": manifest["outputs"],
        "layers": [
            {
                "name": layer.name,
                "op": layer.op,
                "out_shape": list(layer.out_shape),
                "out_dtype": layer.out_dtype,
            }
            for layer in package.layers
        ],
        "parameter_count": package.parameter_count,
        "macs_per_sample": package.macs_per_sample,
        "tensors": manifest["tensors"],
        "metadata": manifest["metadata"],
    }
