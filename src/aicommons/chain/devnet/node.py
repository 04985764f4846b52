"""The devnet chain itself: a py-evm Prague chain that mines one block per transaction and
commits each block durably (SQLite) before the transaction hash is handed back.

It never serves a state that is not on disk and never keeps a rejected transaction. Writers
(mining) take one lock; readers (queries, eth_call) take none and only read committed data at a
published head, so a long call or a long transaction never holds up an honest query. Block
time is the wall clock at mining plus a persisted offset (evm_increaseTime), never ahead of it
otherwise (blocks in one second share its timestamp); snapshots and reverts
(evm_snapshot, evm_revert) restore the database exactly and survive restarts.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth._utils.address import generate_contract_address
from eth.abc import (
    BlockAPI,
    BlockHeaderAPI,
    BlockPersistResult,
    ReceiptAPI,
    SignedTransactionAPI,
    StateAPI,
)
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.exceptions import HeaderNotFound, Revert, TransactionNotFound, VMError
from eth.vm.forks import PragueVM
from eth.vm.spoof import SpoofTransaction
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_hash.auto import keccak as auto_keccak
from eth_utils import ValidationError as EthUtilsValidationError
from eth_utils import to_canonical_address
from lru import LRU

from aicommons.chain.devnet.accounts import DEV_ACCOUNT_BALANCE_WEI, DEV_ACCOUNTS
from aicommons.chain.devnet.store import CommittedView, DevnetDataError, SqliteKeyValueStore
from aicommons.chain.errors import (
    DevnetError,
    DevnetStartError,
    InvalidParams,
    InvalidTransaction,
)

CHAIN_ID = 1337
BLOCK_GAS_LIMIT = 30_000_000
DEFAULT_RPC_GAS_CAP = BLOCK_GAS_LIMIT
"""Most gas one eth_call or eth_estimateGas may burn (geth: --rpc.gascap); a request asking for
more, or for nothing, gets this much. Lower it with `aic devnet --rpc-gas-cap`."""
MIN_RPC_GAS_CAP = 21_000
# Same starting point as hardhat and geth --dev, so fee logic in clients behaves the same.
GENESIS_BASE_FEE_WEI = 1_000_000_000
DATABASE_FILE_NAME = "chain.sqlite3"
MAX_TIMESTAMP = 2**64 - 1
"""Block timestamps are uint64 in the header."""
_TIME_OFFSET = "time_offset"
_NEXT_TIMESTAMP = "next_timestamp"
ZERO_ADDRESS = b"\x00" * 20
_RECENT_BLOCKS_CACHED = 2048


def prefer_native_keccak() -> None:
    """Make eth-hash use the C keccak (safe-pysha3, ~8x faster per call than pycryptodome's
    ctypes binding) for this process. Hashing trie nodes is a tenth of the devnet's mining time.
    Both backends compute the same function, so this changes speed only."""
    try:
        from eth_hash.backends.pysha3 import backend as native_backend
    except ImportError:
        return
    auto_keccak.hasher = native_backend.keccak256
    auto_keccak.preimage = native_backend.preimage


_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string), what `assert x, "msg"` emits


def revert_reason(revert_data: bytes) -> str | None:
    """The message of an Error(string) revert (geth puts it in the error message), else None."""
    if not revert_data.startswith(_ERROR_STRING_SELECTOR):
        return None
    try:
        (reason,) = abi_decode(["string"], revert_data[4:])
    except Exception:  # malformed payloads are just reported as raw data
        return None
    return str(reason)


class ExecutionReverted(DevnetError):
    """An eth_call or eth_estimateGas that reverted; `data` carries the revert bytes (hex)."""

    rpc_code = 3

    def __init__(self, revert_data: bytes) -> None:
        reason = revert_reason(revert_data)
        message = "execution reverted" if reason is None else f"execution reverted: {reason}"
        super().__init__(message, "0x" + revert_data.hex())
        self.revert_data = revert_data


class _DevnetPragueVM(PragueVM):
    """Prague, except that a block may share its parent's timestamp: the devnet mines a block
    per transaction, so strictly later timestamps would run the chain clock ahead of the wall
    clock by one second per extra block in a second (hardhat's `allowBlocksWithSameTimestamp`)."""

    @classmethod
    def validate_header(cls, header: BlockHeaderAPI, parent_header: BlockHeaderAPI) -> None:
        if parent_header is not None and header.timestamp == parent_header.timestamp:
            # Only py-evm's "strictly later" rule reads the parent's timestamp here.
            parent_header = parent_header.copy(timestamp=parent_header.timestamp - 1)
        super().validate_header(header, parent_header)


class _DevnetMiningChain(MiningChain):
    vm_configuration = ((0, _DevnetPragueVM),)
    chain_id = CHAIN_ID

    def create_header_from_parent(
        self, parent_header: BlockHeaderAPI, **header_params: Any
    ) -> BlockHeaderAPI:
        # py-evm's default gas limit rule shrinks the limit after every near-empty block; a dev
        # chain keeps a constant limit like hardhat does.
        header_params.setdefault("gas_limit", parent_header.gas_limit)
        return super().create_header_from_parent(parent_header, **header_params)

    def persist_block(self, block: BlockAPI, perform_validation: bool = True) -> BlockPersistResult:
        # The devnet only ever persists blocks it has just built and executed itself, on a chain
        # with no forks; py-evm's generic path would re-validate the block and read it back from
        # the database (a tenth of the mining time) to report reorgs that cannot happen here.
        del perform_validation
        new_canonical_hashes, _ = self.chaindb.persist_block(block)
        return BlockPersistResult(
            imported_block=block,
            new_canonical_blocks=(block,) if block.hash in new_canonical_hashes else (),
            old_canonical_blocks=(),
        )


@dataclass(frozen=True)
class CallRequest:
    """The fields of an eth_call / eth_estimateGas / eth_sendTransaction request, decoded."""

    sender: bytes
    to: bytes
    data: bytes
    value: int
    gas: int | None
    gas_price: int | None
    max_fee_per_gas: int | None
    max_priority_fee_per_gas: int | None
    nonce: int | None


@dataclass(frozen=True)
class MinedTransaction:
    """A transaction with everything needed to describe it and its receipt over JSON-RPC."""

    transaction: SignedTransactionAPI
    header: BlockHeaderAPI
    index: int
    receipt: ReceiptAPI
    gas_used: int
    first_log_index: int


class _ReadGate:
    """Readers share it; a writer that removes data (closing the database) takes it alone and
    waits for the readers in flight. Mining does not take it: it only adds data, and readers
    look no further than the published head. Re-entrant per thread, so a reader that calls
    another reader never waits behind a writer that waits for it."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._exclusive = False
        self._depth = threading.local()

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        depth = getattr(self._depth, "value", 0)
        if depth == 0:
            with self._condition:
                while self._exclusive:
                    self._condition.wait()
                self._readers += 1
        self._depth.value = depth + 1
        try:
            yield
        finally:
            self._depth.value = depth
            if depth == 0:
                with self._condition:
                    self._readers -= 1
                    if self._readers == 0:
                        self._condition.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._condition:
            while self._exclusive:
                self._condition.wait()
            self._exclusive = True
            while self._readers:
                self._condition.wait()
        try:
            yield
        finally:
            with self._condition:
                self._exclusive = False
                self._condition.notify_all()


class DevnetChain:
    """The persistent chain: open (or create) it in `data_dir`, then send and query.

    All methods are safe to call from several threads. Writers (sending transactions) serialise
    on one lock, which is also what makes "one block per transaction" well-defined. Readers
    take no chain lock: they read committed data through a read-only view at a header no newer
    than `head()`, which is published only once its block is durable.
    `rpc_gas_cap` bounds the gas of eth_call and eth_estimateGas (never above the block limit).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        fsync_every_block: bool = False,
        rpc_gas_cap: int = DEFAULT_RPC_GAS_CAP,
    ) -> None:
        if rpc_gas_cap < MIN_RPC_GAS_CAP:
            raise DevnetStartError(
                f"rpc gas cap {rpc_gas_cap} is below the {MIN_RPC_GAS_CAP} a transfer needs"
            )
        self.rpc_gas_cap = rpc_gas_cap
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DevnetDataError(f"cannot create devnet data dir {data_dir}: {exc}") from None
        database_path = data_dir / DATABASE_FILE_NAME
        if database_path.exists() and not _is_writable(database_path):
            raise DevnetDataError(f"devnet database {database_path} is not writable")
        if not _is_writable(data_dir):
            raise DevnetDataError(f"devnet data dir {data_dir} is not writable")
        self.data_dir = data_dir
        prefer_native_keccak()
        self._store = SqliteKeyValueStore(database_path)
        self._store.check_integrity()
        self._store.set_durability(fsync_every_block)
        self._write_lock = threading.RLock()
        self._gate = _ReadGate()
        # Mined blocks never change (no reorgs on a one-node chain), so decoded blocks and
        # receipts can be cached; clients ask for the block and receipt they just produced.
        self._recent_blocks: LRU = LRU(_RECENT_BLOCKS_CACHED)
        self._recent_receipts: LRU = LRU(_RECENT_BLOCKS_CACHED)
        self._recent_transactions: LRU = LRU(_RECENT_BLOCKS_CACHED)
        self._dev_keys = {
            to_canonical_address(account.address): account.private_key for account in DEV_ACCOUNTS
        }
        self._ensure_genesis()
        self._load_committed_state()

    def _load_committed_state(self) -> None:
        """(Re)build everything kept in memory from the committed database: at open, and after
        a revert replaced what the database holds."""
        try:
            self._chain = _DevnetMiningChain(AtomicDB(self._store))
        except (HeaderNotFound, KeyError) as exc:
            raise DevnetDataError(
                f"devnet database in {self.data_dir} is incomplete: {exc!r}"
            ) from None
        # Readers get their own chain object over committed data only; py-evm's chain objects
        # keep the miner's pending header, which readers must never see or disturb.
        self._reader = _DevnetMiningChain(AtomicDB(CommittedView(self._store)))
        self._recent_blocks.clear()
        self._recent_receipts.clear()
        self._recent_transactions.clear()
        self._time_offset = int(self._store.read_meta(_TIME_OFFSET) or 0)
        next_timestamp = self._store.read_meta(_NEXT_TIMESTAMP)
        self._next_timestamp = None if next_timestamp is None else int(next_timestamp)
        self._head = self._chain.get_canonical_head()

    def _ensure_genesis(self) -> None:
        """Check the stored chain id, or write the genesis block of a new chain."""
        stored_chain_id = self._store.read_meta("chain_id")
        if stored_chain_id is not None and int(stored_chain_id) != CHAIN_ID:
            raise DevnetDataError(
                f"devnet data dir {self.data_dir} holds chain {stored_chain_id}, not {CHAIN_ID}"
            )
        if stored_chain_id is not None:
            return
        genesis_state = {
            to_canonical_address(account.address): {
                "balance": DEV_ACCOUNT_BALANCE_WEI,
                "nonce": 0,
                "code": b"",
                "storage": {},
            }
            for account in DEV_ACCOUNTS
        }
        genesis_params = {
            "difficulty": 0,
            "gas_limit": BLOCK_GAS_LIMIT,
            "timestamp": int(time.time()),
            "base_fee_per_gas": GENESIS_BASE_FEE_WEI,
        }
        _DevnetMiningChain.from_genesis(AtomicDB(self._store), genesis_params, genesis_state)
        self._store.commit()
        # Written last: a crash before this line leaves a directory that is simply re-created.
        self._store.write_meta("chain_id", str(CHAIN_ID))

    def close(self) -> None:
        """Release the database file (after the readers in flight are done)."""
        with self._write_lock, self._gate.exclusive():
            self._store.close()

    def reading(self) -> contextlib.AbstractContextManager[None]:
        """Hold while answering one request that reads several times, so the database stays
        open between its reads. Never hold it while waiting for a write."""
        return self._gate.shared()

    def _publish(self, header: BlockHeaderAPI) -> None:
        # One attribute store: readers see the old head or the new one, never a half.
        self._head = header

    # -- time -----------------------------------------------------------------------------------

    def next_block_timestamp(self, parent: BlockHeaderAPI) -> int:
        """The timestamp of the block after `parent`, taken when that block is mined (a block
        carries its own time, never its parent's): the one set by evm_setNextBlockTimestamp,
        else wall clock plus the offset (evm_increaseTime), never before `parent`. Blocks mined
        in the same second share its timestamp, so the chain clock never runs ahead of the
        wall clock except by the offset."""
        if self._next_timestamp is not None and parent.block_number == self._head.block_number:
            return self._next_timestamp
        return max(int(time.time()) + self._time_offset, parent.timestamp)

    def increase_time(self, seconds: int) -> int:
        """Move the clock of future blocks `seconds` ahead (hardhat's evm_increaseTime);
        returns the total offset from the wall clock in seconds."""
        with self._write_lock:
            offset = self._time_offset + seconds
            if int(time.time()) + offset > MAX_TIMESTAMP:
                raise InvalidParams(f"time offset {offset} s would pass the largest timestamp")
            self._store.stage_meta(_TIME_OFFSET, str(offset))
            self._store.commit()
            self._time_offset = offset
            return offset

    def set_next_block_timestamp(self, timestamp: int) -> int:
        """Give the next block exactly `timestamp` (later blocks continue from it, as hardhat
        does); it must be after the latest block's."""
        with self._write_lock:
            self._check_next_timestamp(timestamp)
            self._store.stage_meta(_NEXT_TIMESTAMP, str(timestamp))
            self._store.commit()
            self._next_timestamp = timestamp
            return timestamp

    def _check_next_timestamp(self, timestamp: int) -> None:
        latest = self._head.timestamp
        if timestamp > MAX_TIMESTAMP:
            raise InvalidParams(f"timestamp {timestamp} does not fit 64 bits")
        if timestamp == latest:
            raise DevnetError(f"Timestamp {timestamp} is equal to the previous block's timestamp")
        if timestamp < latest:
            raise DevnetError(
                f"Timestamp {timestamp} is lower than the previous block's timestamp {latest}"
            )

    # -- snapshots ------------------------------------------------------------------------------

    def snapshot(self) -> int:
        """Remember the chain as it is now (blocks, state, receipts, logs, clock); returns the
        snapshot id (1, 2, ...; never reused, kept across restarts)."""
        with self._write_lock:
            return self._store.open_snapshot()

    def revert(self, snapshot_id: int) -> bool:
        """Rewind to snapshot `snapshot_id`: later blocks, their transactions, receipts and
        logs are gone and the clock is as it was; that snapshot and every later one are
        consumed. False (and no change) if there is no such snapshot."""
        with self._write_lock, self._gate.exclusive():
            if not self._store.revert_to_snapshot(snapshot_id):
                return False
            self._load_committed_state()
            return True

    # -- mining ---------------------------------------------------------------------------------

    def _mine(
        self, transactions: list[SignedTransactionAPI]
    ) -> tuple[BlockAPI, tuple[ReceiptAPI, ...]]:
        """Mine `transactions` in one new block on the head and commit it (write lock held)."""
        parent = self._head
        timestamp = self.next_block_timestamp(parent)
        self._chain.header = self._chain.create_header_from_parent(parent, timestamp=timestamp)
        try:
            import_result, receipts, _ = self._chain.mine_all(transactions)
        except (EthUtilsValidationError, VMError) as exc:
            raise _node_style_rejection(str(exc)) from None
        if self._next_timestamp is not None:
            # As hardhat: the clock continues from a timestamp that was set explicitly.
            offset = timestamp - int(time.time())
            self._store.stage_meta(_NEXT_TIMESTAMP, None)
            self._store.stage_meta(_TIME_OFFSET, str(offset))
        else:
            offset = self._time_offset
        self._store.commit()
        self._time_offset, self._next_timestamp = offset, None
        block = import_result.imported_block
        self._recent_blocks[block.number] = block
        self._recent_receipts[block.hash] = tuple(receipts)
        return block, tuple(receipts)

    def mine(self, timestamp: int | None = None) -> BlockHeaderAPI:
        """Mine one empty block (evm_mine), at `timestamp` if given; returns its header."""
        with self._write_lock:
            pending = self._next_timestamp
            if timestamp is not None:
                self._check_next_timestamp(timestamp)
                self._next_timestamp = timestamp
            try:
                block, _ = self._mine([])
            except BaseException:
                self._next_timestamp = pending  # the one-off timestamp was not used
                raise
            self._publish(block.header)
            return block.header

    # -- blocks ---------------------------------------------------------------------------------

    def head(self) -> BlockHeaderAPI:
        """The header of the latest durable block; takes no lock, so it answers at once even
        while a call runs or a block is mined."""
        return self._head

    def header_by_tag(self, tag: str | int) -> BlockHeaderAPI:
        """Resolve a block number or tag (latest, pending, safe, finalized, earliest)."""
        head = self._head
        if isinstance(tag, int):
            if tag > head.block_number:
                raise InvalidParams(f"block {tag} not found")
            if tag == head.block_number:
                return head
            with self._gate.shared():
                return self._reader.get_canonical_block_header_by_number(tag)
        if tag in ("latest", "pending", "safe", "finalized"):
            # Automine: nothing is ever pending, and a single-node dev chain is final at once.
            return head
        if tag == "earliest":
            return self.header_by_tag(0)
        raise InvalidParams(f"unknown block tag {tag!r}")

    def block_by_number(self, number: int) -> BlockAPI | None:
        """The canonical block at `number`, or None past the head."""
        if number > self._head.block_number:
            return None
        cached = self._recent_blocks.get(number)
        if cached is not None:
            return cached
        with self._gate.shared():
            try:
                block = self._reader.get_canonical_block_by_number(number)
            except HeaderNotFound:
                return None
        self._recent_blocks[number] = block
        return block

    def block_by_hash(self, block_hash: bytes) -> BlockAPI | None:
        """The canonical block with `block_hash`, or None if unknown."""
        with self._gate.shared():
            try:
                header = self._reader.get_block_header_by_hash(block_hash)
            except (HeaderNotFound, KeyError):
                return None
            block = self.block_by_number(header.block_number)
        return block if block is not None and block.hash == block_hash else None

    def receipts_of(self, block: BlockAPI) -> tuple[ReceiptAPI, ...]:
        """Every receipt of `block`, in transaction order."""
        cached = self._recent_receipts.get(block.hash)
        if cached is None:
            with self._gate.shared():
                cached = block.get_receipts(self._reader.chaindb)
            self._recent_receipts[block.hash] = cached
        return cached

    # -- accounts -------------------------------------------------------------------------------

    def _state_at(self, header: BlockHeaderAPI) -> StateAPI:
        return self._reader.get_vm(header).state

    def balance(self, address: bytes, header: BlockHeaderAPI) -> int:
        """Balance in wei of `address` after block `header`."""
        with self._gate.shared():
            return self._state_at(header).get_balance(address)

    def nonce(self, address: bytes, header: BlockHeaderAPI) -> int:
        """Transaction count of `address` after block `header`."""
        with self._gate.shared():
            return self._state_at(header).get_nonce(address)

    def code(self, address: bytes, header: BlockHeaderAPI) -> bytes:
        """Deployed bytecode at `address` after block `header`."""
        with self._gate.shared():
            return self._state_at(header).get_code(address)

    def storage_at(self, address: bytes, slot: int, header: BlockHeaderAPI) -> int:
        """Storage word `slot` of `address` after block `header`."""
        with self._gate.shared():
            return self._state_at(header).get_storage(address, slot)

    # -- transactions ---------------------------------------------------------------------------

    def send_raw_transaction(self, raw_transaction: bytes) -> bytes:
        """Validate, execute and mine `raw_transaction` in its own block; return its hash only
        once that block is durable."""
        with self._write_lock:
            builder = self._chain.get_vm_class(self._chain.header).get_transaction_builder()
            try:
                transaction = builder.decode(raw_transaction)
            except Exception as exc:  # rlp/ssz decoders raise many unrelated types
                raise InvalidTransaction(f"invalid transaction: cannot decode ({exc})") from None
            if self._is_known(transaction.hash):
                return transaction.hash
            self._check_includable(transaction)
            block, receipts = self._mine([transaction])
            self._recent_transactions[transaction.hash] = describe_mined_transaction(
                block, receipts, 0
            )
            self._publish(block.header)
            return transaction.hash

    def send_transaction(self, request: CallRequest) -> bytes:
        """Sign `request` with the sender's development key (dev accounts only) and send it."""
        with self._write_lock:
            private_key = self._dev_keys.get(request.sender)
            if private_key is None:
                raise InvalidTransaction(
                    "unknown account: eth_sendTransaction only signs for the devnet's "
                    "development accounts"
                )
            head = self._head
            fields: dict[str, Any] = {
                "chainId": CHAIN_ID,
                "nonce": request.nonce
                if request.nonce is not None
                else self.nonce(request.sender, head),
                "value": request.value,
                "data": request.data,
            }
            if request.to != b"":
                fields["to"] = request.to
            if request.gas_price is not None:
                fields["gasPrice"] = request.gas_price
            else:
                priority = request.max_priority_fee_per_gas
                if priority is None:
                    priority = suggested_priority_fee()
                fields["maxPriorityFeePerGas"] = priority
                fields["maxFeePerGas"] = (
                    request.max_fee_per_gas
                    if request.max_fee_per_gas is not None
                    else 2 * self._chain.header.base_fee_per_gas + priority
                )
            fields["gas"] = request.gas if request.gas is not None else self.estimate_gas(request)
            signed = Account.sign_transaction(fields, private_key)
            return self.send_raw_transaction(bytes(signed.raw_transaction))

    def _is_known(self, transaction_hash: bytes) -> bool:
        try:
            self._chain.chaindb.get_transaction_index(transaction_hash)
        except TransactionNotFound:
            return False
        return True

    def _check_includable(self, transaction: SignedTransactionAPI) -> None:
        """The checks a node runs before accepting a transaction, with node-style messages."""
        chain_id = getattr(transaction, "chain_id", None)
        if chain_id is not None and chain_id != CHAIN_ID:
            raise InvalidTransaction(f"invalid chain id {chain_id}: this chain is {CHAIN_ID}")
        try:
            transaction.check_signature_validity()
            signer_recovered = len(transaction.sender) == 20
        except Exception:  # eth-keys raises BadSignature, ValidationError or ValueError
            signer_recovered = False
        if not signer_recovered:
            raise InvalidTransaction("invalid transaction signature")
        # Nonce and balance need the account state; py-evm checks them while mining the block
        # (reading the state once), and `_node_style_rejection` words its errors like geth.
        pending_header = self._chain.header
        if transaction.gas > pending_header.gas_limit:
            raise InvalidTransaction(
                f"gas {transaction.gas} exceeds the block gas limit {pending_header.gas_limit}"
            )
        if transaction.gas < transaction.intrinsic_gas:
            raise InvalidTransaction(
                f"intrinsic gas too low: need {transaction.intrinsic_gas}, tx has {transaction.gas}"
            )
        max_fee = transaction.max_fee_per_gas
        if max_fee < pending_header.base_fee_per_gas:
            raise InvalidTransaction(
                f"max fee per gas {max_fee} is below the block base fee "
                f"{pending_header.base_fee_per_gas}"
            )

    def mined_transaction(self, transaction_hash: bytes) -> MinedTransaction | None:
        """The mined transaction with `transaction_hash` and its receipt, or None if unknown."""
        cached = self._recent_transactions.get(transaction_hash)
        if cached is not None:
            return cached
        with self._gate.shared():
            try:
                block_number, index = self._reader.chaindb.get_transaction_index(transaction_hash)
            except TransactionNotFound:
                return None
            block = self.block_by_number(block_number)
            if block is None or index >= len(block.transactions):
                return None
            mined = describe_mined_transaction(block, self.receipts_of(block), index)
        self._recent_transactions[transaction_hash] = mined
        return mined

    # -- execution without mining ---------------------------------------------------------------

    def _pending_state(self, header: BlockHeaderAPI, timestamp: int | None = None) -> StateAPI:
        """A throw-away state after block `header`, in the context of the block that would
        follow it (the devnet's clock, so calls see evm_increaseTime; or `timestamp`), with no
        base fee: what py-evm's `in_costless_state` builds, but with our timestamp."""
        vm = self._reader.get_vm(header)
        context = vm.create_header_from_parent(
            header,
            coinbase=header.coinbase,
            gas_limit=header.gas_limit,
            timestamp=self.next_block_timestamp(header) if timestamp is None else timestamp,
        ).copy(base_fee_per_gas=0)
        ancestors = itertools.chain((header.hash,), vm.previous_hashes)
        return vm.build_state(vm.chaindb.db, context, vm.chain_context, ancestors)

    def gas_allowance(self, requested: int | None, header: BlockHeaderAPI) -> int:
        """The gas an eth_call / eth_estimateGas may use: what it asks for (everything, if it
        asks for nothing), never above the RPC gas cap or the block gas limit, like geth."""
        cap = min(self.rpc_gas_cap, header.gas_limit)
        return cap if requested is None else min(requested, cap)

    def _spoof(self, request: CallRequest, header: BlockHeaderAPI, gas: int) -> SpoofTransaction:
        vm = self._reader.get_vm(header)
        nonce = request.nonce if request.nonce is not None else self.nonce(request.sender, header)
        unsigned = vm.create_unsigned_transaction(
            nonce=nonce,
            gas_price=0,
            gas=gas,
            to=request.to,
            value=request.value,
            data=request.data,
        )
        return SpoofTransaction(unsigned, from_=request.sender)

    def call(self, request: CallRequest, header: BlockHeaderAPI) -> bytes:
        """Run `request` on the state after block `header` without mining; return its output.

        Its gas is capped by `gas_allowance`; it reads committed state only and holds no lock
        a writer or another reader waits for."""
        with self._gate.shared():
            transaction = self._spoof(request, header, self.gas_allowance(request.gas, header))
            try:
                computation = self._pending_state(header).costless_execute_transaction(transaction)
            except EthUtilsValidationError as exc:
                raise DevnetError(f"call rejected: {exc}") from None
        if computation.is_error:
            _raise_execution_error(computation.error, computation.output)
        return computation.output

    def estimate_gas(self, request: CallRequest, header: BlockHeaderAPI | None = None) -> int:
        """The smallest gas limit with which `request` succeeds, to within the intrinsic gas of
        a transfer (binary search, like geth), searched up to `gas_allowance` only.

        When the next block would share the head's second, the transaction may still be mined
        in the next second, and gas can depend on which (a vote checkpoint keyed by timestamp
        is updated in place within a second, pushed as a new slot in a new one): the estimate
        is then the larger of both, so it suffices either way."""
        at_header = header if header is not None else self._head
        allowance = self.gas_allowance(request.gas, at_header)
        following = self.next_block_timestamp(at_header)
        timestamps = [following]
        if following == at_header.timestamp and following < MAX_TIMESTAMP:
            timestamps.append(following + 1)
        with self._gate.shared():
            transaction = self._spoof(request, at_header, allowance)
            estimates: list[int] = []
            for index, timestamp in enumerate(timestamps):
                try:
                    state = self._pending_state(at_header, timestamp)
                    estimates.append(_smallest_sufficient_gas(state, transaction, allowance))
                except Revert as exc:
                    if index == 0:
                        raise ExecutionReverted(bytes(exc.args[0]) if exc.args else b"") from None
                except (VMError, EthUtilsValidationError) as exc:
                    if index == 0:
                        raise DevnetError(f"gas estimation failed: {exc}") from None
            return max(estimates)

    def pending_base_fee(self) -> int:
        """The base fee the next block will charge."""
        return self._chain.header.base_fee_per_gas

    def headers_between(self, first: int, last: int) -> Iterator[BlockHeaderAPI]:
        """Canonical headers `first..last` inclusive (clamped to the head)."""
        head_number = self._head.block_number
        for number in range(max(first, 0), min(last, head_number) + 1):
            with self._gate.shared():
                header = self._reader.get_canonical_block_header_by_number(number)
            yield header


