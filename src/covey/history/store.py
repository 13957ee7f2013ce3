"""The conversation store: one row per turn (prompt, answer, route, node, tokens, joules) in SQLite.

Schema changes are numbered migrations (covey.migrations, as for the ledger and the RAG metadata).
Every process that answers for a session (`covey ask --session`, `covey chat`, `covey serve`) reads
the recent turns from here
before answering and appends the new turn after, so a conversation outlives the process.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import Field

from covey.errors import HistoryError
from covey.migrations import Migration, Migrations, connect
from covey.orchestrator.results import AnswerResult
from covey.types import Frozen, Message

logger = logging.getLogger(__name__)

FILENAME = "history.db"


class Turn(Frozen):
    """One question and its answer. `prompt`/`answer` are None when the store keeps no text."""

    turn_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    time: datetime = Field(default_factory=lambda: datetime.now(timezone.utc))
    session: str
    prompt: str | None = None
    answer: str | None = None
    route: str = ""
    agent: str = ""
    node: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    joules: float = 0.0
    method: str = "estimated"
    uncertainty: float = Field(0.0, description="joule-weighted relative uncertainty of the energy figure")
    seconds: float = 0.0
    attempts: int = 1
    escalated: bool = False
    failed_over: bool = False

    @classmethod
    def of(cls, prompt: str, result: AnswerResult, *, keep_text: bool = True) -> Turn:
        e = result.energy
        unc = sum(c.joules * c.uncertainty for c in e.components) / e.joules if e.joules > 0 else 0.0
        return cls(session=result.session_id, prompt=prompt if keep_text else None,
                   answer=result.text if keep_text else None, route=result.route, agent=result.agent,
                   node=result.node, model=result.model, prompt_tokens=result.prompt_tokens,
                   completion_tokens=result.completion_tokens, joules=e.joules, method=e.method.value,
                   uncertainty=unc, seconds=result.seconds, attempts=len(result.attempts),
                   escalated=result.escalated, failed_over=result.failed_over)


@runtime_checkable
class ConversationStore(Protocol):
    """What the orchestrator needs to keep a conversation across processes."""

    keeps_text: bool

    def recent(self, session: str, turns: int) -> list[Message]:
        """The last `turns` turns of `session` as user/assistant messages, oldest first."""

    def append(self, prompt: str, result: AnswerResult) -> Turn:
        """Store one answered turn (text only if the store keeps text)."""


MIGRATIONS = Migrations(
    Migration("m001_turns", """
    CREATE TABLE turns (
        turn_id TEXT PRIMARY KEY, ts REAL NOT NULL, session TEXT NOT NULL, prompt TEXT, answer TEXT,
        route TEXT, agent TEXT, node TEXT, model TEXT, prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL, joules REAL NOT NULL, method TEXT NOT NULL, uncertainty REAL NOT NULL,
        seconds REAL NOT NULL, attempts INTEGER NOT NULL, escalated INTEGER NOT NULL, failed_over INTEGER NOT NULL);
    CREATE INDEX turns_session_ts ON turns(session, ts);
    CREATE INDEX turns_ts ON turns(ts);
    """),
)


_COLUMNS = ("turn_id", "ts", "session", "prompt", "answer", "route", "agent", "node", "model", "prompt_tokens",
            "completion_tokens", "joules", "method", "uncertainty", "seconds", "attempts", "escalated",
            "failed_over")


class HistoryStore:
    """Conversation turns in an SQLite file (DATA_DIR/history.db), safe to share between processes."""

    def __init__(self, path: Path | str, *, keep_text: bool = True) -> None:
        self.path = Path(path)
        self.keeps_text = keep_text
        self._lock = threading.Lock()
        try:
            self.db = connect(self.path)
            self.migrate()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"cannot open the conversation history {self.path}: {exc}") from exc

    def migrate(self) -> list[str]:
        """Apply migrations not yet applied; returns their names."""
        with self._lock:
            return MIGRATIONS.apply(self.db)

    def append(self, prompt: str, result: AnswerResult) -> Turn:
        turn = Turn.of(prompt, result, keep_text=self.keeps_text)
        self.add(turn)
        return turn

    def add(self, turn: Turn) -> None:
        if not self.keeps_text and (turn.prompt is not None or turn.answer is not None):
            turn = turn.model_copy(update={"prompt": None, "answer": None})
        row = (turn.turn_id, turn.time.timestamp(), turn.session, turn.prompt, turn.answer, turn.route, turn.agent,
               turn.node, turn.model, turn.prompt_tokens, turn.completion_tokens, turn.joules, turn.method,
               turn.uncertainty, turn.seconds, turn.attempts, int(turn.escalated), int(turn.failed_over))
        try:
            with self._lock, self.db:
                self.db.execute(f"INSERT INTO turns VALUES ({','.join('?' * len(_COLUMNS))})", row)
        except sqlite3.IntegrityError as exc:
            raise HistoryError(f"turn {turn.turn_id} is already in {self.path}") from exc
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"cannot write to the conversation history {self.path}: {exc}") from exc

    def recent(self, session: str, turns: int) -> list[Message]:
        if turns <= 0:
            return []
        rows = self._select("WHERE session = ? AND prompt IS NOT NULL", (session,), limit=turns)
        messages: list[Message] = []
        for t in reversed(rows):
            messages.append(Message(role="user", content=t.prompt or ""))
            messages.append(Message(role="assistant", content=t.answer or ""))
        return messages

    def search(self, *, query: str | None = None, session: str | None = None, limit: int | None = 3) -> list[Turn]:
        """Newest first: turns whose prompt, answer, route, agent, node or model contains `query`."""
        where, params = [], []
        if session:
            where.append("session = ?")
            params.append(session)
        if query:
            like = f"%{_escape_like(query)}%"
            where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in
                                           ("prompt", "answer", "route", "agent", "node", "model")) + ")")
            params.extend([like] * 6)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        return self._select(clause, tuple(params), limit=limit)

    def sessions(self) -> list[tuple[str, int, datetime]]:
        """(session, turns, last time) for every session, most recent first."""
        with self._lock:
            rows = self.db.execute("SELECT session, count(*), max(ts) FROM turns GROUP BY session "
                                   "ORDER BY max(ts) DESC").fetchall()
        return [(s, n, datetime.fromtimestamp(ts, timezone.utc)) for s, n, ts in rows]

    def count(self) -> int:
        with self._lock:
            return int(self.db.execute("SELECT count(*) FROM turns").fetchone()[0])

    def _select(self, clause: str, params: Sequence[object], *, limit: int | None) -> list[Turn]:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM turns {clause} ORDER BY ts DESC, rowid DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        try:
            with self._lock:
                rows = self.db.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"cannot read the conversation history {self.path}: {exc}") from exc
        return [_turn(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self.db.close()


def _turn(r: tuple) -> Turn:
    d = dict(zip(_COLUMNS, r, strict=True))
    d["time"] = datetime.fromtimestamp(d.pop("ts"), timezone.utc)
    d["escalated"], d["failed_over"] = bool(d["escalated"]), bool(d["failed_over"])
    return Turn.model_validate(d)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
