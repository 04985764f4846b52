"""Untrusted JSON is measured before it is parsed: size and nesting bounds, one-line errors.

Regression for the remote crash of issue #14 item 2: py_ecc raises the recursion limit to
100,000, after which a 200 KB body of brackets overflowed the C stack of `json.loads`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import eth_account  # noqa: F401  (raises the recursion limit, as every aicommons process does)
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aicommons.commit import JsonInputError, parse_json, read_json_file
from aicommons.commit.json_input import nesting_depth
from aicommons.errors import AicommonsError

DEEP = b"[" * 100_000 + b"]" * 100_000


def test_deep_nesting_is_refused_without_crashing() -> None:
    assert sys.getrecursionlimit() >= 100_000  # the condition that made json.loads crash
    with pytest.raises(JsonInputError, match="nested more than 64 levels"):
        parse_json(DEEP, what="request body", max_bytes=1 << 20)


def test_size_bound_is_checked_first() -> None:
    with pytest.raises(JsonInputError, match="more than the limit of 10"):
        parse_json(b"[1, 2, 3, 4, 5]", what="body", max_bytes=10)


def test_brackets_inside_strings_do_not_count() -> None:
    text = b'{"a": "[[[[{{{{", "b": ["\\"[[", 1]}'
    assert parse_json(text, what="x", max_bytes=100, max_depth=2) == {
        "a": "[[[[{{{{",
        "b": ['"[[', 1],
    }


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"[NaN]", "NaN is not JSON"),
        (b"[Infinity]", "Infinity is not JSON"),
        (b"[1,", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" + b"9" * 5000 + b"]", "not valid JSON"),
    ],
)
def test_invalid_json_names_the_problem(data: bytes, reason: str) -> None:
    with pytest.raises(JsonInputError, match=reason):
        parse_json(data, what="body", max_bytes=1 << 20)


def test_errors_share_the_root() -> None:
    assert issubclass(JsonInputError, AicommonsError)
    assert issubclass(JsonInputError, ValueError)


def test_read_json_file_refuses_by_size_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"[" + b"1," * 1000 + b"1]")
    with pytest.raises(JsonInputError, match="larger than the limit of 100 bytes"):
        read_json_file(path, what="file", max_bytes=100)
    assert read_json_file(path, what="file", max_bytes=10_000)[:2] == [1, 1]


def _nested(depth: int) -> bytes:
    return b'{"k": ' * depth + b"0" + b"}" * depth


@given(st.integers(min_value=0, max_value=200))
def test_nesting_depth_counts_levels(depth: int) -> None:
    assert nesting_depth(_nested(depth)) == depth
    if depth <= 64:
        parse_json(_nested(depth), what="x", max_bytes=1 << 20)
    else:
        with pytest.raises(JsonInputError):
            parse_json(_nested(depth), what="x", max_bytes=1 << 20)


def test_aic_verify_on_a_deeply_nested_file_is_a_one_line_error(tmp_path: Path) -> None:
    aic = shutil.which("aic", path=str(Path(sys.executable).parent))
    assert aic is not None
    receipt = tmp_path / "deep.json"
    receipt.write_bytes(DEEP)
    completed = subprocess.run(
        [aic, "verify", str(receipt), "--rpc", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 1, completed.stderr
    assert "nested more than 64 levels" in completed.stderr
    assert "Traceback" not in completed.stderr
