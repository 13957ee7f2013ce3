"""The library API: `Orchestrator.ask(...)` and the async `stream(...)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any

from covey.errors import BadRequest, CoveyError
from covey.orchestrator.graph import Deps, build_graph
from covey.orchestrator.steps import HISTORY_TURNS
from covey.orchestrator.results import AnswerResult, Notice, Token
from covey.text import describe_surrogate
from covey.types import Message

if TYPE_CHECKING:
    from covey.history.store import ConversationStore

StreamEvent = Token | Notice | AnswerResult

logger = logging.getLogger(__name__)


class Orchestrator:
    """Routes each task to a specialist agent, places it on a node, escalates and fails over.

    Build one with `covey.wiring.build(settings)` (async) or from your own `Deps`.
    Conversation memory is kept per `session_id`: in `history` (a ConversationStore, e.g. the
    SQLite HistoryStore in DATA_DIR) so it outlives the process, or in memory when there is none.
    """

    def __init__(self, deps: Deps, *, graph: Any = None, history: ConversationStore | None = None,
                 history_turns: int = HISTORY_TURNS) -> None:
        self.deps = deps
        self.graph = graph or build_graph(deps)
        self.history = history
        self.history_turns = history_turns
        # Notes said once per conversation ("unsure at the top of the ladder"), when turns run on fresh threads.
        self._noted: dict[str, set[str]] = {}

    async def stream(self, prompt: str, *, session_id: str | None = None,
                     history: Sequence[Message] | None = None, agent: str | None = None,
                     model: str | None = None, max_tokens: int | None = None) -> AsyncGenerator[StreamEvent, None]:
        """Yield Tokens (and Notices on delegation, escalation or failover), then one AnswerResult.

        `history` given (e.g. the messages of an OpenAI request) replaces the session's stored turns.
        `agent` skips the router, `model` replaces the agent's ladder with that one model, and
        `max_tokens` caps the answer below the agent's own limit.
        """
        if not prompt or not prompt.strip():
            raise BadRequest("the prompt is empty", hint="ask a question")
        for what, text in [("the prompt", prompt)] + [(f"history message {i + 1}", m.content)
                                                      for i, m in enumerate(history or ())]:
            if problem := describe_surrogate(text):
                raise BadRequest(f"{what} is not valid UTF-8 text: {problem}",
                                 hint="send UTF-8 text (check the terminal's or the client's encoding)")
        if max_tokens is not None and max_tokens < 1:
            raise BadRequest(f"max_tokens must be at least 1, got {max_tokens}",
                             hint="ask for at least one token, or leave max_tokens out for the agent's own limit")
        session_id = session_id or uuid.uuid4().hex[:12]
        state: dict[str, Any] = {"session_id": session_id, "prompt": prompt, "t0": time.monotonic()}
        if agent or model or max_tokens:
            state["pin"] = {k: v for k, v in (("agent", agent), ("model", model), ("max_tokens", max_tokens)) if v}
        store = self.history
        durable = store is not None and store.keeps_text
        if history is not None or durable:
            if history is None:
                assert store is not None  # durable
                history = await asyncio.to_thread(store.recent, session_id, self.history_turns)
            state["history"] = list(history)
            state["ladder_noted"] = sorted(self._noted.get(session_id, ()))
            thread = f"{session_id}/{uuid.uuid4().hex[:8]}"  # memory comes from `history`, not the checkpointer
        else:
            thread = session_id
        config = {"configurable": {"thread_id": thread}}
        try:
            # aclosing: a consumer that stops early (a client that hung up) cancels the generation now
            async with contextlib.aclosing(self.graph.astream(state, config, stream_mode="custom")) as chunks:
                async for chunk in chunks:
                    yield chunk
            final = await self.graph.aget_state(config)
        finally:
            if thread != session_id:
                _forget_thread(self.graph, thread)
        result: AnswerResult = final.values["result"]
        self._noted.setdefault(session_id, set()).update(final.values.get("ladder_noted", ()))
        if store is not None:
            try:
                await asyncio.to_thread(store.append, prompt, result)
            except CoveyError as exc:  # the answer still reaches the user; only its history entry is lost
                logger.warning("could not keep this turn in the conversation history: %s", exc)
        yield result

    async def ask(self, prompt: str, *, session_id: str | None = None, **kw: Any) -> AnswerResult:
        result: AnswerResult | None = None
        async for ev in self.stream(prompt, session_id=session_id, **kw):
            if isinstance(ev, AnswerResult):
                result = ev
        assert result is not None
        return result

    def agent_names(self) -> list[str]:
        """The agents a caller can ask for by name (instead of routing)."""
        return [a.name for a in self.deps.agents]

    def served_models(self) -> list[str]:
        """Model ids some known node serves right now."""
        return sorted({m.model_id for n in self.deps.pool.nodes() for m in n.models})

    async def close(self) -> None:
        await self.deps.pool.close()
        closer = getattr(self.history, "close", None)
        if closer is not None:
            closer()


def _forget_thread(graph: Any, thread: str) -> None:
    """Drop a one-answer thread from the in-memory checkpointer (a long-running server would grow)."""
    saver = getattr(graph, "checkpointer", None)
    delete = getattr(saver, "delete_thread", None)
    if delete is not None:
        try:
            delete(thread)
        except Exception:  # pragma: no cover - best effort on other checkpointers
            logger.debug("could not delete checkpoint thread %s", thread, exc_info=True)
