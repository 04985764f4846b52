"""Where aicommons keeps per-user state: `$AIC_HOME` (default `~/.aicommons`).

Keystores, deployment files, devnet data and caches all live below it, so two users or two test
runs with different `AIC_HOME` never share state by accident. Only paths here; no I/O beyond mkdir.
"""

from __future__ import annotations

import os
from pathlib import Path


def aic_home() -> Path:
    """The state directory: `$AIC_HOME` if set, else `~/.aicommons`."""
    configured = os.environ.get("AIC_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".aicommons"


def state_dir(*parts: str) -> Path:
    """A subdirectory of `aic_home()`, created (with parents) if missing."""
    path = aic_home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
