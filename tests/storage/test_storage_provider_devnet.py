"""The provider daemon over real JSON-RPC: `aic devnet` in a subprocess, StorageRegistry deployed
with web3, challenges answered by the in-process daemon and by `aic storage provide`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_abi import encode
from web3 import Web3

from aicommons.chain.accounts import load_account
from aicommons.chain.compile import deploy_web3
from aicommons.chain.devnet import launch_devnet_process
from aicommons.chain.transact import send_call
from aicommons.commit import keccak256
from aicommons.storage.registry import (
    CHALLENGE_PASSED,
    ProviderDaemon,
    RegistryClient,
    challenge_seed,
)
from aicommons.storage.store import LocalStore

STAKE = 10**18
BOND = 10**16

pytestmark = pytest.mark.network


@pytest.fixture
def devnet(tmp_path: Path):
    process, url = launch_devnet_process(tmp_path / "chain", timeout_s=60)
    try:
        yield Web3(Web3.HTTPProvider(url)), url
    finally:
        process.terminate()
        process.wait(timeout=20)


def send(w3: Web3, account, function) -> None:
    send_call(w3, account, function, function.fn_name)


def mine_one_block(w3: Web3, account) -> None:
    tx = {
        "to": account.address,
        "value": 0,
        "gas": 21000,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": w3.eth.chain_id,
        "maxFeePerGas": 2 * w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
        "maxPriorityFeePerGas": 10**9,
    }
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    )


def test_provider_daemon_and_cli_answer_challenges_on_devnet(tmp_path: Path, devnet) -> None:
    w3, rpc = devnet
    deployer, provider, challenger = (load_account(f"dev{i}", None) for i in range(3))
    token = deploy_web3(w3, "CommonsToken", deployer.address, 10**24, account=deployer)
    registry = deploy_web3(
        w3,
        "StorageRegistry",
        token.address,
        deployer.address,
        STAKE,
        BOND,
        5000,
        4000,
        30,
        10,
        account=deployer,
    )
    for who in (provider, challenger):
        send(w3, deployer, token.functions.transfer(who.address, 100 * STAKE))
        send(w3, who, token.functions.approve(registry.address, 2**256 - 1))
    send(w3, provider, registry.functions.stake(2 * STAKE))

    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(3 * (1 << 20) + 12345))
    store = LocalStore(tmp_path / "store")
    manifest = store.put_file(source)
    client = RegistryClient(w3, registry.address, provider)
    daemon = ProviderDaemon(client, store, from_block=w3.eth.block_number)
    assert daemon.commit_stored() == [manifest.blob_id]
    assert client.is_committed(manifest.root)

    challenging = RegistryClient(w3, registry.address, challenger)
    secret = os.urandom(32)
    first = challenging.open_challenge(provider.address, manifest.root, secret)
    assert daemon.poll_once() == {}  # nothing revealed yet: nobody knows the chunk
    mine_one_block(w3, challenger)  # the reveal block
    challenging.reveal_challenge(first, secret)
    assert daemon.poll_once() == {first: True}
    # The seed is the keccak of the reveal block's real hash, the secret, the provider, the root
    # and the id: the hash alone (all a block builder controls) does not decide it.
    reveal_block = registry.functions.challenges(first).call()[4]
    block_hash = bytes(w3.eth.get_block(reveal_block)["hash"])
    expected = challenge_seed(
        block_hash=block_hash,
        secret=secret,
        provider=provider.address,
        root=manifest.root,
        challenge_id=first,
    )
    assert registry.functions.challenge_seed(first).call() == expected
    without_secret = keccak256(
        encode(
            ["bytes32", "address", "bytes32", "uint256"],
            [block_hash, provider.address, manifest.root, first],
        )
    )
    assert expected != int.from_bytes(without_secret, "big")
    assert registry.functions.owed(provider.address).call() == BOND

    # The same, through `aic storage provide` with the devnet's dev1 key.
    command = [sys.executable, "-c", "from aicommons.cli import main; main()", "storage"]
    daemon_process = subprocess.Popen(
        [
            *command,
            "provide",
            "--rpc",
            rpc,
            "--registry",
            registry.address,
            "--dir",
            str(tmp_path / "store"),
            "--account",
            "dev1",
            "--interval",
            "0.2",
            "--from-block",
            str(w3.eth.block_number + 1),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        second = challenging.open_challenge(provider.address, manifest.root, secret)
        mine_one_block(w3, challenger)
        challenging.reveal_challenge(second, secret)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and daemon_process.poll() is None:
            if challenging.challenge_phase(second) == CHALLENGE_PASSED:
                break
            time.sleep(0.2)
    finally:
        daemon_process.terminate()
        _, errors = daemon_process.communicate(timeout=20)
    assert challenging.challenge_phase(second) == CHALLENGE_PASSED, errors
    assert registry.functions.owed(provider.address).call() == 2 * BOND
