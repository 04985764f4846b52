"""Sign, send and wait for one contract call over JSON-RPC: the one way aicommons transacts.

Checks what the node can tell before signing (a call that would revert, gas the account cannot
pay) so a doomed request costs nothing; never sends a transaction it could not sign or price.
"""

from __future__ import annotations

from typing import Any

from aicommons.chain.errors import TransactionFailed

RECEIPT_TIMEOUT_S = 300
"""A heavy transaction (a weights upload) on a slow local chain can take minutes to mine."""

ESTIMATE_MARGIN_GAS = 50_000
"""Added to a node's gas estimate. A node estimates against the latest block, at its
timestamp; the transaction runs in a later block. Code whose storage writes depend on the time
then costs more than estimated: a votes checkpoint written in the latest block is overwritten
in the estimate but appended (a fresh storage slot, 20 000 gas more) when mined, for each of a
transfer's two delegates — hardhat's node estimates exactly so, and a bare estimate ran out of
gas. Only gas used is paid; the limit just has to cover the later block."""


def with_margin(estimate: int, block_gas_limit: int) -> int:
    """The gas limit for a call estimated at `estimate`: + 10 % + ESTIMATE_MARGIN_GAS, at most
    the block's gas limit."""
    return min(estimate + estimate // 10 + ESTIMATE_MARGIN_GAS, block_gas_limit)


def revert_reason(exc: Exception) -> str:
    """The reason of a web3 ContractLogicError, without web3's "execution reverted" prefix."""
    message = str(exc.args[0]) if exc.args else str(exc)
    return message.removeprefix("execution reverted: ").strip() or "reverted"


def send_call(w3: Any, account: Any, function: Any, what: str, *, gas: int | None = None) -> Any:
    """Send `function` (a bound web3 contract function) from `account`; return the receipt.

    `account` is an eth-account `LocalAccount` (signed here) or an address the node unlocks.
    `what` names the action in error messages ("publishing version 0x…"). `gas` sets the gas
    limit instead of estimating it: the call is still tried once first (so a doomed call is
    refused with its reason), but a node's estimate — a binary search that runs the call some
    25 times, seconds for a heavy call on a Python EVM — is skipped. Without `gas`, the limit is
    the node's estimate `with_margin`.
    """
    from web3.exceptions import ContractLogicError

    sender = getattr(account, "address", account)
    fields = {
        "from": sender,
        "nonce": w3.eth.get_transaction_count(sender, "pending"),
        "chainId": w3.eth.chain_id,
    }
    try:
        if gas is not None:
            function.call({"from": sender, "gas": gas})
            fields["gas"] = gas
        else:
            estimate = int(function.estimate_gas({"from": sender}))
            fields["gas"] = with_margin(estimate, int(w3.eth.get_block("latest")["gasLimit"]))
        tx = function.build_transaction(fields)
    except ContractLogicError as exc:
        raise TransactionFailed(f"{what} would revert: {revert_reason(exc)}") from None
    balance = w3.eth.get_balance(sender)
    cost = int(tx["gas"]) * int(tx.get("maxFeePerGas", tx.get("gasPrice", 0)))
    if balance < cost + int(tx.get("value", 0)):
        raise TransactionFailed(f"{what}: account {sender} has {balance} wei, needs up to {cost}")
    if hasattr(account, "sign_transaction"):
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    else:
        tx_hash = w3.eth.send_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
    if receipt["status"] != 1:
        raise TransactionFailed(f"{what} reverted in transaction 0x{bytes(tx_hash).hex()}")
    return receipt
