"""Summaries of the ledger by day, agent, node or model, compared with published cloud figures."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from covey.energy.carbon import J_PER_KWH
from covey.energy.ledger import Ledger
from covey.errors import ConfigError

By = Literal["day", "agent", "node", "model"]
ORCHESTRATOR = "(orchestrator)"


class CloudFigure(BaseModel):
    """A published per-query energy figure and what it counts (its boundary)."""

    model_config = ConfigDict(frozen=True)

    label: str
    wh_per_query: float
    boundary: str
    source: str
    current: bool = True

    @property
    def joules(self) -> float:
        return self.wh_per_query * 3600.0


GOOGLE_2025 = ("Elsworth et al., 'Measuring the environmental impact of delivering AI at Google Scale', "
               "Google, Aug 2025 (arXiv:2508.15734)")
CLOUD_FIGURES: tuple[CloudFigure, ...] = (
    CloudFigure(label="Gemini Apps text prompt, median, comprehensive (Google 2025)", wh_per_query=0.24,
                boundary="active accelerators + host CPU/RAM + idle provisioned machines + datacentre overhead (PUE)",
                source=GOOGLE_2025),
    CloudFigure(label="Gemini Apps text prompt, median, active accelerators only (Google 2025)", wh_per_query=0.10,
                boundary="active AI accelerators only: no host, idle share or datacentre overhead",
                source=GOOGLE_2025),
    CloudFigure(label="GPT-4o query, typical (Epoch AI 2025)", wh_per_query=0.3,
                boundary="an estimate from model size and GPU server power, not a measurement",
                source="J. You, 'How much energy does ChatGPT use?', Epoch AI Gradient Updates, Feb 2025"),
    CloudFigure(label="ChatGPT query, average (OpenAI 2025)", wh_per_query=0.34,
                boundary="no boundary or method published",
                source="S. Altman, 'The Gentle Singularity', blog post, Jun 2025"),
    CloudFigure(label="ChatGPT request (de Vries 2023, superseded)", wh_per_query=3.0,
                boundary="2023 estimate from server counts; older than the figures above",
                source="A. de Vries, 'The growing energy footprint of artificial intelligence', Joule 7(10), 2023",
                current=False),
)
"""Published per-query energy of large cloud models, current figures first, each with its boundary."""

COVEY_BOUNDARY = ("covey: device energy of the answering nodes and the orchestrator x the PUE you set "
                  "(COVEY_ENERGY__PUE), no idle share of other machines; closest to Google's narrower boundary")


def format_joules(joules: float, low: float, high: float, estimated: bool) -> str:
    """'12.3 J (4.9-35.7, estimated)': the figure, its range and how it was obtained."""
    method = "estimated" if estimated else "measured"
    digits = 1 if high >= 10 else (2 if high >= 1 else 3)
    return f"{joules:.{digits}f} J ({low:.{digits}f}-{high:.{digits}f}, {method})"


class SummaryRow(BaseModel):
    """One group of the ledger. Ranges are sums of the components' documented ranges."""

    model_config = ConfigDict(frozen=True)

    key: str
    answers: int
    joules: float
    tokens_out: int
    g_co2e: float
    joules_low: float = 0.0
    joules_high: float = 0.0
    estimated: bool = True
    overhead_joules: float = Field(0.0, description="the orchestrator's own share of these answers (x PUE)")
    graded: int = Field(0, description="answers an eval run graded")
    correct: int = 0
    graded_joules: float = Field(0.0, description="joules of the graded answers")
    unanswered: int = Field(0, description="answers that were 'I could not get this right' (their joules count)")

    @property
    def wh(self) -> float:
        return self.joules / 3600.0

    @property
    def j_per_answer(self) -> float:
        return self.joules / self.answers if self.answers else 0.0

    @property
    def j_per_answer_low(self) -> float:
        return self.joules_low / self.answers if self.answers else 0.0

    @property
    def j_per_answer_high(self) -> float:
        return self.joules_high / self.answers if self.answers else 0.0

    @property
    def overhead_per_answer(self) -> float:
        return self.overhead_joules / self.answers if self.answers else 0.0

    @property
    def j_per_token(self) -> float:
        return self.joules / self.tokens_out if self.tokens_out else 0.0

    @property
    def j_per_correct(self) -> float | None:
        """Joules of the graded answers per correct one (wrong answers cost too); None if none graded/right."""
        return self.graded_joules / self.correct if self.correct else None

    def per_answer_text(self) -> str:
        return format_joules(self.j_per_answer, self.j_per_answer_low, self.j_per_answer_high, self.estimated)

    def per_correct_text(self) -> str:
        if not self.graded:
            return "n/a (no graded answers)"
        if not self.correct:
            return f"n/a (0 of {self.graded} graded answers correct)"
        scale = self.graded_joules / self.correct / self.joules if self.joules else 0.0
        return (format_joules(self.graded_joules / self.correct, self.joules_low * scale, self.joules_high * scale,
                              self.estimated) + f", {self.correct} of {self.graded} graded answers correct")


