"""Orchestrator overhead and placement speed, measured side by side in one run.

1. End-to-end tokens/s through the graph (classify -> place -> generate -> assess -> record) divided
   by tokens/s of the same generation asked of the node directly (same model, prompt, settings).
   Target >= 0.95. Rounds are interleaved so machine noise hits both sides alike.
2. Placement decision time with 200 simulated nodes in the directory. Target < 1 ms.

Run: .venv/bin/python bench/bench_orchestrator.py [--rounds 5] [--tokens 128]

Before/after: `--compare OLD_SRC` runs (1) in child processes, alternating this tree's `src` and
OLD_SRC (e.g. a `git worktree` of an older commit) `--pairs` times, and prints each tree's median
graph/direct ratio and their quotient. The same measuring code runs on both trees (the imports below
accept the older module layout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import covey
from covey.agents import Acceptance, AgentRoster, AgentSpec
from covey.device_node.runner import build_node
from covey.models.catalog import Catalog
from covey.orchestrator.graph import Deps
from covey.orchestrator.placement import choose
from covey.orchestrator.pool import NodePool
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.results import AnswerResult
from covey.settings import Settings
from covey.types import Battery, GenerateFinal, GenerateRequest, Message, ModelOffer, NodeInfo, Sampling

try:
    from covey.device_node.inprocess import InProcessNodeClient
    from covey.orchestrator.orchestrator import Orchestrator
    from covey.router.classifier import load_default_router
except ImportError:  # the module layout before the rooms (commit efa8504), for --compare
    from covey.orchestrator.client import InProcessNodeClient
    from covey.orchestrator.core import Orchestrator
    from covey.orchestrator.router import load_default_router

MODEL = "smollm2-135m-instruct-q4_1"
PROMPT = "Tell me a long story about a lighthouse keeper and a storm."


def one_agent(tokens: int) -> AgentRoster:
    """One chat agent on one model, accepting every answer: the graph's own cost, no cascade."""
    return AgentRoster([AgentSpec(name="bench", routes=("chat",), ladder=(MODEL,), system_prompt="You are helpful.",
                                  sampling=Sampling(temperature=0.0, seed=1), max_tokens=tokens,
                                  accept=Acceptance(min_mean_logprob=-99.0, min_token_logprob=-99.0))])


async def direct(client, tokens: int) -> float:
    req = GenerateRequest(request_id="direct", model_id=MODEL,
                          messages=(Message(role="system", content="You are helpful."), Message(role="user", content=PROMPT)),
                          sampling=Sampling(temperature=0.0, seed=1), max_tokens=tokens)
    t0 = time.perf_counter()
    n = 0
    async for ev in client.generate(req):
        if isinstance(ev, GenerateFinal):
            n = ev.completion_tokens
    return n / (time.perf_counter() - t0)


async def through_graph(orch: Orchestrator, i: int) -> float:
    t0 = time.perf_counter()
    result: AnswerResult | None = None
    async for ev in orch.stream(PROMPT, session_id=f"bench-{i}"):
        if isinstance(ev, AnswerResult):
            result = ev
    assert result is not None
    return result.completion_tokens / (time.perf_counter() - t0)


def placement_bench(n_nodes: int = 200, repeats: int = 2000) -> tuple[float, float]:
    nodes = [NodeInfo(node_id=f"n{i}", name=f"node-{i}", address=f"10.0.{i // 250}.{i % 250}:50551",
                      models=tuple(ModelOffer(model_id=m, loaded=True, tokens_per_second=50 + i % 70,
                                              queue_depth=i % 3, queue_limit=4)
                                   for m in (MODEL, "gemma3-270m-q4_k_m")[: 1 + i % 2]),
                      ram_free_bytes=(1 + i % 8) << 30, model_ram_cap_bytes=(i % 5) * 256 << 20,
                      tokens_per_second=60.0, joules_per_token=0.01 + (i % 17) / 100,
                      battery=Battery(present=i % 4 == 0, on_battery=i % 8 == 0, percent=float(i % 100)))
             for i in range(n_nodes)]
    catalog = Catalog()
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        choose(nodes, ("gemma3-270m-q4_k_m", MODEL)[r % 2], catalog=catalog, max_tokens=256, latency_budget_s=30)
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.95)] * 1000


