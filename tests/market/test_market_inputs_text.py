"""A text as a market request's sample: tokenised with the package's committed tokenizer into
the token ids the request carries, a cut to max_length reported, and an empty text or a text for
a model that takes no tokens refused in one line naming the problem (pure, no chain)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "runtime"))
from bert_fixtures import TINY_TEXTS, write_tiny_checkpoint  # noqa: E402

from aicommons.demo import DIGITS_DATA, DIGITS_MLP  # noqa: E402
from aicommons.market.errors import MarketError  # noqa: E402
from aicommons.market.inputs import prepare, prepare_sample  # noqa: E402
from aicommons.runtime.bert_import import quantize_checkpoint  # noqa: E402
from aicommons.runtime.package import ModelPackage  # noqa: E402
from aicommons.runtime.quantize import quantize_onnx  # noqa: E402
from aicommons.runtime.text import TextModel  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> ModelPackage:
    root = tmp_path_factory.mktemp("tiny-text")
    return quantize_checkpoint(write_tiny_checkpoint(root / "ckpt"), TINY_TEXTS)


def test_a_text_becomes_the_token_ids_of_the_committed_tokenizer(tiny) -> None:
    prepared = prepare(tiny, "the cat sat")
    expected = TextModel(tiny).encode(["the cat sat"]).ids
    assert prepared.values.dtype == np.int32 and prepared.values.shape == (1, *tiny.input_shape)
    np.testing.assert_array_equal(prepared.values, expected)
    assert prepared.truncated is None
    np.testing.assert_array_equal(prepare_sample(tiny, "the cat sat"), expected)
    # Token ids given as integers are taken as they are, as before.
    np.testing.assert_array_equal(prepare(tiny, expected[0]).values, expected)


def test_a_text_longer_than_max_length_is_cut_and_the_cut_reported(tiny) -> None:
    length = int(tiny.input_shape[0])
    text = " ".join(["the cat sat on the red mat"] * 10)
    prepared = prepare(tiny, text)
    assert prepared.truncated is not None
    assert prepared.truncated.kept == length < prepared.truncated.tokens
    np.testing.assert_array_equal(prepared.values, TextModel(tiny).encode([text]).ids)


@pytest.mark.parametrize("text", ["", "   \n"])
def test_an_empty_text_is_refused_in_one_line(tiny, text: str) -> None:
    with pytest.raises(MarketError) as caught:
        prepare(tiny, text)
    message = str(caught.value)
    assert "\n" not in message and "empty" in message and "text 0" not in message


def test_a_text_for_a_model_that_takes_no_tokens_is_refused_in_one_line() -> None:
    with np.load(DIGITS_DATA) as data:
        mlp = quantize_onnx(DIGITS_MLP, data["x_calib"])
    for call in (prepare, prepare_sample):
        with pytest.raises(MarketError) as caught:
            call(mlp, "seven")
        message = str(caught.value)
        assert "\n" not in message and "needs a text model" in message, message
