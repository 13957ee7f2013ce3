"""Numbered schema migrations and named-column writes for every SQLite file covey keeps.

A file's schema version is SQLite's ``PRAGMA user_version``: the number of migrations applied; each
applied migration is also logged by name and time in a ``_migrations`` table (the pattern of simonw/llm's
migrations). `Migrations.apply` runs the missing ones in order inside one ``BEGIN IMMEDIATE``
transaction, so two processes opening a new file at once apply each step exactly once, and a crash
mid-way leaves the file at the previous version. A file written before ``user_version`` was kept
(version 0 with a ``_migrations`` log) is adopted at the version its log shows.

SQL steps are split into statements with ``sqlite3.complete_statement``, so a ``;`` inside a string
literal or a trigger body does not cut a statement in two. A step may also be a function of the
connection, for data changes SQL alone cannot express.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

Step = str | Callable[[sqlite3.Connection], None]


class Migration(NamedTuple):
    name: str
    step: Step


class Migrations:
    """An ordered list of named migrations for one kind of file."""

    def __init__(self, *migrations: Migration) -> None:
        names = [m.name for m in migrations]
        if len(set(names)) != len(names):
            raise ValueError(f"migration names repeat: {names}")
        self.migrations = tuple(migrations)

    def __len__(self) -> int:
        return len(self.migrations)

    def __iter__(self) -> Iterator[Migration]:
        return iter(self.migrations)

    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.migrations)

    def version(self, conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def apply(self, conn: sqlite3.Connection) -> list[str]:
        """Apply the migrations this file lacks; returns their names (empty when it was up to date)."""
        if self.version(conn) >= len(self.migrations):
            return []
        saved = conn.isolation_level
        conn.isolation_level = None  # explicit transaction control below
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
                version = self.version(conn) or self._logged_version(conn)
                applied = []
                for m in self.migrations[version:]:
                    if callable(m.step):
                        m.step(conn)
                    else:
                        for statement in statements(m.step):
                            conn.execute(statement)
                    conn.execute("INSERT OR REPLACE INTO _migrations VALUES (?, ?)", (m.name, time.time()))
                    applied.append(m.name)
                conn.execute(f"PRAGMA user_version={len(self.migrations)}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        finally:
            conn.isolation_level = saved
        return applied

    def _logged_version(self, conn: sqlite3.Connection) -> int:
        """How many of the first migrations the `_migrations` log holds (files from before user_version)."""
        done = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
        version = 0
        for m in self.migrations:
            if m.name not in done:
                break
            version += 1
        return version


def connect(path: Path) -> sqlite3.Connection:
    """A connection shared by threads to a WAL-mode file (its folder made if needed), as the ledger and
    the history store use; open errors are sqlite3.DatabaseError for the caller to name its file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def statements(script: str) -> Iterator[str]:
    """The complete SQL statements of ``script``, in order."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip().rstrip(";").strip():
                yield buf.strip()
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buf.strip()[:80]!r}")


def insert(conn: sqlite3.Connection, table: str, row: Mapping[str, object]) -> sqlite3.Cursor:
    """INSERT one row by column name, so adding a column never shifts the values of the others."""
    return conn.execute(insert_sql(table, row.keys()), tuple(row.values()))


def insert_many(conn: sqlite3.Connection, table: str, rows: list[Mapping[str, object]]) -> None:
    """INSERT rows that all have the same columns."""
    if rows:
        conn.executemany(insert_sql(table, rows[0].keys()), [tuple(r.values()) for r in rows])


def insert_sql(table: str, columns) -> str:
    cols = list(columns)
    for name in [table, *cols]:
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a plain SQL identifier: {name!r}")
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
