"""Named accounts in encrypted keystores under `$AIC_HOME/keystore` (eth-account, scrypt).

A private key never touches disk in plaintext; the only plaintext keys are the devnet's published
development keys, which are resolved by name (`dev0` … `dev9`) and never written anywhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from aicommons.chain.devnet.accounts import DEV_ACCOUNTS
from aicommons.chain.errors import KeystoreError
from aicommons.commit.json_input import read_json_file
from aicommons.fsutil import atomic_write_bytes
from aicommons.home import state_dir

KEYSTORE_MAX_BYTES = 64 * 1024
"""An eth-account keystore is about 500 bytes; anything far larger is not one."""
ACCOUNT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class AccountInfo:
    name: str
    address: str
    encrypted: bool


def _dev_account(name: str) -> LocalAccount | None:
    match = re.fullmatch(r"dev(\d)", name)
    if match is None:
        return None
    return Account.from_key(DEV_ACCOUNTS[int(match.group(1))].private_key)


def keystore_dir() -> Path:
    return state_dir("keystore")


def _keystore_path(name: str) -> Path:
    if not ACCOUNT_NAME.match(name):
        raise KeystoreError(
            f"invalid account name {name!r}: use 1-32 of a-z, 0-9, '-', '_' starting with a letter"
        )
    if re.fullmatch(r"dev\d", name):
        raise KeystoreError(f"account name {name!r} is reserved for devnet development keys")
    return keystore_dir() / f"{name}.json"


def _save(name: str, private_key: bytes, password: str) -> AccountInfo:
    if not password:
        raise KeystoreError("an empty password is not allowed for an encrypted keystore")
    path = _keystore_path(name)
    if path.exists():
        raise KeystoreError(f"account {name!r} already exists ({path})")
    keystore = Account.encrypt(private_key, password, kdf="scrypt")
    atomic_write_bytes(path, json.dumps(keystore).encode(), mode=0o600)
    return AccountInfo(name, Account.from_key(private_key).address, True)


def new_account(name: str, password: str) -> AccountInfo:
    """Create a random key and store it encrypted under `name`."""
    return _save(name, Account.create().key, password)


def import_account(name: str, private_key_hex: str, password: str) -> AccountInfo:
    """Store an existing private key (hex) encrypted under `name`."""
    text = private_key_hex.strip().removeprefix("0x")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise KeystoreError("a private key is 32 bytes written as 64 hex digits")
    return _save(name, bytes.fromhex(text), password)


def list_accounts() -> list[AccountInfo]:
    """Every named keystore account, sorted by name."""
    accounts = []
    for path in sorted(keystore_dir().glob("*.json")):
        try:
            keystore = read_json_file(path, what="keystore file", max_bytes=KEYSTORE_MAX_BYTES)
            address = "0x" + keystore["address"].removeprefix("0x")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeystoreError(f"keystore file {path} is unreadable: {exc}") from exc
        accounts.append(AccountInfo(path.stem, to_checksum_address(address), True))
    return accounts


def is_dev_account(name: str) -> bool:
    return _dev_account(name) is not None


def load_account(name: str, password: str | None) -> LocalAccount:
    """Unlock `name`: a `devN` development account needs no password, a keystore account does."""
    dev = _dev_account(name)
    if dev is not None:
        return dev
    path = _keystore_path(name)
    if not path.exists():
        raise KeystoreError(f"no account named {name!r} (see `aic account list`)")
    if password is None:
        raise KeystoreError(f"account {name!r} is encrypted: give its password (AIC_PASSWORD)")
    try:
        keystore = read_json_file(path, what="keystore file", max_bytes=KEYSTORE_MAX_BYTES)
        private_key = Account.decrypt(keystore, password)
    except ValueError as exc:
        raise KeystoreError(f"wrong password for account {name!r}") from exc
    return Account.from_key(private_key)
