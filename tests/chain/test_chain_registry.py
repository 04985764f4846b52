"""ModelRegistry access control, validation and events; CommonsToken supply and permit.

Only maintainers publish, only governance sets canonical, every refusal carries a named reason.
"""

from __future__ import annotations

import boa
import pytest
from chain_fixtures import LOCATOR, SUPPLY, deploy_suite, slug_id
from eth_account import Account

from aicommons.commit import keccak256

AUTHOR, DATA_PROVIDER = 1, 2


@pytest.fixture
def suite():
    with boa.env.anchor():
        yield deploy_suite()


@pytest.fixture
def maintainer() -> str:
    return boa.env.generate_address("registry-maintainer")


def _publish(suite, maintainer: str, slug: str, seed: int, **overrides):
    args = {
        "model_id": slug_id(slug),
        "version_id": keccak256(b"v" + bytes([seed])),
        "weights_root": keccak256(b"w" + bytes([seed])),
        "locators": [LOCATOR],
        "licence": "Apache-2.0",
        "attribution": [(maintainer, AUTHOR, 7000)],
        "modes": 1,
        "fee": 10,
    }
    args.update(overrides)
    with boa.env.prank(maintainer):
        suite.registry.publish_version(*args.values())
    return args["version_id"]


def _event_names(contract) -> list[str]:
    return [type(entry).__name__ for entry in contract.get_logs()]


def test_slugs_are_validated_and_unique(suite, maintainer) -> None:
    with boa.env.prank(maintainer):
        for bad in ["ab", "Digits", "-digits", "digits-", "dig--its", "dig its", "dígits"]:
            with boa.reverts("InvalidSlug"):
                suite.registry.register_model(bad, [])
        suite.registry.register_model("digits-mlp", [])
        assert "ModelRegistered" in _event_names(suite.registry)
        with boa.reverts("ModelExists"):
            suite.registry.register_model("digits-mlp", [])
    assert suite.registry.is_maintainer(slug_id("digits-mlp"), maintainer)


def test_only_maintainers_publish_and_manage_maintainers(suite, maintainer) -> None:
    stranger = boa.env.generate_address("stranger")
    with boa.env.prank(maintainer):
        suite.registry.register_model("digits-mlp", [])
    with boa.reverts("NotMaintainer"):
        _publish(suite, stranger, "digits-mlp", 1)
    with boa.env.prank(stranger), boa.reverts("NotMaintainer"):
        suite.registry.add_maintainer(slug_id("digits-mlp"), stranger)
    with boa.env.prank(maintainer):
        suite.registry.add_maintainer(slug_id("digits-mlp"), stranger)
        assert "MaintainerAdded" in _event_names(suite.registry)
        with boa.reverts("AlreadyMaintainer"):
            suite.registry.add_maintainer(slug_id("digits-mlp"), stranger)
    _publish(suite, stranger, "digits-mlp", 2)
    assert "VersionPublished" in _event_names(suite.registry)
    with boa.env.prank(stranger):
        suite.registry.remove_maintainer(slug_id("digits-mlp"), maintainer)
        assert "MaintainerRemoved" in _event_names(suite.registry)
        with boa.reverts("LastMaintainer"):
            suite.registry.remove_maintainer(slug_id("digits-mlp"), stranger)
    with boa.reverts("UnknownModel"):
        _publish(suite, maintainer, "no-such-model", 3)


