"""Retrieval quality against a question set: recall@k and mean reciprocal rank, by source."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field, ValidationError

from covey.errors import BadRequest
from covey.rag.store import Store
from covey.rag.types import Passage
from covey.types import Frozen


class EvalCase(Frozen):
    query: str = Field(min_length=1)
    expected_sources: tuple[str, ...] = Field(min_length=1)


class CaseResult(Frozen):
    query: str
    ranked_sources: tuple[str, ...]
    first_hit_rank: int | None


class EvalReport(Frozen):
    cases: int
    recall: dict[int, float] = Field(description="k -> mean fraction of expected sources in the top k sources")
    mrr: float
    results: tuple[CaseResult, ...] = ()


def load_cases(path: Path) -> list[EvalCase]:
    """Reads JSON lines of {"query": ..., "expected_sources": [...]}; blank lines and # comments skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"cannot read evaluation file {path}: {exc}") from exc
    cases: list[EvalCase] = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            cases.append(EvalCase.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise BadRequest(
                f"{path}:{number} is not a case like "
                '{"query": "...", "expected_sources": ["file.md"]}: ' + str(exc).splitlines()[0]
            ) from exc
    if not cases:
        raise BadRequest(f"{path} holds no evaluation cases")
    return cases


def source_matches(source: str, expected: str) -> bool:
    """An expected source matches the full path, a trailing part of it, or the file name."""
    if source == expected:
        return True
    expected = expected.strip("/")
    return source.endswith("/" + expected) or Path(source).name == expected


def rank_sources(passages: Sequence[Passage]) -> list[str]:
    """Distinct sources in order of their best passage."""
    return list(dict.fromkeys(p.source for p in passages))


def evaluate(store: Store, cases: Sequence[EvalCase], ks: Sequence[int] = (1, 5, 10)) -> EvalReport:
    depth = max(ks)
    recall = {k: 0.0 for k in ks}
    reciprocal = 0.0
    results: list[CaseResult] = []
    for case in cases:
        # Fetch extra passages: several chunks of one source may fill the top ranks.
        ranked = rank_sources(store.search(case.query, k=depth * 4))[:depth]
        for k in ks:
            hits = sum(any(source_matches(s, e) for s in ranked[:k]) for e in case.expected_sources)
            recall[k] += hits / len(case.expected_sources)
        first = next((i for i, s in enumerate(ranked, 1) if any(source_matches(s, e) for e in case.expected_sources)),
                     None)
        reciprocal += 1.0 / first if first else 0.0
        results.append(CaseResult(query=case.query, ranked_sources=tuple(ranked), first_hit_rank=first))
    n = len(cases)
    return EvalReport(cases=n, recall={k: v / n for k, v in recall.items()}, mrr=reciprocal / n, results=tuple(results))