class CloudComparison(BaseModel):
    """How many covey answers (or correct answers) one cloud query's energy pays for."""

    model_config = ConfigDict(frozen=True)

    figure: CloudFigure
    per_answer: float
    per_answer_low: float
    per_answer_high: float
    per_correct: float | None


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


_OVERHEAD = "ov AS (SELECT answer_id, sum(joules) AS j FROM components WHERE attempt_n IS NULL GROUP BY answer_id)"
_GRADES = ("sum(a.correct IS NOT NULL) AS graded, sum(coalesce(a.correct, 0)) AS ok, "
           "sum(CASE WHEN a.correct IS NOT NULL THEN {j} END) AS graded_j, sum(coalesce(ov.j, 0) * a.pue) AS overhead, "
           "sum(a.unanswered) AS unanswered")


def _rows(rows) -> list[SummaryRow]:
    return [SummaryRow(key=r["key"] or "", answers=r["answers"], joules=r["joules"] or 0.0,
                       tokens_out=r["tokens_out"] or 0, g_co2e=r["g"] or 0.0, joules_low=r["lo"] or 0.0,
                       joules_high=r["hi"] or 0.0, estimated=bool(r["est"]), overhead_joules=r["overhead"] or 0.0,
                       graded=r["graded"] or 0, correct=r["ok"] or 0, graded_joules=r["graded_j"] or 0.0,
                       unanswered=r["unanswered"] or 0)
            for r in rows]


def _answers_sql(group: str | None) -> str:
    key = f"a.{group}" if group else "'all'"
    return (f"WITH {_OVERHEAD} SELECT {key} AS key, count(*) AS answers, sum(a.joules) AS joules, "
            "sum(a.tokens_out) AS tokens_out, sum(a.g_co2e) AS g, sum(coalesce(a.joules_low, a.joules)) AS lo, "
            "sum(coalesce(a.joules_high, a.joules)) AS hi, sum(a.method = 'estimated') AS est, "
            + _GRADES.format(j="a.joules") +
            " FROM answers a LEFT JOIN ov USING (answer_id) WHERE a.ts >= ?"
            + (f" GROUP BY {key} ORDER BY {key}" if group else ""))


def summarise(ledger: Ledger, by: By = "day", since: float | None = None) -> list[SummaryRow]:
    """One row per day, agent, node or model, each with its range, overhead share and grades.

    Node and model rows count their attempts' energy; the orchestrator's own work is then its own
    '(orchestrator)' row (so the rows add up to the total) and, per group, `overhead_joules`.
    """
    lo = since if since is not None else float("-inf")
    if by in ("day", "agent"):
        rows = ledger.query(_answers_sql(by), (lo,))
    elif by in ("node", "model"):
        rows = ledger.query(
            f"WITH {_OVERHEAD}, per AS (SELECT {by} AS key, answer_id, sum(joules) AS j, "
            "sum(coalesce(joules_low, joules)) AS lo, sum(coalesce(joules_high, joules)) AS hi, "
            f"sum(tokens_out) AS tok, max(method = 'estimated') AS est FROM attempts GROUP BY {by}, answer_id) "
            "SELECT per.key AS key, count(*) AS answers, sum(per.j * a.pue) AS joules, sum(per.tok) AS tokens_out, "
            f"sum(per.j * a.pue / {J_PER_KWH} * a.carbon_g_per_kwh) AS g, sum(per.lo * a.pue) AS lo, "
            "sum(per.hi * a.pue) AS hi, sum(per.est) AS est, " + _GRADES.format(j="per.j * a.pue") +
            " FROM per JOIN answers a USING (answer_id) LEFT JOIN ov USING (answer_id) WHERE a.ts >= ? "
            "GROUP BY per.key "
            "UNION ALL "
            f"SELECT '{ORCHESTRATOR}', count(DISTINCT c.answer_id), sum(c.joules * a.pue), 0, "
            f"sum(c.joules * a.pue / {J_PER_KWH} * a.carbon_g_per_kwh), "
            "sum(coalesce(c.joules_low, c.joules) * a.pue), sum(coalesce(c.joules_high, c.joules) * a.pue), "
            "sum(c.method = 'estimated'), 0, 0, NULL, sum(c.joules * a.pue), 0 "
            "FROM components c JOIN answers a USING (answer_id) WHERE c.attempt_n IS NULL AND a.ts >= ? "
            "HAVING count(*) > 0 ORDER BY 1", (lo, lo))
    else:
        raise ConfigError(f"--by {by!r} is not one of day, agent, node, model",
                          hint="pass --by day, agent (each route has its own agent), node or model")
    return _rows(rows)


def totals(ledger: Ledger, since: float | None = None) -> SummaryRow:
    lo = since if since is not None else float("-inf")
    return _rows(ledger.query(_answers_sql(None), (lo,)))[0]


