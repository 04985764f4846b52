"""The explorer's pure helpers: exact token amounts, per-day series with empty days, and the
parsers that refuse malformed ids and uploads before any lookup."""

from __future__ import annotations

import pytest

from aicommons.explorer.errors import BadRequest, PayloadTooLarge
from aicommons.explorer.store import id_columns
from aicommons.explorer.views import (
    UPLOAD_MAX_BYTES,
    _days_series,
    format_units,
    parse_hex32,
    parse_numeric_id,
    parse_receipt_upload,
)


def test_format_units_is_exact() -> None:
    assert format_units(10**16) == "0.01"
    assert format_units(1234 * 10**18 + 1) == "1,234.000000000000000001"
    assert format_units(1234 * 10**18, grouped=False) == "1234"
    assert format_units(0) == "0"


def test_days_series_fills_empty_days() -> None:
    series = _days_series({"2026-01-01": 1, "2026-01-03": 2}, {"2026-01-03": 10**16})
    assert series["days"] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert series["counts"] == [1, 0, 2]
    assert series["fees_aic"] == ["0", "0", "0.01"]


def test_parsers_refuse_malformed_ids() -> None:
    assert parse_hex32("0x" + "AB" * 32, what="id") == "0x" + "ab" * 32
    for bad in ("0x" + "ab" * 31, "ab" * 32, "0x" + "zz" * 32, ""):
        with pytest.raises(BadRequest, match="64 hex digits"):
            parse_hex32(bad, what="id")
    assert parse_numeric_id("0x10", what="request id") == "16"
    assert parse_numeric_id("16", what="request id") == "16"
    with pytest.raises(BadRequest, match="256 bits"):
        parse_numeric_id("9" * 78, what="request id")
    with pytest.raises(BadRequest, match="decimal or 0x hex"):
        parse_numeric_id("-1", what="request id")


def test_upload_parser_refuses_by_size_and_shape() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_receipt_upload(b" " * (UPLOAD_MAX_BYTES + 1))
    with pytest.raises(BadRequest, match="nested"):
        parse_receipt_upload(b"[" * 10_000 + b"]" * 10_000)
    with pytest.raises(BadRequest, match="no receipt"):
        parse_receipt_upload(b"  \n")


def test_id_columns_come_from_arguments_by_name() -> None:
    columns = id_columns({"version_id": "0xAB", "caller": "0xC0FFEE", "request_id": 7})
    assert (columns["version_id"], columns["request_id"], columns["account"]) == (
        "0xab",
        "7",
        "0xc0ffee",
    )
    assert columns["proposal_id"] is None


def test_a_log_the_abi_cannot_decode_is_kept_raw() -> None:
    """A deployed contract logging an event differently from the compiled source (here: one
    indexed argument fewer) is stored raw with the reason; it does not stop the indexer."""
    from eth_utils.abi import event_abi_to_log_topic
    from web3 import Web3

    from aicommons.explorer.indexer import decode_log, decoders_for

    abi = {
        "type": "event",
        "name": "MaintainerAdded",
        "inputs": [
            {"name": "model_id", "type": "bytes32", "indexed": True},
            {"name": "account", "type": "address", "indexed": True},
            {"name": "by", "type": "address", "indexed": True},
        ],
    }
    topic0 = event_abi_to_log_topic(abi)
    address = "0x" + "12" * 20
    log = {
        "address": address,
        "topics": [topic0, b"\x01" * 32, b"\x00" * 12 + b"\x02" * 20],
        "data": b"\x00" * 12 + b"\x03" * 20,
        "blockNumber": 5,
        "blockHash": b"\x05" * 32,
        "transactionHash": b"\x06" * 32,
        "logIndex": 0,
    }
    event = decode_log(
        decoders_for({"ModelRegistry": [abi]}), {address: "ModelRegistry"}, Web3().codec, log
    )
    assert event.event == "MaintainerAdded" and "topics for 3 indexed" in event.args["undecoded"]
    assert event.args["topics"][1] == "0x" + "01" * 32
    full = {**log, "topics": [*log["topics"], b"\x00" * 12 + b"\x03" * 20], "data": b""}
    decoded = decode_log(
        decoders_for({"ModelRegistry": [abi]}), {address: "ModelRegistry"}, Web3().codec, full
    )
    assert decoded.args["by"] == Web3.to_checksum_address("0x" + "03" * 20)
