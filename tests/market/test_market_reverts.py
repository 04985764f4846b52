"""Bad input to the market contracts: each a named revert, and nothing changes.

The issue's list (wrong input size, unknown or deprecated version, fee above allowance, request
past its deadline, result for a request not claimed by the poster, double finalise, challenge
after the window, a move out of turn) and the other guards of docs/market.md "Reverts".
"""

from __future__ import annotations

import boa
import numpy as np
import pytest
from market_fixtures import (
    AIC,
    ZERO_REF,
    advance,
    challenge,
    deploy_market_suite,
    finalise,
    honest_result,
    post,
)
from market_layers import random_layer_package

from aicommons.chain.deploy import MarketParams
from aicommons.commit import keccak256
from aicommons.market.commitments import UNSIGNED, BatchCommitment, PostedResult, input_bytes
from aicommons.market.graph import graph_commitment

ZERO = "0x" + "00" * 20


@pytest.fixture(scope="module")
def world():
    with boa.env.anchor():
        suite = deploy_market_suite()
        package, x = random_layer_package(np.random.default_rng(11), "dense", fan_in=3)
        suite.publish(package, "tiny", fee=AIC)
        other, _ = random_layer_package(np.random.default_rng(12), "dense", fan_in=3)
        suite.publish(other, "tiny")  # a second version of the same model, deprecated below
        with boa.env.prank(suite.governance):
            suite.registry.set_canonical(*suite.versions["tiny"][:1], package.version_id)
            suite.registry.deprecate_version(suite.versions["tiny"][0], other.version_id)
        suite.versions["deprecated"] = (suite.versions["tiny"][0], other.version_id)
        suite.versions["tiny"] = (suite.versions["tiny"][0], package.version_id)
        p1 = suite.provider("p1", ["tiny"])
        p2 = suite.provider("p2", ["tiny"])
        requester = boa.env.generate_address("requester")
        watcher = boa.env.generate_address("watcher")
        suite.fund(requester)
        suite.fund(watcher)
        yield suite, package, x, p1, p2, requester, watcher


@pytest.fixture
def env(world):
    with boa.env.anchor():
        yield world


def _request_args(suite, x, **overrides):
    args = {
        "model_id": suite.versions["tiny"][0],
        "version_id": suite.versions["tiny"][1],
        "input": input_bytes(x),
        "input_ref": ZERO_REF,
        "mode": 1,
        "redundancy": 1,
        "max_fee": 10 * AIC,
        "deadline": boa.env.evm.patch.timestamp + 600,
        "provider": ZERO,
        "callback": ZERO,
        "callback_gas": 0,
    }
    args.update(overrides)
    return list(args.values())


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"input": b"\x01\x02"}, "InputSizeMismatch"),
        ({"input": b"", "input_ref": (b"\x01" * 32, b"\x00" * 32, b"\x03" * 32)}, "InvalidInput"),
        ({"input_ref": (b"\x01" * 32, b"\x02" * 32, b"\x03" * 32)}, "InvalidInput"),
        ({"version_id": keccak256(b"nope")}, "UnknownVersion"),
        ({"mode": 3}, "InvalidMode"),
        ({"redundancy": 2}, "InvalidRedundancy"),
        ({"mode": 2, "redundancy": 1}, "InvalidRedundancy"),
        ({"mode": 2, "redundancy": 10}, "InvalidRedundancy"),
        ({"max_fee": AIC - 1}, "FeeTooLow"),
        ({"max_fee": 10**6 * AIC}, "FeeUnpaid"),
        ({"deadline": 0}, "DeadlinePassed"),
        ({"deadline": 2**40}, "DeadlineTooFar"),
        ({"callback_gas": 10**7}, "CallbackGasTooHigh"),
    ],
)
def test_bad_requests_revert_by_name(env, overrides, reason) -> None:
    suite, package, x, p1, p2, requester, watcher = env
    before = suite.token.balanceOf(requester)
    args = _request_args(suite, x, **overrides)
    if overrides.get("deadline") == 0:
        args[7] = boa.env.evm.patch.timestamp  # "now" is already too late
    with boa.env.prank(requester), boa.reverts(reason):
        suite.market.request(*args)
    assert suite.token.balanceOf(requester) == before and suite.market.request_count() == 0


def test_deprecated_version_and_redundant_provider_are_refused(env) -> None:
    suite, package, x, p1, p2, requester, watcher = env
    args = _request_args(suite, x, version_id=suite.versions["deprecated"][1])
    with boa.env.prank(requester), boa.reverts("VersionDeprecated"):
        suite.market.request(*args)
    args = _request_args(suite, x, mode=2, redundancy=2, provider=p1)
    with boa.env.prank(requester), boa.reverts("InvalidProvider"):
        suite.market.request(*args)
    with boa.env.prank(p1), boa.reverts("VersionDeprecated"):
        suite.market.offer(*suite.versions["deprecated"], AIC)


