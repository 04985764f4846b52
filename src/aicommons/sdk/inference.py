"""`client.inference`: exact inference on the on-chain executor, paid and logged as a receipt,
and text embeddings of registered text models run locally by the same exact runtime.

It checks the version, readiness, input and fee before sending, so a request the executor would
refuse costs nothing; a paid inference always comes back as a `Receipt`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aicommons.chain.executor import encode_input
from aicommons.runtime.text import Embeddings, TextModel
from aicommons.sdk._service import Service
from aicommons.sdk.errors import ClientError
from aicommons.sdk.receipt import Receipt, keep_receipt
from aicommons.sdk.types import VersionInfo, hex32


class InferenceService(Service):
    """`infer` (a transaction, with a receipt) and `predict` (the same result as a free view)."""

    def _prepare(self, reference: str, x: np.ndarray) -> tuple[VersionInfo, list[int]]:
        version = self._client.registry.resolve(reference)
        if version.deprecated:
            raise ClientError(f"version {version.version_id} of {version.model} is deprecated")
        if not version.onchain_ready:
            raise ClientError(
                f"version {version.version_id} of {version.model} is not uploaded to the "
                "on-chain executor; publish it with --onchain"
            )
        package = self._client.storage.fetch_package(version)
        # Integers are taken as the int8 values they hold, floats are quantised: the runtime's
        # one rule, so a receipt's own committed input fed back gives the same result.
        values = package.prepare_input(x)
        if values.shape[0] != 1:
            raise ClientError(
                f"on-chain inference takes one sample, got a batch of {values.shape[0]}"
            )
        return version, [int(v) for v in values.reshape(-1)]

    def embed(self, reference: str, texts: Sequence[str]) -> Embeddings:
        """Embed `texts` with a registered text model (e.g. all-MiniLM-L6-v2), locally.

        The package comes from storage (or the local cache) verified against the registered
        version id, is tokenised with the tokenizer it commits and run by the exact integer
        runtime, so any re-executor gets the same bytes; `Embeddings.truncated` names every text
        cut to the package's length. Free: no transaction, no receipt (the compute market
        serves paid, verifiable requests).
        """
        version = self._client.registry.resolve(reference)
        if version.deprecated:
            raise ClientError(f"version {version.version_id} of {version.model} is deprecated")
        return TextModel(self._client.storage.fetch_package(version)).embed(texts)

    def predict(self, reference: str, x: np.ndarray) -> tuple[list[int], int]:
        """The executor's output and label for one sample, as a free call: no fee, no receipt."""
        version, flat = self._prepare(reference, x)
        executor = self._contract("OnchainExecutor")
        output, label = executor.functions.predict(*version.key, encode_input(flat)).call()
        return [int(v) for v in output], int(label)

    def infer(self, reference: str, x: np.ndarray) -> Receipt:
        """Run one sample on-chain through the executor, paying the fee; return its receipt.

        `x` holds integers (taken as the int8 values they are; out-of-range ones are refused)
        or floats (quantised with the package's input scale). The
        receipt is kept under `$AIC_HOME/receipts` (`receipt.kept_receipt_path`) as soon as the
        transaction is mined, before anything else can fail: a paid receipt is never lost.
        """
        from web3.exceptions import ContractLogicError
        from web3.logs import DISCARD

        from aicommons.chain.transact import revert_reason

        account = self._require_account()
        version, flat = self._prepare(reference, x)
        executor = self._contract("OnchainExecutor")
        if version.fee:
            tokens = self._client.tokens
            balance = tokens.balance(account.address)
            if balance < version.fee:
                raise ClientError(
                    f"insufficient CommonsToken balance for the fee: have {balance}, "
                    f"need {version.fee}"
                )
            if tokens.allowance(account.address, executor.address) < version.fee:
                tokens.approve(executor.address, version.fee)
        try:
            call = executor.functions.infer(*version.key, encode_input(flat))
            receipt = self._transact(call, f"inference on {version.model}")
        except ContractLogicError as exc:
            raise ClientError(f"inference reverted: {revert_reason(exc)}") from None
        # DISCARD: the token's Approval/Transfer logs in the same receipt are not Inference
        # events; web3 would warn about each one, which a user can do nothing about.
        events = executor.events.Inference().process_receipt(receipt, errors=DISCARD)
        if len(events) != 1:
            raise ClientError("the inference transaction logged no Inference event")
        args = events[0]["args"]
        paid = Receipt(
            chain_id=self._client.chain_id,
            executor=executor.address,
            registry=self.deployment.address("ModelRegistry"),
            tx_hash=hex32(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"]),
            block_hash=hex32(receipt["blockHash"]),
            model=version.model,
            version_id=version.version_id,
            caller=account.address,
            input=flat,
            input_hash=hex32(args["input_hash"]),
            output=[int(v) for v in args["output"]],
            output_hash=hex32(args["output_hash"]),
            label=int(args["label"]),
            fee=int(args["fee"]),
        )
        keep_receipt(paid)
        return paid
