"""aicommons: AI models as on-chain public goods.

Content-addressed weights, bit-exact integer inference and verifiable predictions. The layers live
in their own subpackages; `aicommons.Client` (the SDK) is imported lazily so `aic --version` and
the pure layers stay light.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("aicommons")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["Client", "__version__", "connect"]


def __getattr__(name: str) -> Any:
    if name in ("Client", "connect"):
        from aicommons.sdk import client

        return getattr(client, name)
    raise AttributeError(f"module 'aicommons' has no attribute {name!r}")
