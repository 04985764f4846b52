"""aicommons: AI models as on-chain public goods.

Content-addressed weights, bit-exact integer inference and verifiable predictions. This module
only exposes the package version; the layers live in their own subpackages.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aicommons")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
