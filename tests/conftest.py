"""Session-wide test settings: one compiled-contract cache for every test's private AIC_HOME.

Compiled artifacts are keyed by source hash, so sharing them cannot leak state between tests;
it only spares each test (and each `aic` subprocess it starts) a recompile.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _shared_compile_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    previous = os.environ.get("AIC_CACHE")
    os.environ["AIC_CACHE"] = str(tmp_path_factory.mktemp("aic-cache"))
    yield
    if previous is None:
        os.environ.pop("AIC_CACHE", None)
    else:
        os.environ["AIC_CACHE"] = previous
