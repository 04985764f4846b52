"""Units of the market's off-chain side that need no chain: the provider's EIP-712 result
signature, the daemons' retry/backoff loop, and the market receipt format."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from eth_account import Account

from aicommons.market.daemon import Backoff, EventLog, Retry, attempt, is_transient, run_loop
from aicommons.market.errors import SignatureError
from aicommons.market.receipts import ResultStatement, result_signer, sign_result
from aicommons.sdk.errors import ReceiptError
from aicommons.sdk.receipt import MARKET_RECEIPT_FORMAT, MarketReceipt, load_receipt

MARKET = "0x" + "ab" * 20
STATEMENT = ResultStatement(
    7, "0x" + "11" * 32, "0x" + "22" * 32, "0x" + "33" * 32, "0x" + "44" * 32
)


def test_result_signature_recovers_the_signer_only_under_its_domain() -> None:
    account = Account.create()
    signature = sign_result(account, STATEMENT, chain_id=1337, market=MARKET)
    assert result_signer(STATEMENT, signature, chain_id=1337, market=MARKET) == account.address
    # Another chain, another market or another field: the signature names someone else.
    assert result_signer(STATEMENT, signature, chain_id=1, market=MARKET) != account.address
    other_market = "0x" + "cd" * 20
    assert (
        result_signer(STATEMENT, signature, chain_id=1337, market=other_market) != account.address
    )
    changed = ResultStatement(
        8,
        *[getattr(STATEMENT, f) for f in ("version_id", "input_hash", "output_hash", "trace_root")],
    )
    assert result_signer(changed, signature, chain_id=1337, market=MARKET) != account.address


def test_result_signature_refuses_malformed_input() -> None:
    with pytest.raises(SignatureError, match="65 bytes"):
        result_signer(STATEMENT, "0x1234", chain_id=1337, market=MARKET)
    with pytest.raises(SignatureError, match="32 bytes"):
        sign_result(
            Account.create(),
            ResultStatement(1, "0x11", "0x" + "22" * 32, "0x" + "33" * 32, "0x" + "44" * 32),
            chain_id=1,
            market=MARKET,
        )
    with pytest.raises(SignatureError, match="not an address"):
        sign_result(Account.create(), STATEMENT, chain_id=1, market="nowhere")


def test_backoff_grows_and_caps() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, maximum=3.0)
    assert [backoff.delay(n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_attempt_backs_off_a_failing_item_and_leaves_others_alone() -> None:
    log = EventLog("test", stream=io.StringIO(), keep=10)
    retry = Retry(Backoff(initial=60.0))
    calls: list[str] = []

    def failing() -> None:
        calls.append("bad")
        raise ConnectionError("node down")

    assert attempt("bad", failing, retry=retry, log=log, what="claim 1") is False
    assert attempt("bad", failing, retry=retry, log=log, what="claim 1") is False  # backing off
    assert attempt("good", lambda: calls.append("good"), retry=retry, log=log, what="x") is True
    assert calls == ["bad", "good"]
    assert retry.failures("bad") == 1 and "claim 1 failed (node down)" in log.lines[0]


def test_attempt_lets_a_bug_through() -> None:
    log = EventLog("test", stream=io.StringIO())

    def buggy() -> None:
        raise KeyError("bug")

    assert not is_transient(KeyError("bug"))
    with pytest.raises(KeyError):
        attempt("k", buggy, retry=Retry(), log=log, what="x")


def test_run_loop_survives_transient_errors_and_stops() -> None:
    stop = threading.Event()
    log = EventLog("test", stream=io.StringIO(), keep=20)
    seen: list[int] = []

    def step() -> float:
        seen.append(len(seen))
        if len(seen) <= 2:
            raise TimeoutError("rpc timed out")
        if len(seen) >= 4:
            stop.set()
        return 0.0

    run_loop(step, stop=stop, log=log, backoff=Backoff(initial=0.01))
    assert len(seen) == 4
    assert sum("poll failed (rpc timed out)" in line for line in log.lines) == 2
    assert any(line.endswith("recovered") for line in log.lines)


def _market_receipt(**changes: object) -> MarketReceipt:
    fields = dict(
        chain_id=1337,
        market=MARKET,
        registry="0x" + "01" * 20,
        request_id=3,
        model="digits-cnn",
        version_id="0x" + "11" * 32,
        mode="optimistic",
        requester="0x" + "02" * 20,
        provider="0x" + "03" * 20,
        signature="0x" + "00" * 65,
        tx_hash="0x" + "55" * 32,
        block_number=9,
        block_hash="0x" + "66" * 32,
        input=[1, -2],
        input_hash="0x" + "22" * 32,
        output=[5, -7],
        output_hash="0x" + "33" * 32,
        trace_root="0x" + "44" * 32,
        max_fee=10,
        fee=None,
    )
    fields.update(changes)
    return MarketReceipt(**fields)  # type: ignore[arg-type]


def test_market_receipt_round_trips_and_is_told_apart(tmp_path: Path) -> None:
    receipt = _market_receipt()
    assert receipt.pending and receipt.format == MARKET_RECEIPT_FORMAT
    path = tmp_path / "r.json"
    receipt.save(path)
    loaded = load_receipt(path)
    assert loaded == receipt
    final = _market_receipt(finalise_tx="0x" + "77" * 32, fee=4)
    final.save(path)
    assert not load_receipt(path).pending  # type: ignore[union-attr]


def test_market_receipt_refuses_missing_unknown_and_mistyped_fields() -> None:
    data = _market_receipt().to_json()
    with pytest.raises(ReceiptError, match="lacks field"):
        MarketReceipt.from_json({k: v for k, v in data.items() if k != "signature"})
    with pytest.raises(ReceiptError, match="unknown field"):
        MarketReceipt.from_json({**data, "extra": 1})
    with pytest.raises(ReceiptError, match="request_id"):
        MarketReceipt.from_json({**data, "request_id": "3"})


def test_batch_signatures_travel_in_order_and_come_back_per_result() -> None:
    from aicommons.market.commitments import (
        UNSIGNED,
        BatchCommitment,
        CommitmentError,
        PostedResult,
    )
    from aicommons.market.records import MarketEvent, batch_results

    results = [PostedResult(i, bytes([i]) * 32, bytes([i, i + 1])) for i in (1, 2, 3)]
    batch = BatchCommitment(results)
    signatures = [bytes([i]) * 65 for i in (7, 8, 9)]
    ids, roots, outputs, sizes, packed = batch.post_args(signatures)
    assert packed == b"".join(signatures) and batch.post_args()[4] == UNSIGNED * 3
    with pytest.raises(CommitmentError, match="2 signatures"):
        batch.post_args(signatures[:2])
    with pytest.raises(CommitmentError, match="65 bytes"):
        batch.post_args([b"\x01" * 64] * 3)
    args = {"batch_id": 4, "provider": "0x" + "03" * 20, "root": batch.root, "window_ends": 99}
    args |= {"request_ids": ids, "trace_roots": roots, "outputs": outputs}
    args |= {"output_sizes": sizes, "signatures": packed}
    posted = batch_results(MarketEvent("BatchPosted", args, 10, 0, "0x" + "55" * 32))
    assert [p.signature for p in posted] == ["0x" + s.hex() for s in signatures]
    assert [p.request_id for p in posted] == [1, 2, 3]
    assert posted[1].output == bytes([2, 3]) and posted[1].siblings == tuple(
        batch.proof(1).siblings
    )
