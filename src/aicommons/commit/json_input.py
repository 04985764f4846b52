"""Parse untrusted JSON with a size and a nesting bound checked before the parser runs.

Python's C JSON parser recurses once per nesting level, and importing py_ecc (via eth_account)
raises the recursion limit to 100,000, so a 200 KB body of brackets overflows the C stack and
kills the process. Every JSON input aicommons reads (JSON-RPC bodies, node requests, receipts,
manifests, deployment and state files) goes through here. Never calls `json.loads` on bytes it
has not measured.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from aicommons.commit.errors import JsonInputError

MAX_DEPTH = 64
"""Deepest nesting accepted by default: far above any aicommons document (manifests reach 5)."""

# A string literal (skipped whole, escapes included) or one bracket. The regex engine walks the
# bytes in C, so the depth check costs one Python step per bracket, not per byte.
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset(b"[{")


def nesting_depth(data: bytes) -> int:
    """The deepest bracket nesting of `data` outside string literals (0 for a scalar)."""
    if data.count(b"[") + data.count(b"{") == 0:
        return 0
    depth = deepest = 0
    for match in _TOKEN.finditer(data):
        first = match.group()[0]
        if first in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif first != 0x22:  # a closing bracket; quotes start string literals
            depth -= 1
    return deepest


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_json(
    data: bytes | str,
    *,
    what: str,
    max_bytes: int,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """`data` as a Python value, or `JsonInputError` naming `what` and the bound it broke.

    Refuses more than `max_bytes` bytes, more than `max_depth` levels of nesting, invalid
    UTF-8, and the non-JSON constants NaN and Infinity.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise JsonInputError(f"{what} is {len(raw)} bytes, more than the limit of {max_bytes}")
    # Quick reject before the exact scan: depth can never exceed the number of openers.
    if raw.count(b"[") + raw.count(b"{") > max_depth and nesting_depth(raw) > max_depth:
        raise JsonInputError(f"{what} is nested more than {max_depth} levels deep")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonInputError(f"{what} is not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise JsonInputError(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    except ValueError as exc:  # parse_constant, or an integer with too many digits
        raise JsonInputError(f"{what} is not valid JSON: {exc}") from None


def read_json_file(
    path: str | os.PathLike[str],
    *,
    what: str,
    max_bytes: int,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Read and parse a JSON file, refusing it by size before reading it whole.

    `OSError` (missing file, no permission) propagates unchanged for the caller to word.
    """
    with Path(path).open("rb") as stream:
        raw = stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise JsonInputError(f"{what} {path} is larger than the limit of {max_bytes} bytes")
    return parse_json(raw, what=f"{what} {path}", max_bytes=max_bytes, max_depth=max_depth)
