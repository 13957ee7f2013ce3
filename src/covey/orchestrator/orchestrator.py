"""The library API: `Orchestrator.ask(...)` and the async `stream(...)`."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from covey.errors import BadRequest
from covey.orchestrator.graph import Deps, build_graph
from covey.orchestrator.results import AnswerResult, Notice, Token

StreamEvent = Token | Notice | AnswerResult


class Orchestrator:
    """Routes each task to a specialist agent, places it on a node, escalates and fails over.

    Build one with `covey.wiring.build(settings)` (async) or from your own `Deps`.
    Conversation memory is kept per `session_id`.
    """

    def __init__(self, deps: Deps, *, graph: Any = None) -> None:
        self.deps = deps
        self.graph = graph or build_graph(deps)

    async def stream(self, prompt: str, *, session_id: str | None = None) -> AsyncIterator[StreamEvent]:
        """Yield Tokens (and Notices on delegation, escalation or failover), then one AnswerResult."""
        if not prompt or not prompt.strip():
            raise BadRequest("the prompt is empty", hint="ask a question")
        session_id = session_id or uuid.uuid4().hex[:12]
        config = {"configurable": {"thread_id": session_id}}
        state = {"session_id": session_id, "prompt": prompt, "t0": time.monotonic()}
        async for chunk in self.graph.astream(state, config, stream_mode="custom"):
            yield chunk
        final = await self.graph.aget_state(config)
        yield final.values["result"]

    async def ask(self, prompt: str, *, session_id: str | None = None) -> AnswerResult:
        result: AnswerResult | None = None
        async for ev in self.stream(prompt, session_id=session_id):
            if isinstance(ev, AnswerResult):
                result = ev
        assert result is not None
        return result

    async def close(self) -> None:
        await self.deps.pool.close()