_ESTIMATE_TOLERANCE = 21_000
"""py-evm's default: an estimate is at most one transfer's gas above the exact minimum, and
needs about ten executions instead of twenty-five."""


def _smallest_sufficient_gas(state: StateAPI, transaction: SpoofTransaction, allowance: int) -> int:
    """Binary search for the least gas (within `_ESTIMATE_TOLERANCE`) with which `transaction`
    does not fail, between the gas it burns at `allowance` and `allowance`; re-raises the error
    it fails with at `allowance` (a Revert keeps its data)."""

    def run(gas: int) -> tuple[VMError | None, int]:
        """The error (None on success) and the gas burnt before refunds, intrinsic included."""
        snapshot = state.snapshot()
        try:
            computation = state.apply_transaction(SpoofTransaction(transaction, gas=gas))
            error = computation.error if computation.is_error else None
            return error, transaction.intrinsic_gas + computation.get_gas_used()
        finally:
            state.revert(snapshot)

    def error_with(gas: int) -> VMError | None:
        return run(gas)[0]

    lowest = transaction.intrinsic_gas
    if lowest > allowance:
        raise DevnetError(f"gas required exceeds allowance ({allowance})")
    if error_with(lowest) is None:
        return lowest
    error, burnt = run(allowance)
    if error is not None:
        if isinstance(error, Revert):
            raise error
        raise DevnetError(f"gas required exceeds allowance ({allowance}): {error}")
    enough, too_little = allowance, lowest
    # Like geth: no limit below what the call burnt (before refunds) lets it finish, and the
    # burnt gas plus a call stipend, grossed up by 64/63 (what a call keeps back), usually
    # suffices. Tried once, that bound spares the search most of its executions (each a full
    # run of the call: seconds for a heavy one on this Python EVM); every limit returned has
    # still been run and succeeded.
    too_little = max(too_little, min(burnt - 1, allowance - 1))
    optimistic = (burnt + 2_300) * 64 // 63
    if too_little < optimistic < enough and error_with(optimistic) is None:
        enough = optimistic
    while enough - too_little > _ESTIMATE_TOLERANCE:
        middle = (enough + too_little) // 2
        if error_with(middle) is None:
            enough = middle
        else:
            too_little = middle
    return enough


