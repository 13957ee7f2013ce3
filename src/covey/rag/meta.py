"""The SQLite half of a collection: sources, chunks (with their vectors) and the committed state.

The `state` row `generation` names the FAISS file that matches the rows (index-<generation>.faiss);
it changes in the same transaction as the rows, so a reader never pairs rows with another index.
Vectors are kept here too, so a lost or damaged index file is rebuilt rather than fatal.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from covey.errors import StoreCorrupt
from covey.migrations import Migration, Migrations
from covey.rag.types import Chunk, Position, SourceInfo

MIGRATIONS = Migrations(
    Migration("m001_initial", """
    CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sources (
        path TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        chunks INTEGER NOT NULL,
        added_at REAL NOT NULL
    );
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        source TEXT NOT NULL REFERENCES sources(path) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        text TEXT NOT NULL,
        trail TEXT NOT NULL,
        line_start INTEGER NOT NULL,
        line_end INTEGER NOT NULL,
        page INTEGER,
        tokens INTEGER NOT NULL,
        vector BLOB NOT NULL
    );
    CREATE INDEX chunks_by_source ON chunks(source);
    INSERT INTO state VALUES ('generation', '0'), ('vectors', '0'), ('dead', '0');
    """),
)


class Metadata:
    """One connection to a collection's meta.sqlite, in autocommit mode with explicit transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60.0)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupt(f"{path} is not a readable covey collection database ({exc})") from exc

    def _migrate(self) -> None:
        MIGRATIONS.apply(self.conn)

    def close(self) -> None:
        self.conn.close()

    # transactions -----------------------------------------------------------------------------

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def begin_read(self) -> None:
        """A read transaction: every query until rollback() sees one snapshot."""
        self.conn.execute("BEGIN")

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    # state ------------------------------------------------------------------------------------

    def state(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT key, value FROM state").fetchall())

    def set_state(self, **values: object) -> None:
        self.conn.executemany(
            "INSERT INTO state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [(k, str(v)) for k, v in values.items()],
        )

    def generation(self) -> int:
        return int(self.conn.execute("SELECT value FROM state WHERE key = 'generation'").fetchone()[0])

    # sources ----------------------------------------------------------------------------------

    def hashes(self) -> dict[str, str]:
        return dict(self.conn.execute("SELECT path, sha256 FROM sources").fetchall())

    def sources(self) -> list[SourceInfo]:
        rows = self.conn.execute("SELECT path, kind, sha256, bytes, chunks, added_at FROM sources ORDER BY path")
        return [SourceInfo(path=r[0], kind=r[1], sha256=r[2], bytes=r[3], chunks=r[4], added_at=r[5]) for r in rows]

    def sources_under(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        rows = self.conn.execute(
            "SELECT path FROM sources WHERE path = ? OR substr(path, 1, ?) = ? ORDER BY path",
            (path, len(prefix), prefix),
        )
        return [r[0] for r in rows]

    def delete_source(self, path: str) -> list[int]:
        """Deletes a source and its chunks; returns the chunk ids that were removed."""
        ids = [r[0] for r in self.conn.execute("SELECT id FROM chunks WHERE source = ?", (path,))]
        self.conn.execute("DELETE FROM chunks WHERE source = ?", (path,))
        self.conn.execute("DELETE FROM sources WHERE path = ?", (path,))
        return ids

    def insert_source(self, info: SourceInfo, chunks: list[Chunk], vectors: np.ndarray) -> list[int]:
        self.conn.execute(
            "INSERT INTO sources(path, kind, sha256, bytes, chunks, added_at) VALUES (?, ?, ?, ?, ?, ?)",
            (info.path, info.kind, info.sha256, info.bytes, info.chunks, info.added_at),
        )
        ids: list[int] = []
        for ord_, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True)):
            cur = self.conn.execute(
                "INSERT INTO chunks(source, ord, text, trail, line_start, line_end, page, tokens, vector)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    info.path, ord_, chunk.text, json.dumps(list(chunk.heading_trail)), chunk.position.line_start,
                    chunk.position.line_end, chunk.position.page, chunk.tokens,
                    np.asarray(vector, dtype=np.float32).tobytes(),
                ),
            )
            ids.append(int(cur.lastrowid or 0))
        return ids

    # chunks -----------------------------------------------------------------------------------

    def count_chunks(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def vectors(self, dim: int, batch: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All (ids, vectors) in batches, for rebuilding an index."""
        cur = self.conn.execute("SELECT id, vector FROM chunks ORDER BY id")
        while rows := cur.fetchmany(batch):
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
            yield ids, vecs

    def chunks_by_id(self, ids: Iterable[int]) -> dict[int, tuple[str, str, Position, tuple[str, ...]]]:
        """id -> (source, text, position, heading trail) for the ids that still exist."""
        wanted = [int(i) for i in ids if int(i) >= 0]
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self.conn.execute(
            f"SELECT id, source, text, line_start, line_end, page, trail FROM chunks WHERE id IN ({marks})", wanted
        )
        return {
            r[0]: (r[1], r[2], Position(line_start=r[3], line_end=r[4], page=r[5]), tuple(json.loads(r[6])))
            for r in rows
        }