async def overhead(rounds: int, tokens: int) -> tuple[float, float]:
    """Median tokens/s of the direct node call and through the graph, rounds interleaved."""
    settings = Settings.load(data_dir=Path(tempfile.mkdtemp()))
    node = build_node(settings.model_copy(update={"node": settings.node.model_copy(update={"models": [MODEL]})}))
    await node.start()
    client = InProcessNodeClient(node)
    router = load_default_router(settings.data_dir, settings.router)
    o = settings.orchestrator.model_copy(update={"discover": False, "embedded": "never"})
    pool = NodePool(o, client_factory=GrpcNodeClient)
    await pool.add_client(client)
    orch = Orchestrator(Deps(router=router, agents=one_agent(tokens), pool=pool, catalog=Catalog(), settings=o))
    await direct(client, 16)
    await through_graph(orch, -1)  # warm both paths
    d, g = [], []
    for i in range(rounds):
        d.append(await direct(client, tokens))
        g.append(await through_graph(orch, i))
    await node.close()
    return statistics.median(d), statistics.median(g)


async def main(rounds: int, tokens: int) -> None:
    md, mg = await overhead(rounds, tokens)
    print(f"direct node call     : {md:7.1f} tok/s (median of {rounds})")
    print(f"through the graph    : {mg:7.1f} tok/s (incl. routing with MiniLM, placement, assessment)")
    print(f"ratio graph/direct   : {mg / md:.3f}  (target >= 0.95)")
    p50, p95 = placement_bench()
    print(f"placement, 200 nodes : p50 {p50:.3f} ms, p95 {p95:.3f} ms  (target < 1 ms)")


def child(src: Path, rounds: int, tokens: int) -> dict:
    """One overhead measurement in a fresh process importing covey from `src`."""
    env = {**os.environ, "PYTHONPATH": str(src), "COVEY_ORCHESTRATOR__DISCOVER": "false"}
    done = subprocess.run([sys.executable, __file__, "--child", "--rounds", str(rounds), "--tokens", str(tokens)],
                          env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the bench failed on {src}:\n{done.stderr[-3000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(row["covey"]).resolve() != src.resolve() / "covey":
        raise SystemExit(f"the child imported covey from {row['covey']}, not from {src}")
    return row


def compare(old_src: Path, new_src: Path, pairs: int, rounds: int, tokens: int) -> None:
    ratios: dict[str, list[float]] = {"old": [], "new": []}
    for i in range(pairs):
        order = [("old", old_src), ("new", new_src)] if i % 2 == 0 else [("new", new_src), ("old", old_src)]
        for name, src in order:
            row = child(src, rounds, tokens)
            ratios[name].append(row["graph"] / row["direct"])
            print(f"pair {i + 1} {name}: direct {row['direct']:6.1f} tok/s, graph {row['graph']:6.1f} tok/s, "
                  f"ratio {ratios[name][-1]:.3f}", flush=True)
    old, new = statistics.median(ratios["old"]), statistics.median(ratios["new"])
    print(f"graph/direct, old {old_src}: {old:.3f} (median of {pairs})")
    print(f"graph/direct, new {new_src}: {new:.3f} (median of {pairs})")
    print(f"new/old                : {new / old:.3f}  (>= 1.0: the orchestrator costs no more than before; "
          f"overhead {1 - old:.1%} -> {1 - new:.1%})")
    print(f"load average           : {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--compare", type=Path, metavar="OLD_SRC", help="also measure the tree at OLD_SRC, alternating")
    ap.add_argument("--pairs", type=int, default=3, help="old/new child runs with --compare")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        md, mg = asyncio.run(overhead(a.rounds, a.tokens))
        print(json.dumps({"direct": md, "graph": mg, "covey": str(Path(covey.__file__).parent)}))
    elif a.compare:
        compare(a.compare, Path(__file__).resolve().parents[1] / "src", a.pairs, a.rounds, a.tokens)
    else:
        asyncio.run(main(a.rounds, a.tokens))
