"""Protocol rules the SDK checks before it spends gas: attribution roles, verification modes,
model slugs, licences and storage locators.

Each rule mirrors ModelRegistry.vy (the source of truth); tests/sdk/test_sdk_protocol.py pins
every mirror to the contract, so the two cannot drift. Pure: no I/O, no chain access.
"""

from __future__ import annotations

import re

from aicommons.sdk.errors import ClientError

ROLES: dict[str, int] = {
    "author": 1,
    "data_provider": 2,
    "maintainer": 3,
    "compute_provider": 4,
    "storage_provider": 5,
}
"""Attribution roles by name, with the registry's numeric code (`ROLE_*` in ModelRegistry.vy)."""

MODES: dict[str, int] = {"onchain": 1, "redundant": 2, "optimistic": 4}
"""Verification modes by name, with the registry's bit (`MODE_*` in ModelRegistry.vy)."""

MAX_SHARES_BPS = 10_000
"""Attribution shares sum to at most this many basis points; the rest goes to the treasury."""

LOCATOR_PREFIX = "aicblob:"
"""Registry locator naming a blob on aicommons storage nodes (`aicblob:<blob id>`)."""

_SLUG = re.compile(r"(?!.*--)[a-z0-9][a-z0-9-]{1,62}[a-z0-9]")
_LICENCE = re.compile(r"(?! )[A-Za-z0-9.+\-() ]{1,64}(?<! )")


def is_valid_slug(name: str) -> bool:
    """3-64 of `a-z`, `0-9` and `-`, alphanumeric at both ends, no `--` (registry: InvalidSlug)."""
    return _SLUG.fullmatch(name) is not None


def check_slug(name: str) -> str:
    if not is_valid_slug(name):
        raise ClientError(
            f"invalid model name {name!r}: 3-64 of a-z, 0-9 and '-', alphanumeric at both ends, "
            "no '--'"
        )
    return name


def is_valid_licence(licence: str) -> bool:
    """An SPDX id or expression: 1-64 of letters, digits, `.-+()` and inner spaces."""
    return _LICENCE.fullmatch(licence) is not None


def check_licence(licence: str) -> str:
    if not is_valid_licence(licence):
        raise ClientError(
            f"licence {licence!r} is not an SPDX identifier or expression (e.g. MIT, "
            "Apache-2.0, 'MIT OR Apache-2.0')"
        )
    return licence


def role_code(role: str) -> int:
    try:
        return ROLES[role]
    except KeyError:
        raise ClientError(f"unknown attribution role {role!r}: one of {', '.join(ROLES)}") from None


def role_name(code: int) -> str:
    """The role's name, or its number as text for a code this SDK does not know."""
    return next((name for name, value in ROLES.items() if value == code), str(code))


def mode_bits(names: list[str] | tuple[str, ...]) -> int:
    bits = 0
    for name in names:
        if name not in MODES:
            raise ClientError(f"unknown verification mode {name!r}: one of {', '.join(MODES)}")
        bits |= MODES[name]
    if not bits:
        raise ClientError("a version needs at least one verification mode")
    return bits


def mode_names(bits: int) -> list[str]:
    return [name for name, bit in MODES.items() if bits & bit]
