"""Encrypted keystore accounts: create, import, list, unlock, and every way it must refuse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aicommons.chain import accounts

KNOWN_KEY = "0x" + "11" * 32


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIC_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_import_then_unlock_gives_same_key_and_file_is_encrypted(_isolated_home: Path) -> None:
    info = accounts.import_account("alice", KNOWN_KEY, "pw-1")
    unlocked = accounts.load_account("alice", "pw-1")
    assert unlocked.address == info.address
    assert unlocked.key.hex().removeprefix("0x") == KNOWN_KEY[2:]
    stored = (_isolated_home / "keystore" / "alice.json").read_text()
    assert KNOWN_KEY[2:] not in stored
    assert json.loads(stored)["crypto"]["kdf"] == "scrypt"
    assert [a.name for a in accounts.list_accounts()] == ["alice"]


def test_refusals_are_named() -> None:
    accounts.import_account("bob", KNOWN_KEY, "secret")
    with pytest.raises(accounts.KeystoreError, match="wrong password"):
        accounts.load_account("bob", "nope")
    with pytest.raises(accounts.KeystoreError, match="already exists"):
        accounts.import_account("bob", KNOWN_KEY, "secret")
    with pytest.raises(accounts.KeystoreError, match="no account named"):
        accounts.load_account("carol", "x")
    with pytest.raises(accounts.KeystoreError, match="invalid account name"):
        accounts.new_account("../evil", "x")
    with pytest.raises(accounts.KeystoreError, match="reserved"):
        accounts.new_account("dev0", "x")
    with pytest.raises(accounts.KeystoreError, match="64 hex digits"):
        accounts.import_account("dave", "0x1234", "x")
    with pytest.raises(accounts.KeystoreError, match="empty password"):
        accounts.new_account("erin", "")


def test_dev_accounts_are_the_public_mnemonic_keys() -> None:
    dev0 = accounts.load_account("dev0", None)
    # The first account of the public "test ... junk" mnemonic, known to every EVM toolchain.
    assert dev0.address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def test_cli_wrong_password_is_one_line_error(_isolated_home: Path) -> None:
    env = {"AIC_HOME": str(_isolated_home), "AIC_PASSWORD": "right", "PATH": "/usr/bin:/bin"}
    aic = str(Path(sys.executable).parent / "aic")
    made = subprocess.run([aic, "account", "new", "zed"], env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    listed = subprocess.run(
        [aic, "account", "list", "--json"], env=env, capture_output=True, text=True
    )
    assert json.loads(listed.stdout)[0]["name"] == "zed"
    again = subprocess.run([aic, "account", "new", "zed"], env=env, capture_output=True, text=True)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
