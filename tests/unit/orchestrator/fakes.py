"""Fakes that record what they saw, for orchestrator unit tests."""

from __future__ import annotations


from covey.agents import Acceptance, AgentRoster, AgentSpec
from covey.errors import NodeUnavailable
from covey.router.classifier import RouteDecision
from covey.types import (
    Energy, EnergyComponent, EnergyMethod, FinishReason, GenerateFinal, GenerateRequest, ModelOffer, NodeInfo,
    Sampling, Timings, TokenPiece,
)


class ScriptedRouter:
    def __init__(self, route: str = "chat", confidence: float = 0.9) -> None:
        self.route = route
        self.confidence = confidence
        self.seen: list[tuple[str, tuple]] = []

    def classify(self, text, history=()):
        self.seen.append((text, tuple(history)))
        return RouteDecision(route=self.route, confidence=self.confidence, runner_up="knowledge",
                             runner_up_confidence=0.05, margin=max(0.0, self.confidence - 0.05))


def spec(name: str, ladder: tuple[str, ...], *, routes=("chat",), min_mean_logprob: float = -9.0,
         checker: str | None = None, max_tokens: int = 32) -> AgentSpec:
    """A real AgentSpec with thresholds that accept anything unless a test says otherwise."""
    return AgentSpec(name=name, routes=routes, ladder=ladder, system_prompt="You are helpful.",
                     sampling=Sampling(temperature=0.0), max_tokens=max_tokens, checker=checker,
                     accept=Acceptance(min_mean_logprob=min_mean_logprob, min_token_logprob=-99.0))


def roster(*specs: AgentSpec) -> AgentRoster:
    return AgentRoster(specs)




def node_info(name: str, models: dict[str, float], *, cap_mb: int = 0, jpt: float = 0.05, depth: int = 0,
              limit: int = 4, battery=None, source: str = "static") -> NodeInfo:
    from covey.types import Battery

    return NodeInfo(node_id=f"id-{name}", name=name, address=f"{name}:1",
                    models=tuple(ModelOffer(model_id=m, loaded=True, tokens_per_second=tps, queue_depth=depth,
                                            queue_limit=limit) for m, tps in models.items()),
                    ram_total_bytes=8 << 30, ram_free_bytes=4 << 30, model_ram_cap_bytes=cap_mb << 20,
                    cpu_cores=4, tokens_per_second=max(models.values(), default=0.0), joules_per_token=jpt,
                    battery=battery or Battery(), source=source)


class FakeNodeClient:
    """Streams `words` with the given logprob; can vanish after `die_after` pieces."""

    def __init__(self, info: NodeInfo, words=("Hello", " world"), logprob: float = -0.1,
                 die_after: int | None = None, joules: float = 1.0) -> None:
        self.info_ = info
        self.address = info.address
        self.words = words
        self.logprob = logprob
        self.die_after = die_after
        self.joules = joules
        self.seen: list[GenerateRequest] = []

    async def info(self):
        return self.info_

    async def generate(self, req):
        self.seen.append(req)
        for i, w in enumerate(self.words):
            if self.die_after is not None and i >= self.die_after:
                raise NodeUnavailable(f"node at {self.address} is unavailable (unavailable: connection reset)")
            yield TokenPiece(text=w, logprobs=(self.logprob,), token_ids=(i,))
        yield GenerateFinal(
            finish_reason=FinishReason.STOP, prompt_tokens=10, completion_tokens=len(self.words),
            timings=Timings(generate_ms=100.0, total_ms=120.0),
            energy=Energy.of([EnergyComponent(name="cpu", joules=self.joules, method=EnergyMethod.ESTIMATED)]),
            node_id=self.info_.node_id, model_id=req.model_id)

    async def healthy(self):
        return True

    async def close(self):
        pass


class ScriptedNodeClient(FakeNodeClient):
    """Replies with the next of `replies` to each request (the last one repeats), word by word."""

    def __init__(self, info: NodeInfo, replies: list[str], **kw) -> None:
        super().__init__(info, **kw)
        self.replies = list(replies)

    async def generate(self, req):
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        self.words = tuple(reply.split(" ")[:1]) + tuple(" " + w for w in reply.split(" ")[1:])
        async for ev in super().generate(req):
            yield ev


class FakeSandbox:
    """Returns scripted SandboxResults; records the code, the files and the thread of each run."""

    def __init__(self, results) -> None:
        self.results = list(results)
        self.seen: list[tuple[str, dict]] = []
        self.threads: list[str] = []

    def run(self, code, *, files=None):
        import threading

        self.seen.append((code, dict(files or {})))
        self.threads.append(threading.current_thread().name)
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]
