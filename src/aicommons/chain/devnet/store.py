"""A durable key-value store for py-evm: reads are served from memory, writes are staged and
flushed to SQLite (WAL) in one transaction per mined block.

It must never expose a half-written block: `commit` is the only path to disk, so after a crash
the file holds exactly the blocks whose `commit` returned. Readers on other threads see
committed data only (`CommittedView`), never the miner's staged writes. While a snapshot is
open, every commit also records what it overwrote (an undo log in the same file), so
`revert_to_snapshot` restores the exact bytes of the snapshot in one transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from eth.db.backends.base import BaseDB
from lru import LRU

from aicommons.chain.errors import DevnetDataError

# Trie nodes, headers and receipts read back while mining; big enough to keep the hot state.
_READ_CACHE_ENTRIES = 200_000
_SCHEMA_VERSION = "1"


class SqliteKeyValueStore(BaseDB):
    """py-evm's database interface over one SQLite file, with a write buffer and a read cache.

    Writes go to `_staged` until `commit`. Deletions are staged as `None`. Writes left over from
    a rejected transaction are content-addressed trie nodes nothing points to; they are harmless
    and simply flushed with the next block.
    """

    def __init__(self, path: Path) -> None:
        try:
            self._connection = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False
            )
            self._connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a committed block survives a process crash (kill -9) because the
            # WAL write has reached the OS; `synchronous_full` adds an fsync for power loss.
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL)"
                " WITHOUT ROWID"
            )
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            # One row per overwritten key per commit while a snapshot is open: the value it had
            # before (NULL: absent). `is_meta` says which table the key belongs to.
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS undo (id INTEGER PRIMARY KEY, is_meta INTEGER NOT"
                " NULL, key NOT NULL, old)"
            )
            # AUTOINCREMENT: a snapshot id is never handed out twice, even after a revert.
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS snapshots (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " undo_mark INTEGER NOT NULL)"
            )
        except sqlite3.DatabaseError as exc:
            raise DevnetDataError(f"cannot open devnet database {path}: {exc}") from None
        self._path = path
        self._staged: dict[bytes, bytes | None] = {}
        self._staged_meta: dict[str, str | None] = {}
        # Holds only committed values (filled after a commit or from a read of the file), so
        # readers of committed data may use it too. LRU operations are atomic C calls.
        self._cache: LRU = LRU(_READ_CACHE_ENTRIES)
        # One connection shared by the miner and the readers: each statement (or the one
        # transaction of a block commit) runs under this lock, held for one read or one commit.
        self._sql_lock = threading.Lock()

    def set_durability(self, fsync_every_commit: bool) -> None:
        """Choose whether each block commit also survives power loss (FULL) or only a crash."""
        level = "FULL" if fsync_every_commit else "NORMAL"
        self._connection.execute(f"PRAGMA synchronous={level}")

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._staged:
            value = self._staged[key]
            if value is None:
                raise KeyError(key)
            return value
        return self.committed(key)

    def committed(self, key: bytes) -> bytes:
        """The value of `key` as of the last commit (staged writes are not seen)."""
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        with self._sql_lock:
            row = self._connection.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise KeyError(key)
            value = bytes(row[0])
            # Cached under the lock: a commit in between would otherwise be overwritten by
            # the value this read saw before it.
            self._cache[key] = value
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._staged[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._staged[key] = None

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def stage_meta(self, name: str, value: str | None) -> None:
        """Set (or, with None, remove) a named setting with the next `commit`, atomically with
        the block it belongs to."""
        self._staged_meta[name] = value

    def commit(self) -> None:
        """Write every staged change in one SQLite transaction; afterwards they are durable."""
        if not self._staged and not self._staged_meta:
            return
        upserts = [(k, v) for k, v in self._staged.items() if v is not None]
        deletions = [(k,) for k, v in self._staged.items() if v is None]
        meta_upserts = [(k, v) for k, v in self._staged_meta.items() if v is not None]
        meta_deletions = [(k,) for k, v in self._staged_meta.items() if v is None]
        connection = self._connection
        with self._sql_lock:
            connection.execute("BEGIN IMMEDIATE")
            try:
                if self._snapshot_open():
                    self._record_undo()
                if upserts:
                    connection.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", upserts)
                if deletions:
                    connection.executemany("DELETE FROM kv WHERE key = ?", deletions)
                if meta_upserts:
                    connection.executemany(
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)", meta_upserts
                    )
                if meta_deletions:
                    connection.executemany("DELETE FROM meta WHERE name = ?", meta_deletions)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            self._staged_meta.clear()
            for key, value in self._staged.items():
                if value is None:
                    self._cache.pop(key, None)
                else:
                    self._cache[key] = value
        self._staged.clear()

    # -- snapshots (called inside the SQL lock where noted) ---------------------------------------

    def _snapshot_open(self) -> bool:
        """Whether any snapshot is open (caller holds the SQL lock)."""
        return self._connection.execute("SELECT 1 FROM snapshots LIMIT 1").fetchone() is not None

    def _record_undo(self) -> None:
        """Log the current value of every key the staged commit writes (caller holds the SQL
        lock, inside the commit's transaction, before the writes)."""
        self._connection.executemany(
            "INSERT INTO undo (is_meta, key, old) VALUES (0, ?, (SELECT value FROM kv WHERE key"
            " = ?))",
            [(key, key) for key in self._staged],
        )
        self._connection.executemany(
            "INSERT INTO undo (is_meta, key, old) VALUES (1, ?, (SELECT value FROM meta WHERE"
            " name = ?))",
            [(name, name) for name in self._staged_meta],
        )

    def open_snapshot(self) -> int:
        """Remember the committed state; returns the snapshot's id (1, 2, ...; never reused).

        Staged leftovers of rejected transactions are flushed first (nothing points to them)."""
        self.commit()
        with self._sql_lock:
            cursor = self._connection.execute(
                "INSERT INTO snapshots (undo_mark) SELECT coalesce(max(id), 0) FROM undo"
            )
            return int(cursor.lastrowid or 0)

    def revert_to_snapshot(self, snapshot_id: int) -> bool:
        """Restore the committed state of snapshot `snapshot_id` exactly (chain data and
        settings) and forget it and every later snapshot, all in one transaction. False, and no
        change, if there is no such snapshot (never taken, or already reverted past)."""
        self._staged.clear()
        self._staged_meta.clear()
        connection = self._connection
        with self._sql_lock:
            row = connection.execute(
                "SELECT undo_mark FROM snapshots WHERE id = ?", (snapshot_id,)
            ).fetchone()
            if row is None:
                return False
            mark = int(row[0])
            connection.execute("BEGIN IMMEDIATE")
            try:
                # Newest first, so a key written by several commits ends with its oldest
                # recorded value: the one it had at the snapshot.
                undone = connection.execute(
                    "SELECT is_meta, key, old FROM undo WHERE id > ? ORDER BY id DESC", (mark,)
                ).fetchall()
                for is_meta, key, old in undone:
                    table, column = ("meta", "name") if is_meta else ("kv", "key")
                    if old is None:
                        connection.execute(f"DELETE FROM {table} WHERE {column} = ?", (key,))
                    else:
                        connection.execute(
                            f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", (key, old)
                        )
                connection.execute("DELETE FROM undo WHERE id > ?", (mark,))
                connection.execute("DELETE FROM snapshots WHERE id >= ?", (snapshot_id,))
                if connection.execute("SELECT 1 FROM snapshots LIMIT 1").fetchone() is None:
                    connection.execute("DELETE FROM undo")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            self._cache.clear()
        return True

    def read_meta(self, name: str) -> str | None:
        """A named setting stored next to the chain data (schema version, chain id)."""
        with self._sql_lock:
            row = self._connection.execute(
                "SELECT value FROM meta WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else str(row[0])

    def write_meta(self, name: str, value: str) -> None:
        """Store a named setting durably."""
        with self._sql_lock:
            self._connection.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))

    def check_integrity(self) -> None:
        """Fail with a one-line error if the file is not a healthy SQLite database of ours."""
        try:
            self._connection.execute("SELECT count(*) FROM kv LIMIT 1").fetchone()
            schema = self.read_meta("schema")
        except sqlite3.DatabaseError as exc:
            raise DevnetDataError(f"devnet database {self._path} is corrupt: {exc}") from None
        if schema is not None and schema != _SCHEMA_VERSION:
            raise DevnetDataError(
                f"devnet database {self._path} has schema {schema}, expected {_SCHEMA_VERSION}"
            )
        if schema is None:
            self.write_meta("schema", _SCHEMA_VERSION)

    def close(self) -> None:
        """Close the file; staged changes that were never committed are dropped."""
        self._staged.clear()
        self._staged_meta.clear()
        with self._sql_lock:
            self._connection.close()


class CommittedView(BaseDB):
    """The store as readers on other threads see it: committed data only, and no way to write
    (a write here would be a bug in a read path, so it raises)."""

    def __init__(self, store: SqliteKeyValueStore) -> None:
        self._store = store

    def __getitem__(self, key: bytes) -> bytes:
        return self._store.committed(key)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        raise TypeError("the devnet's read-only view cannot be written")

    def __delitem__(self, key: bytes) -> None:
        raise TypeError("the devnet's read-only view cannot be written")

    def _exists(self, key: bytes) -> bool:
        try:
            self._store.committed(key)
        except KeyError:
            return False
        return True
