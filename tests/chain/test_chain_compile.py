"""Contract compilation: cached by source hash, rebuilt when a source changes, one-line errors.

Never touches the shared cache: every test compiles into its own temporary directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from aicommons.chain.compile import CompileError, compile_contract, compile_source_file

SOURCE = """# pragma version ~=0.4.3
@external
@pure
def answer() -> uint256:
    return {value}
"""


def test_artifacts_are_cached_and_follow_the_source(tmp_path: Path) -> None:
    source = tmp_path / "Answer.vy"
    cache = tmp_path / "cache"
    source.write_text(SOURCE.format(value=41))
    first = compile_source_file(source, cache)
    assert len(list(cache.glob("Answer-*.json"))) == 1
    assert compile_source_file(source, cache) == first
    source.write_text(SOURCE.format(value=42))
    second = compile_source_file(source, cache)
    assert second.source_hash != first.source_hash and second.bytecode != first.bytecode
    # A torn cache file is rebuilt, not trusted.
    cached = next(cache.glob(f"Answer-{second.source_hash[:32]}.json"))
    cached.write_text("{")
    assert compile_source_file(source, cache) == second


def test_contracts_compile_with_snekmate_from_site_packages(tmp_path: Path) -> None:
    token = compile_contract("CommonsToken", tmp_path)
    names = {entry.get("name") for entry in token.abi}
    assert {"permit", "transfer", "DOMAIN_SEPARATOR"} <= names
    assert "mint" not in names


def test_errors_are_one_line_value_errors(tmp_path: Path) -> None:
    source = tmp_path / "Broken.vy"
    source.write_text("# pragma version ~=0.4.3\n@external\ndef f() -> uint256:\n    return -1\n")
    with pytest.raises(CompileError) as failure:
        compile_source_file(source, tmp_path / "cache")
    assert isinstance(failure.value, ValueError)
    assert "\n" not in str(failure.value) and str(failure.value).startswith("Broken.vy: ")
    with pytest.raises(CompileError, match="no contract source"):
        compile_contract("NoSuchContract", tmp_path)
