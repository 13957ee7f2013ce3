"""The per-answer ledger: one row per answer in SQLite, with every attempt and energy component.

Schema changes are numbered migrations (`covey.migrations`) applied once, in order. Each record is one transaction, so a node or
orchestrator killed mid-answer leaves the file consistent with every earlier answer intact.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from covey.energy.carbon import CarbonIntensity
from covey.errors import LedgerError
from covey.migrations import Migration, Migrations, connect, insert, insert_many
from covey.types import AttemptOutcome, Energy

logger = logging.getLogger(__name__)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AttemptRecord(_Frozen):
    """One try at producing the answer on one node (cascade steps and failovers each count)."""

    node: str
    model: str
    quantization: str = ""
    tokens_in: int = Field(0, ge=0)
    tokens_out: int = Field(0, ge=0)
    seconds: float = Field(0.0, ge=0.0)
    energy: Energy = Energy()
    outcome: AttemptOutcome = Field("answered", description="what became of this try (covey.types.AttemptOutcome)")


class ToolCallRow(_Frozen):
    """One tool call made for an answer (calculator, sandbox run, code tests, ...)."""

    tool: str
    arguments: str = Field("", description="the call's arguments as JSON")
    ok: bool = True
    outcome: str = ""
    seconds: float = Field(0.0, ge=0.0)
    joules: float = Field(0.0, ge=0.0)


class AnswerRecord(_Frozen):
    answer_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    time: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    session: str = ""
    route: str = ""
    agent: str = ""
    attempts: tuple[AttemptRecord, ...] = ()
    overhead: Energy = Field(Energy(), description="the orchestrator's own work: routing, retrieval")
    carbon: CarbonIntensity
    pue: float = Field(1.0, ge=1.0)
    correct: bool | None = Field(None, description="graded by an eval run; None = not graded")
    tool_calls: tuple[ToolCallRow, ...] = ()
    unanswered: bool = Field(False, description="no answer passed its checks (the energy was spent all the same)")

    @property
    def energy(self) -> Energy:
        total = self.overhead
        for a in self.attempts:
            total = total + a.energy
        return total

    @property
    def joules(self) -> float:
        """Device joules times PUE: what the answer cost at the wall of the room."""
        return self.energy.joules * self.pue

    @property
    def joules_low(self) -> float:
        """Low end of `joules`: the components' documented ranges summed, times PUE."""
        return self.energy.joules_low * self.pue

    @property
    def joules_high(self) -> float:
        return self.energy.joules_high * self.pue

    @property
    def g_co2e(self) -> float:
        return self.carbon.grams(self.energy.joules, self.pue)


MIGRATIONS = Migrations(
    Migration("m001_initial", """
    CREATE TABLE answers (
        answer_id TEXT PRIMARY KEY, ts REAL NOT NULL, day TEXT NOT NULL, session TEXT, route TEXT, agent TEXT,
        joules REAL NOT NULL, device_joules REAL NOT NULL, marginal_joules REAL NOT NULL, method TEXT NOT NULL,
        uncertainty REAL NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL, seconds REAL NOT NULL,
        pue REAL NOT NULL, carbon_g_per_kwh REAL NOT NULL, carbon_source TEXT NOT NULL, g_co2e REAL NOT NULL);
    CREATE INDEX answers_ts ON answers(ts);
    CREATE TABLE attempts (
        answer_id TEXT NOT NULL REFERENCES answers(answer_id), n INTEGER NOT NULL, node TEXT, model TEXT,
        quantization TEXT, tokens_in INTEGER, tokens_out INTEGER, seconds REAL, joules REAL, marginal_joules REAL,
        method TEXT, outcome TEXT, PRIMARY KEY (answer_id, n));
    CREATE TABLE components (
        answer_id TEXT NOT NULL REFERENCES answers(answer_id), attempt_n INTEGER, name TEXT, joules REAL,
        marginal_joules REAL, method TEXT, source TEXT, uncertainty REAL);
    """),
    # Attempts once had their own words for outcomes; they now share covey.types.AttemptOutcome.
    Migration("m002_outcome_vocabulary", """
    UPDATE attempts SET outcome = 'answered' WHERE outcome = 'ok';
    """),
    Migration("m003_ranges_and_grading", """
    ALTER TABLE answers ADD COLUMN joules_low REAL;
    ALTER TABLE answers ADD COLUMN joules_high REAL;
    ALTER TABLE answers ADD COLUMN correct INTEGER;
    ALTER TABLE attempts ADD COLUMN joules_low REAL;
    ALTER TABLE attempts ADD COLUMN joules_high REAL;
    ALTER TABLE components ADD COLUMN uncertainty_high REAL;
    ALTER TABLE components ADD COLUMN joules_low REAL;
    ALTER TABLE components ADD COLUMN joules_high REAL;
    UPDATE components SET joules_low = joules * max(0.0, 1.0 - coalesce(uncertainty, 0.0)),
                          joules_high = joules * (1.0 + coalesce(uncertainty, 0.0));
    UPDATE attempts SET
        joules_low = coalesce((SELECT sum(c.joules_low) FROM components c
                               WHERE c.answer_id = attempts.answer_id AND c.attempt_n = attempts.n), joules),
        joules_high = coalesce((SELECT sum(c.joules_high) FROM components c
                                WHERE c.answer_id = attempts.answer_id AND c.attempt_n = attempts.n), joules);
    UPDATE answers SET
        joules_low = coalesce((SELECT sum(c.joules_low) FROM components c
                               WHERE c.answer_id = answers.answer_id), device_joules) * pue,
        joules_high = coalesce((SELECT sum(c.joules_high) FROM components c
                                WHERE c.answer_id = answers.answer_id), device_joules) * pue;
    """),
    # Answers call tools (exact maths, the sandbox): each call, with its time and joules.
    Migration("m004_tool_calls", """
    CREATE TABLE tool_calls (
        answer_id TEXT NOT NULL REFERENCES answers(answer_id), n INTEGER NOT NULL, tool TEXT NOT NULL,
        arguments TEXT NOT NULL, ok INTEGER NOT NULL, outcome TEXT NOT NULL, seconds REAL NOT NULL,
        joules REAL NOT NULL, PRIMARY KEY (answer_id, n));
    """),
    # "I could not get this right": the joules were spent, but no answer came of them.
    Migration("m005_unanswered", """
    ALTER TABLE answers ADD COLUMN unanswered INTEGER NOT NULL DEFAULT 0;
    """),
)
"""m003 backfills ranges of rows written before it from each component's symmetric uncertainty;
`correct` stays NULL until an eval run grades the answer (`Ledger.grade`)."""


