"""An orchestrator process for the namespace tests: discovers real nodes, runs scenarios, prints JSON lines.

argv: JSON {"pids": {node name: pid}, "nodes": N}. Reads one scenario name per stdin line.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from covey.agents import Acceptance, AgentSpec
from covey.discovery.browser import ZeroconfDirectory
from covey.models.catalog import Catalog
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.graph import Deps
from covey.orchestrator.pool import NodePool
from covey.orchestrator.results import AnswerResult, Notice, Token
from covey.settings import Settings
from covey.types import Sampling

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"


def out(**kw) -> None:
    print(json.dumps(kw), flush=True)


class Book:
    """One agent per scenario, swapped in before each question (or the shipped roster for routing)."""

    def __init__(self) -> None:
        self.spec: AgentSpec | None = None
        self.real = None

    def use(self, ladder, *, min_mean_logprob: float = -9.0, max_tokens: int = 24) -> None:
        self.spec = AgentSpec(name="scenario", routes=("chat",), ladder=ladder,
                              system_prompt="You are a helpful assistant.", sampling=Sampling(temperature=0.0, seed=1),
                              max_tokens=max_tokens,
                              accept=Acceptance(min_mean_logprob=min_mean_logprob, min_token_logprob=-99.0))

    def for_route(self, route):
        return self.real.for_route(route) if self.real else self.spec

    def get(self, name):
        return self.real.get(name) if self.real else self.spec


async def main() -> None:
    cfg = json.loads(sys.argv[1])
    settings = Settings.load()
    o = settings.orchestrator.model_copy(update={
        "discover": True, "discovery_interface": "127.0.0.1", "embedded": "never", "local_node": "weak",
        "health_interval_s": 0.5, "health_failures": 2})
    pool = NodePool(o, client_factory=lambda a: GrpcNodeClient(a), browser_factory=ZeroconfDirectory)
    await pool.start()
    nodes = await pool.wait_for_nodes(30, want=cfg["nodes"])
    out(kind="discovered", nodes=sorted(n.name for n in nodes), sources=sorted({n.source for n in nodes}))
    from covey.router.classifier import load_default_router

    from covey.energy.meter import CpuTimeEstimator

    book = Book()
    # As wiring.build does: the orchestrator's own work (routing, tool answers) is metered too.
    orch = Orchestrator(Deps(router=load_default_router(settings.data_dir, settings.router), agents=book, pool=pool,
                             catalog=Catalog(), settings=o, meter=CpuTimeEstimator(settings.energy.watts_per_core)))
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        events: list = []
        killed = None
        if line == "routing":
            from covey.agents import default_roster

            book.real = default_roster()
            prompt = "What is 17 times 23?"
        else:
            book.real = None
            prompt = "Tell me a long story about a lighthouse keeper." if line == "failover" else "Say hello."
            if line == "delegation":
                book.use((GEMMA,))
            elif line == "escalation":
                book.use((SMOL, GEMMA), min_mean_logprob=-0.0001)
            elif line == "failover":
                book.use((GEMMA,), max_tokens=160)
        try:
            async for ev in orch.stream(prompt, session_id=line):
                events.append(ev)
                if line == "failover" and isinstance(ev, Token) and killed is None and len(events) > 3:
                    for n in pool.directory.nodes():
                        info = await pool.client(n).info()
                        if any(m.queue_depth for m in info.models):
                            killed = n.name
                            os.kill(cfg["pids"][n.name], signal.SIGKILL)
                            break
        except Exception as exc:  # reported to the test, which fails with the message
            out(kind="error", scenario=line, error=f"{type(exc).__name__}: {exc}")
            continue
        result = next(e for e in events if isinstance(e, AnswerResult))
        streamed = "".join(e.text for e in events if isinstance(e, Token) and e.attempt == len(result.attempts) - 1)
        out(kind="result", scenario=line, killed=killed, result=result.model_dump(mode="json"), streamed=streamed,
            notices=[e.model_dump() for e in events if isinstance(e, Notice)])
    await pool.close()


if __name__ == "__main__":
    asyncio.run(main())
