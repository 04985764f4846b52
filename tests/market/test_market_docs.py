"""docs/market.md lists every revert reason the market contracts raise, and nothing they do not
(the reason strings are the contracts' error interface; STYLE.md "Contracts")."""

from __future__ import annotations

import re
from pathlib import Path

from aicommons.chain.compile import CONTRACTS_DIR

DOCS = Path(__file__).resolve().parents[2] / "docs" / "market.md"
SOURCES = (
    "ComputeMarket",
    "DisputeGame",
    "RedundantMode",
    "OneStepVerifier",
    "TransformerVerifier",
    "AttentionVerifier",
    "step_rows",
    "int_ops",
    "tensor_commit",
    "payouts",
)
# `assert cond, "Reason"`, `self._require(cond, "Reason")` and `raise "Reason"`, also closing a
# multi-line call.
REASON = re.compile(r'(?:,|raise)\s*"([A-Z][A-Za-z0-9]*)"\s*\)?\s*$', re.MULTILINE)


def _raised() -> set[str]:
    names: set[str] = set()
    for source in SOURCES:
        names |= set(REASON.findall((CONTRACTS_DIR / f"{source}.vy").read_text()))
    return names


def _documented() -> set[str]:
    text = DOCS.read_text()
    table = text[text.index("## Reverts") : text.index("## Python side")]
    names: set[str] = set()
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("contract", "---"):
            names |= set(re.findall(r"`([A-Z][A-Za-z0-9]*)`", cells[1]))
    return names


def test_every_market_revert_reason_is_documented_and_exists() -> None:
    raised, documented = _raised(), _documented()
    assert len(raised) > 60, "the reason pattern still finds the contracts' checks"
    assert raised - documented == set(), "raised but missing from docs/market.md"
    assert documented - raised == set(), "documented but raised by no market contract"