def suggested_priority_fee() -> int:
    """The tip we suggest (eth_maxPriorityFeePerGas): 1 gwei, hardhat's default."""
    return 1_000_000_000


def describe_mined_transaction(
    block: BlockAPI, receipts: tuple[ReceiptAPI, ...], index: int
) -> MinedTransaction:
    """Pair a block's `index`-th transaction with its receipt, own gas use and first log index."""
    receipt = receipts[index]
    previous_cumulative = receipts[index - 1].gas_used if index > 0 else 0
    first_log_index = sum(len(r.logs) for r in receipts[:index])
    return MinedTransaction(
        transaction=block.transactions[index],
        header=block.header,
        index=index,
        receipt=receipt,
        gas_used=receipt.gas_used - previous_cumulative,
        first_log_index=first_log_index,
    )


def created_contract_address(mined: MinedTransaction) -> bytes | None:
    """The address a contract-creation transaction deployed to (None for calls)."""
    if mined.transaction.to != b"":
        return None
    return generate_contract_address(mined.transaction.sender, mined.transaction.nonce)


def effective_gas_price(transaction: SignedTransactionAPI, header: BlockHeaderAPI) -> int:
    """What the sender paid per gas: min(max fee, base fee + tip) for EIP-1559, else gas price."""
    base_fee = header.base_fee_per_gas
    tip = min(transaction.max_priority_fee_per_gas, transaction.max_fee_per_gas - base_fee)
    return base_fee + tip


