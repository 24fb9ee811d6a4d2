"""A persistent evaluation store: finished evaluations in one SQLite file.

Keyed by (space, canonical architecture, evaluator fingerprint); the fingerprint names what
determines the results (for the trainer: backend, budget, seed, device type, numerics, CPU
threads and the version of the training code), so a changed trainer never serves stale results. The file uses WAL mode and one transaction per result, so several processes
(vector-env workers, search workers) can share it, and a crash loses at most the evaluation in
flight. A file that is not a nas-gym store is refused and never written to: besides files that
are not SQLite, that is an SQLite file with schema objects other than a store's, or with none
but a ``user_version`` or an ``application_id`` set (another application's empty database).
Stores carry :data:`APPLICATION_ID` in their header.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

STORE_FORMAT = "nas-gym-evaluation-store"
STORE_VERSION = "1"
_SQLITE_HEADER = b"SQLite format 3\x00"
APPLICATION_ID = 0x4E415347
"""``PRAGMA application_id`` of the stores created here (the bytes ``NASG``): ``file`` and other
tools can tell them from other SQLite files. Stores created before it was set have 0."""


class StoreError(RuntimeError):
    """The file is not a usable nas-gym evaluation store."""


class EvaluationStore:
    """Finished evaluations in the SQLite file ``path`` (created when missing).

    Picklable: a copy opens its own connection, so it can be handed to subprocess workers.
    """

    def __init__(self, path: str | os.PathLike[str], timeout: float = 60.0):
        self.path = Path(path).expanduser()
        self.timeout = float(timeout)
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._connect()

    # ------------------------------------------------------------------ connection
    def _check_file(self) -> None:
        if self.path.is_dir():
            raise StoreError(f"expected an evaluation store file, got the folder {self.path}")
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as f:
                header = f.read(len(_SQLITE_HEADER))
            if header != _SQLITE_HEADER:
                raise StoreError(
                    f"{self.path} is not a nas-gym evaluation store (not an SQLite file); "
                    "it was left untouched: pass another path or move the file away"
                )

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self._check_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Only reads until the file is known to be a store, or an empty database to adopt.
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            objects = conn.execute("SELECT type, name FROM sqlite_master").fetchall()
            user_version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            application_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a readable nas-gym evaluation store ({exc}); it was left untouched"
            ) from exc
        tables = {name for kind, name in objects if kind == "table"}
        try:
            self._check_schema(objects, tables, user_version, application_id, conn)
        except StoreError:
            conn.close()
            raise
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed result survives a power cut, not only a process crash.
        conn.execute("PRAGMA synchronous=FULL")
        if not tables:
            with _transaction(conn):
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute("CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT)")
                conn.execute(
                    "INSERT OR IGNORE INTO store_meta VALUES ('format', ?), ('version', ?)",
                    (STORE_FORMAT, STORE_VERSION),
                )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS evaluations ("
                    " space TEXT NOT NULL, arch TEXT NOT NULL, evaluator TEXT NOT NULL,"
                    " metrics TEXT NOT NULL, created REAL NOT NULL,"
                    " PRIMARY KEY (space, arch, evaluator))"
                )
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _check_schema(
        self,
        objects: list[tuple[str, str]],
        tables: set[str],
        user_version: int,
        application_id: int,
        conn: sqlite3.Connection,
    ) -> None:
        """Raise :class:`StoreError` unless the open file is a store of this version, or an
        empty database (no schema, ``user_version`` 0, ``application_id`` 0 or ours: a new
        file, or a store whose creation stopped before its first transaction)."""
        if application_id not in (0, APPLICATION_ID):
            raise StoreError(
                f"{self.path} is an SQLite file of another application (application_id "
                f"{application_id:#010x}, a nas-gym evaluation store has {APPLICATION_ID:#010x}); "
                "it was left untouched"
            )
        if not objects:
            if user_version != 0:
                raise StoreError(
                    f"{self.path} is an empty SQLite database of another application (user_version "
                    f"{user_version}, a nas-gym evaluation store has 0); it was left untouched"
                )
            return
        if "store_meta" not in tables:
            described = sorted(tables) if tables else [f"{kind} {name}" for kind, name in objects]
            raise StoreError(
                f"{self.path} is an SQLite file but not a nas-gym evaluation store "
                f"({'tables' if tables else 'schema'}: {described}); it was left untouched"
            )
        try:
            meta = dict(conn.execute("SELECT key, value FROM store_meta"))
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} has a store_meta table but not a nas-gym evaluation store's ({exc}); "
                "it was left untouched"
            ) from exc
        if meta.get("format") != STORE_FORMAT or meta.get("version") != STORE_VERSION:
            raise StoreError(
                f"expected a {STORE_FORMAT} of version {STORE_VERSION} in {self.path}, got "
                f"format {meta.get('format')!r} version {meta.get('version')!r}; "
                "it was left untouched"
            )

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.timeout = state["path"], state["timeout"]
        self._conn, self._pid = None, None

    # ------------------------------------------------------------------ data
    def get(self, space: str, arch: str, evaluator: str) -> dict[str, Any] | None:
        """The stored metrics, or ``None``."""
        row = (
            self._connect()
            .execute(
                "SELECT metrics FROM evaluations WHERE space=? AND arch=? AND evaluator=?",
                (space, arch, evaluator),
            )
            .fetchone()
        )
        return None if row is None else json.loads(row[0])

    def put(self, space: str, arch: str, evaluator: str, metrics: dict[str, Any]) -> None:
        """Store ``metrics`` (one committed transaction; an existing entry is kept)."""
        conn = self._connect()
        with _transaction(conn):
            conn.execute(
                "INSERT OR IGNORE INTO evaluations VALUES (?, ?, ?, ?, ?)",
                (space, arch, evaluator, json.dumps(metrics, sort_keys=True), time.time()),
            )

    def __len__(self) -> int:
        return int(self._connect().execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` (``"ok"`` when sound)."""
        return str(self._connect().execute("PRAGMA integrity_check").fetchone()[0])

    def __repr__(self) -> str:
        return f"EvaluationStore({str(self.path)!r})"


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rollback on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
