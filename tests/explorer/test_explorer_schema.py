"""The events and arguments the explorer's pages read exist, by those names, in the compiled
contracts (and the dispute reasons and vote choices match the contracts' constants): a rename in
a contract fails here instead of leaving a page silently empty."""

from __future__ import annotations

import re

import pytest

from aicommons.chain.compile import CONTRACTS_DIR, compile_contract
from aicommons.explorer.schema import DISPUTE_REASONS, PAGE_EVENTS, SUPPORT_NAMES, page_event
from aicommons.explorer.store import ACCOUNT_ARGUMENTS, ID_ALIASES, ID_COLUMNS, id_columns


@pytest.mark.parametrize("contract", sorted(PAGE_EVENTS))
def test_every_page_event_and_argument_is_in_the_abi(contract: str) -> None:
    abi_events = {
        entry["name"]: [str(part["name"]) for part in entry["inputs"]]
        for entry in compile_contract(contract).abi
        if entry["type"] == "event"
    }
    for event, arguments in PAGE_EVENTS[contract].items():
        assert event in abi_events, f"{contract} has no event {event} (has {sorted(abi_events)})"
        missing = [name for name in arguments if name not in abi_events[event]]
        assert not missing, f"{contract}.{event} has no argument {missing}: {abi_events[event]}"


def test_every_id_argument_read_fills_its_column() -> None:
    """Each id argument a page filters by is spelled as its column or one of its aliases."""
    spellings = {name for column in ID_COLUMNS for name in (column, *ID_ALIASES.get(column, ()))}
    ids = {"request_id", "dispute_id", "proposalId", "round_id", "model_id", "version_id"}
    read = {name for events in PAGE_EVENTS.values() for args in events.values() for name in args}
    assert ids <= read and ids <= spellings
    assert id_columns({"proposalId": 12})["proposal_id"] == "12"


def test_every_column_source_is_an_argument_some_contract_logs() -> None:
    """The id and account columns are filled from argument names: each must be logged by a
    contract of the suite (a name no event has is a column that never fills)."""
    logged = {
        str(part["name"])
        for path in sorted(CONTRACTS_DIR.glob("[A-Z]*.vy"))
        for entry in compile_contract(path.stem).abi
        if entry["type"] == "event"
        for part in entry["inputs"]
    }
    for column in ID_COLUMNS:
        assert {column, *ID_ALIASES.get(column, ())} & logged, column
    assert [name for name in ACCOUNT_ARGUMENTS if name not in logged] == []


def _constants(source: str, prefix: str) -> dict[int, str]:
    pattern = re.compile(rf"^{prefix}(\w+): constant\(uint256\) = (\d+)", re.M)
    return {int(value): name for name, value in pattern.findall(source)}


def test_dispute_reasons_and_vote_choices_mirror_the_contracts() -> None:
    game = (CONTRACTS_DIR / "DisputeGame.vy").read_text()
    reasons = _constants(game, "REASON_")
    assert {code: name.lower().replace("_", " ") for code, name in reasons.items()} == {
        code: name.replace("-", " ") for code, name in DISPUTE_REASONS.items()
    }
    counting = (CONTRACTS_DIR / "governor_counting.vy").read_text()
    choices = re.findall(r"^VOTE_(\w+): constant\(uint8\) = (\d+)", counting, re.M)
    assert {int(code): name.lower() for name, code in choices} == SUPPORT_NAMES


def test_page_event_refuses_an_undeclared_event() -> None:
    assert page_event("DisputeGame", "Challenged") == "Challenged"
    with pytest.raises(KeyError, match="PAGE_EVENTS"):
        page_event("DisputeGame", "Challenge")
