"""covey.migrations: numbered steps applied once, old files adopted, writes by column name."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from covey.migrations import Migration, Migrations, insert, insert_many, statements


def _two_steps(seen: list[str]) -> Migrations:
    def backfill(db: sqlite3.Connection) -> None:
        seen.append("backfill")
        db.execute("UPDATE notes SET tag = 'old'")

    return Migrations(
        Migration("m001_notes", "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n"
                                "INSERT INTO notes (body) VALUES ('a; b');"),
        Migration("m002_tag", "ALTER TABLE notes ADD COLUMN tag TEXT;"),
        Migration("m003_backfill", backfill),
    )


def test_statements_keep_semicolons_inside_strings_and_triggers() -> None:
    script = """
    CREATE TABLE t (x TEXT);
    INSERT INTO t VALUES ('one; two');
    CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
        UPDATE t SET x = x || ';';
    END;
    """
    out = list(statements(script))
    assert len(out) == 3
    assert out[1] == "INSERT INTO t VALUES ('one; two');"
    assert out[2].startswith("CREATE TRIGGER") and out[2].endswith("END;")


def test_an_incomplete_statement_is_an_error() -> None:
    with pytest.raises(ValueError, match="incomplete SQL"):
        list(statements("CREATE TABLE t (x TEXT"))


def test_steps_apply_once_in_order_and_are_logged(tmp_path: Path) -> None:
    seen: list[str] = []
    m = _two_steps(seen)
    db = sqlite3.connect(tmp_path / "f.db")
    assert m.apply(db) == ["m001_notes", "m002_tag", "m003_backfill"]
    assert m.apply(db) == []
    assert seen == ["backfill"]
    assert m.version(db) == 3
    assert [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY rowid")] == list(m.names())
    assert db.execute("SELECT body, tag FROM notes").fetchall() == [("a; b", "old")]


def test_a_file_at_an_older_version_gets_only_the_new_steps(tmp_path: Path) -> None:
    seen: list[str] = []
    db = sqlite3.connect(tmp_path / "f.db")
    Migrations(*_two_steps(seen).migrations[:1]).apply(db)
    assert _two_steps(seen).apply(db) == ["m002_tag", "m003_backfill"]


def test_a_failing_step_leaves_the_file_at_the_previous_version(tmp_path: Path) -> None:
    def boom(db: sqlite3.Connection) -> None:
        raise RuntimeError("disk on fire")

    db = sqlite3.connect(tmp_path / "f.db")
    m = Migrations(Migration("m001", "CREATE TABLE a (x);"), Migration("m002", boom))
    with pytest.raises(RuntimeError):
        m.apply(db)
    assert m.version(db) == 0
    assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'a'").fetchone()


def test_a_file_from_before_user_version_is_adopted_from_its_log(tmp_path: Path) -> None:
    """The ledger's old scheme: a `_migrations` log and user_version 0."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL);"
                     "INSERT INTO _migrations VALUES ('m001_notes', 0);"
                     "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);")
    seen: list[str] = []
    assert _two_steps(seen).apply(db) == ["m002_tag", "m003_backfill"]
    assert _two_steps(seen).version(db) == 3


def test_two_connections_migrating_at_once_apply_each_step_once(tmp_path: Path) -> None:
    seen: list[str] = []
    path = tmp_path / "f.db"
    results: list[list[str]] = []

    def open_and_migrate() -> None:
        results.append(_two_steps(seen).apply(sqlite3.connect(path, timeout=10)))

    threads = [threading.Thread(target=open_and_migrate) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0, 3]
    assert seen == ["backfill"]


def test_the_real_ledger_upgrades_a_file_written_by_its_old_scheme(tmp_path: Path) -> None:
    from covey.energy.ledger import MIGRATIONS, Ledger

    path = tmp_path / "ledger.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    first = MIGRATIONS.migrations[0]
    for statement in statements(str(first.step)):
        db.execute(statement)
    db.execute("INSERT INTO _migrations VALUES (?, 0)", (first.name,))
    db.execute("INSERT INTO attempts (answer_id, n, node, outcome) VALUES ('a1', 0, 'den', 'ok')")
    db.commit()
    db.close()
    ledger = Ledger(path)
    assert ledger.migrate() == []
    assert MIGRATIONS.version(ledger.db) == len(MIGRATIONS)
    # the old 'ok' became the shared vocabulary's 'answered' (m002)
    assert [r["outcome"] for r in ledger.query("SELECT outcome FROM attempts")] == ["answered"]


def test_the_rag_metadata_upgrades_a_file_written_by_its_old_scheme(tmp_path: Path) -> None:
    """Collections kept only user_version (no log): a version-1 file needs nothing."""
    from covey.rag.meta import MIGRATIONS, Metadata

    path = tmp_path / "meta.sqlite"
    db = sqlite3.connect(path)
    for statement in statements(str(MIGRATIONS.migrations[0].step)):
        db.execute(statement)
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    meta = Metadata(path)
    assert meta.state()["generation"] == "0"
    assert MIGRATIONS.version(meta.conn) == 1


def test_insert_by_column_name(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "f.db")
    db.execute("CREATE TABLE t (a TEXT, b INTEGER, c REAL)")
    insert(db, "t", {"c": 1.5, "a": "x", "b": 2})
    insert_many(db, "t", [{"b": 3, "a": "y"}, {"b": 4, "a": "z"}])
    assert db.execute("SELECT a, b, c FROM t ORDER BY b").fetchall() == [("x", 2, 1.5), ("y", 3, None), ("z", 4, None)]
    with pytest.raises(ValueError, match="identifier"):
        insert(db, "t; DROP TABLE t", {"a": 1})
