"""The ledger on a real SQLite file: migrations, rows, attempts, components, errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from covey.energy.ledger import MIGRATIONS, Ledger
from covey.errors import LedgerError

from .ledger_rows import answer


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    assert ledger.migrate() == []
    names = [r["name"] for r in ledger.query("SELECT name FROM _migrations")]
    assert names == [n for n, _ in MIGRATIONS]
    ledger.close()
    assert Ledger(tmp_path / "ledger.db").migrate() == []


def test_record_writes_answer_attempts_and_components(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    rec = answer(3, "code", [("den-pc", "smollm2", 10.0, 40), ("laptop", "qwen", 30.0, 60)], overhead=2.0, pue=1.5)
    ledger.record(rec)
    (row,) = ledger.query("SELECT * FROM answers")
    assert row["joules"] == pytest.approx(42.0 * 1.5) and row["device_joules"] == pytest.approx(42.0)
    assert row["tokens_out"] == 100 and row["tokens_in"] == 40 and row["seconds"] == pytest.approx(3.0)
    assert row["method"] == "estimated" and row["uncertainty"] == pytest.approx(0.4)
    assert row["g_co2e"] == pytest.approx(42.0 * 1.5 / 3.6e6 * 55.0)
    assert row["carbon_source"] == "ember:FR:2023" and row["day"] == "2026-11-03"
    attempts = ledger.query("SELECT * FROM attempts ORDER BY n")
    assert [(a["node"], a["model"], a["quantization"], a["joules"]) for a in attempts] == [
        ("den-pc", "smollm2", "Q4_1", 10.0), ("laptop", "qwen", "Q4_1", 30.0)]
    comps = ledger.query("SELECT attempt_n, name, joules FROM components ORDER BY attempt_n")
    assert [(c["attempt_n"], c["name"]) for c in comps] == [(None, "orchestrator-cpu"), (0, "cpu"), (1, "cpu")]
    assert ledger.count() == 1


def test_duplicate_answer_is_a_clear_error_and_loses_nothing(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    rec = answer(3, "chat", [("n", "m", 1.0, 1)])
    ledger.record(rec)
    with pytest.raises(LedgerError, match="already in the ledger"):
        ledger.record(rec)
    assert ledger.count() == 1
    assert len(ledger.query("SELECT * FROM components")) == 2


def test_damaged_file_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "ledger.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match="cannot open the energy ledger"):
        Ledger(bad)


def test_file_is_plain_sqlite(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.record(answer(1, "chat", [("n", "m", 5.0, 10)]))
    ledger.close()
    db = sqlite3.connect(tmp_path / "ledger.db")
    assert db.execute("SELECT agent FROM answers").fetchall() == [("chat",)]


def test_m003_backfills_ranges_of_rows_written_before_it(tmp_path: Path) -> None:
    from covey.migrations import Migrations, insert

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    Migrations(*MIGRATIONS.migrations[:2]).apply(db)  # a ledger from before m003
    with db:
        insert(db, "answers", {"answer_id": "a1", "ts": 1.0, "day": "2026-11-01", "joules": 20.0, "device_joules": 10.0,
                               "marginal_joules": 5.0, "method": "estimated", "uncertainty": 0.4, "tokens_in": 1,
                               "tokens_out": 2, "seconds": 1.0, "pue": 2.0, "carbon_g_per_kwh": 55.0,
                               "carbon_source": "ember:FR:2023", "g_co2e": 0.0})
        insert(db, "attempts", {"answer_id": "a1", "n": 0, "node": "n", "model": "m", "joules": 8.0})
        for n, j in ((None, 2.0), (0, 8.0)):
            insert(db, "components", {"answer_id": "a1", "attempt_n": n, "name": "cpu", "joules": j,
                                      "method": "estimated", "uncertainty": 0.4})
    db.close()
    ledger = Ledger(path)
    (row,) = ledger.query("SELECT joules_low, joules_high, correct FROM answers")
    assert (row["joules_low"], row["joules_high"], row["correct"]) == (pytest.approx(12.0), pytest.approx(28.0), None)
    (att,) = ledger.query("SELECT joules_low, joules_high FROM attempts")
    assert (att["joules_low"], att["joules_high"]) == (pytest.approx(4.8), pytest.approx(11.2))


def test_record_stores_ranges_and_grade_fills_correct(tmp_path: Path) -> None:
    from covey.types import Energy, EnergyComponent, EnergyMethod

    ledger = Ledger(tmp_path / "ledger.db")
    rec = answer(3, "code", [("den-pc", "smollm2", 10.0, 40)], overhead=2.0, pue=1.5)
    cpu = EnergyComponent(name="cpu", joules=10.0, method=EnergyMethod.ESTIMATED, uncertainty=0.6, uncertainty_high=1.9)
    rec = rec.model_copy(update={"attempts": (rec.attempts[0].model_copy(update={"energy": Energy.of([cpu])}),)})
    ledger.record(rec)
    (row,) = ledger.query("SELECT joules, joules_low, joules_high, correct FROM answers")
    assert row["joules_low"] == pytest.approx((4.0 + 1.2) * 1.5) and row["joules_high"] == pytest.approx((29.0 + 2.8) * 1.5)
    assert row["correct"] is None
    (comp,) = ledger.query("SELECT uncertainty_high, joules_high FROM components WHERE attempt_n = 0")
    assert (comp["uncertainty_high"], comp["joules_high"]) == (1.9, pytest.approx(29.0))
    ledger.grade(rec.answer_id, True)
    assert ledger.query("SELECT correct FROM answers")[0]["correct"] == 1
    with pytest.raises(LedgerError, match="no answer 'nope'"):
        ledger.grade("nope", False)
