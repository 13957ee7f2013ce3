"""Summaries of the ledger by day, agent, node or model, compared with published cloud figures."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from covey.energy.carbon import J_PER_KWH
from covey.energy.ledger import Ledger
from covey.errors import ConfigError

By = Literal["day", "agent", "node", "model"]
ORCHESTRATOR = "(orchestrator)"


class CloudFigure(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    wh_per_query: float
    source: str

    @property
    def joules(self) -> float:
        return self.wh_per_query * 3600.0


CLOUD_FIGURES: tuple[CloudFigure, ...] = (
    CloudFigure(label="Gemini text prompt (median, Google 2025)", wh_per_query=0.24,
                source="Elsworth et al., 'Measuring the environmental impact of delivering AI at Google scale', "
                       "Google technical paper, Aug 2025"),
    CloudFigure(label="GPT-4o query (Epoch AI 2025)", wh_per_query=0.3,
                source="J. You, 'How much energy does ChatGPT use?', Epoch AI Gradient Updates, Feb 2025"),
    CloudFigure(label="ChatGPT query (OpenAI 2025)", wh_per_query=0.34,
                source="S. Altman, 'The Gentle Singularity', blog post, Jun 2025 (average query)"),
    CloudFigure(label="ChatGPT request (de Vries 2023)", wh_per_query=3.0,
                source="A. de Vries, 'The growing energy footprint of artificial intelligence', Joule 7(10), 2023"),
)
"""Published per-query energy of large cloud models (inference only, as each source defines it)."""


class SummaryRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    answers: int
    joules: float
    tokens_out: int
    g_co2e: float

    @property
    def wh(self) -> float:
        return self.joules / 3600.0

    @property
    def j_per_answer(self) -> float:
        return self.joules / self.answers if self.answers else 0.0

    @property
    def j_per_token(self) -> float:
        return self.joules / self.tokens_out if self.tokens_out else 0.0


def parse_since(text: str | None, now: datetime | None = None) -> float | None:
    """'7d', '12h', '30m' or an ISO date/time -> a UNIX timestamp; None -> no lower bound."""
    if not text:
        return None
    now = now or datetime.now(timezone.utc)
    m = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text)
    if m:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[m.group(2)]
        return (now - timedelta(**{unit: int(m.group(1))})).timestamp()
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--since {text!r} is neither a duration like 7d/12h/30m nor a date like 2026-01-31") from exc
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def summarise(ledger: Ledger, by: By = "day", since: float | None = None) -> list[SummaryRow]:
    """One row per day, agent, node or model; node and model rows include '(orchestrator)' overhead."""
    lo = since if since is not None else float("-inf")
    if by in ("day", "agent"):
        rows = ledger.query(
            f"SELECT {by} AS key, count(*) AS answers, sum(joules) AS joules, sum(tokens_out) AS tokens_out, "
            f"sum(g_co2e) AS g FROM answers WHERE ts >= ? GROUP BY {by} ORDER BY {by}", (lo,))
    elif by in ("node", "model"):
        rows = ledger.query(
            f"SELECT t.{by} AS key, count(DISTINCT t.answer_id) AS answers, sum(t.joules * a.pue) AS joules, "
            f"sum(t.tokens_out) AS tokens_out, sum(t.joules * a.pue / {J_PER_KWH} * a.carbon_g_per_kwh) AS g "
            f"FROM attempts t JOIN answers a USING (answer_id) WHERE a.ts >= ? GROUP BY t.{by} "
            f"UNION ALL "
            f"SELECT '{ORCHESTRATOR}', count(DISTINCT c.answer_id), sum(c.joules * a.pue), 0, "
            f"sum(c.joules * a.pue / {J_PER_KWH} * a.carbon_g_per_kwh) "
            f"FROM components c JOIN answers a USING (answer_id) WHERE c.attempt_n IS NULL AND a.ts >= ? "
            f"HAVING count(*) > 0 ORDER BY 1", (lo, lo))
    else:
        raise ConfigError(f"--by {by!r} is not one of day, agent, node, model")
    return [SummaryRow(key=r["key"] or "", answers=r["answers"], joules=r["joules"] or 0.0,
                       tokens_out=r["tokens_out"] or 0, g_co2e=r["g"] or 0.0) for r in rows]


def totals(ledger: Ledger, since: float | None = None) -> SummaryRow:
    lo = since if since is not None else float("-inf")
    r = ledger.query("SELECT count(*) AS n, sum(joules) AS j, sum(tokens_out) AS t, sum(g_co2e) AS g "
                     "FROM answers WHERE ts >= ?", (lo,))[0]
    return SummaryRow(key="all", answers=r["n"], joules=r["j"] or 0.0, tokens_out=r["t"] or 0, g_co2e=r["g"] or 0.0)


def measured_share(ledger: Ledger, since: float | None = None) -> float:
    lo = since if since is not None else float("-inf")
    r = ledger.query("SELECT count(*) AS n, sum(method = 'measured') AS m FROM answers WHERE ts >= ?", (lo,))[0]
    return (r["m"] or 0) / r["n"] if r["n"] else 0.0


def compare_with_cloud(j_per_answer: float) -> list[tuple[CloudFigure, float]]:
    """Each published figure with how many of our answers fit in one of its queries."""
    return [(f, f.joules / j_per_answer if j_per_answer > 0 else float("inf")) for f in CLOUD_FIGURES]


def plot(rows: list[SummaryRow], path: Path, *, title: str = "covey energy per answer") -> Path:
    """A PNG bar chart of J/answer per group with the cloud figures as reference lines (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise ConfigError("the ledger has no answers in that period, so there is nothing to plot")
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 + 0.8 * len(rows)), 4.5))
    try:
        keys = [r.key for r in rows]
        ax.bar(keys, [max(r.j_per_answer, 1e-3) for r in rows], color="#4c956c", label="covey (J/answer)")
        for f, style in zip(CLOUD_FIGURES, ("--", "-.", ":", "-")):
            ax.axhline(f.joules, linestyle=style, color="#bc4749", linewidth=1)
            ax.text(len(rows) - 0.5, f.joules, f" {f.label}", va="bottom", ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("joules per answer (log)")
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
