"""One sample of a market request as the tensor the request carries (the package's input dtype:
int8, or int16 / int32 token ids): integers are taken as the values they hold, floats are
quantised with the package's input scale.

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
