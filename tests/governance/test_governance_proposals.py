"""Proposals as data: the state names mirror the contract's flag, actions encode exactly as
the contract's ABI does, times and votes parse or are refused by name."""

from __future__ import annotations

import re

import boa
import pytest

from aicommons.chain.compile import CONTRACTS_DIR, compile_contract, load_boa
from aicommons.commit import keccak256
from aicommons.governance.proposals import (
    STATES,
    ProposalError,
    encode_call,
    parse_call,
    parse_time,
    split_arguments,
    state_name,
    support_code,
)


def test_state_names_mirror_the_contract_flag():
    source = (CONTRACTS_DIR / "governor_core.vy").read_text()
    block = re.search(r"flag ProposalState:\n((?:    \w+\n)+)", source)
    assert block is not None
    assert tuple(name.strip().lower() for name in block.group(1).split()) == STATES
    assert [state_name(1 << i) for i in range(len(STATES))] == list(STATES)
    for bad in (0, 3, 1 << len(STATES)):
        with pytest.raises(ProposalError):
            state_name(bad)


def test_support_codes_mirror_the_counting_module():
    source = (CONTRACTS_DIR / "governor_counting.vy").read_text()
    for name in ("against", "for", "abstain"):
        value = re.search(rf"VOTE_{name.upper()}: constant\(uint8\) = (\d)", source)
        assert value is not None and int(value.group(1)) == support_code(name)
    with pytest.raises(ProposalError, match="for, against or abstain"):
        support_code("yes")


def test_times():
    assert parse_time("1767225600", now=5) == 1767225600
    assert parse_time("+90s", now=1_000) == 1_090
    assert parse_time("+90", now=1_000) == 1_090
    assert parse_time("+15m", now=0) == 900
    assert parse_time("+2d", now=10) == 10 + 2 * 86_400
    for bad in ("soon", "+2y", "-5s", "1.5"):
        with pytest.raises(ProposalError, match="unix timestamp"):
            parse_time(bad, now=0)


def test_encoded_calls_match_the_contract_abi():
    abi = compile_contract("ModelRegistry").abi
    model, version = "0x" + "11" * 32, "0x" + "22" * 32
    calldata, summary = encode_call(abi, "set_canonical", [model, version])
    registry = load_boa("ModelRegistry", sender=boa.env.generate_address("deployer"))
    assert calldata == registry.set_canonical.prepare_calldata(
        bytes.fromhex("11" * 32), bytes.fromhex("22" * 32)
    )
    assert summary.startswith("set_canonical(")


def test_struct_arguments_encode_as_the_contract_abi():
    """ComputeMarket.set_params takes a Params struct: written as a parenthesised tuple, in
    declaration order, it encodes exactly as the contract's own calldata."""
    from aicommons.chain.deploy import MarketParams

    abi = compile_contract("ComputeMarket").abi
    params = MarketParams(window=600)
    text = "(" + ",".join(str(v) for v in params.as_abi()) + ")"
    calldata, _ = encode_call(abi, "set_params", [text])
    selector = [e for e in abi if e.get("name") == "set_params"]
    assert len(selector) == 1
    from eth_abi import encode

    kinds = "(" + ",".join("uint256" for _ in params.as_abi()) + ")"
    expected = keccak256(f"set_params({kinds})".encode())[:4] + encode([kinds], [params.as_abi()])
    assert calldata == expected
    assert split_arguments("1,(2,(3,4)),0xab") == ["1", "(2,(3,4))", "0xab"]
    contracts = {"ComputeMarket": "0x" + "ab" * 20}
    for spec, message in (
        ("ComputeMarket:set_params:(1,2", "without its"),
        ("ComputeMarket:set_params:1,2)", "without its"),
        ("ComputeMarket:set_params:(1,2)", "13 fields, 2 given"),
        ("ComputeMarket:set_params:600", "write the struct as \\(window,"),
    ):
        with pytest.raises(ProposalError, match=message):
            parse_call(spec, contracts=contracts, abis={"ComputeMarket": abi})


def test_bad_calls_are_refused_by_name():
    contracts = {"ModelRegistry": "0x" + "ab" * 20}
    abis = {"ModelRegistry": compile_contract("ModelRegistry").abi}
    for spec, message in (
        ("ModelRegistry", "TARGET:FUNCTION:ARGS"),
        ("Nowhere:set_canonical:1,2", "unknown target"),
        ("ModelRegistry:no_such:1", "no function"),
        ("ModelRegistry:set_canonical:0x11", "does not take 1 arguments"),
        ("ModelRegistry:set_canonical:0x11,0x22", "is 1 bytes, bytes32 takes 32"),
        ("ModelRegistry:transfer_governance:nobody", "is not an address"),
    ):
        with pytest.raises(ProposalError, match=message):
            parse_call(spec, contracts=contracts, abis=abis)
    action = parse_call(
        "ModelRegistry:transfer_governance:" + "0x" + "cd" * 20, contracts=contracts, abis=abis
    )
    assert action.target == contracts["ModelRegistry"] and action.value == 0
