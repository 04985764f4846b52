"""The devnet's funded development accounts, derived from the fixed, public test mnemonic.

These keys are known to everyone; they must never hold value or be used on a real network.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_COUNT = 10
DEV_KEYS_WARNING = (
    "DEVELOPMENT KEYS ONLY — never use on a real network: these private keys are public."
)
# Enough ether that tests and benchmarks never run dry (10,000 ETH each, like hardhat).
DEV_ACCOUNT_BALANCE_WEI = 10_000 * 10**18


@dataclass(frozen=True)
class DevAccount:
    """One development account: its checksum address and its (public!) private key."""

    index: int
    address: str
    private_key: str


def derive_dev_accounts(
    mnemonic: str = DEV_MNEMONIC, count: int = DEV_ACCOUNT_COUNT
) -> tuple[DevAccount, ...]:
    """Derive `count` accounts on the standard path m/44'/60'/0'/0/i (what hardhat uses)."""
    Account.enable_unaudited_hdwallet_features()
    accounts = []
    for index in range(count):
        local = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")
        accounts.append(DevAccount(index, local.address, "0x" + bytes(local.key).hex()))
    return tuple(accounts)


DEV_ACCOUNTS: tuple[DevAccount, ...] = derive_dev_accounts()
