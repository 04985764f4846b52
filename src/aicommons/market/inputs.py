"""One sample of a market request as the int8 tensor the request carries: integers are taken
as the int8 values they hold, floats are quantised with the package's input scale.

The single place the off-chain market turns user input into protocol input; pure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aicommons.market.errors import MarketError
from aicommons.runtime import ModelPackage


def prepare_sample(package: ModelPackage, x: Any) -> np.ndarray:
    """`x` as int8 [1, *input_shape] (`ModelPackage.prepare_input`: integers are the int8
    values they hold, floats are quantised); refuses a batch of more than one sample."""
    batch = package.prepare_input(x)
    if batch.shape[0] != 1:
        raise MarketError(f"a market request takes one sample, got a batch of {batch.shape[0]}")
    return batch


def sample_from_bytes(package: ModelPackage, data: bytes) -> np.ndarray:
    """The int8 sample [1, *input_shape] a request's input bytes encode (C order)."""
    size = int(np.prod(package.input_shape))
    if len(data) != size:
        raise MarketError(f"input of {len(data)} bytes does not fit the model's {size} values")
    return np.frombuffer(data, dtype=np.int8).reshape((1, *package.input_shape)).copy()