def measured_share(ledger: Ledger, since: float | None = None) -> float:
    lo = since if since is not None else float("-inf")
    r = ledger.query("SELECT count(*) AS n, sum(method = 'measured') AS m FROM answers WHERE ts >= ?", (lo,))[0]
    return (r["m"] or 0) / r["n"] if r["n"] else 0.0


def compare_with_cloud(total: SummaryRow | float) -> list[CloudComparison]:
    """Each published figure with how many covey answers (and correct answers) fit in one of its queries.

    A bare number is taken as joules per answer with no range and no grades.
    """
    if not isinstance(total, SummaryRow):
        total = SummaryRow(key="all", answers=1, joules=total, tokens_out=0, g_co2e=0.0,
                           joules_low=total, joules_high=total)

    def fit(cloud_j: float, j: float) -> float:
        return cloud_j / j if j > 0 else float("inf")

    per_correct = total.j_per_correct
    return [CloudComparison(figure=f, per_answer=fit(f.joules, total.j_per_answer),
                            per_answer_low=fit(f.joules, total.j_per_answer_high),
                            per_answer_high=fit(f.joules, total.j_per_answer_low),
                            per_correct=fit(f.joules, per_correct) if per_correct else None)
            for f in CLOUD_FIGURES]


def plot(rows: list[SummaryRow], path: Path, *, title: str = "covey energy per answer") -> Path:
    """A PNG of J/answer per group: the answering part and the orchestrator's overhead stacked,
    the range as an error bar, the value on each bar, cloud figures as reference lines in a legend.

    The '(orchestrator)' row of a node/model summary is not a bar: its share is the stacked segment.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [r for r in rows if r.key != ORCHESTRATOR and r.answers]
    if not bars:
        raise ConfigError("the ledger has no answers in that period, so there is nothing to plot")
    node_like = any(r.key == ORCHESTRATOR for r in rows)
    fig, ax = plt.subplots(figsize=(max(5.0, 2.0 + 0.9 * len(bars)), 5.0))
    try:
        xs = list(range(len(bars)))
        overhead = [r.overhead_per_answer for r in bars]
        # day/agent rows already include the overhead; node/model rows count their attempts only
        own = [max(r.j_per_answer - (0.0 if node_like else o), 1e-3) for r, o in zip(bars, overhead)]
        tops = [a + o for a, o in zip(own, overhead)]
        lows = [max(r.j_per_answer_low + (o if node_like else 0.0), 1e-3) for r, o in zip(bars, overhead)]
        highs = [r.j_per_answer_high + (o if node_like else 0.0) for r, o in zip(bars, overhead)]
        ax.bar(xs, own, color="#4c956c", label="answering model (J/answer)")
        if any(o > 0 for o in overhead):
            ax.bar(xs, [max(o, 1e-6) for o in overhead], bottom=own, color="#a7c957",
                   label="orchestrator overhead per answer")
        ax.errorbar(xs, tops, yerr=[[t - lo for t, lo in zip(tops, lows)], [hi - t for t, hi in zip(tops, highs)]],
                    fmt="none", ecolor="#333333", capsize=4, linewidth=1, label="range (documented uncertainty)")
        for x, t, hi, o in zip(xs, tops, highs, overhead):
            note = f"\nincl. {o:.2g} J orchestrator" if o > 0 else ""
            ax.annotate(f"{t:.3g} J{note}", (x, max(hi, t)), xytext=(0, 4), textcoords="offset points",
                        ha="center", va="bottom", fontsize=8)
        styles = ("--", ":", "-.", (0, (5, 1)), (0, (1, 3)))
        colours = ("#bc4749", "#6a4c93", "#1982c4", "#e07a1f", "#999999")
        for f, style, colour in zip(CLOUD_FIGURES, styles, colours):
            ax.axhline(f.joules, linestyle=style, color=colour if f.current else "#999999", linewidth=1.2,
                       label=f"{f.label}: {f.wh_per_query:g} Wh = {f.joules:.0f} J")
        ax.set_yscale("log")
        ymax = max(max(highs), max(f.joules for f in CLOUD_FIGURES))
        ax.set_ylim(top=ymax * 8)
        labels = [r.key if len(r.key) <= 18 else r.key[:17] + "…" for r in bars]
        ax.set_xticks(xs, labels, rotation=20 if len(bars) > 3 else 0, ha="right" if len(bars) > 3 else "center")
        ax.set_xlim(-0.6, len(bars) - 0.4)
        ax.set_ylabel("joules per answer (log scale)")
        ax.set_title(title)
        if any(r.estimated for r in bars):
            ax.text(0.01, 0.98, "ESTIMATED: no power sensor for some figures (bars show the range)",
                    transform=ax.transAxes, ha="left", va="top", fontsize=8, color="#bc4749", fontweight="bold")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
                  title="reference lines: published per-query figures", title_fontsize=7)
        return save_figure(fig, path)
    finally:
        plt.close(fig)


def save_figure(fig, path) -> Path:
    """Write a matplotlib figure as PNG, making its folder; the one place plots are saved."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path
