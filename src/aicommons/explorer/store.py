"""The explorer's index: every decoded event of a deployment in one SQLite file under $AIC_HOME.

One row per log (block number and hash, transaction hash, log index, contract, event name, the
decoded arguments as JSON) plus columns for the ids pages look up (model, version, request,
proposal, dispute, challenge, storage root, account). Writes happen in one transaction per
batch together with the cursor, so a restart resumes exactly after the last committed batch and
a log is never stored twice. It never talks to the chain.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "2"

ID_COLUMNS = (
    "model_id",
    "version_id",
    "request_id",
    "proposal_id",
    "dispute_id",
    "challenge_id",
    "round_id",
    "root",
)
"""Event arguments copied into their own indexed column when an event has them, by name."""

ID_ALIASES: dict[str, tuple[str, ...]] = {"proposal_id": ("proposalId",)}
"""Other spellings of an id argument that fill the same column (the Governor follows OpenZeppelin's
camelCase `proposalId`)."""

ACCOUNT_ARGUMENTS = (
    "account",
    "provider",
    "caller",
    "requester",
    "owner",
    "publisher",
    "voter",
    "proposer",
    "contributor",
    "uploader",
    "challenger",
    "funder",
    "recipient",
)
"""Address arguments, in order of preference, that fill an event's `account` column."""

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    timestamp INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    block_number INTEGER NOT NULL,
    block_hash TEXT NOT NULL,
    tx_hash TEXT NOT NULL,
    log_index INTEGER NOT NULL,
    contract TEXT NOT NULL,
    event TEXT NOT NULL,
    args TEXT NOT NULL,
    {", ".join(f"{column} TEXT" for column in ID_COLUMNS)},
    account TEXT,
    UNIQUE (block_number, log_index)
);
CREATE INDEX IF NOT EXISTS events_by_name ON events (contract, event, block_number);
CREATE INDEX IF NOT EXISTS events_by_tx ON events (tx_hash);
CREATE INDEX IF NOT EXISTS events_by_account ON events (account);
{"".join(f"CREATE INDEX IF NOT EXISTS events_by_{c} ON events ({c});" for c in ID_COLUMNS)}
CREATE TABLE IF NOT EXISTS derived (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Event:
    """One decoded log as the index holds it."""

    id: int
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    event: str
    args: dict[str, Any]
    timestamp: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
            "contract": self.contract,
            "event": self.event,
            "args": self.args,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class NewEvent:
    """A decoded log to store (the indexer's output)."""

    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    contract: str
    event: str
    args: dict[str, Any]


def id_columns(args: Mapping[str, Any]) -> dict[str, str | None]:
    """The indexed id columns of an event's decoded arguments (hex or decimal text)."""
    columns: dict[str, str | None] = {}
    for column in ID_COLUMNS:
        name = next((n for n in (column, *ID_ALIASES.get(column, ())) if n in args), None)
        columns[column] = None if name is None else str(args[name]).lower()
    account = next((args[name] for name in ACCOUNT_ARGUMENTS if name in args), None)
    columns["account"] = str(account).lower() if account is not None else None
    return columns


class EventIndex:
    """The SQLite index: a writer (the indexer) and any number of reader threads.

    WAL mode lets pages read while the indexer writes; each thread has its own connection.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        with self._connection() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            stored = self.meta("schema")
            if stored is None:
                self.set_meta({"schema": SCHEMA_VERSION})
            elif stored != SCHEMA_VERSION:
                self.reset()

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it lands or none of it (a crash leaves the last batch)."""
        with self._write_lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- meta and cursor ----------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._connection().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: Mapping[str, str]) -> None:
        with self._write() as db:
            db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def reset(self) -> None:
        """Forget everything indexed (a new deployment or schema); the meta rows go too."""
        with self._write() as db:
            db.execute("DELETE FROM events")
            db.execute("DELETE FROM blocks")
            db.execute("DELETE FROM derived")
            db.execute("DELETE FROM meta")
            db.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA_VERSION,))

    def indexed_to(self) -> int | None:
        """The last block whose logs are all stored, or None before the first batch."""
        value = self.meta("indexed_to")
        return None if value is None else int(value)

    # -- writes (the indexer) -----------------------------------------------------------------

    def append(
        self,
        events: Sequence[NewEvent],
        blocks: Iterable[tuple[int, str, int]],
        *,
        indexed_to: int,
    ) -> int:
        """Store a batch's events and block hashes and move the cursor, atomically.

        Returns how many events were new; a log already stored (same block and log index) is
        ignored, so re-applying a batch after a crash cannot duplicate it.
        """
        rows = [
            (
                e.block_number,
                e.block_hash,
                e.tx_hash,
                e.log_index,
                e.contract,
                e.event,
                json.dumps(e.args, separators=(",", ":")),
                *id_columns(e.args).values(),
            )
            for e in events
        ]
        columns = ", ".join((*ID_COLUMNS, "account"))
        marks = ", ".join("?" * (8 + len(ID_COLUMNS)))
        with self._write() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO events (block_number, block_hash, tx_hash, log_index, "
                f"contract, event, args, {columns}) VALUES ({marks})",
                rows,
            )
            added = db.total_changes - before
            db.executemany(
                "INSERT INTO blocks (number, hash, timestamp) VALUES (?, ?, ?) "
                "ON CONFLICT (number) DO UPDATE SET hash = excluded.hash, "
                "timestamp = excluded.timestamp",
                list(blocks),
            )
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('indexed_to', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(indexed_to),),
            )
        return added

    def rewind(self, to_block: int) -> int:
        """Drop every event and block hash above `to_block` (a reorganisation); returns the
        number of events dropped. Derived caches go too: they may describe dropped events."""
        with self._write() as db:
            dropped = db.execute("DELETE FROM events WHERE block_number > ?", (to_block,)).rowcount
            db.execute("DELETE FROM blocks WHERE number > ?", (to_block,))
            db.execute("DELETE FROM derived WHERE key LIKE 'page:%'")
            db.execute(
                "INSERT INTO meta (key, value) VALUES ('indexed_to', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(to_block),),
            )
        return dropped

    def stored_blocks(self, *, below_or_at: int) -> list[tuple[int, str]]:
        """Stored (number, hash) pairs at or below a height, newest first."""
        rows = self._connection().execute(
            "SELECT number, hash FROM blocks WHERE number <= ? ORDER BY number DESC",
            (below_or_at,),
        )
        return [(int(row[0]), str(row[1])) for row in rows]

    # -- derived data (cached summaries of packages) ------------------------------------------

    def derived(self, key: str) -> Any | None:
        row = self._connection().execute("SELECT value FROM derived WHERE key = ?", (key,))
        found = row.fetchone()
        return None if found is None else json.loads(found[0])

    def set_derived(self, key: str, value: Any) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO derived (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    # -- reads (the pages) --------------------------------------------------------------------

    def events(
        self,
        *,
        contract: str | None = None,
        event: str | Sequence[str] | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        **ids: str,
    ) -> list[Event]:
        """Events matching a contract, event name(s) and id columns (`version_id=...`)."""
        where, params = self._where(contract, event, ids)
        order = "DESC" if newest_first else "ASC"
        sql = (
            "SELECT e.*, b.timestamp AS timestamp FROM events e "
            f"LEFT JOIN blocks b ON b.number = e.block_number {where} "
            f"ORDER BY e.block_number {order}, e.log_index {order}"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_event(row) for row in self._connection().execute(sql, params)]

    def count(
        self, *, contract: str | None = None, event: str | Sequence[str] | None = None, **ids: str
    ) -> int:
        where, params = self._where(contract, event, ids)
        row = self._connection().execute(f"SELECT COUNT(*) FROM events e {where}", params)
        return int(row.fetchone()[0])

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """A read-only query for page aggregates (written by the explorer, never by users)."""
        return list(self._connection().execute(sql, params))

    def block_timestamp(self, number: int) -> int | None:
        """The stored timestamp of block `number` (None when the index has no such block)."""
        row = self._connection().execute("SELECT timestamp FROM blocks WHERE number = ?", (number,))
        found = row.fetchone()
        return None if found is None else int(found[0])

    def total_events(self) -> int:
        return int(self._connection().execute("SELECT COUNT(*) FROM events").fetchone()[0])

    @staticmethod
    def _where(
        contract: str | None, event: str | Sequence[str] | None, ids: Mapping[str, str]
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if contract is not None:
            clauses.append("e.contract = ?")
            params.append(contract)
        if event is not None:
            names = [event] if isinstance(event, str) else list(event)
            clauses.append(f"e.event IN ({', '.join('?' * len(names))})")
            params.extend(names)
        for column, value in ids.items():
            if column not in (*ID_COLUMNS, "account", "tx_hash"):
                raise ValueError(f"events cannot be filtered by {column!r}")
            clauses.append(f"e.{column} = ?")
            params.append(value.lower())
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _event(row: sqlite3.Row) -> Event:
    return Event(
        id=int(row["id"]),
        block_number=int(row["block_number"]),
        block_hash=str(row["block_hash"]),
        tx_hash=str(row["tx_hash"]),
        log_index=int(row["log_index"]),
        contract=str(row["contract"]),
        event=str(row["event"]),
        args=json.loads(row["args"]),
        timestamp=None if row["timestamp"] is None else int(row["timestamp"]),
    )
