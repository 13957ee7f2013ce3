"""A scripted orchestrator for the chat's tests: real pool and directory, scripted answers, records what it saw."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np

from covey.agents import Acceptance, AgentRoster, AgentSpec
from covey.orchestrator.pool import NodePool
from covey.orchestrator.results import AnswerResult, Attempt, Notice, Token
from covey.settings import OrchestratorSettings
from covey.types import (
    Battery, Energy, EnergyComponent, EnergyMethod, FinishReason, ModelOffer, NodeInfo, Sampling,
)

SMOL = "smollm2-135m-instruct-q4_1"
GEMMA = "gemma3-270m-q4_k_m"
ROUTES = ("chat", "code", "maths", "knowledge")


def node(name: str, *, models=(SMOL,), tps: float = 20.0, depth: int = 0, battery: Battery | None = None,
         jpt: float = 0.2, source: str = "static") -> NodeInfo:
    return NodeInfo(node_id=f"id-{name}", name=name, address=f"{name}:50551", source=source,
                    models=tuple(ModelOffer(model_id=m, loaded=True, queue_depth=depth, queue_limit=4,
                                            tokens_per_second=tps) for m in models),
                    tokens_per_second=tps, joules_per_token=jpt, battery=battery or Battery(), cpu_cores=4)


def agents() -> AgentRoster:
    def spec(name: str, routes: tuple[str, ...]) -> AgentSpec:
        return AgentSpec(name=name, routes=routes, ladder=(SMOL, GEMMA), system_prompt="You are helpful.",
                         sampling=Sampling(temperature=0.0), max_tokens=32,
                         accept=Acceptance(min_mean_logprob=-9.0, min_token_logprob=-99.0))

    return AgentRoster([spec("companion", ("chat",)), spec("coder", ("code",)), spec("mathematician", ("maths",)),
                        spec("scholar", ("knowledge",))])


def result(text: str, session: str, *, agent: str = "companion", route: str = "chat",
           escalated: bool = False) -> AnswerResult:
    energy = Energy.of([EnergyComponent(name="cpu", joules=3.6, method=EnergyMethod.ESTIMATED, uncertainty=0.5)])
    attempts = [Attempt(node_id="id-den", node_name="den", address="den:50551", model_id=GEMMA if escalated else SMOL,
                        outcome="answered", text=text, prompt_tokens=12, completion_tokens=4, seconds=0.2,
                        tokens_per_second=20.0, energy=energy, finish=FinishReason.STOP)]
    if escalated:
        attempts.insert(0, Attempt(node_id="id-den", node_name="den", address="den:50551", model_id=SMOL,
                                   outcome="escalated", text="hmm", completion_tokens=1,
                                   reason="mean token log-prob -2.10 < -1.40"))
    return AnswerResult(session_id=session, text=text, route=route, route_confidence=0.82, agent=agent, node="den",
                        model=attempts[-1].model_id, attempts=tuple(attempts), prompt_tokens=12, completion_tokens=4,
                        seconds=0.2, energy=energy, notes=("note one",))


class ScriptedOrchestrator:
    """Answers each question with `words`; `hold` pauses the stream after the first token until released.

    `deps.pool` is a real NodePool over a real NodeDirectory (never started: nothing listens), so a test
    makes nodes join and leave with `directory.upsert(...)` and `directory.remove(...)`.
    """

    def __init__(self, words=("Hello", " **world**"), *, notices: dict[int, Notice] | None = None,
                 hold: bool = False, history=None, escalated: bool = False, restart_at: int | None = None) -> None:
        self.words = tuple(words)
        self.notices = notices or {}
        self.escalated = escalated
        self.restart_at = restart_at
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.first_token = asyncio.Event()
        self.pool = NodePool(OrchestratorSettings(discover=False, static_peers=[]))
        self.deps = SimpleNamespace(pool=self.pool, router=SimpleNamespace(routes=ROUTES), agents=agents())
        self.history = history
        self.seen: list[dict] = []
        self.cancelled: list[str] = []
        self.finished: list[str] = []

    @property
    def directory(self):
        return self.pool.directory

    def agent_names(self) -> list[str]:
        return [a.name for a in self.deps.agents]

    async def stream(self, prompt, *, session_id=None, history=None, agent=None, model=None, max_tokens=None):
        self.seen.append({"prompt": prompt, "session_id": session_id, "agent": agent})
        done = False
        try:
            for i, w in enumerate(self.words):
                if i in self.notices:
                    yield self.notices[i]
                yield Token(text=w, attempt=int(self.restart_at is not None and i >= self.restart_at))
                if i == 0:
                    self.first_token.set()
                    await self.release.wait()
            text = "".join(self.words[self.restart_at or 0:])
            r = result(text, session_id or "", agent=agent or "companion", escalated=self.escalated)
            if self.history is not None:
                self.history.append(prompt, r)
            done = True
            self.finished.append(session_id)
            yield r
        finally:
            if not done:
                self.cancelled.append(session_id)


class WordEmbedder:
    """A deterministic embedder for the document store: one dimension per known word."""

    name = "test/word-embedder"
    vocabulary = ("boiler", "pressure", "cat", "miso", "garden", "tomato", "bar")
    dim = len(vocabulary)
    max_tokens = 256

    def embed(self, texts):
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            words = t.lower().split()
            for j, w in enumerate(self.vocabulary):
                rows[i, j] = sum(w in x for x in words)
            rows[i] += 1e-3
            rows[i] /= np.linalg.norm(rows[i])
        return rows

    def count_tokens(self, text: str) -> int:
        return len(text.split())


async def settle(pilot, app, until, *, rounds: int = 200) -> None:
    """Let the app work until `until()` holds (pilot.pause lets the screen refresh between checks)."""
    for _ in range(rounds):
        if until():
            return
        await pilot.pause(0.01)
    raise AssertionError("the app never got there")
