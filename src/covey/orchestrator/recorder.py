"""Writes each answer to the energy ledger (one row per answer, every attempt with its energy)."""

from __future__ import annotations

import asyncio
import logging

from covey.models.catalog import Catalog
from covey.orchestrator.results import AnswerResult
from covey.settings import Settings

logger = logging.getLogger(__name__)


def to_record(result: AnswerResult, settings: Settings, catalog: Catalog | None = None):
    from covey.energy.carbon import resolve_carbon
    import json

    from covey.energy.ledger import AnswerRecord, AttemptRecord, ToolCallRow

    catalog = catalog or Catalog()

    def quant(model_id: str) -> str:
        try:
            return catalog.get(model_id).quant
        except Exception:
            return ""

    attempts = tuple(AttemptRecord(node=a.node_name, model=a.model_id, quantization=quant(a.model_id),
                                   tokens_in=a.prompt_tokens, tokens_out=a.completion_tokens, seconds=a.seconds,
                                   energy=a.energy, outcome=a.outcome)
                     for a in result.attempts)
    tool_calls = tuple(ToolCallRow(tool=t.tool, arguments=json.dumps(t.arguments, default=str), ok=t.ok,
                                   outcome=t.outcome, seconds=t.seconds, joules=t.energy.joules)
                       for t in result.tool_calls)
    return AnswerRecord(session=result.session_id, route=result.route, agent=result.agent, attempts=attempts,
                        overhead=result.overhead, carbon=resolve_carbon(settings), pue=settings.energy.pue,
                        tool_calls=tool_calls, unanswered=result.unanswered)


class LedgerRecorder:
    """Callable for `Deps.record`: one ledger row per answer, written off the event loop."""

    def __init__(self, settings: Settings) -> None:
        from covey.energy.ledger import Ledger

        self.settings = settings
        self.ledger = Ledger(settings.data_dir / "ledger.db")

    async def __call__(self, result: AnswerResult) -> None:
        await asyncio.to_thread(self.ledger.record, to_record(result, self.settings))
