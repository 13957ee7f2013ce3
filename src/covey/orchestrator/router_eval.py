"""Scoring a router on labelled prompts: accuracy, macro-F1, per-route precision/recall, confusions."""

from __future__ import annotations

from collections.abc import Sequence

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