def test_fee_above_allowance_is_refused_before_any_transfer(env) -> None:
    suite, package, x, p1, p2, requester, watcher = env
    with boa.env.prank(requester):
        suite.token.approve(suite.market.address, 5 * AIC)
        with boa.reverts("FeeUnpaid"):
            suite.market.request(*_request_args(suite, x, max_fee=6 * AIC))


def test_claims_and_posts_out_of_order_revert_by_name(env) -> None:
    suite, package, x, p1, p2, requester, watcher = env
    with boa.env.prank(requester):
        request_id = suite.market.request(*_request_args(suite, x, provider=p2))
        designated_elsewhere = suite.market.request(*_request_args(suite, x))
    with boa.env.prank(p1), boa.reverts("WrongProvider"):
        suite.market.claim(request_id)
    stranger = boa.env.generate_address("stranger")
    suite.fund(stranger)
    with boa.env.prank(stranger), boa.reverts("NotOffered"):
        suite.market.claim(designated_elsewhere)
    with boa.env.prank(p2):
        suite.market.claim(request_id)
        with boa.reverts("RequestNotOpen"):
            suite.market.claim(request_id)
    result, _ = honest_result(package, request_id, x)
    batch = BatchCommitment([result])
    # A result for a request not claimed by the poster.
    with boa.env.prank(p1), boa.reverts("NotClaimant"):
        suite.market.post_batch(*batch.post_args())
    with boa.env.prank(p2), boa.reverts("EmptyBatch"):
        suite.market.post_batch([], [], b"", [], b"")
    with boa.env.prank(p2), boa.reverts("BatchMismatch"):
        suite.market.post_batch(
            [request_id], [result.trace_root], result.output, [len(result.output) + 1], UNSIGNED
        )
    with boa.env.prank(p2), boa.reverts("BatchMismatch"):  # one signature per result
        suite.market.post_batch(
            [request_id], [result.trace_root], result.output, [len(result.output)], b"\x01" * 64
        )
    # Past the deadline: no claim, no post.
    advance(601)
    with boa.env.prank(p1), boa.reverts("DeadlinePassed"):
        suite.market.claim(designated_elsewhere)
    with boa.env.prank(p2), boa.reverts("DeadlinePassed"):
        suite.market.post_batch(*batch.post_args())


def test_price_above_max_fee_and_stake_rules(env) -> None:
    suite, package, x, p1, p2, requester, watcher = env
    with boa.env.prank(p1):
        suite.market.offer(*suite.versions["tiny"], 20 * AIC)
    with boa.env.prank(requester):
        request_id = suite.market.request(*_request_args(suite, x))
    with boa.env.prank(p1), boa.reverts("PriceAboveMaxFee"):
        suite.market.claim(request_id)
    poor = boa.env.generate_address("poor")
    suite.fund(poor)
    with boa.env.prank(poor):
        suite.market.stake(10 * AIC)
        with boa.reverts("InsufficientStake"):
            suite.market.offer(*suite.versions["tiny"], AIC)
        with boa.reverts("InsufficientStake"):
            suite.market.unstake(11 * AIC)
        with boa.reverts("NothingUnbonding"):
            suite.market.withdraw_stake()
        suite.market.unstake(10 * AIC)
        with boa.reverts("StillUnbonding"):
            suite.market.withdraw_stake()
        advance(suite.params.unbonding_delay)
        assert suite.market.withdraw_stake() == 10 * AIC


def test_finalise_and_challenge_guards(env) -> None:
    suite, package, x, p1, p2, requester, watcher = env
    with boa.env.prank(requester):
        request_id = suite.market.request(*_request_args(suite, x))
    with boa.env.prank(p1):
        suite.market.claim(request_id)
    result, _ = honest_result(package, request_id, x)
    batch_id, batch = post(suite, p1, [result])
    # A provider cannot dispute itself; a wrong leaf is no proof.
    with boa.reverts("SelfChallenge"):
        challenge(suite, p1, batch_id, batch, request_id)
    with boa.env.prank(watcher), boa.reverts("InvalidProof"):
        suite.game.challenge(request_id, batch_id, 0, keccak256(b"other"), result.trace_root, [])
    with boa.env.prank(watcher), boa.reverts("UnknownBatch"):
        suite.game.challenge(request_id, 99, 0, result.output_hash, result.trace_root, [])
    with boa.env.prank(watcher), boa.reverts("InvalidProof"):
        suite.market.finalise(request_id, batch_id, 0, b"\x00", result.trace_root, [])
    advance(suite.params.window)
    # Challenge after the window; then double finalise.
    with boa.reverts("WindowClosed"):
        challenge(suite, watcher, batch_id, batch, request_id)
    finalise(suite, batch_id, batch, request_id, watcher)
    with boa.reverts("AlreadySettled"):
        finalise(suite, batch_id, batch, request_id, watcher)
    with boa.reverts("AlreadySettled"):
        suite.market.expire(request_id)


