"""A scripted orchestrator for API tests: yields Token/Notice/AnswerResult and records what it saw."""

from __future__ import annotations

import asyncio
import socket
import contextlib

from covey.orchestrator.results import AnswerResult, Attempt, Notice, Token
from covey.types import Energy, EnergyComponent, EnergyMethod, FinishReason

from polling import until

SMOL = "smollm2-135m-instruct-q4_1"


class ScriptedBackend:
    def __init__(self, words=("Hello", " world"), *, delay: float = 0.0, notices: dict[int, Notice] | None = None,
                 error: Exception | None = None, error_after: int | None = None,
                 restart_at: int | None = None) -> None:
        self.words = words
        self.restart_at = restart_at  # from this word on, tokens belong to a second attempt (an escalation)
        self.delay = delay
        self.notices = notices or {}
        self.error = error
        self.error_after = error_after
        self.seen: list[dict] = []
        self.cancelled: list[str] = []
        self.finished: list[str] = []
        self.started = asyncio.Event()

    def agent_names(self) -> list[str]:
        return ["companion", "coder"]

    def served_models(self) -> list[str]:
        return [SMOL]

    async def stream(self, prompt, *, session_id=None, history=None, agent=None, model=None, max_tokens=None):
        self.seen.append({"prompt": prompt, "session_id": session_id, "history": history, "agent": agent,
                          "model": model, "max_tokens": max_tokens})
        self.started.set()
        if self.error is not None and self.error_after is None:
            raise self.error
        done = False
        try:
            for i, w in enumerate(self.words):
                if self.error is not None and i == self.error_after:
                    raise self.error
                if i in self.notices:
                    yield self.notices[i]
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield Token(text=w, attempt=int(self.restart_at is not None and i >= self.restart_at))
            done = True
            self.finished.append(session_id)
            yield result("".join(self.words), session_id or "", agent=agent or "companion", model=model or SMOL)
        finally:
            if not done:
                self.cancelled.append(session_id)


def result(text: str, session: str, *, agent: str = "companion", model: str = SMOL) -> AnswerResult:
    energy = Energy.of([EnergyComponent(name="cpu", joules=3.6, method=EnergyMethod.ESTIMATED, uncertainty=0.5)])
    attempts = (
        Attempt(node_id="id-a", node_name="old-laptop", address="a:1", model_id=model, outcome="escalated",
                text="hmm", completion_tokens=1),
        Attempt(node_id="id-b", node_name="den", address="b:1", model_id=model, outcome="answered", text=text,
                prompt_tokens=12, completion_tokens=2, energy=energy, finish=FinishReason.STOP),
    )
    return AnswerResult(session_id=session, text=text, route="chat", route_confidence=0.9, agent=agent, node="den",
                        model=model, attempts=attempts, prompt_tokens=12, completion_tokens=3, seconds=0.2,
                        energy=energy, notes=("note one",))


class RecordingEmbedder:
    name = "sentence-transformers/all-MiniLM-L6-v2"
    dim = 3
    max_tokens = 256

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def embed(self, texts):
        import numpy as np

        self.seen.append(list(texts))
        return np.array([[float(len(t)), 0.5, -1.0] for t in texts], dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(text.split())


@contextlib.asynccontextmanager
async def running(app):
    """A real uvicorn server for `app` on 127.0.0.1 (free port); yields its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY, as covey serve
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await until(lambda: server.started, what="uvicorn to start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()
