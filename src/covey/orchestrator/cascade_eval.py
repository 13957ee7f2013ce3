"""`covey eval cascade FILE.jsonl`: run labelled prompts through the whole orchestrator and report,
per route, how often the small model was escalated, how often routing was right, and the energy."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from pydantic import Field

from covey.orchestrator.orchestrator import Orchestrator
from covey.router.classifier import RouteExample
from covey.types import Frozen


class RouteCascade(Frozen):
    route: str
    answers: int = 0
    routed_right: int = 0
    escalated: int = 0
    unsure_at_top: int = Field(0, description="low confidence with no stronger model available")
    joules: float = 0.0
    tokens: int = 0

    @property
    def escalation_rate(self) -> float:
        return self.escalated / self.answers if self.answers else 0.0


async def run_cascade_eval(orch: Orchestrator, rows: Sequence[RouteExample]) -> list[RouteCascade]:
    """Answer each prompt in its own session; tally by the labelled route."""
    tally: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    run = uuid.uuid4().hex[:8]  # history lasts: fresh sessions per run, so no earlier run's turns come along
    for i, row in enumerate(rows):
        result = await orch.ask(row.prompt, session_id=f"eval-{run}-{i}")
        t = tally[row.route]
        t["answers"] += 1
        t["routed_right"] += result.route == row.route
        t["escalated"] += result.escalated
        t["unsure_at_top"] += any(a.outcome == "answered" and a.confidence is not None and not a.confidence.passed
                                  for a in result.attempts)
        t["joules"] += result.energy.joules
        t["tokens"] += result.completion_tokens
    return [RouteCascade(route=r, answers=int(t["answers"]), routed_right=int(t["routed_right"]),
                         escalated=int(t["escalated"]), unsure_at_top=int(t["unsure_at_top"]),
                         joules=t["joules"], tokens=int(t["tokens"]))
            for r, t in sorted(tally.items())]
