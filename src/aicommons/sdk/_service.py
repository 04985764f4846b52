"""The base of the client's services: contract access and the one path every transaction takes.

A service is a concern hung off `Client` (`client.registry`, `client.inference`, ...). Services
reach each other only through the client, never by importing each other; they never sign or
send a transaction except through `_transact`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aicommons.chain.transact import send_call
from aicommons.sdk.errors import ClientError
from aicommons.sdk.types import decode_struct

if TYPE_CHECKING:
    from aicommons.sdk.client import Client
    from aicommons.sdk.deployment import Deployment


class Service:
    """One concern of the client; holds no state of its own beyond the client it serves."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @property
    def w3(self) -> Any:
        return self._client.w3

    @property
    def deployment(self) -> Deployment:
        return self._client.deployment

    def _contract(self, name: str) -> Any:
        """A web3 contract object for suite member `name` of this chain's deployment."""
        from aicommons.sdk.deployment import contract

        return contract(self.w3, self.deployment, name)

    def _call_struct(self, contract_name: str, function: str, *args: Any) -> dict[str, Any]:
        """Call a view and decode its result by the ABI's field names."""
        bound = getattr(self._contract(contract_name).functions, function)(*args)
        result = bound.call()
        outputs = bound.abi["outputs"]
        single = len(outputs) == 1 and outputs[0]["type"] != "tuple"
        return decode_struct(outputs, [result] if single else list(result))

    def _require_account(self) -> Any:
        account = self._client.account
        if account is None:
            raise ClientError("this operation sends a transaction: give an account")
        return account

    def _transact(self, function: Any, what: str, *, gas: int | None = None) -> Any:
        """Sign and send one contract call; return its receipt or raise with the revert reason.

        `gas` fixes the gas limit instead of asking the node to estimate it."""
        return send_call(self.w3, self._require_account(), function, what, gas=gas)
