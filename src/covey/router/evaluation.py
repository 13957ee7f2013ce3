"""Scoring a router on labelled prompts: accuracy, macro-F1, per-route precision/recall, confusions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import Field

from covey.types import Frozen


class RouteScore(Frozen):
    route: str
    precision: float
    recall: float
    f1: float
    support: int = Field(description="labelled prompts of this route")


class RouteReport(Frozen):
    """How a router did on a labelled set; confusion[truth][predicted] counts prompts."""

    total: int
    accuracy: float
    macro_f1: float
    fallbacks: int = Field(0, description="decisions where the router was unsure and fell back")
    routes: tuple[str, ...]
    scores: tuple[RouteScore, ...]
    confusion: tuple[tuple[int, ...], ...]

    def score(self, route: str) -> RouteScore:
        return next(s for s in self.scores if s.route == route)


def score_routes(truth: Sequence[str], predicted: Sequence[str], *, fallbacks: int = 0) -> RouteReport:
    """Compare predicted routes with the labels; macro-F1 averages over the labelled routes."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predicted differ in length")
    labelled = sorted(set(truth))
    routes = tuple(labelled + sorted(set(predicted) - set(labelled)))
    index = {r: i for i, r in enumerate(routes)}
    matrix = [[0] * len(routes) for _ in routes]
    for t, p in zip(truth, predicted):
        matrix[index[t]][index[p]] += 1
    scores = []
    for r in routes:
        i = index[r]
        tp = matrix[i][i]
        predicted_r = sum(row[i] for row in matrix)
        support = sum(matrix[i])
        precision = tp / predicted_r if predicted_r else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(RouteScore(route=r, precision=precision, recall=recall, f1=f1, support=support))
    in_labels = [s.f1 for s in scores if s.route in labelled]
    correct = sum(matrix[i][i] for i in range(len(routes)))
    return RouteReport(
        total=len(truth),
        accuracy=correct / len(truth) if truth else 0.0,
        macro_f1=sum(in_labels) / len(in_labels) if in_labels else 0.0,
        fallbacks=fallbacks,
        routes=routes,
        scores=tuple(scores),
        confusion=tuple(tuple(row) for row in matrix),
    )


class AbstentionScore(Frozen):
    """How well the router's "unsure, falling back" decisions line up with its mistakes.

    precision: of the tasks it abstained on, the share its own best guess had wrong (abstaining helped);
    recall: of the tasks its best guess had wrong, the share it abstained on (mistakes it caught).
    """

    abstained: int
    wrong: int = Field(description="tasks whose head pick (before any fallback) was wrong")
    precision: float
    recall: float


def score_abstention(truth: Sequence[str], picks: Sequence[str], abstained: Sequence[bool]) -> AbstentionScore:
    """Abstention precision/recall from the head's own picks and which of them it abstained on."""
    if not len(truth) == len(picks) == len(abstained):
        raise ValueError("truth, picks and abstained differ in length")
    wrong = [t != p for t, p in zip(truth, picks)]
    n_abs = sum(abstained)
    caught = sum(1 for w, a in zip(wrong, abstained) if w and a)
    return AbstentionScore(abstained=n_abs, wrong=sum(wrong), precision=caught / n_abs if n_abs else 0.0,
                           recall=caught / sum(wrong) if any(wrong) else 0.0)


class _Decision(Protocol):
    @property
    def route(self) -> str: ...

    @property
    def runner_up(self) -> str | None: ...

    @property
    def fallback(self) -> bool: ...


def head_picks(decisions: Sequence[_Decision]) -> tuple[list[str], list[bool]]:
    """The head's own pick per RouteDecision (on a fallback it is the runner-up) and whether it abstained."""
    picks, abstained = [], []
    for d in decisions:
        picks.append(d.runner_up if d.fallback and d.runner_up else d.route)
        abstained.append(d.fallback)
    return picks, abstained
