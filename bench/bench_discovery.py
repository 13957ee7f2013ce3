"""Discovery latency: time from starting a node process to the node appearing in the directory.

Runs entirely inside a throw-away network namespace (root needed; nothing touches real interfaces):

    sudo .venv/bin/python bench/bench_discovery.py [--nodes 10] [--real 0]

One run measures side by side: a single node joining alone, then N nodes joining at once, each
split into "process start -> imported" (interpreter start and imports, CPU-bound: 10 interpreters
share this machine's cores, where real nodes each have their own device), "imported -> announced"
(mDNS name probing, about 1 s by RFC 6762) and
"announced -> in the directory" (the browser's share). Nodes are small announcer processes
(ZeroconfAnnouncer with a fixed NodeInfo); ``--real K`` adds K real ``covey node join`` processes
with the offline SmolLM2 model. Issue target: 10 nodes in the directory in < 2 s.
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

ROOT = Path(__file__).resolve().parents[1]

NODE_SCRIPT = """
import asyncio, json, signal, sys, time
from covey.discovery.announcer import ZeroconfAnnouncer
from covey.types import Battery, ModelId, ModelOffer, NodeId, NodeInfo
imported = time.time()

async def main():
    global imported
    info = NodeInfo(node_id=NodeId(sys.argv[1]), name=sys.argv[2], cpu_cores=4, tokens_per_second=150.0,
                    models=(ModelOffer(model_id=ModelId("smollm2-135m-instruct-q4_1"), loaded=True),),
                    ram_total_bytes=8 << 30, ram_free_bytes=6 << 30, battery=Battery())
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    announcer = ZeroconfAnnouncer(lambda: info, 50551, interface="127.0.0.1")
    if sys.argv[3] == "warm":  # imported already; join when told
        print(json.dumps({"ready": time.time()}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        imported = time.time()
    await announcer.start()
    print(json.dumps({"imported": imported, "announced": time.time()}), flush=True)
    await stop.wait()
    await announcer.close()

asyncio.run(main())
"""


async def measure(count: int, real: int, tag: str, warm: bool = False) -> list[dict[str, float]]:
    """Start ``count`` announcers (+ ``real`` real nodes) at once; per node: spawn, announced, seen times.

    ``warm``: the processes import first and all join on one signal, so the figures show discovery
    itself, not interpreters competing for this machine's cores.
    """
    from covey.discovery.directory import DirectoryEvent, NodeDirectory
    from covey.discovery.browser import ZeroconfDirectory

    directory = NodeDirectory()
    seen: dict[str, float] = {}

    def on_event(event: DirectoryEvent) -> None:
        if event.kind == "added" and event.node is not None:
            seen.setdefault(event.node.node_id, time.time())

    directory.subscribe(on_event)
    browser = ZeroconfDirectory(directory, interface="127.0.0.1")
    await browser.start()
    await asyncio.sleep(0.5)  # the browser's own start-up is not part of a join

    procs: dict[str, tuple[subprocess.Popen[str], float]] = {}
    tmp = tempfile.TemporaryDirectory(prefix="covey-bench-")
    try:
        for i in range(count):
            node_id = f"{tag}{i:02d}-{os.getpid()}"
            spawned = time.time()
            proc = subprocess.Popen([sys.executable, "-c", NODE_SCRIPT, node_id, f"bench-{tag}{i}",
                                     "warm" if warm else "cold"], stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
            procs[node_id] = (proc, spawned)
        if warm:
            for node_id, (proc, _) in procs.items():
                assert proc.stdout is not None
                proc.stdout.readline()
            go = time.time()
            for node_id, (proc, _) in procs.items():
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
                procs[node_id] = (proc, go)
        real_spawns: list[float] = []
        for i in range(real):
            data_dir = Path(tmp.name) / f"real{i}"
            real_spawns.append(time.time())
            subprocess.Popen([sys.executable, "-m", "covey.cli", "node", "join", "--host", "127.0.0.1", "--port", "0",
                              "--interface", "127.0.0.1", "--name", f"real-{tag}{i}", "--data-dir", str(data_dir),
                              "--no-bench"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        want = count + real
        ok = await directory.wait_for(lambda d: len(d.nodes()) >= want, timeout_s=60)
        if not ok:
            raise SystemExit(f"only {len(directory.nodes())} of {want} nodes appeared within 60 s")
        rows = []
        for node_id, (proc, spawned) in procs.items():
            assert proc.stdout is not None
            said = json.loads(proc.stdout.readline())
            rows.append({"spawn": spawned, "imported": said["imported"], "announced": said["announced"],
                         "seen": seen[node_id]})
        real_seen = sorted(t for nid, t in seen.items() if nid not in procs)
        for spawned, t in zip(sorted(real_spawns), real_seen):
            rows.append({"spawn": spawned, "imported": float("nan"), "announced": float("nan"), "seen": t})
        return rows
    finally:
        for node_id, (proc, _) in procs.items():
            proc.terminate()
        await asyncio.sleep(1.0)
        await browser.close()
        tmp.cleanup()


def summary(rows: list[dict[str, float]]) -> dict[str, float]:
    joins = [r["seen"] - r["spawn"] for r in rows]
    timed = [r for r in rows if r["announced"] == r["announced"]]  # real nodes report no split
    imports = [r["imported"] - r["spawn"] for r in timed]
    probes = [r["announced"] - r["imported"] for r in timed]
    browse = [r["seen"] - r["announced"] for r in timed]
    return {
        "p50": statistics.median(joins),
        "max": max(joins),
        "total": max(r["seen"] for r in rows) - min(r["spawn"] for r in rows),
        "import_p50": statistics.median(imports) if imports else float("nan"),
        "probe_p50": statistics.median(probes) if probes else float("nan"),
        "browse_p50": statistics.median(browse) if browse else float("nan"),
        "browse_max": max(browse) if browse else float("nan"),
    }


async def inside(nodes: int, real: int) -> None:
    cold_one = summary(await measure(1, 0, "solo"))
    cold_many = summary(await measure(nodes, real, "many"))
    warm_one = summary(await measure(1, 0, "wsolo", warm=True))
    warm_many = summary(await measure(nodes, 0, "wmany", warm=True))
    print("cold: process start -> in the directory (interpreters share this machine's cores)")
    table(cold_one, cold_many, f"{nodes} nodes" + (f" + {real} real" if real else ""))
    print("\nwarm: imported processes all join on one signal (discovery itself)")
    table(warm_one, warm_many, f"{nodes} nodes")
    print(f"\n{nodes}-node total: cold {cold_many['total']:.2f} s, warm {warm_many['total']:.2f} s "
          f"(target < 2 s; {os.cpu_count()} cores; browser's own share at most {cold_many['browse_max']:.3f} s)")


def table(one: dict[str, float], many: dict[str, float], label_many: str) -> None:
    print(f"{'':30}{'1 node':>10}{label_many:>18}{'ratio':>8}")
    for key, label in (
        ("p50", "join -> directory p50 (s)"),
        ("max", "join -> directory max (s)"),
        ("total", "all in directory (s)"),
        ("import_p50", "start -> imported p50 (s)"),
        ("probe_p50", "imported -> announced p50 (s)"),
        ("browse_p50", "announced -> seen p50 (s)"),
        ("browse_max", "announced -> seen max (s)"),
    ):
        ratio = many[key] / one[key] if one[key] else float("nan")
        print(f"{label:30}{one[key]:10.3f}{many[key]:18.3f}{ratio:8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--real", type=int, default=0, help="also start this many real `covey node join` processes")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        asyncio.run(inside(args.nodes, args.real))
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from netns import Netns

    with Netns(prefix="covey-bench") as ns:
        done = ns.run([sys.executable, __file__, "--inside", "--nodes", str(args.nodes), "--real", str(args.real)],
                      timeout=300)
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        raise SystemExit(done.returncode)


if __name__ == "__main__":
    main()
