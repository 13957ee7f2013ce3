"""Spreading and liveness figures, in one run:

    .venv/bin/python bench/bench_spread.py [--baseline OTHER_TREE/src] [--burst 1000] [--queue-limit 4]

1. burst: 50 concurrent asks over two fake nodes with 2 and 2,000 slots (the issue's case), answered and
   NodeBusy counts for this tree and, with --baseline, for another source tree side by side;
2. frozen: two real `covey node join` processes on 127.0.0.1, the serving one SIGSTOPped after its first
   piece: seconds until the orchestrator abandons it, with the default settings and with only gRPC
   keepalive left to notice (idle deadline and health checks far off);
3. load: --burst concurrent asks over three real node processes: outcomes, ledger rows, wall time and
   the orchestrator's RSS before and after each of three waves (and the nodes').

Everything listens on 127.0.0.1 only; no discovery.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "orchestrator"))
sys.path.insert(0, str(ROOT / "tests" / "integration" / "orchestrator"))
os.environ.setdefault("COVEY_ORCHESTRATOR__DISCOVER", "false")
os.environ.setdefault("COVEY_NODE__ANNOUNCE", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

BURST_CHILD = """
import asyncio, json, sys
sys.path.insert(0, sys.argv[1])
import test_burst as tb
from covey.errors import NodeBusy
from covey.orchestrator.results import AnswerResult

async def main():
    small, big = tb.SlotNode("small", 2, jpt=0.01), tb.SlotNode("big", 2000, jpt=0.5)
    orch = await tb._orchestrator(small, big, recorded=[])
    out = await tb._burst(orch, 50, small, big)
    await orch.close()
    answered = [o for o in out if isinstance(o, AnswerResult)]
    print(json.dumps({"answered": len(answered), "on_small": sum(a.node == "small" for a in answered),
                      "on_big": sum(a.node == "big" for a in answered),
                      "node_busy": sum(isinstance(o, NodeBusy) for o in out)}))
asyncio.run(main())
"""


def burst(src: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run([sys.executable, "-c", BURST_CHILD, str(ROOT / "tests" / "unit" / "orchestrator")],
                          capture_output=True, text=True, env=env, timeout=300)
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


async def frozen(tmp: Path) -> dict:
    import node_procs as npx
    from covey.orchestrator.results import AnswerResult, Notice, Token

    nodes = npx.start_nodes(tmp, ["north", "south"])
    out = {}
    try:
        defaults = {"health_interval_s": 5.0, "health_failures": 2}  # the product's, not the tests' quick ones
        for label, kw in (("default settings", defaults),
                          ("keepalive only", {"stream_idle_s": 600.0, "health_interval_s": 600.0})):
            settings = npx.orchestrator_settings(tmp / label.replace(" ", "-"), nodes, local_node="north", **kw)
            orch, _ = await npx.build_orchestrator(settings, 2)
            stopped = moved = 0.0
            try:
                async for ev in orch.stream("Write a long story about a lighthouse keeper.", agent=npx.AGENT,
                                            model=npx.SMOLLM, max_tokens=60, session_id=label):
                    if isinstance(ev, Token) and not stopped:
                        nodes[0].pause()
                        stopped = time.monotonic()
                    if isinstance(ev, Notice) and ev.kind == "failover":
                        moved = time.monotonic()
                        out[label] = {"abandoned_after_s": round(moved - stopped, 1), "notice": ev.text}
                    if isinstance(ev, AnswerResult) and ev.attempts[0].outcome == "failed_over":
                        out[label]["why"] = ev.attempts[0].reason.split(";")[0]
            finally:
                nodes[0].resume()
                await orch.close()
            await asyncio.sleep(1.0)
    finally:
        for n in nodes:
            n.stop()
    return out


async def load(tmp: Path, count: int, queue_limit: int) -> dict:
    import psutil

    import node_procs as npx
    import test_load_processes as tl

    nodes = npx.start_nodes(tmp, ["ash", "birch", "cedar"], queue_limit=queue_limit)
    try:
        settings = npx.orchestrator_settings(tmp / "orch", nodes)
        orch, _ = await npx.build_orchestrator(settings, 3)
        me = psutil.Process()
        await tl.ask(orch, "warm")
        gc.collect()
        rss = [me.memory_info().rss / 2**20]
        waves = []
        for wave in range(3):  # later waves show whether memory keeps growing or levels off
            t = time.monotonic()
            outcomes = await asyncio.gather(*(tl.ask(orch, f"load-{wave}-{i}") for i in range(count)))
            kinds = tl.sort_out(outcomes)
            waves.append({"wall_s": round(time.monotonic() - t, 1), **{k: len(v) for k, v in kinds.items()}})
            del outcomes, kinds
            gc.collect()
            rss.append(me.memory_info().rss / 2**20)
        await orch.close()
        rows = npx.ledger_sessions(settings)
        return {"asks_per_wave": count, "queue_limit_per_node": queue_limit, "waves": waves,
                "ledger_rows": len(rows), "distinct_ledger_sessions": len(set(rows)),
                "answered_incl_warmup": 1 + sum(w.get("answered", 0) for w in waves),
                "orchestrator_rss_mb_before_and_after_each_wave": [round(r) for r in rss],
                "node_rss_mb": [round(n.rss_mb()) for n in nodes]}
    finally:
        for n in nodes:
            n.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline", type=Path, help="another tree's src/ for the burst comparison")
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--queue-limit", type=int, default=4)
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    trees = [("this tree", ROOT / "src")] + ([("baseline", args.baseline)] if args.baseline else [])
    for name, src in trees:
        print(f"50-ask burst over 2 + 2000 slots, {name}: {burst(src)}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, fig in asyncio.run(frozen(Path(tmp) / "frozen")).items():
            print(f"SIGSTOP mid-answer, {label}: {fig}")
        print(f"{args.burst} concurrent asks over 3 nodes: {asyncio.run(load(Path(tmp) / 'load', args.burst, args.queue_limit))}")


if __name__ == "__main__":
    main()