def test_moves_out_of_turn_or_time_revert_by_name(env) -> None:
    suite, package, x, p1, p2, requester, watcher = env
    with boa.env.prank(requester):
        request_id = suite.market.request(*_request_args(suite, x))
    with boa.env.prank(p1):
        suite.market.claim(request_id)
    result, _ = honest_result(package, request_id, x)
    batch_id, batch = post(suite, p1, [result])
    dispute_id = challenge(suite, watcher, batch_id, batch, request_id)
    # It is the provider's turn: the challenger cannot reveal, nobody can pick or time out yet.
    with boa.env.prank(watcher), boa.reverts("NotProvider"):
        suite.game.reveal_roots(dispute_id, b"\x00" * 64, result.output)
    with boa.env.prank(watcher), boa.reverts("WrongPhase"):
        suite.game.pick_child(dispute_id, False)
    with boa.env.prank(p1), boa.reverts("WrongPhase"):
        suite.game.reveal_children(dispute_id, b"\x00" * 32, b"\x00" * 32)
    with boa.reverts("DeadlineNotReached"):
        suite.game.timeout(dispute_id)
    with boa.env.prank(p1), boa.reverts("RootsMismatch"):
        suite.game.reveal_roots(dispute_id, b"\x00" * 64, result.output)
    with boa.reverts("RequestNotOverturned"):
        suite.game.cancel_dispute(dispute_id)
    with boa.reverts("UnknownDispute"):
        suite.game.timeout(dispute_id + 1)
    advance(suite.params.move_period + 1)
    with boa.env.prank(p1), boa.reverts("MoveTooLate"):
        suite.game.reveal_roots(dispute_id, b"\x00" * 64, result.output)
    suite.game.timeout(dispute_id)
    with boa.reverts("UnknownDispute"):
        suite.game.timeout(dispute_id)


def test_only_the_modules_settle_and_only_the_owner_governs(env) -> None:
    suite, package, x, p1, p2, requester, watcher = env
    with boa.env.prank(watcher):
        with boa.reverts("NotDisputeGame"):
            suite.market.open_dispute(1, 1, 0, b"\x00" * 32, b"\x00" * 32, [], watcher)
        with boa.reverts("NotDisputeGame"):
            suite.market.close_dispute(1, watcher, 0, 1)
        with boa.reverts("NotRedundantMode"):
            suite.market.settle_redundant(1, [], b"", b"\x00" * 32)
        with boa.reverts("ownable: caller is not the owner"):
            suite.market.set_params(MarketParams().as_abi())
        with boa.reverts("ownable: caller is not the owner"):
            suite.game.set_verifier(watcher)
    with boa.env.prank(suite.governance):
        with boa.reverts("ModulesSet"):
            suite.market.set_modules(watcher, watcher)
        with boa.reverts("InvalidParams"):
            suite.market.set_params(MarketParams(winner_share_bps=10_001).as_abi())
        with boa.reverts("InvalidParams"):
            suite.market.set_params(MarketParams(claim_lock=0).as_abi())
        suite.market.set_params(MarketParams(window=3600).as_abi())
    assert suite.market.params()[0] == 3600


def _publish_raw(suite, model_id, package, *, modes=6, graph_root=b"\x00" * 32) -> None:
    with boa.env.prank(suite.governance):
        suite.registry.publish_version(
            model_id,
            package.version_id,
            package.weights_root,
            b"\x00" * 32,
            ["ipfs://x"],
            "MIT",
            [],
            modes,
            0,
            graph_root,
        )


