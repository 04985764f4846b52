"""The suite deploys and runs over plain JSON-RPC (the devnet process) exactly as in boa.

Deploy, register, publish, upload and infer through web3.py with a locally signed account.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from chain_fixtures import LOCATOR, dense_package
from eth_account import Account
from web3 import Web3

from aicommons.chain.compile import compile_contract
from aicommons.chain.deploy import deploy_suite_web3
from aicommons.chain.devnet.accounts import DEV_ACCOUNTS
from aicommons.chain.devnet.server import launch_devnet_process
from aicommons.chain.executor import (
    ContractCall,
    encode_input,
    model_from_package,
    output_hash,
    program_hash,
    send_web3,
    upload_calls,
)
from aicommons.commit import keccak256

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def web3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web3]:
    process, url = launch_devnet_process(tmp_path_factory.mktemp("chain-devnet"))
    try:
        yield Web3(Web3.HTTPProvider(url))
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_suite_deploys_publishes_uploads_and_infers_over_json_rpc(web3: Web3) -> None:
    account = Account.from_key(DEV_ACCOUNTS[0].private_key)
    treasury = DEV_ACCOUNTS[1].address
    addresses = deploy_suite_web3(web3, account, treasury)
    registry = web3.eth.contract(
        address=addresses.registry, abi=compile_contract("ModelRegistry").abi
    )
    executor = web3.eth.contract(
        address=addresses.executor, abi=compile_contract("OnchainExecutor").abi
    )
    package = dense_package(np.random.default_rng(21), [6, 5, 3])
    slug = "web3-model"
    model_id = keccak256(slug.encode())
    send_web3(registry, [ContractCall("register_model", (slug, []))], account)
    publish = ContractCall(
        "publish_version",
        (
            model_id,
            package.version_id,
            package.weights_root,
            program_hash(package),
            [LOCATOR],
            "MIT",
            [],
            1,
            0,
        ),
    )
    send_web3(registry, [publish], account)
    key = (model_id, package.version_id)
    send_web3(executor, upload_calls(*key, model_from_package(package)), account)
    assert executor.functions.is_ready(*key).call()

    x = np.array([5, -7, 127, -128, 0, 9], dtype=np.int8)
    expected = [int(v) for v in package.run(x)[0]]
    output, label = executor.functions.predict(*key, encode_input(x)).call()
    assert list(output) == expected
    infer = ContractCall("infer", (*key, encode_input(x)))
    send_web3(executor, [infer], account)
    logs = executor.events.Inference().get_logs(from_block=0)
    assert len(logs) == 1
    receipt = logs[0]["args"]
    assert list(receipt["output"]) == expected and receipt["label"] == label
    assert (receipt["model_id"], receipt["version_id"]) == key
    assert receipt["output_hash"] == output_hash(expected)


def test_an_estimate_gets_a_margin_for_the_block_it_runs_in() -> None:
    """A node estimates at the latest block's timestamp; a votes transfer mined a second later
    may append a checkpoint where the estimate overwrote one (20 000 gas more per delegate):
    the limit covers two such writes and never exceeds the block's gas limit."""
    from aicommons.chain.transact import with_margin

    assert with_margin(59_163, 30_000_000) >= 59_163 + 2 * 20_000
    assert with_margin(29_990_000, 30_000_000) == 30_000_000
