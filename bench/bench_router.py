"""Router cost and quality, measured side by side in one run (not a test).

Prints first, on one thread: p50/p95 warm per-task classify latency (wall and CPU) of today's numpy
router (covey 88732b0, frozen in bench/router_variants.py), the current numpy one and the onnxruntime
backends (fp32, and int8, the default; covey.minilm_onnx) side by side on the same prompts, interleaved
pass by pass, by instruction token count; then each one's routes against numpy's, held-out macro-F1
and (onnx) the cosine of its vectors with numpy's; and the same latency for shallower encoders (first k layers, first N tokens; latency only, their leave-one-source-out
F1 is printed by bench/bench_router_xsource.py --depth). Then, for the torch backend:
p50/p95 warm per-task classify latency on single prompts; held-out and Vicuna macro-F1 for
the nearest-centroid head vs the logistic head on the same vectors (the justification for the
default head); and the same heads on whole-prompt embeddings without the instruction/material
split (the justification for the split).

    .venv/bin/python bench/bench_router.py [--repeat 3] [--skip-baselines] [--no-int8] [--vicuna PATH]
        [--numpy-only] [--variants L3,L4,L5,T32,T48] [--sample 200]

Since the router trains on public prompt sources (data/routes/sources/), Vicuna is training data:
its figure here is in-sample. For out-of-source figures use bench/bench_router_xsource.py.

Wall-clock latency depends on what else the cores are doing; the CPU time per task is printed
too, and on a busy machine one torch thread beats two by a wide margin.
"""

from __future__ import annotations

import argparse
import json
import os
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
from covey.router.features import split_prompt
from covey.router.head import fit_head
from covey.minilm import NAME, NumpyMiniLM
from router_variants import FnEmbedder, parse_variant, shallower, today_encode_one

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "tests" / "data" / "router_heldout.jsonl"
VICUNA_ROUTES = {"coding": "code", "math": "math", "writing": "writing", "roleplay": "chat", "knowledge": "knowledge"}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def cpu_line() -> str:
    """The CPU model and the int8 instruction sets onnxruntime's kernels can pick from at run time."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return f"{model}; {' '.join(isa) or 'no AVX2'}"


def onnx_routers(tmp: Path) -> dict[str, object]:
    """The onnxruntime backends' routers (one thread), each with the head shipped for its vectors."""
    from covey.minilm_onnx import OnnxMiniLM, OnnxUnavailable, onnxruntime_version

    out: dict[str, object] = {}
    for label, int8 in (("onnx fp32", False), ("onnx int8 (default)", True)):
        embedder = OnnxMiniLM(tmp / "onnx", int8=int8, threads=1)
        try:
            embedder.load()
        except OnnxUnavailable as exc:
            print(f"{label}: not timed ({exc})")
            continue
        out[label] = load_default_router(tmp, embedder=embedder)
    if out:
        print(f"onnxruntime {onnxruntime_version()} on {cpu_line()}")
    return out


