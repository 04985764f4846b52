"""ModelRegistry access control, validation and events; CommonsToken supply and permit.

Only maintainers publish, only the owner manages maintainers and nobody removes the owner,
versions are keyed by model so nobody squats an author's version id, only governance sets
canonical, and every refusal carries a named reason.
"""

from __future__ import annotations

import boa
import pytest
from chain_fixtures import LOCATOR, SUPPLY, deploy_suite, slug_id
from eth_account import Account

from aicommons.chain.compile import load_boa
from aicommons.chain.executor import MAX_FEE
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
        "program_hash": keccak256(b"p" + bytes([seed])),
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


def test_only_maintainers_publish_and_only_the_owner_manages_maintainers(suite, maintainer) -> None:
    stranger = boa.env.generate_address("stranger")
    model_id = slug_id("digits-mlp")
    with boa.env.prank(maintainer):
        suite.registry.register_model("digits-mlp", [])
    assert suite.registry.model_owner(model_id) == maintainer
    with boa.reverts("NotMaintainer"):
        _publish(suite, stranger, "digits-mlp", 1)
    with boa.env.prank(stranger), boa.reverts("NotModelOwner"):
        suite.registry.add_maintainer(model_id, stranger)
    with boa.env.prank(maintainer):
        suite.registry.add_maintainer(model_id, stranger)
        assert "MaintainerAdded" in _event_names(suite.registry)
        with boa.reverts("AlreadyMaintainer"):
            suite.registry.add_maintainer(model_id, stranger)
    _publish(suite, stranger, "digits-mlp", 2)
    assert "VersionPublished" in _event_names(suite.registry)
    helper = boa.env.generate_address("helper")
    with boa.env.prank(maintainer):
        suite.registry.add_maintainer(model_id, helper)
    with boa.env.prank(stranger), boa.reverts("NotModelOwner"):
        suite.registry.remove_maintainer(model_id, helper)
    with boa.env.prank(helper):  # a maintainer may always leave
        suite.registry.remove_maintainer(model_id, helper)
        assert "MaintainerRemoved" in _event_names(suite.registry)
    with boa.env.prank(maintainer), boa.reverts("UnknownMaintainer"):
        suite.registry.remove_maintainer(model_id, helper)
    with boa.reverts("UnknownModel"):
        _publish(suite, maintainer, "no-such-model", 3)


def test_nobody_removes_the_owner(suite, maintainer) -> None:
    # Issue 14 item 8: any maintainer could remove the registrant and take the model over.
    co_maintainer = boa.env.generate_address("co-maintainer")
    model_id = slug_id("digits-mlp")
    with boa.env.prank(maintainer):
        suite.registry.register_model("digits-mlp", [co_maintainer])
    with boa.env.prank(co_maintainer), boa.reverts("NotModelOwner"):
        suite.registry.remove_maintainer(model_id, maintainer)
    with boa.env.prank(maintainer), boa.reverts("CannotRemoveOwner"):
        suite.registry.remove_maintainer(model_id, maintainer)
    with boa.env.prank(co_maintainer), boa.reverts("NotModelOwner"):
        suite.registry.transfer_model_ownership(model_id, co_maintainer)
    assert suite.registry.is_maintainer(model_id, maintainer)
    assert suite.registry.model_owner(model_id) == maintainer


def test_the_owner_hands_over_and_may_then_be_removed(suite, maintainer) -> None:
    successor = boa.env.generate_address("successor")
    model_id = slug_id("digits-mlp")
    with boa.env.prank(maintainer):
        suite.registry.register_model("digits-mlp", [])
        with boa.reverts("ZeroAddress"):
            suite.registry.transfer_model_ownership(model_id, "0x" + "00" * 20)
        suite.registry.transfer_model_ownership(model_id, successor)
    changed = [e for e in suite.registry.get_logs() if type(e).__name__ == "ModelOwnerChanged"]
    assert [(e.model_id, e.previous_owner, e.new_owner) for e in changed] == [
        (model_id, maintainer, successor)
    ]
    assert suite.registry.is_maintainer(model_id, successor)  # added on hand-over
    with boa.env.prank(maintainer), boa.reverts("NotModelOwner"):
        suite.registry.add_maintainer(model_id, boa.env.generate_address("x"))
    with boa.env.prank(successor):
        suite.registry.remove_maintainer(model_id, maintainer)
    assert not suite.registry.is_maintainer(model_id, maintainer)
    assert suite.registry.models(model_id).maintainer_count == 1