def test_graph_registration_guards(env) -> None:
    """The game's graph header comes from the registry's graph root: anyone brings it in, once,
    proven under that root; a version without a root is not servable."""
    suite, package, x, p1, p2, requester, watcher = env
    model_id, version_id = suite.versions["tiny"]
    graph = graph_commitment(package)
    with boa.env.prank(watcher), boa.reverts("GraphExists"):
        suite.game.register_graph(model_id, version_id, graph.header.as_abi(), graph.proof(0))
    # Registry rules: a graph root needs a market mode.
    bare, _ = random_layer_package(np.random.default_rng(13), "dense", fan_in=3)
    with boa.env.prank(suite.governance), boa.reverts("InvalidGraphRoot"):
        suite.registry.publish_version(
            model_id, bare.version_id, bare.weights_root, keccak256(b"p"), ["ipfs://x"], "MIT",
            [], 1, 0, graph_commitment(bare).root,
        )  # fmt: skip
    # A market version published without a graph root: nothing to register, not servable.
    _publish_raw(suite, model_id, bare)
    assert suite.registry.graph_root(model_id, bare.version_id) == b"\x00" * 32
    bare_graph = graph_commitment(bare)
    with boa.env.prank(watcher), boa.reverts("GraphNotRegistered"):
        suite.game.register_graph(
            model_id, bare.version_id, bare_graph.header.as_abi(), bare_graph.proof(0)
        )
    with boa.env.prank(p1), boa.reverts("GraphNotRegistered"):
        suite.market.offer(model_id, bare.version_id, AIC)
    with boa.env.prank(requester), boa.reverts("GraphNotRegistered"):
        suite.market.request(*_request_args(suite, x, version_id=bare.version_id))
    # With a root: anyone registers the header, which must be proven under it.
    fresh, _ = random_layer_package(np.random.default_rng(14), "dense", fan_in=3)
    fresh_graph = graph_commitment(fresh)
    _publish_raw(suite, model_id, fresh, modes=4, graph_root=fresh_graph.root)
    assert suite.registry.graph_root(model_id, fresh.version_id) == fresh_graph.root
    assert suite.registry.modes(model_id, fresh.version_id) == 4
    with boa.env.prank(watcher):
        wrong_header = graph.header.as_abi()  # another version's header is not under this root
        with boa.reverts("HeaderMismatch"):
            suite.game.register_graph(
                model_id, fresh.version_id, wrong_header, fresh_graph.proof(0)
            )
        with boa.reverts("UnknownVersion"):
            suite.game.register_graph(model_id, keccak256(b"x"), wrong_header, [])
        suite.game.register_graph(
            model_id, fresh.version_id, fresh_graph.header.as_abi(), fresh_graph.proof(0)
        )
    assert suite.game.graphs(keccak256(model_id + fresh.version_id))[0] == fresh_graph.root
    # The version offers optimistic mode only: a redundant request is refused.
    with boa.env.prank(requester), boa.reverts("ModeNotOffered"):
        suite.market.request(
            *_request_args(suite, x, version_id=fresh.version_id, mode=2, redundancy=2)
        )


def test_redundant_guards(env) -> None:
    suite, package, x, p1, p2, requester, watcher = env
    with boa.env.prank(requester):
        request_id = suite.market.request(*_request_args(suite, x, mode=2, redundancy=2))
    with boa.env.prank(p1):
        suite.market.claim(request_id)
        with boa.reverts("NotClaimed"):
            suite.redundant.commit(request_id, b"\x01" * 32)
    with boa.env.prank(p2):
        suite.market.claim(request_id)
    with boa.env.prank(watcher), boa.reverts("NotClaimant"):
        suite.redundant.commit(request_id, b"\x01" * 32)
    with boa.env.prank(p1):
        with boa.reverts("InvalidCommitment"):
            suite.redundant.commit(request_id, b"\x00" * 32)
        suite.redundant.commit(request_id, b"\x01" * 32)
        with boa.reverts("AlreadyCommitted"):
            suite.redundant.commit(request_id, b"\x01" * 32)
        with boa.reverts("NotCommitted"):
            suite.redundant.reveal(request_id, b"", b"\x00" * 32, b"\x00" * 32, UNSIGNED)
    with boa.env.prank(p2):
        suite.redundant.commit(request_id, b"\x02" * 32)
    with boa.env.prank(p1), boa.reverts("InvalidSignature"):
        suite.redundant.reveal(request_id, b"\x05", b"\x00" * 32, b"\x00" * 32, b"\x01")
    with boa.env.prank(p1), boa.reverts("CommitmentMismatch"):
        suite.redundant.reveal(request_id, b"\x05", b"\x00" * 32, b"\x00" * 32, UNSIGNED)
    with boa.reverts("RevealOpen"):
        suite.redundant.finalise(request_id, b"")
    with boa.reverts("WrongMode"):
        suite.market.expire(request_id)
    result = PostedResult(request_id, b"\x00" * 32, b"\x00")
    with boa.env.prank(p2), boa.reverts("WrongMode"):
        suite.market.post_batch(*BatchCommitment([result]).post_args())


@pytest.mark.parametrize(
    "name", ["ComputeMarket", "DisputeGame", "RedundantMode", "OneStepVerifier"]
)
def test_every_market_contract_fits_eip_170(name) -> None:
    from aicommons.chain.compile import compile_contract

    assert len(compile_contract(name).bytecode_runtime) <= 24_576
