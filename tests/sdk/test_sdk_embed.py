"""`client.inference.embed`: a registered text model's package, fetched and verified by the
storage service, tokenised with its committed tokenizer and run locally by the exact runtime."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "runtime"))
from bert_fixtures import TINY_TEXTS, write_tiny_checkpoint  # noqa: E402

from aicommons.runtime.bert_import import quantize_checkpoint  # noqa: E402
from aicommons.runtime.text import TextModel  # noqa: E402
from aicommons.sdk.errors import ClientError  # noqa: E402
from aicommons.sdk.inference import InferenceService  # noqa: E402


def stub_client(package, deprecated: bool = False) -> SimpleNamespace:  # noqa: ANN001
    version = SimpleNamespace(
        model="minilm-tiny", version_id="0x" + package.version_id.hex(), deprecated=deprecated
    )
    fetched = []

    def fetch_package(info):  # noqa: ANN001, ANN202
        fetched.append(info.version_id)
        return package

    return SimpleNamespace(
        registry=SimpleNamespace(resolve=lambda reference: version),
        storage=SimpleNamespace(fetch_package=fetch_package),
        fetched=fetched,
    )


def test_embed_runs_the_registered_package(tmp_path) -> None:
    package = quantize_checkpoint(write_tiny_checkpoint(tmp_path / "ckpt"), TINY_TEXTS)
    client = stub_client(package)
    result = InferenceService(client).embed("minilm-tiny@1", ["the cat sat", "a red car"])
    assert client.fetched == ["0x" + package.version_id.hex()]
    assert result.version_id == package.version_id
    expected = TextModel(package).embed(["the cat sat", "a red car"])
    assert result.values.tobytes() == expected.values.tobytes()
    assert result.vectors.shape == (2, 32) and np.all(np.isfinite(result.vectors))
    with pytest.raises(ClientError, match="is deprecated"):
        InferenceService(stub_client(package, deprecated=True)).embed("minilm-tiny@1", ["hi"])
