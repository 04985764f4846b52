"""The SDK's protocol mirrors are pinned to ModelRegistry.vy, the source of truth.

Roles and modes are read from the contract source; slug and licence rules are compared with the
deployed registry on generated strings, so the SDK never refuses what the registry accepts (or
the reverse).
"""

from __future__ import annotations

import re

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aicommons.chain.compile import CONTRACTS_DIR, load_boa
from aicommons.commit import keccak256
from aicommons.sdk import protocol
from aicommons.sdk.errors import ClientError
from aicommons.sdk.tokens import parse_units
from aicommons.sdk.types import decode_struct

REGISTRY_SOURCE = (CONTRACTS_DIR / "ModelRegistry.vy").read_text()


def _constants(prefix: str) -> dict[str, int]:
    pattern = rf"^{prefix}_([A-Z_]+): constant\(uint\d+\) = (\d+)$"
    return {name.lower(): int(value) for name, value in re.findall(pattern, REGISTRY_SOURCE, re.M)}


def test_roles_match_the_registry() -> None:
    assert _constants("ROLE") == protocol.ROLES


def test_modes_match_the_registry() -> None:
    modes = _constants("MODE")
    assert {
        "onchain": modes["onchain_exact"],
        "redundant": modes["redundant"],
        "optimistic": modes["optimistic"],
    } == protocol.MODES


@pytest.fixture(scope="module")
def registry():
    with boa.env.anchor():
        yield load_boa("ModelRegistry")


SLUG_TEXT = st.text(alphabet="ab9-_A.", min_size=0, max_size=66)
LICENCE_TEXT = st.text(alphabet="aZ0.-+ ()/_,", min_size=0, max_size=66)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(slug=SLUG_TEXT)
def test_slug_rule_matches_the_registry(registry, slug: str) -> None:
    with boa.env.anchor():
        try:
            registry.register_model(slug, [])
            accepted = True
        except boa.BoaError as exc:
            assert "InvalidSlug" in str(exc) or "ModelExists" in str(exc), exc
            accepted = "ModelExists" in str(exc)
    assert protocol.is_valid_slug(slug) == accepted, slug


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(licence=LICENCE_TEXT)
def test_licence_rule_matches_the_registry(registry, licence: str) -> None:
    if len(licence.encode()) > 64:
        assert not protocol.is_valid_licence(licence)
        return
    model_id = keccak256(b"licence-test")
    with boa.env.anchor():
        registry.register_model("licence-test", [])
        try:
            registry.publish_version(
                model_id,
                keccak256(licence.encode() + b"v"),
                keccak256(b"w"),
                keccak256(b"program"),
                ["aicblob:x"],
                licence,
                [],
                1,
                0,
            )
            accepted = True
        except boa.BoaError as exc:
            assert "InvalidLicence" in str(exc), exc
            accepted = False
    assert protocol.is_valid_licence(licence) == accepted, licence


def test_an_spdx_expression_is_accepted() -> None:
    assert protocol.check_licence("MIT OR Apache-2.0") == "MIT OR Apache-2.0"
    with pytest.raises(ClientError, match="not an SPDX"):
        protocol.check_licence("MIT/Apache")


def test_parse_units_is_exact() -> None:
    assert parse_units("1.5") == 15 * 10**17
    assert parse_units("0.000000000000000001") == 1
    assert parse_units("123456789.123456789123456789") == 123456789123456789123456789
    for bad, reason in [
        ("-1", "non-negative"),
        ("abc", "not a decimal"),
        ("1e-19", "decimal places"),
        ("nan", "non-negative"),
    ]:
        with pytest.raises(ClientError, match=reason):
            parse_units(bad)


def test_structs_decode_by_field_name() -> None:
    outputs = [
        {
            "name": "",
            "type": "tuple",
            "components": [
                {"name": "model_id", "type": "bytes32"},
                {
                    "name": "attribution",
                    "type": "tuple[]",
                    "components": [
                        {"name": "account", "type": "address"},
                        {"name": "share_bps", "type": "uint16"},
                    ],
                },
            ],
        }
    ]
    decoded = decode_struct(outputs, [b"\x01" * 32, [("0xabc", 7000), ("0xdef", 10)]])
    assert decoded == {
        "model_id": b"\x01" * 32,
        "attribution": [
            {"account": "0xabc", "share_bps": 7000},
            {"account": "0xdef", "share_bps": 10},
        ],
    }
