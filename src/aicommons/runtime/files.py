"""Reading arrays for the CLI (.npy / .npz / .json inputs) and writing outputs atomically.

Failures are one-line `ModelError`s naming the file; a write never leaves a partial file.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aicommons.commit import JsonInputError, read_json_file
from aicommons.runtime.errors import CalibrationError, InputError, OutputPathError
from aicommons.runtime.package import ModelPackage, numeric_array, write_atomic


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


MAX_INPUT_JSON_BYTES = 16 * 1024 * 1024
"""A JSON input file holds one batch of numbers; 16 MiB is about a million values."""


def load_input(path: str | Path) -> np.ndarray:
    """An inference input file as an array that keeps its kind of number, for
    `ModelPackage.prepare_input`: .json holds nested lists of numbers (integers stay int64,
    any float makes float64; bools and ragged lists are refused), .npy its array, .npz the
    array `x_test` or its only one. An int64 .npy stays int64."""
    source = Path(path)
    if source.suffix.lower() != ".json":
        return load_array(source, "input", npz_key="x_test")
    if not source.is_file():
        raise InputError(f"input file not found: {source}")
    try:
        values = read_json_file(source, what="input file", max_bytes=MAX_INPUT_JSON_BYTES)
    except JsonInputError as exc:
        raise InputError(str(exc)) from None
    return numeric_array(values, what=f"input file {source}")


def check_output_path(output: str | Path, sources: Mapping[str, str | Path]) -> Path:
    """`output`, unless writing it would replace one of `sources` (role -> path: the model, the
    input...): the same path once resolved, or the same file by another name (symlink, hard
    link). Refused by name, before anything is computed or written."""
    target = Path(output)
    for role, source in sources.items():
        source_path = Path(source)
        same = target.resolve() == source_path.resolve() or (
            target.exists() and source_path.exists() and os.path.samefile(target, source_path)
        )
        if same:
            raise OutputPathError(
                f"refusing to write {target}: it is the {role} {source_path}; choose another -o"
            )
    return target


def save_array(path: str | Path, array: np.ndarray) -> Path:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return write_atomic(Path(path), buffer.getvalue())


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
