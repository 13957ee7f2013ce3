"""Start-up cost of `covey ask`, measured side by side in one run (not a test).

Runs `covey ask --no-discover` in fresh processes, first in a new data dir (a newcomer's first
question: nothing cached) and then again in the same data dir (warm), and compares each wall time
with the model's own time for the same answer as the node reported it (GenerateFinal timings,
summed over the cascade's attempts, read back from the energy ledger). The overhead is the rest:
imports, starting the embedded node, loading the router, the graph, the ledger. The process's CPU
seconds (model included) are printed too: on a contended machine they vary less than wall time.

    .venv/bin/python bench/bench_startup.py [--cold 1] [--warm 2] [--prompt "..."] [--backend numpy|torch]
                                            [--src A/src --src B/src]

Targets (issue 8): warm overhead <= 1.5 s, first run in a new data dir <= 2x the warm wall time.
Absolute seconds depend on what else the cores are doing; the ratios in one run are the figures.
"""

from __future__ import annotations

import argparse
import contextlib
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
    cmd = [sys.executable, "-m", "covey", "ask", "--no-discover", "--data-dir", str(data_dir), prompt]
    start, cpu0 = time.perf_counter(), _children_cpu()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu0
    if done.returncode != 0:
        raise SystemExit(f"covey ask failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    with sqlite3.connect(data_dir / "ledger.db") as db:
        answer_id, seconds = db.execute("SELECT answer_id, seconds FROM answers ORDER BY ts DESC LIMIT 1").fetchone()
        models = [m for (m,) in db.execute("SELECT model FROM attempts WHERE answer_id = ? ORDER BY n", (answer_id,))]
    return wall, float(seconds), cpu, " > ".join(m.split("-")[0] for m in models)


@contextlib.contextmanager
def serving(data_dir: Path, env: dict[str, str]):
    """`covey serve --no-discover` on 127.0.0.1 for data_dir until the block ends."""
    cmd = [sys.executable, "-m", "covey", "serve", "--no-discover", "--port", "0", "--data-dir", str(data_dir)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.strip() == "ready":
                break
        else:
            raise SystemExit("covey serve did not start")
        yield
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cold", type=int, default=1, help="first runs, each in a new data dir")
    ap.add_argument("--warm", type=int, default=2, help="further runs in the first data dir")
    ap.add_argument("--prompt", default=PROMPT, help="the question (math: temperature 0, same answer each run)")
    ap.add_argument("--through-serve", type=int, default=2,
                    help="then this many asks through a running `covey serve` (the last tree)")
    ap.add_argument("--backend", choices=("numpy", "torch"), default=None, help="router embedder (default: settings)")
    ap.add_argument("--src", type=Path, action="append", default=None,
                    help="covey source tree to run; repeat to compare versions, their runs interleaved")
    args = ap.parse_args()
    srcs = args.src or [ROOT / "src"]
    envs = []
    for src in srcs:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "COVEY_ORCHESTRATOR__DISCOVER": "false", "PYTHONPATH": str(src.resolve())}
        if args.backend:
            env["COVEY_ROUTER__BACKEND"] = args.backend
        envs.append(env)
    rows: dict[int, list[tuple[str, float, float, float, str]]] = {i: [] for i in range(len(srcs))}
    with tempfile.TemporaryDirectory(prefix="covey-bench-startup-") as tmp:
        dirs = {i: [Path(tmp) / f"src{i}-data-{j}" for j in range(max(args.cold, 1))] for i in range(len(srcs))}
        for j in range(args.cold):  # interleaved: each version meets the same load
            for i, env in enumerate(envs):
                rows[i].append(("first run (new data dir)", *ask(dirs[i][j], args.prompt, env)))
        for _ in range(args.warm):
            for i, env in enumerate(envs):
                rows[i].append(("warm (same data dir)", *ask(dirs[i][0], args.prompt, env)))
        if args.through_serve:  # the last tree only: older ones have no such path
            i = len(srcs) - 1
            with serving(dirs[i][0], envs[i]):
                ask(dirs[i][0], args.prompt, envs[i])  # the server's first answer loads what it needs
                for _ in range(args.through_serve):
                    rows[i].append(("through a running serve", *ask(dirs[i][0], args.prompt, envs[i])))
    print(f"covey ask --no-discover {args.prompt!r}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus")
    summary = []
    for i, src in enumerate(srcs):
        print(f"\n== {src}")
        print(f"{'run':28} {'wall s':>8} {'model s':>8} {'overhead s':>10} {'wall/model':>10} {'cpu s':>7}  models")
        for label, wall, model, cpu, models in rows[i]:
            ratio = f"{wall / model:10.2f}" if model > 0 else f"{'-':>10}"  # a tool's answer: no model ran
            print(f"{label:28} {wall:8.2f} {model:8.2f} {wall - model:10.2f} {ratio} {cpu:7.2f}  {models or '-'}")
        cold = [r for r in rows[i] if r[0].startswith("first")]
        warm = [r for r in rows[i] if r[0].startswith("warm")]
        served = [r for r in rows[i] if r[0].startswith("through")]
        if cold and warm:
            warm_wall = statistics.median(r[1] for r in warm)
            summary.append((src, statistics.median(r[1] - r[2] for r in warm), cold_wall := statistics.median(
                r[1] for r in cold), cold_wall / warm_wall, statistics.median(r[3] for r in warm)))
        if served:
            summary.append((f"{src} (through covey serve)", statistics.median(r[1] - r[2] for r in served),
                            0.0, float("nan"), statistics.median(r[3] for r in served)))
    if summary:
        print(f"\n{'source tree':40} {'warm overhead s':>15} {'first/warm':>10} {'warm cpu s':>10}")
        for src, over, _cold, ratio, cpu in summary:
            shown = f"{ratio:9.2f}x" if ratio == ratio else f"{'-':>10}"
            print(f"{str(src)[-40:]:40} {over:15.2f} {shown} {cpu:10.2f}")
        print("targets: warm overhead <= 1.5 s, first run / warm <= 2x")


if __name__ == "__main__":
    main()
