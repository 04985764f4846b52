"""Shared helpers for the governance tests: honest gas measurement, EIP-712 signing, a plain
Python model of checkpointed votes.

The votes model is deliberately naive (lists of (timestamp, value) and a linear search), so it
shares nothing with votes.vy's packed words and binary search but the rules of ERC-5805.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boa

ZERO = "0x" + "00" * 20


@dataclass
class VotesModel:
    """Balances, delegations and checkpoints as the ERC-5805 text states them."""

    balances: dict[str, int] = field(default_factory=dict)
    delegates: dict[str, str] = field(default_factory=dict)
    traces: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    supply: list[tuple[int, int]] = field(default_factory=list)

    @staticmethod
    def _push(trace: list[tuple[int, int]], now: int, delta: int) -> None:
        value = (trace[-1][1] if trace else 0) + delta
        assert value >= 0
        if trace and trace[-1][0] == now:
            trace[-1] = (now, value)
        else:
            trace.append((now, value))

    @staticmethod
    def _at(trace: list[tuple[int, int]], timepoint: int) -> int:
        value = 0
        for key, recorded in trace:
            if key > timepoint:
                break
            value = recorded
        return value

    def _move(self, source: str, destination: str, amount: int, now: int) -> None:
        if source == destination or amount == 0:
            return
        if source != ZERO:
            self._push(self.traces.setdefault(source, []), now, -amount)
        if destination != ZERO:
            self._push(self.traces.setdefault(destination, []), now, amount)

    def delegate_of(self, account: str) -> str:
        return self.delegates.get(account, ZERO)

    def mint(self, to: str, amount: int, now: int) -> None:
        self.balances[to] = self.balances.get(to, 0) + amount
        self._push(self.supply, now, amount)
        self._move(ZERO, self.delegate_of(to), amount, now)

    def transfer(self, owner: str, to: str, amount: int, now: int) -> None:
        self.balances[owner] = self.balances.get(owner, 0) - amount
        self.balances[to] = self.balances.get(to, 0) + amount
        self._move(self.delegate_of(owner), self.delegate_of(to), amount, now)

    def burn(self, owner: str, amount: int, now: int) -> None:
        self.balances[owner] = self.balances.get(owner, 0) - amount
        self._push(self.supply, now, -amount)
        self._move(self.delegate_of(owner), ZERO, amount, now)

    def delegate(self, account: str, delegatee: str, now: int) -> None:
        previous = self.delegate_of(account)
        self.delegates[account] = delegatee
        self._move(previous, delegatee, self.balances.get(account, 0), now)

    def votes(self, account: str) -> int:
        trace = self.traces.get(account, [])
        return trace[-1][1] if trace else 0

    def past_votes(self, account: str, timepoint: int) -> int:
        return self._at(self.traces.get(account, []), timepoint)

    def past_supply(self, timepoint: int) -> int:
        return self._at(self.supply, timepoint)


def publish_model(
    registry: Any,
    maintainer: str,
    slug: str,
    version_id: bytes,
    attribution: list[tuple[str, int, int]] | None = None,
) -> bytes:
    """Register `slug` (if new) and publish an off-chain (optimistic) version of it; returns the
    model id."""
    from aicommons.commit import keccak256

    model_id = keccak256(slug.encode())
    with boa.env.prank(maintainer):
        if registry.model_owner(model_id) == ZERO:
            registry.register_model(slug, [])
        registry.publish_version(
            model_id,
            version_id,
            keccak256(version_id),
            bytes(32),
            ["ipfs://bafy"],
            "MIT",
            attribution or [],
            4,
            0,
        )
    return model_id


EIP712_DOMAIN = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def sign_typed(
    signer: Any,
    *,
    domain: str,
    contract: str,
    primary: str,
    fields: list[dict[str, str]],
    message: dict[str, Any],
) -> Any:
    """`signer`'s EIP-712 signature of `message` (type `primary` with `fields`) in the domain
    (`domain`, version "1", this chain, `contract`), as a wallet would make it."""
    from eth_account.messages import encode_typed_data

    signable = encode_typed_data(
        full_message={
            "types": {"EIP712Domain": EIP712_DOMAIN, primary: fields},
            "primaryType": primary,
            "domain": {
                "name": domain,
                "version": "1",
                "chainId": boa.env.evm.patch.chain_id,
                "verifyingContract": contract,
            },
            "message": message,
        }
    )
    return signer.sign_message(signable)
