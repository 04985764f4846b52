"""`client.tokens`: CommonsToken (AIC) balances and allowances, and ether/AIC transfers.

Amounts are integers in base units (18 decimals); nothing here converts from floats.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from aicommons.sdk._service import Service
from aicommons.sdk.errors import ClientError
from aicommons.sdk.types import hex32

DECIMALS = 18
"""Ether and CommonsToken both count in units of 10^-18."""


def parse_units(amount: str, *, what: str = "amount", decimals: int = DECIMALS) -> int:
    """A decimal amount such as "1.5" as base units (1.5 * 10^18), exactly; no float involved.

    Refuses negative amounts, non-numbers and more fractional digits than `decimals`.
    """
    try:
        value = Decimal(amount.strip())
    except InvalidOperation:
        raise ClientError(f"{what} {amount!r} is not a decimal number") from None
    if not value.is_finite() or value < 0:
        raise ClientError(f"{what} must be a non-negative number, got {amount!r}")
    units = value.scaleb(decimals)
    if units != units.to_integral_value():
        raise ClientError(f"{what} {amount!r} has more than {decimals} decimal places")
    return int(units)


class TokensService(Service):
    """Read balances and allowances; approve and transfer as the client's account."""

    def balance(self, address: str) -> int:
        return int(self._contract("CommonsToken").functions.balanceOf(address).call())

    def allowance(self, owner: str, spender: str) -> int:
        return int(self._contract("CommonsToken").functions.allowance(owner, spender).call())

    def approve(self, spender: str, amount: int) -> str:
        """Let `spender` draw up to `amount` from the account; returns the transaction hash."""
        token = self._contract("CommonsToken")
        receipt = self._transact(token.functions.approve(spender, amount), "approving tokens")
        return hex32(receipt["transactionHash"])

    def transfer(self, to: str, *, eth_wei: int = 0, tokens: int = 0) -> list[str]:
        """Send ether and/or CommonsToken to `to`; returns the transaction hashes."""
        from web3 import Web3

        account = self._require_account()
        if eth_wei < 0 or tokens < 0:
            raise ClientError("transfer amounts cannot be negative")
        if not Web3.is_address(to):
            raise ClientError(f"{to!r} is not an address")
        to = Web3.to_checksum_address(to)
        hashes = []
        if eth_wei:
            hashes.append(self._send_ether(to, eth_wei))
        if tokens:
            balance = self.balance(account.address)
            if balance < tokens:
                raise ClientError(
                    f"insufficient CommonsToken balance: have {balance}, need {tokens}"
                )
            token = self._contract("CommonsToken")
            receipt = self._transact(token.functions.transfer(to, tokens), "token transfer")
            hashes.append(hex32(receipt["transactionHash"]))
        return hashes

    def _send_ether(self, to: str, amount_wei: int) -> str:
        account = self._require_account()
        w3 = self.w3
        latest = w3.eth.get_block("latest")
        max_fee = 2 * int(latest.get("baseFeePerGas", 10**9)) + 10**9
        tx = {
            "from": account.address,
            "to": to,
            "value": amount_wei,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "chainId": self._client.chain_id,
            "gas": 21_000,
            "maxPriorityFeePerGas": 10**9,
            "maxFeePerGas": max_fee,
        }
        if w3.eth.get_balance(account.address) < amount_wei + 21_000 * max_fee:
            raise ClientError(f"account {account.address} cannot cover {amount_wei} wei + gas")
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        return hex32(tx_hash)