def test_versions_are_validated(suite, maintainer) -> None:
    with boa.env.prank(maintainer):
        suite.registry.register_model("digits-mlp", [])
    other = boa.env.generate_address("data")
    bad_cases = {
        "SharesExceedTotal": {"attribution": [(maintainer, AUTHOR, 7000), (other, 2, 3001)]},
        "InvalidRole": {"attribution": [(maintainer, 9, 100)]},
        "InvalidAttribution": {"attribution": [("0x" + "00" * 20, AUTHOR, 100)]},
        "InvalidLicence": {"licence": "MIT;rm"},
        "InvalidLocator": {"locators": []},
        "InvalidModes": {"modes": 8},
        "InvalidVersionId": {"version_id": b"\x00" * 32},
        "InvalidWeightsRoot": {"weights_root": b"\x00" * 32},
    }
    for reason, override in bad_cases.items():
        with boa.reverts(reason):
            _publish(suite, maintainer, "digits-mlp", 1, **override)
    version_id = _publish(
        suite,
        maintainer,
        "digits-mlp",
        1,
        attribution=[(maintainer, AUTHOR, 7000), (other, DATA_PROVIDER, 3000)],
        licence="MIT OR Apache-2.0",
        modes=5,
    )
    with boa.reverts("VersionExists"):
        _publish(suite, maintainer, "digits-mlp", 1)
    record = suite.registry.versions(version_id)
    assert record[0] == slug_id("digits-mlp") and record[2] == 10 and record[3] == 5
    assert suite.registry.inference_terms(version_id) == (True, False, 10)
    assert len(suite.registry.attribution(version_id)) == 2


def test_only_governance_sets_canonical_and_deprecation_rules(suite, maintainer) -> None:
    with boa.env.prank(maintainer):
        suite.registry.register_model("digits-mlp", [])
        suite.registry.register_model("digits-cnn", [])
    first = _publish(suite, maintainer, "digits-mlp", 1)
    second = _publish(suite, maintainer, "digits-mlp", 2)
    cnn = _publish(suite, maintainer, "digits-cnn", 3)
    model_id = slug_id("digits-mlp")
    with boa.env.prank(maintainer), boa.reverts("NotGovernance"):
        suite.registry.set_canonical(model_id, first)
    with boa.env.prank(suite.governance):
        with boa.reverts("WrongModel"):
            suite.registry.set_canonical(model_id, cnn)
        suite.registry.set_canonical(model_id, first)
        assert "CanonicalSet" in _event_names(suite.registry)
    assert suite.registry.canonical(model_id) == first
    with boa.env.prank(maintainer):
        with boa.reverts("VersionIsCanonical"):
            suite.registry.deprecate_version(first)
        suite.registry.deprecate_version(second)
        assert "VersionDeprecated" in _event_names(suite.registry)
        with boa.reverts("VersionDeprecated"):
            suite.registry.deprecate_version(second)
    with boa.env.prank(suite.governance), boa.reverts("VersionDeprecated"):
        suite.registry.set_canonical(model_id, second)
    assert suite.registry.inference_terms(second) == (True, True, 10)


def test_governance_can_be_handed_over(suite) -> None:
    timelock = boa.env.generate_address("timelock")
    with boa.env.prank(timelock), boa.reverts("NotGovernance"):
        suite.registry.transfer_governance(timelock)
    with boa.env.prank(suite.governance):
        suite.registry.transfer_governance(timelock)
    assert suite.registry.governance() == timelock


def test_token_supply_is_fixed_at_the_treasury_and_permit_works(suite) -> None:
    token = suite.token
    assert token.totalSupply() == SUPPLY == token.balanceOf(suite.treasury)
    assert (token.name(), token.symbol(), token.decimals()) == ("aicommons", "AIC", 18)
    assert not hasattr(token, "mint") and not hasattr(token, "set_minter")
    owner = Account.create()
    spender = boa.env.generate_address("spender")
    with boa.env.prank(suite.treasury):
        token.transfer(owner.address, 1000)
    deadline = 2**40
    signed = Account.sign_typed_data(
        owner.key,
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Permit": [
                    {"name": "owner", "type": "address"},
                    {"name": "spender", "type": "address"},
                    {"name": "value", "type": "uint256"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ],
            },
            "primaryType": "Permit",
            "domain": {
                "name": "aicommons CommonsToken",
                "version": "1",
                "chainId": boa.env.evm.patch.chain_id,
                "verifyingContract": token.address,
            },
            "message": {
                "owner": owner.address,
                "spender": str(spender),
                "value": 600,
                "nonce": 0,
                "deadline": deadline,
            },
        },
    )
    r, s = signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")
    token.permit(owner.address, spender, 600, deadline, signed.v, r, s)
    assert token.allowance(owner.address, spender) == 600
    with boa.env.prank(spender):
        token.transferFrom(owner.address, spender, 600)
    assert token.balanceOf(spender) == 600
