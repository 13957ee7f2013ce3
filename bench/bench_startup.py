"""Start-up cost of `covey ask`, measured side by side in one run (not a test).

Runs `covey ask --no-discover` in fresh processes, first in a new data dir (a newcomer's first
question: nothing cached) and then again in the same data dir (warm), and compares each wall time
with the model's own time for the same answer as the node reported it (GenerateFinal timings,
summed over the cascade's attempts, read back from the energy ledger). The overhead is the rest:
imports, starting the embedded node, loading the router, the graph, the ledger. The process's CPU
seconds (model included) are printed too: on a contended machine they vary less than wall time.

    .venv/bin/python bench/bench_startup.py [--cold 1] [--warm 2] [--prompt "..."] [--backend numpy|torch]
                                            [--src OTHER_CHECKOUT/src]

Targets (issue 8): warm overhead <= 1.5 s, first run in a new data dir <= 2x the warm wall time.
Absolute seconds depend on what else the cores are doing; the ratios in one run are the figures.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "What is 17 times 23?"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ask(data_dir: Path, prompt: str, env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall seconds, model seconds, process CPU seconds, models used) for one `covey ask` in a new process."""
    cmd = [sys.executable, "-m", "covey.cli", "ask", "--no-discover", "--data-dir", str(data_dir), prompt]
    start, cpu0 = time.perf_counter(), _children_cpu()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"covey ask failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    with sqlite3.connect(data_dir / "ledger.db") as db:
        answer_id, seconds = db.execute("SELECT answer_id, seconds FROM answers ORDER BY ts DESC LIMIT 1").fetchone()
        models = [m for (m,) in db.execute("SELECT model FROM attempts WHERE answer_id = ? ORDER BY n", (answer_id,))]
    return wall, float(seconds), cpu, " > ".join(m.split("-")[0] for m in models)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cold", type=int, default=1, help="first runs, each in a new data dir")
    ap.add_argument("--warm", type=int, default=2, help="further runs in the first data dir")
    ap.add_argument("--prompt", default=PROMPT, help="the question (math: temperature 0, same answer each run)")
    ap.add_argument("--backend", choices=("numpy", "torch"), default=None, help="router embedder (default: settings)")
    ap.add_argument("--src", type=Path, default=ROOT / "src", help="covey source tree to run (compare two versions)")
    args = ap.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COVEY_ORCHESTRATOR__DISCOVER": "false",
           "PYTHONPATH": str(args.src.resolve())}
    if args.backend:
        env["COVEY_ROUTER__BACKEND"] = args.backend
    rows: list[tuple[str, float, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="covey-bench-startup-") as tmp:
        dirs = [Path(tmp) / f"data-{i}" for i in range(max(args.cold, 1))]
        for d in dirs[:args.cold]:
            rows.append(("first run (new data dir)", *ask(d, args.prompt, env)))
        for _ in range(args.warm):
            rows.append(("warm (same data dir)", *ask(dirs[0], args.prompt, env)))
    print(f"covey ask --no-discover {args.prompt!r} from {args.src}; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cpus")
    print(f"{'run':28} {'wall s':>8} {'model s':>8} {'overhead s':>10} {'wall/model':>10} {'cpu s':>7}  models")
    for label, wall, model, cpu, models in rows:
        print(f"{label:28} {wall:8.2f} {model:8.2f} {wall - model:10.2f} {wall / max(model, 1e-6):10.2f} {cpu:7.2f}"
              f"  {models}")
    cold = [r for r in rows if r[0].startswith("first")]
    warm = [r for r in rows if r[0].startswith("warm")]
    if cold and warm:
        warm_wall = statistics.median(r[1] for r in warm)
        warm_over = statistics.median(r[1] - r[2] for r in warm)
        cold_wall = statistics.median(r[1] for r in cold)
        cold_over = statistics.median(r[1] - r[2] for r in cold)
        print(f"warm overhead (median)            {warm_over:6.2f} s   target <= 1.5 s")
        print(f"first run / warm, wall            {cold_wall / warm_wall:6.2f} x   target <= 2x")
        print(f"first run / warm, overhead only   {cold_over / max(warm_over, 1e-6):6.2f} x")


if __name__ == "__main__":
    main()
