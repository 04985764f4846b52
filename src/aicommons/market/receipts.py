"""The provider's signed statement of a market result: an EIP-712 typed `Result` (request id,
version id, input hash, output hash, trace root) under the market contract's domain.

Pure: builds, signs and recovers typed data with eth-account; never touches a chain or a file.
The domain binds a signature to one chain and one market, so it cannot be replayed elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aicommons.market.errors import SignatureError

DOMAIN_NAME = "aicommons ComputeMarket"
DOMAIN_VERSION = "1"
RESULT_TYPES: dict[str, list[dict[str, str]]] = {
    "Result": [
        {"name": "requestId", "type": "uint256"},
        {"name": "versionId", "type": "bytes32"},
        {"name": "inputHash", "type": "bytes32"},
        {"name": "outputHash", "type": "bytes32"},
        {"name": "traceRoot", "type": "bytes32"},
    ]
}
"""The typed struct a provider signs; field order is part of the format."""


def _bytes32(value: str | bytes, name: str) -> bytes:
    if isinstance(value, str):
        text = value.removeprefix("0x")
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise SignatureError(f"{name} {value!r} is not hex") from None
    if len(value) != 32:
        raise SignatureError(f"{name} must be 32 bytes, got {len(value)}")
    return bytes(value)


@dataclass(frozen=True)
class ResultStatement:
    """What a provider states about one request: the version it ran, on which input, with which
    output and trace commitment. Hashes as 0x-hex strings."""

    request_id: int
    version_id: str
    input_hash: str
    output_hash: str
    trace_root: str

    def message(self) -> dict[str, Any]:
        if self.request_id < 0 or self.request_id >= 2**256:
            raise SignatureError(f"request id {self.request_id} is outside uint256")
        return {
            "requestId": self.request_id,
            "versionId": _bytes32(self.version_id, "version_id"),
            "inputHash": _bytes32(self.input_hash, "input_hash"),
            "outputHash": _bytes32(self.output_hash, "output_hash"),
            "traceRoot": _bytes32(self.trace_root, "trace_root"),
        }


def result_domain(*, chain_id: int, market: str) -> dict[str, Any]:
    """The EIP-712 domain: this protocol and format version, one chain, one market contract."""
    from eth_utils import is_address, to_checksum_address

    if not is_address(market):
        raise SignatureError(f"market {market!r} is not an address")
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": int(chain_id),
        "verifyingContract": to_checksum_address(market),
    }


def _signable(statement: ResultStatement, domain: dict[str, Any]) -> Any:
    from eth_account.messages import encode_typed_data

    return encode_typed_data(
        domain_data=domain, message_types=RESULT_TYPES, message_data=statement.message()
    )


def sign_result(account: Any, statement: ResultStatement, *, chain_id: int, market: str) -> str:
    """The 65-byte signature (0x-hex) of `statement` by `account` (an eth-account LocalAccount)."""
    domain = result_domain(chain_id=chain_id, market=market)
    signed = account.sign_message(_signable(statement, domain))
    return "0x" + bytes(signed.signature).hex()


def result_signer(statement: ResultStatement, signature: str, *, chain_id: int, market: str) -> str:
    """The checksummed address that signed `statement` under this domain."""
    from eth_account import Account

    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise SignatureError("signature is not hex") from None
    if len(raw) != 65:
        raise SignatureError(f"a signature is 65 bytes, got {len(raw)}")
    domain = result_domain(chain_id=chain_id, market=market)
    try:
        return str(Account.recover_message(_signable(statement, domain), signature=raw))
    except Exception as exc:  # eth-keys raises several types for an unrecoverable signature
        raise SignatureError(f"signature does not recover: {exc}") from None
