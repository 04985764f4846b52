"""Canonical JSON: one byte string per value, so its keccak-256 can serve as an identifier.

UTF-8, keys sorted by code point, no insignificant whitespace. Floats are refused: their text form
is not unique across languages, so committed numbers are integers or decimal strings.
"""

from __future__ import annotations

import json
from typing import Any

from aicommons.commit.errors import CanonicalJsonError


def _check(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        raise CanonicalJsonError(f"float at {where} has no canonical form; use an int or a string")
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJsonError(f"non-string key {key!r} at {where}")
            _check(item, f"{where}.{key}")
        return
    raise CanonicalJsonError(f"unsupported type {type(value).__name__} at {where}")


def canonical_json(value: Any) -> bytes:
    """Encode `value` (dicts, lists, str, int, bool, None) as canonical JSON bytes."""
    _check(value, "$")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")
