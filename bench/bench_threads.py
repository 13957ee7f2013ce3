"""Generation speed with a fixed thread count against the node's adaptive one, on a quiet and a busy machine.

covey's node decodes with llama.cpp; its threads meet at a barrier after each operation, so when another
process takes a core the threads wait for the descheduled one (covey.device_node.threads). This bench runs
SmolLM2-135M through covey's own LlamaBackend in interleaved rounds, four ways: always all cores'
threads (the old default), always one thread, and the ThreadTuner the node now uses with each of its goals
(speed; energy, the default); first as the machine
is, then with BURNERS busy-loop processes taking cores (killed at the end; local CPU only). Prints
tokens/s and CPU seconds per token (what the ledger's estimate counts) of each, and the ratios against the
fixed default, side by side.

Not a test: `python bench/bench_threads.py [--rounds 3] [--tokens 96] [--burners 1]` (a few minutes).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

from covey.device_node.backend import LlamaBackend, default_threads
from covey.device_node.threads import ThreadTuner
from covey.models.catalog import Catalog
from covey.types import GenerateRequest, Message, Sampling

MODEL = "smollm2-135m-instruct-q4_1"
PROMPTS = ["Write a short story about a lighthouse keeper.", "Explain how a bicycle works.",
           "Give me ten tips for a good night's sleep.", "Describe the water cycle in detail."]


def burn(stop_at: float) -> None:
    while time.time() < stop_at:
        pass


def run_once(backend: LlamaBackend, prompt: str, tokens: int, tuner: ThreadTuner | None) -> tuple[float, float, int]:
    req = GenerateRequest(request_id="bench", model_id=MODEL, messages=(Message(role="user", content=prompt),),
                          sampling=Sampling(temperature=0.0), max_tokens=tokens)
    if tuner is not None:
        tuner.begin()
    wall, cpu = time.perf_counter(), time.process_time()
    stats = backend.run(req, lambda _p: None, between_tokens=tuner.step if tuner is not None else None)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, stats.completion_tokens


def measure(backend: LlamaBackend, cores: int, rounds: int, tokens: int) -> dict[str, tuple[float, float, str]]:
    tuners = {goal: ThreadTuner(cores, backend.set_threads, goal=goal) for goal in ("speed", "energy")}
    policies: dict[str, ThreadTuner | int] = {f"fixed {cores} threads": cores, "fixed 1 thread": 1,
                                              "adaptive, speed": tuners["speed"], "adaptive, energy": tuners["energy"]}
    got: dict[str, list[tuple[float, float, int]]] = {name: [] for name in policies}
    for r in range(rounds):
        for name, policy in policies.items():
            backend.set_threads(policy.threads if isinstance(policy, ThreadTuner) else policy)
            for prompt in PROMPTS:
                got[name].append(run_once(backend, prompt, tokens,
                                          policy if isinstance(policy, ThreadTuner) else None))
        print(f"  round {r + 1}/{rounds} done (load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)
    out = {}
    for name, runs in got.items():
        wall = sum(w for w, _, _ in runs)
        cpu = sum(c for _, c, _ in runs)
        n = sum(k for _, _, k in runs)
        per_round = [k / w for w, _, k in runs if w > 0]
        policy = policies[name]
        note = f"median run {statistics.median(per_round):.1f} tok/s" + (
            f", kept {policy.threads}, {policy.switches} switches" if isinstance(policy, ThreadTuner) else "")
        out[name] = (n / wall, cpu / n, note)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--burners", type=int, default=1, help="busy-loop processes for the busy half")
    args = ap.parse_args()
    cores = default_threads()
    if cores < 2:
        sys.exit("one core: there is no thread count to choose")
    spec, path = Catalog().resolve(MODEL)
    backend = LlamaBackend(spec, Path(path), n_ctx=1024, n_threads=cores, use_extra_bufts=False)
    print(f"{MODEL}, {cores} cores, {args.rounds} rounds x {len(PROMPTS)} prompts x {args.tokens} tokens")
    tables = {"as the machine is": measure(backend, cores, args.rounds, args.tokens)}
    procs = [multiprocessing.Process(target=burn, args=(time.time() + 1800,), daemon=True) for _ in range(args.burners)]
    for p in procs:
        p.start()
    try:
        tables[f"{args.burners} busy-loop process(es) running"] = measure(backend, cores, args.rounds, args.tokens)
    finally:
        for p in procs:
            p.terminate()
            p.join()
    for title, rows in tables.items():
        base = rows[f"fixed {cores} threads"][0]
        print(f"\n{title}:")
        base_cpu = rows[f"fixed {cores} threads"][1]
        print(f"  {'policy':18} {'tok/s':>7} {'CPU s/token':>12} {'speed vs fixed':>15} {'CPU vs fixed':>13}")
        for name, (rate, cpu, note) in rows.items():
            print(f"  {name:18} {rate:7.1f} {cpu:12.4f} {rate / base:14.2f}x {cpu / base_cpu:12.2f}x  ({note})")


if __name__ == "__main__":
    main()