def _uncertainty(e: Energy) -> float:
    """Joule-weighted relative uncertainty of the components (a conservative sum, not quadrature)."""
    return sum(c.joules * c.uncertainty for c in e.components) / e.joules if e.joules > 0 else 0.0


class Ledger:
    """Writes AnswerRecords to an SQLite file and answers the report's queries."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.db = connect(self.path)
            self.migrate()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"cannot open the energy ledger {self.path}: {exc}") from exc

    def migrate(self) -> list[str]:
        """Apply migrations not yet applied; returns their names."""
        with self._lock:
            return MIGRATIONS.apply(self.db)

    def record(self, rec: AnswerRecord) -> None:
        e = rec.energy
        marginal = sum(c.marginal_joules for c in e.components)
        ts = rec.time.timestamp()
        day = rec.time.astimezone(timezone.utc).strftime("%Y-%m-%d")
        try:
            with self._lock, self.db:
                insert(self.db, "answers", {
                    "answer_id": rec.answer_id, "ts": ts, "day": day, "session": rec.session, "route": rec.route,
                    "agent": rec.agent, "joules": rec.joules, "device_joules": e.joules,
                    "marginal_joules": marginal * rec.pue, "method": e.method.value, "uncertainty": _uncertainty(e),
                    "tokens_in": sum(a.tokens_in for a in rec.attempts),
                    "tokens_out": sum(a.tokens_out for a in rec.attempts),
                    "seconds": sum(a.seconds for a in rec.attempts), "pue": rec.pue,
                    "carbon_g_per_kwh": rec.carbon.g_per_kwh, "carbon_source": rec.carbon.source,
                    "g_co2e": rec.g_co2e, "joules_low": rec.joules_low, "joules_high": rec.joules_high,
                    "correct": None if rec.correct is None else int(rec.correct), "unanswered": int(rec.unanswered)})
                parts: list[tuple[int | None, Energy]] = [(None, rec.overhead)]
                for n, a in enumerate(rec.attempts):
                    insert(self.db, "attempts", {
                        "answer_id": rec.answer_id, "n": n, "node": a.node, "model": a.model,
                        "quantization": a.quantization, "tokens_in": a.tokens_in, "tokens_out": a.tokens_out,
                        "seconds": a.seconds, "joules": a.energy.joules,
                        "marginal_joules": sum(c.marginal_joules for c in a.energy.components),
                        "method": a.energy.method.value, "outcome": a.outcome,
                        "joules_low": a.energy.joules_low, "joules_high": a.energy.joules_high})
                    parts.append((n, a.energy))
                insert_many(self.db, "tool_calls", [
                    {"answer_id": rec.answer_id, "n": n, "tool": t.tool, "arguments": t.arguments, "ok": int(t.ok),
                     "outcome": t.outcome, "seconds": t.seconds, "joules": t.joules}
                    for n, t in enumerate(rec.tool_calls)])
                for attempt_n, energy in parts:
                    insert_many(self.db, "components", [
                        {"answer_id": rec.answer_id, "attempt_n": attempt_n, "name": c.name, "joules": c.joules,
                         "marginal_joules": c.marginal_joules, "method": c.method.value, "source": c.source,
                         "uncertainty": c.uncertainty, "uncertainty_high": c.uncertainty_high,
                         "joules_low": c.joules_low, "joules_high": c.joules_high} for c in energy.components])
        except sqlite3.IntegrityError as exc:
            raise LedgerError(f"answer {rec.answer_id} is already in the ledger {self.path}") from exc
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"cannot write to the energy ledger {self.path}: {exc}") from exc

    def grade(self, answer_id: str, correct: bool) -> None:
        """Record whether an answer was right (eval runs), so reports can give joules per correct answer."""
        try:
            with self._lock, self.db:
                cur = self.db.execute("UPDATE answers SET correct = ? WHERE answer_id = ?", (int(correct), answer_id))
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"cannot write to the energy ledger {self.path}: {exc}") from exc
        if cur.rowcount == 0:
            raise LedgerError(f"no answer {answer_id!r} in the ledger {self.path}",
                              hint="grade answers by the answer_id the ledger recorded for them")

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cur = self.db.cursor()
            cur.row_factory = sqlite3.Row
            return cur.execute(sql, params).fetchall()

    def count(self) -> int:
        return int(self.query("SELECT count(*) AS n FROM answers")[0]["n"])

    def close(self) -> None:
        with self._lock:
            self.db.close()

