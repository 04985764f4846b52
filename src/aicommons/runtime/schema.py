"""A small declarative schema for JSON documents (package manifests), checked field by field.

A schema is a tree of a few frozen node types (`Int`, `Choice`, `Text`, `Decimal`, `ListOf`,
`Obj`, `Tagged`, `Canonical`); `Node.check(value, path)` raises `ManifestError` at the first
field that breaks its rule, with one line naming the field, e.g.
`manifest.layers[2].attrs.lo must be an integer, got true`. Bools are never integers, numbers
are never strings, nothing is coerced. Never parses JSON itself (see `commit.parse_json`).
"""

from __future__ import annotations

import decimal
import json
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aicommons.commit import CanonicalJsonError, canonical_json
from aicommons.runtime.errors import ManifestError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def shown(value: Any) -> str:
    """A value as the JSON the user wrote, cut to one short line."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def child(path: str, key: str | int) -> str:
    """`path.key`, `path["odd key"]` or `path[3]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def fail(path: str, wanted: str, value: Any) -> ManifestError:
    return ManifestError(f"{path} must be {wanted}, got {shown(value)}")


class Node:
    """One rule of a schema."""

    def check(self, value: Any, path: str) -> None:
        raise NotImplementedError


def is_integer(value: Any) -> bool:
    """A JSON integer (or a numpy integer from code); bools are not integers."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class Int(Node):
    """An integer in [lo, hi]."""

    lo: int
    hi: int

    def check(self, value: Any, path: str) -> None:
        if not is_integer(value):
            raise fail(path, "an integer", value)
        if not self.lo <= value <= self.hi:
            raise fail(path, f"an integer in [{self.lo}, {self.hi}]", value)


@dataclass(frozen=True)
class Choice(Node):
    """One of a few exact JSON values (compared with their type: 1 is not true)."""

    options: tuple[Any, ...]

    def check(self, value: Any, path: str) -> None:
        if not any(type(value) is type(o) and value == o for o in self.options):
            names = ", ".join(shown(o) for o in self.options)
            raise fail(path, names if len(self.options) == 1 else f"one of {names}", value)


@dataclass(frozen=True)
class Text(Node):
    """A non-empty string of at most `max_length` characters, matching `pattern` if given."""

    max_length: int = 256
    pattern: str | None = None
    wanted: str = "a non-empty string"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, str) or not value:
            raise fail(path, self.wanted, value)
        if len(value) > self.max_length:
            raise fail(path, f"{self.wanted} of at most {self.max_length} characters", value)
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise fail(path, self.wanted, value)


@dataclass(frozen=True)
class Decimal(Node):
    """A positive finite number written as a decimal string ("0.0078", "1e-05"), whose float
    value is a positive normal float (so dividing by it is finite)."""

    def check(self, value: Any, path: str) -> None:
        wanted = 'a positive decimal string such as "0.0078"'
        if not isinstance(value, str) or len(value) > 64 or not _DECIMAL.fullmatch(value):
            raise fail(path, wanted, value)
        try:
            number = float(decimal.Decimal(value))
        except (decimal.InvalidOperation, OverflowError):
            raise fail(path, wanted, value) from None
        if not (math.isfinite(number) and number >= 2.0**-1022):
            raise fail(path, "a positive finite decimal string (as a float, normal)", value)


@dataclass(frozen=True)
class ListOf(Node):
    """A list of `min_length` to `max_length` items, each checked by `item`."""

    item: Node
    min_length: int = 0
    max_length: int = 1 << 20

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, list | tuple):
            raise fail(path, self._wanted(), value)
        if not self.min_length <= len(value) <= self.max_length:
            raise fail(path, self._wanted(), value)
        for index, item in enumerate(value):
            self.item.check(item, child(path, index))

    def _wanted(self) -> str:
        if self.min_length == self.max_length:
            return f"a list of {self.min_length} items"
        return f"a list of {self.min_length} to {self.max_length} items"


@dataclass(frozen=True)
class Obj(Node):
    """An object with exactly `fields` (each required); other keys are refused unless `rest`
    gives the rule for their values."""

    fields: Mapping[str, Node] = field(default_factory=dict)
    rest: Node | None = None

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise fail(path, "an object", value)
        for key, rule in self.fields.items():
            if key not in value:
                raise ManifestError(f"{child(path, key)} is missing")
            rule.check(value[key], child(path, key))
        for key in value:
            if key in self.fields:
                continue
            if not isinstance(key, str):
                raise ManifestError(f"{path} has a non-string key {shown(key)}")
            if self.rest is None:
                known = ", ".join(self.fields) or "none"
                raise ManifestError(f"{child(path, key)} is not a known field (known: {known})")
            self.rest.check(value[key], child(path, key))


@dataclass(frozen=True)
class Tagged(Node):
    """An object whose `tag` field (a string) selects the rule for the whole object."""

    tag: str
    variants: Mapping[str, Node]

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise fail(path, "an object", value)
        if self.tag not in value:
            raise ManifestError(f"{child(path, self.tag)} is missing")
        Choice(tuple(self.variants)).check(value[self.tag], child(path, self.tag))
        self.variants[value[self.tag]].check(value, path)


@dataclass(frozen=True)
class Canonical(Node):
    """Any value canonical JSON can encode (no floats): free-form metadata."""

    def check(self, value: Any, path: str) -> None:
        try:
            canonical_json(value)
        except CanonicalJsonError:
            wanted = "canonical JSON (integers, strings, lists, objects; no floats)"
            raise fail(path, wanted, value) from None
