"""Proposals as data: the Governor's states, vote choices, the actions a proposal carries
(parsed from `TARGET:FUNCTION:ARGS` and ABI-encoded), and times such as `+2d`.

Pure: given ABIs and addresses it encodes calls, it never talks to a chain. The state names
mirror `flag ProposalState` in governor_core.vy (pinned by a test).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aicommons.commit import keccak256
from aicommons.governance.errors import GovernanceError

STATES = ("pending", "active", "canceled", "defeated", "succeeded", "queued", "expired", "executed")
"""governor_core.vy `flag ProposalState`, in declaration order: state i is the bit 1 << i."""

SUPPORT = {"against": 0, "for": 1, "abstain": 2}
"""Vote choices as governor_counting.vy counts them."""


class ProposalError(GovernanceError, ValueError):
    """A proposal, vote or time the caller wrote that cannot be understood."""


def state_name(bits: int) -> str:
    """The name of a ProposalState value (exactly one bit set)."""
    if bits <= 0 or bits & (bits - 1) or bits.bit_length() > len(STATES):
        raise ProposalError(f"{bits} is not a proposal state")
    return STATES[bits.bit_length() - 1]


def support_code(choice: str) -> int:
    try:
        return SUPPORT[choice.strip().lower()]
    except KeyError:
        raise ProposalError(f"vote {choice!r}: choose for, against or abstain") from None


_DURATION = re.compile(r"\+(\d+)([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}


def parse_time(text: str, *, now: int) -> int:
    """A unix timestamp ("1767225600") or a duration from `now` ("+90s", "+15m", "+2d")."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ProposalError(
            f"time {text!r}: give a unix timestamp or +N followed by s, m, h, d or w (e.g. +2d)"
        )
    return now + int(match.group(1)) * _UNITS[match.group(2)]


def parse_duration(text: str) -> int:
    """Seconds, written "90", "90s", "15m", "2h", "2d" or "1w"."""
    value = text.strip().removeprefix("+")
    try:
        return parse_time("+" + value, now=0)
    except ProposalError:
        raise ProposalError(
            f"duration {text!r}: give seconds, or N followed by s, m, h, d or w"
        ) from None


@dataclass(frozen=True)
class Action:
    """One call the timelock will make: target address, ether sent, ABI-encoded calldata, and
    what it is, readably (`ModelRegistry.set_canonical(0x..., 0x...)`)."""

    target: str
    value: int
    calldata: bytes
    summary: str


def _abi_type(argument: Mapping[str, Any]) -> str:
    """The canonical ABI type of an input: a struct is `(type,type,...)`, as in selectors."""
    kind = str(argument["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in argument["components"])
        return f"({inner}){kind.removeprefix('tuple')}"
    return kind


def split_arguments(text: str) -> list[str]:
    """Comma-separated arguments, where a parenthesised struct counts as one:
    `1,(2,3),0xab` -> ["1", "(2,3)", "0xab"]; empty text -> []."""
    if not text.strip():
        return []
    items, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ProposalError(f"arguments {text!r}: a ')' without its '('")
        elif char == "," and depth == 0:
            items.append(text[start:index].strip())
            start = index + 1
    if depth:
        raise ProposalError(f"arguments {text!r}: a '(' without its ')'")
    items.append(text[start:].strip())
    return items


def _parse_value(argument: Mapping[str, Any], text: str) -> Any:
    """An argument as its ABI input describes it; a struct is written `(field,field,...)` in
    declaration order."""
    kind = str(argument["type"])
    if kind != "tuple":
        return _parse_argument(_abi_type(argument), text)
    components = argument["components"]
    if not (text.startswith("(") and text.endswith(")")):
        names = ",".join(str(c.get("name", "?")) for c in components)
        raise ProposalError(f"{text!r}: write the struct as ({names})")
    fields = split_arguments(text[1:-1])
    if len(fields) != len(components):
        raise ProposalError(
            f"{text!r}: the struct has {len(components)} fields, {len(fields)} given"
        )
    return tuple(
        _parse_value(component, field) for component, field in zip(components, fields, strict=True)
    )


def _parse_argument(kind: str, text: str) -> Any:
    if kind.endswith("]"):
        raise ProposalError(f"array argument {kind} cannot be written as TARGET:FUNCTION:ARGS")
    if kind == "address":
        from web3 import Web3

        if not Web3.is_address(text):
            raise ProposalError(f"{text!r} is not an address")
        return Web3.to_checksum_address(text)
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise ProposalError(f"{text!r} is not true or false")
        return text.lower() == "true"
    if kind.startswith(("uint", "int")):
        try:
            return int(text, 0)
        except ValueError:
            raise ProposalError(f"{text!r} is not an integer for {kind}") from None
    if kind.startswith("bytes"):
        try:
            raw = bytes.fromhex(text.removeprefix("0x"))
        except ValueError:
            raise ProposalError(f"{text!r} is not hex bytes for {kind}") from None
        size = kind.removeprefix("bytes")
        if size and len(raw) != int(size):
            raise ProposalError(f"{text!r} is {len(raw)} bytes, {kind} takes {size}")
        return raw
    if kind == "string":
        return text
    raise ProposalError(f"argument type {kind} is not supported")


def encode_call(
    abi: Sequence[Mapping[str, Any]], function: str, arguments: Sequence[str]
) -> tuple[bytes, str]:
    """Calldata for `function(arguments...)` of a contract with `abi`, arguments given as text.

    Returns (calldata, readable summary). Refuses unknown functions, wrong argument counts and
    values that do not parse as their ABI type."""
    from eth_abi import encode

    candidates = [
        entry
        for entry in abi
        if entry.get("type") == "function"
        and entry["name"] == function
        and len(entry["inputs"]) == len(arguments)
    ]
    if not candidates:
        known = sorted({e["name"] for e in abi if e.get("type") == "function"})
        if function in known:
            raise ProposalError(f"{function} does not take {len(arguments)} arguments")
        raise ProposalError(f"no function {function!r}; known: {', '.join(known)}")
    entry = candidates[0]
    kinds = [_abi_type(argument) for argument in entry["inputs"]]
    values = [
        _parse_value(argument, text)
        for argument, text in zip(entry["inputs"], arguments, strict=True)
    ]
    selector = keccak256(f"{function}({','.join(kinds)})".encode())[:4]
    return selector + encode(kinds, values), f"{function}({', '.join(arguments)})"


def parse_call(
    spec: str, *, contracts: Mapping[str, str], abis: Mapping[str, Sequence[Mapping[str, Any]]]
) -> Action:
    """`TARGET:FUNCTION:ARGS` → an Action. TARGET names a contract of the deployment (its ABI
    is known); ARGS are comma-separated (none: `TARGET:FUNCTION:`), a struct in parentheses
    (`ComputeMarket:set_params:(600,300,...)`)."""
    parts = spec.split(":", 2)
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise ProposalError(f"--call {spec!r}: write TARGET:FUNCTION:ARGS (ARGS comma-separated)")
    target, function, rest = parts
    if target not in contracts:
        raise ProposalError(f"unknown target {target!r}; one of {', '.join(sorted(contracts))}")
    arguments = split_arguments(rest)
    calldata, summary = encode_call(abis[target], function, arguments)
    return Action(contracts[target], 0, calldata, f"{target}.{summary}")


def description_hash(description: str) -> bytes:
    return keccak256(description.encode())
