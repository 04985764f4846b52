"""MarketClient over JSON-RPC (the devnet process): the suite deploys with the market, a request
is answered and finalised, and a wrong result is disputed and overturned, all through the client
with locally signed transactions and the moves of `aicommons.market.game`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
from eth_account import Account
from market_layers import random_layer_package
from web3 import Web3

from aicommons.chain.compile import compile_contract
from aicommons.chain.deploy import MarketParams, deploy_suite_web3
from aicommons.chain.devnet.accounts import DEV_ACCOUNTS
from aicommons.chain.transact import send_call
from aicommons.commit import keccak256
from aicommons.market.client import MarketClient
from aicommons.market.commitments import PostedResult, output_bytes
from aicommons.market.dispute import TraceCommitments
from aicommons.market.game import challenger_move, provider_move
from aicommons.market.graph import graph_commitment

pytestmark = pytest.mark.network
AIC = 10**18
# Short windows: the devnet's clock is real time.
PARAMS = MarketParams(window=3, move_period=5, reveal_period=3, finalise_grace=3, unbonding_delay=1)


@pytest.fixture(scope="module")
def web3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web3]:
    from aicommons.chain.devnet.server import launch_devnet_process

    process, url = launch_devnet_process(tmp_path_factory.mktemp("market-devnet"))
    try:
        yield Web3(Web3.HTTPProvider(url))
    finally:
        process.terminate()
        process.wait(timeout=15)


def _wait_until(w3: Web3, account: Account, timestamp: int) -> None:
    """Let chain time pass `timestamp`. The devnet stamps a block with the time its parent was
    mined (py-evm builds the pending header then), so after waiting one empty transaction
    moves the pending header to the present."""
    while time.time() <= timestamp + 1:
        time.sleep(0.5)
    tx = {"to": account.address, "value": 0, "gas": 21_000, "chainId": w3.eth.chain_id}
    tx |= {"nonce": w3.eth.get_transaction_count(account.address), "maxFeePerGas": 10**10}
    tx["maxPriorityFeePerGas"] = 10**9
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    )


def test_client_serves_finalises_and_overturns_over_json_rpc(web3: Web3) -> None:
    governance, provider_key, requester_key, watcher_key = (
        Account.from_key(DEV_ACCOUNTS[i].private_key) for i in range(4)
    )
    addresses = deploy_suite_web3(web3, governance, governance.address, market_params=PARAMS)
    assert addresses.to_json()["market"] == addresses.market
    token = web3.eth.contract(address=addresses.token, abi=compile_contract("CommonsToken").abi)
    registry = web3.eth.contract(
        address=addresses.registry, abi=compile_contract("ModelRegistry").abi
    )
    for account in (provider_key, requester_key, watcher_key):
        send_call(
            web3, governance, token.functions.transfer(account.address, 1000 * AIC), "funding"
        )

    def client(account: Account) -> MarketClient:
        return MarketClient(
            web3,
            market=addresses.market,
            dispute_game=addresses.dispute_game,
            redundant_mode=addresses.redundant_mode,
            account=account,
        )

    owner, provider, requester, watcher = (
        client(a) for a in (governance, provider_key, requester_key, watcher_key)
    )
    assert owner.params() == PARAMS

    package, x = random_layer_package(np.random.default_rng(3), "conv2d")
    slug, model_id = "client-model", keccak256(b"client-model")
    send_call(web3, governance, registry.functions.register_model(slug, []), "registering")
    publish = registry.functions.publish_version(
        model_id,
        package.version_id,
        package.weights_root,
        b"\x00" * 32,
        ["ipfs://x"],
        "MIT",
        [],
        6,
        AIC,
    )
    send_call(web3, governance, publish, "publishing")
    owner.register_graph(
        model_id=model_id, version_id=package.version_id, graph=graph_commitment(package)
    )

    for party in (provider, requester, watcher):
        party.approve(amount=1000 * AIC)
    provider.stake(amount=200 * AIC)
    provider.offer(model_id=model_id, version_id=package.version_id, price=AIC)
    deadline = web3.eth.get_block("latest")["timestamp"] + 600

    trace = package.trace(x[None])
    honest = TraceCommitments(package, [value[0] for value in trace.values])
    output = output_bytes(trace.values[-1][0])

    # Honest: request, claim, post, finalise.
    request_id, _ = requester.request(
        model_id=model_id, version_id=package.version_id, x=x, max_fee=5 * AIC, deadline=deadline
    )
    assert requester.request_info(request_id).status == "open"
    provider.claim(request_id=request_id)
    batch, _ = provider.post_batch(results=[PostedResult(request_id, honest.trace_root, output)])
    assert provider.posted_batch(batch.batch_id).commitment.root == batch.commitment.root
    _wait_until(web3, governance, batch.window_ends)
    requester.finalise(request_id=request_id, batch=batch)
    assert requester.request_info(request_id).status == "finalised"
    assert provider.provider().owed == AIC

    # Dishonest: one element of the layer's output changed, trace recomputed over it.
    values = [value[0].copy() for value in trace.values]
    values[-1].reshape(-1)[0] ^= 1
    liar = TraceCommitments(package, values)
    posted = output_bytes(values[-1])
    request_id, _ = requester.request(
        model_id=model_id, version_id=package.version_id, x=x, max_fee=5 * AIC, deadline=deadline
    )
    provider.claim(request_id=request_id)
    batch, _ = provider.post_batch(results=[PostedResult(request_id, liar.trace_root, posted)])
    seen = watcher.posted_batch(batch.batch_id).commitment.results[0]
    assert seen.output == posted and seen.trace_root == liar.trace_root
    dispute_id, _ = watcher.challenge(request_id=request_id, batch=batch)
    assert watcher.request_info(request_id).status == "disputed"
    for _ in range(40):
        state = watcher.dispute(dispute_id)
        if not state.active:
            break
        if state.provider_to_move:
            provider.move(move=provider_move(state, liar, posted))
        else:
            roots = watcher.revealed_roots(dispute_id)
            rows = watcher.revealed_rows(dispute_id) if state.phase == "step" else None
            watcher.move(move=challenger_move(state, honest, roots, rows))
    assert watcher.dispute(dispute_id).phase == "challenger_won"
    assert watcher.request_info(request_id).status == "overturned"
    assert watcher.provider(watcher.address).owed == PARAMS.claim_lock // 2 + PARAMS.challenge_bond
