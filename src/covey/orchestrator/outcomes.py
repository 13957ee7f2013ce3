"""The outcome table of `covey eval frugality`: SQLite in DATA_DIR/frugality.db, and RouteLLM's CSV export.

One row per (task, policy) of each run (covey.orchestrator.frugality.Outcome), written through
covey.migrations like the ledger. `export_routellm` writes a run in the layout RouteLLM publishes its
per-prompt responses in (lm-sys/RouteLLM, routellm/evals/gsm8k/gsm8k_responses.csv): a ``prompt``
column, one column per model holding whether its answer was right (True/False), and one
``<model>_response`` column with its answer. covey adds ``<model>_joules`` and the same three columns
for its own cascade (``covey``), which RouteLLM's loaders, reading columns by name, pass over.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from pathlib import Path

from covey.errors import ConfigError
from covey.migrations import Migration, Migrations, connect, insert_many
from covey.orchestrator.frugality import ALWAYS, COVEY, Outcome

FILENAME = "frugality.db"

MIGRATIONS = Migrations(
    Migration("outcomes", """
        CREATE TABLE outcomes (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            created REAL NOT NULL,
            task INTEGER NOT NULL,
            prompt TEXT NOT NULL,
            kind TEXT NOT NULL,
            source TEXT NOT NULL DEFAULT '',
            route TEXT NOT NULL,
            agent TEXT NOT NULL,
            policy TEXT NOT NULL,
            model TEXT NOT NULL,
            ladder TEXT NOT NULL DEFAULT '[]',
            models_called TEXT NOT NULL DEFAULT '[]',
            score REAL NOT NULL,
            right INTEGER NOT NULL,
            answer TEXT NOT NULL DEFAULT '',
            tokens_in INTEGER NOT NULL DEFAULT 0,
            tokens_out INTEGER NOT NULL DEFAULT 0,
            joules REAL NOT NULL DEFAULT 0,
            joules_low REAL NOT NULL DEFAULT 0,
            joules_high REAL NOT NULL DEFAULT 0,
            method TEXT NOT NULL DEFAULT 'estimated',
            overhead_joules REAL NOT NULL DEFAULT 0,
            overhead_low REAL NOT NULL DEFAULT 0,
            overhead_high REAL NOT NULL DEFAULT 0,
            latency_s REAL NOT NULL DEFAULT 0,
            mean_logprob REAL,
            min_logprob REAL,
            check_ok INTEGER,
            direct INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX outcomes_run ON outcomes (run_id, task, policy);
    """),
    Migration("verified", "ALTER TABLE outcomes ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;"),
)

_TUPLES = ("ladder", "models_called")
_BOOLS = ("right", "direct", "verified")


class OutcomeStore:
    """Runs of `covey eval frugality`, one row per task and policy."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.db = connect(self.path)
            MIGRATIONS.apply(self.db)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot open the outcome table {self.path}: {exc}",
                              hint="move the file aside; `covey eval frugality` makes a new one") from exc
        self.db.row_factory = sqlite3.Row

    def add(self, rows: list[Outcome]) -> None:
        now = time.time()

        def flat(o: Outcome) -> dict[str, object]:
            d = {"created": now, **o.model_dump()}
            for k in _TUPLES:
                d[k] = json.dumps(list(d[k]))
            return d

        with self.db:
            insert_many(self.db, "outcomes", [flat(o) for o in rows])

    def runs(self) -> list[str]:
        """Run ids, newest first."""
        return [r[0] for r in self.db.execute(
            "SELECT run_id FROM outcomes GROUP BY run_id ORDER BY MAX(created) DESC, MAX(id) DESC")]

    def load(self, run_id: str | None = None) -> list[Outcome]:
        """The rows of one run (default: the newest); ConfigError when there is none."""
        runs = self.runs()
        if not runs:
            raise ConfigError(f"{self.path} holds no runs yet",
                              hint="run `covey eval frugality TASKS.jsonl` first: tuning replays its outcomes")
        run_id = run_id or runs[0]
        if run_id not in runs:
            raise ConfigError(f"no run '{run_id}' in {self.path}; runs are {', '.join(runs[:5])}",
                              hint="pass one of those to --run, or omit it for the newest")
        out = []
        names = [c for c in Outcome.model_fields]
        for r in self.db.execute("SELECT * FROM outcomes WHERE run_id = ? ORDER BY task, id", (run_id,)):
            d = {k: r[k] for k in names}
            for k in _TUPLES:
                d[k] = tuple(json.loads(d[k]))
            for k in _BOOLS:
                d[k] = bool(d[k])
            d["check_ok"] = None if d["check_ok"] is None else bool(d["check_ok"])
            out.append(Outcome(**d))
        return out

    def close(self) -> None:
        self.db.close()


def export_routellm(rows: list[Outcome], path: Path) -> Path:
    """Write a run as RouteLLM's per-prompt response CSV (see the module docstring)."""
    models = list(dict.fromkeys(o.policy.removeprefix(ALWAYS) for o in rows if o.policy.startswith(ALWAYS)))
    by_task: dict[int, dict[str, Outcome]] = {}
    for o in rows:
        by_task.setdefault(o.task, {})[o.policy] = o
    cols = [*models, COVEY]
    header = ["prompt", *cols, *(f"{c}_response" for c in cols), *(f"{c}_joules" for c in cols)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for task in sorted(by_task):
            got = by_task[task]
            cells = [got.get(COVEY if c == COVEY else f"{ALWAYS}{c}") for c in cols]
            prompt = next(iter(got.values())).prompt
            w.writerow([prompt, *(str(bool(o and o.right)) for o in cells), *((o.answer if o else "") for o in cells),
                        *((f"{o.joules:.6g}" if o else "") for o in cells)])
    return path