_NONCE_MISMATCH = re.compile(r"Invalid transaction nonce: Expected (\d+), but got (\d+)")
_BALANCE_SHORT = re.compile(r"enough balance .*\(has (\d+), needs (\d+)\)")


def _node_style_rejection(py_evm_message: str) -> InvalidTransaction:
    """py-evm's validation message reworded the way geth and hardhat say it."""
    nonce = _NONCE_MISMATCH.search(py_evm_message)
    if nonce is not None:
        expected, got = int(nonce.group(1)), int(nonce.group(2))
        if got < expected:
            return InvalidTransaction(f"nonce too low: account has nonce {expected}, tx has {got}")
        return InvalidTransaction(
            f"nonce too high: account has nonce {expected}, tx has {got}"
            " (the devnet mines at once and keeps no queue)"
        )
    balance = _BALANCE_SHORT.search(py_evm_message)
    if balance is not None:
        return InvalidTransaction(
            "insufficient funds for gas * price + value: "
            f"balance {balance.group(1)}, need {balance.group(2)}"
        )
    return InvalidTransaction(f"invalid transaction: {py_evm_message}")


def _raise_execution_error(error: VMError, output: bytes) -> None:
    if isinstance(error, Revert):
        raise ExecutionReverted(bytes(output))
    raise DevnetError(f"execution failed: {type(error).__name__} {error}")


def _is_writable(path: Path) -> bool:
    return os.access(path, os.W_OK)
