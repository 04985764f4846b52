"""One sample of a market request as the tensor the request carries (the package's input dtype:
int8, or int16 / int32 token ids): integers are taken as the values they hold, floats are
quantised with the package's input scale, and a text (a str, for a text model only) becomes the
token ids of the package's committed tokenizer, a cut to its max_length reported, never silent.

The single place the off-chain market turns user input into protocol input; pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aicommons.market.errors import MarketError
from aicommons.runtime import ModelPackage
from aicommons.runtime.errors import InputError
from aicommons.runtime.text import TextModel, Truncation


@dataclass(frozen=True)
class PreparedSample:
    """One request's sample [1, *input_shape]; `truncated` when a text was cut to the model's
    max_length (its `tokens` before the cut, `kept` after)."""

    values: np.ndarray
    truncated: Truncation | None = None


def prepare(package: ModelPackage, x: Any) -> PreparedSample:
    """`x` as the sample a request carries: a str is tokenised (`text_sample`), anything else
    goes through `prepare_sample`."""
    if isinstance(x, str):
        return text_sample(package, x)
    return PreparedSample(prepare_sample(package, x))


def text_sample(package: ModelPackage, text: str) -> PreparedSample:
    """The token ids [1, max_length] of `text` under the package's committed tokenizer; refuses
    a package that is not a text model and a text with no tokens, each in one line."""
    try:
        model = TextModel(package)
    except InputError:
        raise MarketError(
            "a text sample needs a text model; this one takes "
            f"{package.input_dtype} {list(package.input_shape)} (give its values)"
        ) from None
    try:
        encoded = model.encode([text])
    except InputError as exc:
        raise MarketError(
            f"cannot tokenise the text: {str(exc).replace('text 0 ', 'it ')}"
        ) from None
    truncated = encoded.truncated[0] if encoded.truncated else None
    return PreparedSample(encoded.ids[:1], truncated)


def prepare_sample(package: ModelPackage, x: Any) -> np.ndarray:
    """`x` as [1, *input_shape] of the input dtype (`ModelPackage.prepare_input`: integers are
    the values they hold, floats are quantised; a str is tokenised, see `text_sample`); refuses
    a batch of more than one sample."""
    if isinstance(x, str):
        return text_sample(package, x).values
    batch = package.prepare_input(x)
    if batch.shape[0] != 1:
        raise MarketError(f"a market request takes one sample, got a batch of {batch.shape[0]}")
    return batch


def sample_from_bytes(package: ModelPackage, data: bytes) -> np.ndarray:
    """The sample [1, *input_shape] a request's input bytes encode (C order, big-endian
    elements of the package's input dtype, as `commitments.input_bytes` writes them)."""
    dtype = np.dtype(package.input_dtype)
    size = int(np.prod(package.input_shape))
    if len(data) != size * dtype.itemsize:
        raise MarketError(
            f"input of {len(data)} bytes does not fit the model's {size} {dtype.name} values"
        )
    values = np.frombuffer(data, dtype=dtype.newbyteorder(">")).astype(dtype)
    return values.reshape((1, *package.input_shape))
