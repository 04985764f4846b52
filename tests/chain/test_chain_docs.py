"""docs/contracts.md lists every revert reason the contracts raise, and nothing they do not.

Vyper 0.4 has no custom errors, so the reason strings are the contracts' error interface; the
table in the docs is the one place users read them (STYLE.md, "Contracts").
"""

from __future__ import annotations

import re
from pathlib import Path

from aicommons.chain.compile import CONTRACTS_DIR

DOCS = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"
SOURCES = (
    "ModelRegistry",
    "OnchainExecutor",
    "StorageRegistry",
    "CommonsToken",
    "payouts",
    "fee_split",
    "merkle",
)
# `..., "Reason"` closing an assert (one line or the last line of a multi-line one).
REASON = re.compile(r',\s*"([A-Z][A-Za-z0-9]*)"\s*$', re.MULTILINE)


def _raised() -> set[str]:
    names: set[str] = set()
    for source in SOURCES:
        names |= set(REASON.findall((CONTRACTS_DIR / f"{source}.vy").read_text()))
    return names


def _documented() -> set[str]:
    text = DOCS.read_text()
    table = text[text.index("## Reverts") : text.index("## CommonsToken")]
    names: set[str] = set()
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("contract", "---"):
            names |= set(re.findall(r"`([A-Z][A-Za-z0-9]*)`", cells[1]))
    return names


def test_every_revert_reason_is_documented_and_every_documented_one_exists() -> None:
    raised, documented = _raised(), _documented()
    assert len(raised) > 40, "the reason pattern still finds the contracts' asserts"
    assert raised - documented == set(), "raised but missing from docs/contracts.md"
    assert documented - raised == set(), "documented but raised by no contract"
