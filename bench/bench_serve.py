"""`covey serve` against the library, side by side in one run: time to first token and tokens/s.

The same Orchestrator (embedded SmolLM2 node, the real router, one agent that accepts every answer)
answers the same prompt through `orch.stream(...)` and through the HTTP API on 127.0.0.1 (uvicorn,
streamed SSE, read with httpx). Rounds alternate so machine noise hits both sides alike.
Targets: <= 10 ms added time to first token, >= 0.95 tokens/s ratio. On a busy machine the model's own
jitter (tens of ms) hides the HTTP cost, so a second part measures it alone: an instant orchestrator
(tokens already made) answered through the library and through `covey serve`, many times.

Run: .venv/bin/python bench/bench_serve.py [--rounds 4] [--tokens 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn

from covey.agents import Acceptance, AgentRoster, AgentSpec
from covey.api.app import create_app
from covey.device_node.runner import build_node
from covey.models.catalog import Catalog
from covey.device_node.inprocess import InProcessNodeClient
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.graph import Deps
from covey.orchestrator.pool import NodePool
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.results import AnswerResult, Token
from covey.settings import ServeSettings, Settings
from covey.types import Sampling

MODEL = "smollm2-135m-instruct-q4_1"
UNLIMITED = ServeSettings(rate_per_minute=1e9, burst=10**6)
PROMPT = "Tell me a long story about a lighthouse keeper and a storm."


def one_agent(tokens: int) -> AgentRoster:
    return AgentRoster([AgentSpec(name="bench", routes=("chat",), ladder=(MODEL,), system_prompt="You are helpful.",
                                  sampling=Sampling(temperature=0.0, seed=1), max_tokens=tokens,
                                  accept=Acceptance(min_mean_logprob=-99.0, min_token_logprob=-99.0))])


async def library(orch: Orchestrator) -> tuple[float, float]:
    """(seconds to the first token, tokens/s over the whole answer)."""
    t0 = time.perf_counter()
    first = None
    result: AnswerResult | None = None
    async for ev in orch.stream(PROMPT, history=[]):
        if isinstance(ev, Token) and first is None:
            first = time.perf_counter() - t0
        elif isinstance(ev, AnswerResult):
            result = ev
    assert result is not None and first is not None
    return first, result.completion_tokens / (time.perf_counter() - t0)


async def http(client: httpx.AsyncClient) -> tuple[float, float]:
    body = {"model": "covey-auto", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": PROMPT}]}
    t0 = time.perf_counter()
    first = None
    tokens = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content") and first is None:
                first = time.perf_counter() - t0
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    assert first is not None and tokens
    return first, tokens / (time.perf_counter() - t0)


class InstantOrchestrator:
    """Yields ready-made tokens: what is left of the time to first token is the serving path itself."""

    def __init__(self, n: int) -> None:
        self.n = n

    def agent_names(self) -> list[str]:
        return ["bench"]

    def served_models(self) -> list[str]:
        return [MODEL]

    async def stream(self, prompt, **_kw):
        for i in range(self.n):
            yield Token(text=f" w{i}")
        yield AnswerResult(session_id="b", text="", route="chat", route_confidence=1.0, agent="bench", node="n",
                           model=MODEL, attempts=(), completion_tokens=self.n)


async def serving_overhead(repeats: int = 200, tokens: int = 64) -> tuple[float, float, float]:
    """Median ms to the first token: library, covey serve, and the serve-only tokens/s ratio."""
    orch = InstantOrchestrator(tokens)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # as covey serve binds
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(orch, settings=UNLIMITED), log_level="warning", lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    lib, api = [], []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}") as client:
        for _ in range(repeats):
            lib.append(await library(orch))
            api.append(await http(client))
    server.should_exit = True
    await task
    return (statistics.median(t for t, _ in lib) * 1000, statistics.median(t for t, _ in api) * 1000,
            statistics.median(r for _, r in api))


async def main(rounds: int, tokens: int, threads: int) -> None:
    lt0, at0, rate0 = await serving_overhead()
    print(f"serving path alone  : first token library {lt0:.3f} ms, covey serve {at0:.3f} ms, added {at0 - lt0:+.2f} ms "
          f"(instant orchestrator, median of 200); {rate0:,.0f} tokens/s through HTTP")
    settings = Settings.load(data_dir=Path(tempfile.mkdtemp()))
    node = build_node(settings.model_copy(update={"node": settings.node.model_copy(
        update={"models": [MODEL], "self_benchmark": False, "n_threads": threads})}))
    await node.start()
    from covey.router.classifier import load_default_router

    o = settings.orchestrator.model_copy(update={"discover": False, "embedded": "never"})
    pool = NodePool(o, client_factory=GrpcNodeClient)
    await pool.add_client(InProcessNodeClient(node))
    orch = Orchestrator(Deps(router=load_default_router(settings.data_dir, settings.router), agents=one_agent(tokens),
                             pool=pool, catalog=Catalog(), settings=o))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # as covey serve binds
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(orch, settings=UNLIMITED), log_level="warning", lifespan="off", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=300) as client:
        await library(orch)
        await http(client)  # warm both paths
        lib, api = [], []
        for _ in range(rounds):
            lib.append(await library(orch))
            api.append(await http(client))
    server.should_exit = True
    await task
    await node.close()
    lt, at = statistics.median(t for t, _ in lib), statistics.median(t for t, _ in api)
    lr, ar = statistics.median(r for _, r in lib), statistics.median(r for _, r in api)
    print(f"time to first token : library {lt * 1000:7.1f} ms, covey serve {at * 1000:7.1f} ms, "
          f"added {(at - lt) * 1000:+.1f} ms (median of {rounds}; target <= 10 ms)")
    print(f"tokens/s            : library {lr:7.1f}, covey serve {ar:7.1f}, ratio {ar / lr:.3f} (target >= 0.95)")
    paired = [(a[0] - b[0]) * 1000 for a, b in zip(api, lib, strict=True)]
    print(f"added TTFT per round: {', '.join(f'{p:+.1f}' for p in paired)} ms")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads (1 is steadiest on a busy machine)")
    a = ap.parse_args()
    asyncio.run(main(a.rounds, a.tokens, a.threads))
