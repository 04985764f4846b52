"""Runtime test fixtures: the fidelity sets and the float reference embeddings of
all-MiniLM-L6-v2 (the package itself is built once per session in tests/conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
MINILM_TEXT = DATA / "minilm_text.json"
MINILM_REFERENCE = DATA / "minilm_reference.npz"


@pytest.fixture(scope="session")
def minilm_texts() -> dict[str, list[str]]:
    return json.loads(MINILM_TEXT.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def minilm_reference() -> dict[str, np.ndarray]:
    with np.load(MINILM_REFERENCE) as data:
        return {key: data[key] for key in data.files}