def test_nobody_squats_an_authors_version_id(suite, maintainer) -> None:
    # Issue 14 item 6: version ids were global, so whoever saw a package could publish its id
    # first under another model; the author's publish then reverted VersionExists.
    squatter = boa.env.generate_address("squatter")
    with boa.env.prank(squatter):
        suite.registry.register_model("squatted-copy", [])
    with boa.env.prank(maintainer):
        suite.registry.register_model("digits-mlp", [])
    version_id = _publish(suite, squatter, "squatted-copy", 1, fee=99)
    with boa.reverts("NotMaintainer"):  # nor can anyone publish under the author's model
        _publish(suite, squatter, "digits-mlp", 1)
    assert _publish(suite, maintainer, "digits-mlp", 1) == version_id
    author_key = (slug_id("digits-mlp"), version_id)
    copy_key = (slug_id("squatted-copy"), version_id)
    assert suite.registry.inference_terms(*author_key) == (True, False, 10)
    assert suite.registry.inference_terms(*copy_key) == (True, False, 99)
    assert suite.registry.publisher(*author_key) == maintainer
    assert suite.registry.attribution(*author_key)[0][0] == maintainer
    with boa.reverts("VersionExists"):
        _publish(suite, maintainer, "digits-mlp", 1)


def test_versions_are_validated(suite, maintainer) -> None:
    with boa.env.prank(maintainer):
        suite.registry.register_model("digits-mlp", [])
    other = boa.env.generate_address("data")
    bad_cases = {
        "InvalidProgramHash": {"program_hash": b"\x00" * 32},  # on-chain mode needs a program
        "SharesExceedTotal": {"attribution": [(maintainer, AUTHOR, 7000), (other, 2, 3001)]},
        "InvalidRole": {"attribution": [(maintainer, 9, 100)]},
        "InvalidAttribution": {"attribution": [("0x" + "00" * 20, AUTHOR, 100)]},
        "InvalidLicence": {"licence": "MIT;rm"},
        "InvalidLocator": {"locators": []},
        "InvalidModes": {"modes": 8},
        "InvalidVersionId": {"version_id": b"\x00" * 32},
        "InvalidWeightsRoot": {"weights_root": b"\x00" * 32},
        "InvalidFee": {"fee": MAX_FEE + 1},
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
    with boa.reverts("InvalidProgramHash"):  # no program without the on-chain mode
        _publish(suite, maintainer, "digits-mlp", 2, modes=4)
    off_chain = _publish(suite, maintainer, "digits-mlp", 2, modes=6, program_hash=b"\x00" * 32)
    published = [e for e in suite.registry.get_logs() if type(e).__name__ == "VersionPublished"]
    assert [(e.model_id, e.version_id, e.publisher, e.program_hash) for e in published] == [
        (slug_id("digits-mlp"), off_chain, maintainer, b"\x00" * 32)
    ]
    with boa.reverts("VersionExists"):
        _publish(suite, maintainer, "digits-mlp", 1)
    key = (slug_id("digits-mlp"), version_id)
    record = suite.registry.versions(*key)
    assert (record.fee, record.modes, record.publisher) == (10, 5, maintainer)
    assert record.program_hash == suite.registry.program_hash(*key) == keccak256(b"p\x01")
    assert suite.registry.program_hash(slug_id("digits-mlp"), off_chain) == b"\x00" * 32
    assert suite.registry.inference_terms(*key) == (True, False, 10)
    assert len(suite.registry.attribution(*key)) == 2


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
        with boa.reverts("UnknownVersion"):  # a version of another model is not this model's
            suite.registry.set_canonical(model_id, cnn)
        suite.registry.set_canonical(model_id, first)
        assert "CanonicalSet" in _event_names(suite.registry)
    assert suite.registry.canonical(model_id) == first
    with boa.env.prank(maintainer):
        with boa.reverts("VersionIsCanonical"):
            suite.registry.deprecate_version(model_id, first)
        with boa.reverts("UnknownVersion"):
            suite.registry.deprecate_version(model_id, cnn)
        suite.registry.deprecate_version(model_id, second)
        assert "VersionDeprecated" in _event_names(suite.registry)
        with boa.reverts("VersionDeprecated"):
            suite.registry.deprecate_version(model_id, second)
    with boa.env.prank(boa.env.generate_address("stranger")), boa.reverts("NotMaintainer"):
        suite.registry.deprecate_version(slug_id("digits-cnn"), cnn)
    with boa.env.prank(suite.governance), boa.reverts("VersionDeprecated"):
        suite.registry.set_canonical(model_id, second)
    assert suite.registry.inference_terms(model_id, second) == (True, True, 10)


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


def test_zero_accounts_are_refused_by_one_name() -> None:
    zero = "0x" + "00" * 20
    account = boa.env.generate_address("someone")
    with boa.env.anchor():
        with pytest.raises(Exception, match="ZeroAddress"):
            load_boa("CommonsToken", zero, SUPPLY)
        token = load_boa("CommonsToken", account, SUPPLY)
        registry = load_boa("ModelRegistry")
        for arguments in [
            (zero, token.address, account, 0),
            (registry.address, zero, account, 0),
            (registry.address, token.address, zero, 0),
        ]:
            with pytest.raises(Exception, match="ZeroAddress"):
                load_boa("OnchainExecutor", *arguments)
        with pytest.raises(Exception, match="InvalidProtocolShare"):
            load_boa("OnchainExecutor", registry.address, token.address, account, 10_001)
