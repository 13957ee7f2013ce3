"""What the chat says about each answer: the compact line under it, `/why`, and the session's energy total.

Plain functions over `AnswerResult` and `Notice`, so they are tested without a screen. Energy figures
follow the ledger: device joules times the room's PUE, gCO2e from the grid's carbon intensity
(`covey.energy.carbon`), and the cloud comparison uses `covey.energy.report`'s published figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from covey.energy.carbon import CarbonIntensity
from covey.energy.report import CLOUD_FIGURES, SummaryRow, compare_with_cloud, format_joules
from covey.orchestrator.results import AnswerResult, Notice
from covey.types import EnergyMethod

WHY_KINDS = {"delegate": "delegated", "escalate": "escalated", "failover": "failed over", "replaced": "replaced"}


def answer_line(result: AnswerResult, carbon: CarbonIntensity, pue: float = 1.0) -> str:
    """Two short lines: route and agent, node and model; tokens and tokens/s, joules with their range, gCO2e."""
    last = result.attempts[-1] if result.attempts else None
    tps = last.tokens_per_second if last else 0.0
    e = result.energy
    joules = format_joules(e.joules * pue, e.joules_low * pue, e.joules_high * pue,
                           e.method is not EnergyMethod.MEASURED)
    grams = carbon.grams(e.joules, pue)
    if (tool := result.answering_tool) is not None:  # no model ran: no tokens to count
        return (f"{result.route} → {result.agent} · answered by the {tool} tool (no model ran)\n"
                f"{joules} · {grams:.2g} gCO2e")
    return (f"{result.route} → {result.agent} · {result.node} · {result.model}\n"
            f"{result.prompt_tokens} in / {result.completion_tokens} out · {tps:.0f} tok/s · "
            f"{joules} · {grams:.2g} gCO2e")


def why_line(result: AnswerResult | None, notices: Sequence[Notice]) -> str:
    """Why the answer moved: delegated, escalated, failed over (from the notices and the attempts); '' if it did not."""
    parts = [f"{WHY_KINDS[n.kind]}: {n.text}" for n in notices if n.kind in WHY_KINDS]
    said = {n.kind for n in notices}
    if result is not None:
        if result.escalated and "escalate" not in said:
            parts.append(f"escalated ({len(result.attempts)} attempts)")
        if result.failed_over and "failover" not in said:
            parts.append("failed over to another node")
        if result.route_note:
            parts.append(f"routing: {result.route_note}")
    return "; ".join(dict.fromkeys(parts))


def explain(result: AnswerResult | None, notices: Sequence[Notice], prompt: str = "") -> str:
    """`/why`: the last routing and placement, attempt by attempt (Markdown)."""
    if result is None:
        return "Nothing to explain yet: ask something first."
    lines = [f"**Routing**: {_quote(prompt)} went to route `{result.route}` "
             f"(confidence {result.route_confidence:.2f}), answered by agent `{result.agent}`."]
    if result.route_note:
        lines.append(f"The router was unsure: {result.route_note}.")
    lines.append("")
    lines.append("**Placement**, attempt by attempt:")
    lines.append("")
    if not result.attempts:
        lines.append("- no model ran: the orchestrator answered itself")
    for i, a in enumerate(result.attempts, 1):
        extra = f": {a.reason}" if a.reason else ""
        conf = ""
        if a.confidence is not None:
            conf = f", mean log-prob {a.confidence.mean_logprob:.2f}"
            if a.confidence.reason and a.confidence.reason != a.reason:
                conf += f" ({a.confidence.reason})"
        lines.append(f"{i}. `{a.node_name}` ran `{a.model_id}`: {a.outcome.replace('_', ' ')}{extra}"
                     f" ({a.completion_tokens} tokens, {a.tokens_per_second:.0f} tok/s{conf})")
    moved = [f"- {WHY_KINDS.get(n.kind, n.kind)}: {n.text}" for n in notices]
    notes = [f"- {n}" for n in result.notes if all(n not in m for m in moved)]
    if moved or notes:
        lines += ["", "**Notes**:", "", *moved, *notes]
    return "\n".join(lines)


def _quote(prompt: str) -> str:
    text = " ".join(prompt.split())
    return f"“{text[:60]}{'…' if len(text) > 60 else ''}”" if text else "the question"


@dataclass
class SessionEnergy:
    """The energy and carbon of the answers given in this chat, next to a published cloud figure."""

    carbon: CarbonIntensity
    pue: float = 1.0
    answers: int = 0
    joules: float = 0.0
    joules_low: float = 0.0
    joules_high: float = 0.0
    tokens_out: int = 0
    estimated: bool = False
    results: list[AnswerResult] = field(default_factory=list)

    def add(self, result: AnswerResult) -> None:
        e = result.energy
        self.answers += 1
        self.joules += e.joules * self.pue
        self.joules_low += e.joules_low * self.pue
        self.joules_high += e.joules_high * self.pue
        self.tokens_out += result.completion_tokens
        self.estimated = self.estimated or e.method is not EnergyMethod.MEASURED
        self.results.append(result)

    def add_turn(self, turn) -> None:
        """An earlier turn of the session, from the history store (`covey.history.Turn`)."""
        self.answers += 1
        self.joules += turn.joules * self.pue
        self.joules_low += turn.joules * max(0.0, 1 - turn.uncertainty) * self.pue
        self.joules_high += turn.joules * (1 + turn.uncertainty) * self.pue
        self.tokens_out += turn.completion_tokens
        self.estimated = self.estimated or turn.method != EnergyMethod.MEASURED.value

    @property
    def grams(self) -> float:
        return self.carbon.grams(self.joules)  # joules already carry the PUE

    def row(self) -> SummaryRow:
        return SummaryRow(key="session", answers=self.answers, joules=self.joules, tokens_out=self.tokens_out,
                          g_co2e=self.grams, joules_low=self.joules_low, joules_high=self.joules_high,
                          estimated=self.estimated)

    def line(self) -> str:
        """One line for the status bar: answers, joules, gCO2e, and the current headline cloud figure."""
        if not self.answers:
            return "no answers yet"
        head = next(f for f in CLOUD_FIGURES if f.current)
        per = head.joules / (self.joules / self.answers) if self.joules > 0 else float("inf")
        return (f"{self.answers} answer{'s' * (self.answers != 1)}, {self.joules:.1f} J, {self.grams:.2g} gCO2e · "
                f"one cloud prompt ({head.wh_per_query:g} Wh, {head.label.split(',')[0]}) ≈ {_times(per)} answers "
                "like these")

    def report(self) -> str:
        """`/energy`: the session's total with its range and carbon, then every published figure (Markdown)."""
        if not self.answers:
            return "No answers yet in this session: nothing to add up."
        row = self.row()
        lines = [f"**This session**: {self.answers} answers, {self.tokens_out} tokens out, "
                 f"{format_joules(self.joules, self.joules_low, self.joules_high, self.estimated)}, "
                 f"{self.grams:.2g} gCO2e ({self.carbon.g_per_kwh:.0f} g/kWh, {self.carbon.source}).",
                 f"Per answer: {row.per_answer_text()}.", "",
                 "One query to a large cloud model, as published, pays for this many answers like these:", ""]
        for c in compare_with_cloud(row):
            lines.append(f"- {c.figure.label}, {c.figure.wh_per_query:g} Wh: **{_times(c.per_answer)}** "
                         f"({_times(c.per_answer_low)}-{_times(c.per_answer_high)}); counts {c.figure.boundary}")
        return "\n".join(lines)


def _times(x: float) -> str:
    if x == float("inf"):
        return "any number"
    return f"{x:.0f}" if x >= 10 else f"{x:.1f}"