def numpy_side_by_side(prompts: list[str], repeat: int, variants: list[str], heldout_routes: list[str]) -> None:
    """Today's numpy router and the current one (and shallower encoders, and the onnxruntime backends),
    same prompts, one thread; the first len(heldout_routes) prompts are the labelled held-out ones."""
    bert = NumpyMiniLM(threads=1).weights
    encoders = {"today (88732b0)": (bert, lambda t: today_encode_one(bert, t)),
                "now (in-place)": (bert, lambda t: bert.encode_one(t))}
    for spec in variants:
        layers, tokens = parse_variant(spec)
        cut = shallower(bert, layers, tokens)
        encoders[f"now, {spec} (not shipped)"] = (cut, cut.encode_one)
    routers = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, (model, one) in encoders.items():
            # The shipped head (keyed by the embedder's name) for all: the head costs the same for every
            # variant, and a shallower encoder's routes are not what is measured here.
            routers[label] = load_default_router(Path(tmp), embedder=FnEmbedder(NAME, model, one))
        routers.update(onnx_routers(Path(tmp)))  # type: ignore[arg-type]
    n_tokens = np.asarray([len(bert.tokenizer.encode(split_prompt(p).instruction).ids) for p in prompts])
    wall: dict[str, list[float]] = {k: [] for k in routers}
    cpu: dict[str, list[float]] = {k: [] for k in routers}
    first = routers["today (88732b0)"]
    same = all(first.classify_many([p])[0].route == routers["now (in-place)"].classify_many([p])[0].route
               for p in prompts)
    for _ in range(repeat):  # interleaved pass by pass so load changes hit every encoder alike
        for label, router in routers.items():
            for p in prompts[:5]:
                router.classify_many([p])  # warm
            for p in prompts:
                t0, c0 = time.perf_counter(), time.thread_time()
                router.classify_many([p])  # classify without the recent-prompt memory: every task embedded
                wall[label].append((time.perf_counter() - t0) * 1000)
                cpu[label].append((time.thread_time() - c0) * 1000)
    tokens = np.tile(n_tokens, repeat)
    buckets = [(1, 16), (17, 32), (33, 64), (65, 512)]
    print(f"numpy MiniLM router, one BLAS thread, {len(prompts)} prompts x {repeat} passes; instruction tokens p50 "
          f"{np.percentile(n_tokens, 50):.0f}, p95 {np.percentile(n_tokens, 95):.0f}, max {n_tokens.max()}; "
          f"today and now route every prompt alike: {same}")
    print(f"{'encoder':28s} {'wall p50':>8s} {'p95':>6s} {'CPU p50':>8s} {'p95':>6s}   CPU p95 by tokens "
          + " ".join(f"{lo}-{hi if hi < 512 else '':<3}" for lo, hi in buckets))
    base = percentile(cpu["today (88732b0)"], 95)
    for label in routers:
        w, c = np.asarray(wall[label]), np.asarray(cpu[label])
        cells = " ".join(f"{percentile(list(c[(tokens >= lo) & (tokens <= hi)]), 95):6.1f}"
                         if ((tokens >= lo) & (tokens <= hi)).any() else "     -" for lo, hi in buckets)
        print(f"{label:28s} {percentile(list(w), 50):8.1f} {percentile(list(w), 95):6.1f} {percentile(list(c), 50):8.1f}"
              f" {percentile(list(c), 95):6.1f}   {cells}   (CPU p95 x{percentile(list(c), 95) / base:.2f})")
    print(f"load average now: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    quality(routers, prompts, heldout_routes)


def quality(routers: dict, prompts: list[str], heldout_routes: list[str]) -> None:
    """Each shipped router's routes against the current numpy router's, held-out macro-F1, and for the
    onnx backends the cosine of their instruction vectors with numpy's (shallower encoders are scored,
    with heads fitted on their own vectors, by bench_router_xsource.py --depth)."""
    base = routers["now (in-place)"]
    base_routes = [base.classify_many([p])[0].route for p in prompts]
    instructions = [split_prompt(p).instruction for p in prompts]
    reference = base.embedder.embed(instructions)
    truth = heldout_routes
    print(f"{'encoder':28s} {'same route as numpy':>20s} {'held-out macro-F1':>18s} {'cosine vs numpy min/mean':>25s}")
    for label, router in routers.items():
        if "not shipped" in label:  # they borrow the six-layer head: their routes are not theirs to judge here
            continue
        routes = [router.classify_many([p])[0].route for p in prompts]
        same = sum(a == b for a, b in zip(routes, base_routes))
        f1 = score_routes(truth, routes[:len(truth)]).macro_f1
        cos = ""
        if label.startswith("onnx"):
            sims = (router.embedder.embed(instructions) * reference).sum(axis=1)
            cos = f"{sims.min():.4f} / {sims.mean():.4f}"
        print(f"{label:28s} {f'{same}/{len(prompts)}':>20s} {f1:18.3f} {cos:>25s}")
    print()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3, help="passes over the held-out prompts for latency")
    ap.add_argument("--no-int8", action="store_true", help="skip the int8-quantized MiniLM comparison")
    ap.add_argument("--skip-baselines", action="store_true", help="skip the whole-prompt (no split) rows")
    ap.add_argument("--vicuna", type=Path, default=Path("/work/shared/eval/vicuna_bench_questions.jsonl"))
    ap.add_argument("--numpy-only", action="store_true", help="only the numpy side-by-side latency table")
    ap.add_argument("--variants", default="L3,L4,L5,T32,T48",
                    help="shallower encoders timed beside today's and the current router (empty: none)")
    ap.add_argument("--sample", type=int, default=200, help="shipped examples timed beside the held-out prompts")
    args = ap.parse_args()
    heldout = read_examples(HELDOUT)
    shipped = builtin_examples()
    picked = np.random.default_rng(1).choice(len(shipped), min(args.sample, len(shipped)), replace=False)
    numpy_side_by_side([r.prompt for r in heldout] + [shipped[int(i)].prompt for i in picked], args.repeat,
                       [v for v in args.variants.split(",") if v], [r.route for r in heldout])
    if args.numpy_only:
        return
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
