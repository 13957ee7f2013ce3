"""Router cost and quality, measured side by side in one run (not a test).

Prints: p50/p95 warm per-task classify latency on single prompts; held-out and Vicuna macro-F1 for
the nearest-centroid head vs the logistic head on the same vectors (the justification for the
default head); and the same heads on whole-prompt embeddings without the instruction/material
split (the justification for the split).

    .venv/bin/python bench/bench_router.py [--repeat 3] [--skip-baselines] [--no-int8] [--vicuna PATH]

Since the router trains on public prompt sources (data/routes/sources/), Vicuna is training data:
its figure here is in-sample. For out-of-source figures use bench/bench_router_xsource.py.

Wall-clock latency depends on what else the cores are doing; the CPU time per task is printed
too, and on a busy machine one torch thread beats two by a wide margin.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from covey.router.classifier import (
    FEATURE_SCALE,
    builtin_examples,
    load_default_router,
    prompt_vectors,
    read_examples,
)
from covey.router.embedding import PackagedMiniLM
from covey.router.evaluation import score_routes
from covey.router.features import FEATURE_NAMES, prompt_features
from covey.router.head import fit_head

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "tests" / "data" / "router_heldout.jsonl"
VICUNA_ROUTES = {"coding": "code", "math": "math", "writing": "writing", "roleplay": "chat", "knowledge": "knowledge"}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3, help="passes over the held-out prompts for latency")
    ap.add_argument("--no-int8", action="store_true", help="skip the int8-quantized MiniLM comparison")
    ap.add_argument("--skip-baselines", action="store_true", help="skip the whole-prompt (no split) rows")
    ap.add_argument("--vicuna", type=Path, default=Path("/work/shared/eval/vicuna_bench_questions.jsonl"))
    args = ap.parse_args()
    import torch

    embedders = {"fp32": PackagedMiniLM()}
    if not args.no_int8:
        embedders["int8"] = PackagedMiniLM(int8=True)
    routers = {}
    for kind, emb in embedders.items():
        emb.embed(["warm up"])
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            routers[kind] = load_default_router(Path(tmp), embedder=emb)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            load_default_router(Path(tmp), embedder=emb)
            cached = time.perf_counter() - t0
        print(f"{emb.name}: fit on {len(builtin_examples())} shipped examples {cold:.2f} s (embedding + head + "
              f"calibration); from cache {cached * 1000:.0f} ms; calibrated threshold {routers[kind].threshold:.2f}")

    heldout = read_examples(HELDOUT)
    prompts = [r.prompt for r in heldout]
    default_threads = torch.get_num_threads()
    configs = [(kind, t) for kind in routers for t in sorted({1, default_threads})]
    latencies: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    cpu: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    # Interleave configurations pass by pass so all see the same background load.
    for _ in range(args.repeat):
        for kind, threads in configs:
            torch.set_num_threads(threads)
            router = routers[kind]
            for p in prompts[:5]:
                router.classify(p)  # warm
            for p in prompts:
                t0, c0 = time.perf_counter(), time.process_time()
                router.classify(p)
                latencies[(kind, threads)].append((time.perf_counter() - t0) * 1000)
                cpu[(kind, threads)].append((time.process_time() - c0) * 1000)
    torch.set_num_threads(default_threads)
    p95 = {}
    for (kind, threads), values in latencies.items():
        short = [ms for p, ms in zip(prompts * args.repeat, values) if len(p) <= 240]
        long = [ms for p, ms in zip(prompts * args.repeat, values) if len(p) > 240]
        p95[(kind, threads)] = percentile(values, 95)
        c = cpu[(kind, threads)]
        print(f"classify {kind}, {threads} thread(s), {len(values)} single prompts: p50 {percentile(values, 50):.1f} ms,"
              f" p95 {p95[(kind, threads)]:.1f} ms, max {max(values):.1f} ms (short p95 {percentile(short, 95):.1f},"
              f" long pasted p95 {percentile(long, 95):.1f}); CPU p50 {percentile(c, 50):.1f} ms,"
              f" p95 {percentile(c, 95):.1f} ms")
    base = ("fp32", 1)
    for config, value in p95.items():
        if config != base:
            print(f"p95 ratio {config[0]}/{config[1]} thread(s) vs fp32/1 thread: {value / p95[base]:.2f}")
    print(f"machine load average now: {' '.join(f'{v:.1f}' for v in __import__('os').getloadavg())}")

    sets = {"held-out": (prompts, [r.route for r in heldout])}
    if args.vicuna.exists():
        rows = [json.loads(line) for line in args.vicuna.read_text().splitlines() if line.strip()]
        rows = [r for r in rows if r["category"] in VICUNA_ROUTES]
        sets["vicuna (5 categories)"] = ([r["turns"][0] for r in rows], [VICUNA_ROUTES[r["category"]] for r in rows])

    train = builtin_examples()
    labels = [e.route for e in train]
    train_texts = [e.prompt for e in train]
    embedder = embedders["fp32"]
    variants = {
        "split + cues": lambda texts: prompt_vectors(embedder, texts),
        "whole prompt": lambda texts: embedder.embed(texts),
        "whole prompt + cues": lambda texts: np.hstack(
            [embedder.embed(texts), FEATURE_SCALE * np.stack([prompt_features(t) for t in texts])]),
    }
    if "int8" in embedders:
        variants["split + cues, int8"] = lambda texts: prompt_vectors(embedders["int8"], texts)
    print(f"\nmacro-F1 by input and head ({len(FEATURE_NAMES)} cues: {', '.join(FEATURE_NAMES)})")
    header = f"{'input':22s} {'head':9s} " + " ".join(f"{name:>22s}" for name in sets)
    print(header)
    for vname, vec in variants.items():
        if args.skip_baselines and vname.startswith("whole"):
            continue
        x = vec(train_texts)
        heads = {kind: fit_head(kind, x, labels) for kind in ("centroid", "logistic")}
        xs = {name: vec(texts) for name, (texts, _) in sets.items()}
        f1 = {}
        for kind, head in heads.items():
            cells = []
            for name, (_, truth) in sets.items():
                pred = [head.classes[i] for i in head.probabilities(xs[name]).argmax(axis=1)]
                report = score_routes(truth, pred)
                f1[(kind, name)] = report.macro_f1
                cells.append(f"{report.macro_f1:22.3f}")
            print(f"{vname:22s} {kind:9s} " + " ".join(cells))
        name = "held-out"
        print(f"{'':22s} {'ratio':9s} logistic/centroid on {name}: {f1[('logistic', name)] / f1[('centroid', name)]:.3f}")
    summ = [r for r in heldout if r.route == "summarize"]
    print(f"\n(summarize prompts in the held-out set: {len(summ)}, "
          f"median length {statistics.median(len(r.prompt) for r in summ):.0f} chars)")


if __name__ == "__main__":
    main()
