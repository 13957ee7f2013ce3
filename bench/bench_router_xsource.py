"""How well router methods generalise to prompt sources they never saw (not a test).

Leave-one-source-out over the shipped examples (covey's own plus data/routes/sources/*.jsonl): for
each source S, every method is trained on all other sources and scored on S; nothing is tuned on S
(a method's own choices, e.g. logistic C, are picked by an inner leave-one-source-out over the
training sources only). Prints one table per method: per held-out source its macro-F1 (over the
routes that source has) and accuracy with bootstrap 95% intervals, then the pooled out-of-source
predictions: macro-F1, per-route F1, summarize precision and abstention precision/recall.
Finally the warm per-task latency p50/p95 (wall and CPU time) of the numpy MiniLM router on one
thread, the batch path (used for one prompt before) and the one-prompt path side by side, with the
load average at the time.

Two public sources, HELD_OUT (mt_bench and vicuna: first turns of real benchmark prompts, the
closest to what users type), are never used to choose anything: the pooled "tuning" line covers the
other sources and is the figure options are chosen by; the "held-out" line is reported, not tuned on.

    PYTHONPATH=src .venv/bin/python bench/bench_router_xsource.py [--methods default,mlp,...]
        [--embedder numpy|int8|onnx-int8|onnx] [--setfit-steps 150] [--cache /tmp/covey_router_xsource]
        [--depth L3,L5,T48,X3@0.55]

--depth adds the cheaper encoders bench/bench_router.py times (numpy only): Lk = the first k of the six
layers, TN = the first N tokens of the instruction, LkTN both, each with the logistic head refitted on
its vectors; Xk@p = early exit, the head on the first k layers answers when its top probability is at
least p, otherwise the six-layer head does (the forward pass continues from layer k).

Instruction embeddings are cached on disk (one .npz per embedder), so reruns only train heads.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covey.router.classifier import (
    FEATURE_SCALE,
    MATERIAL_CUE_WEIGHT,
    NO_PREFERENCE_FACTOR,
    RouteExample,
    builtin_examples,
)
from covey.router.embedding import PackagedMiniLM
from covey.router.evaluation import score_abstention, score_routes
from covey.router.features import FEATURE_NAMES, prompt_features, split_prompt
from covey.router.head import (
    calibrate_fallback,
    calibrate_threshold,
    fit_head,
    out_of_fold,
)

FALLBACK = "chat"
HELD_OUT = ("mt_bench", "vicuna")
"""Public sources never tuned on: no option is chosen by their figures (see the module docstring)."""
Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass
class Data:
    examples: list[RouteExample]
    instructions: list[str]
    cues: np.ndarray
    labels: np.ndarray
    sources: np.ndarray
    classes: tuple[str, ...]


def load_data() -> Data:
    by_prompt: dict[str, RouteExample] = {}
    for ex in builtin_examples():
        by_prompt.pop(ex.prompt, None)
        by_prompt[ex.prompt] = ex
    examples = list(by_prompt.values())
    parts = [split_prompt(e.prompt) for e in examples]
    cues = np.stack([prompt_features(e.prompt, p) for e, p in zip(examples, parts)])
    return Data(examples, [p.instruction for p in parts], cues, np.asarray([e.route for e in examples]),
                np.asarray([e.source for e in examples]), tuple(sorted({e.route for e in examples})))


class CachedEmbedder:
    """Embeds through `inner`, remembering every vector in one .npz file per embedder name."""

    def __init__(self, inner, cache_dir: Path) -> None:
        self.inner = inner
        self.path = cache_dir / f"{hashlib.sha1(inner.name.encode()).hexdigest()[:12]}-{inner.name}.npz"
        self.vecs: dict[str, np.ndarray] = {}
        if self.path.exists():
            with np.load(self.path) as z:
                self.vecs = dict(zip(z["keys"].tolist(), z["vecs"]))

    @property
    def name(self) -> str:
        return self.inner.name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self.vecs}.items())
        if missing:
            new = self.inner.embed([t for _, t in missing])
            self.vecs.update({k: v for (k, _), v in zip(missing, new)})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self.path, keys=np.asarray(list(self.vecs)), vecs=np.stack(list(self.vecs.values())))
        return np.stack([self.vecs[k] for k in keys]).astype(np.float32)


# ---- heads -------------------------------------------------------------------------------------

def covey_logistic(x: np.ndarray, y: np.ndarray, _src: np.ndarray) -> tuple[Predictor, tuple[str, ...], float]:
    """Today's head: numpy softmax regression with class weights, threshold calibrated out of fold."""
    head = fit_head("logistic", x, list(y))
    oof = out_of_fold("logistic", x, list(y))
    thr = calibrate_threshold(oof, [head.classes.index(v) for v in y])
    return head.probabilities, head.classes, thr


def covey_logistic_sources(x: np.ndarray, y: np.ndarray, src: np.ndarray) -> tuple[Predictor, tuple[str, ...], float]:
    """Today's head with every source weighted equally within a route (RouterSettings.balance_sources)."""
    head = fit_head("logistic", x, list(y), list(src))
    oof = out_of_fold("logistic", x, list(y), groups=list(src))
    thr = calibrate_threshold(oof, [head.classes.index(v) for v in y])
    return head.probabilities, head.classes, thr


def _weights(y: np.ndarray, src: np.ndarray, by_source: bool) -> np.ndarray:
    """Each route gets equal total weight; with by_source, each source's share of a route too."""
    w = np.ones(len(y))
    for r in np.unique(y):
        m = y == r
        if by_source:
            for s in np.unique(src[m]):
                ms = m & (src == s)
                w[ms] = 1.0 / (ms.sum() * len(np.unique(src[m])))
        else:
            w[m] = 1.0 / m.sum()
    return w * len(y) / w.sum()


def sk_logistic(c: float, by_source: bool):
    from sklearn.linear_model import LogisticRegression

    def fit(x: np.ndarray, y: np.ndarray, src: np.ndarray):
        model = LogisticRegression(C=c, max_iter=3000)
        model.fit(x, y, sample_weight=_weights(y, src, by_source))
        return model.predict_proba, tuple(model.classes_), 0.0

    return fit


def sk_mlp(x: np.ndarray, y: np.ndarray, src: np.ndarray):
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    w = _weights(y, src, True)
    idx = rng.choice(len(y), size=3 * len(y), p=w / w.sum())  # weighted resampling: MLP takes no weights
    model = MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3, max_iter=300, early_stopping=True, random_state=0)
    model.fit(x[idx], y[idx])
    return model.predict_proba, tuple(model.classes_), 0.0


def inner_choice(candidates: dict[str, Callable], x: np.ndarray, y: np.ndarray, src: np.ndarray) -> str:
    """The candidate with the best mean macro-F1 over an inner leave-one-source-out (training data only)."""
    best, best_f1 = "", -1.0
    for name, fit in candidates.items():
        f1s = []
        for s in np.unique(src):
            tr, te = src != s, src == s
            pred, classes, _ = fit(x[tr], y[tr], src[tr])
            p = np.asarray(classes)[pred(x[te]).argmax(axis=1)]
            f1s.append(score_routes(list(y[te]), list(p)).macro_f1)
        if np.mean(f1s) > best_f1:
            best, best_f1 = name, float(np.mean(f1s))
    return best


# ---- scoring -----------------------------------------------------------------------------------

def bootstrap(truth: np.ndarray, pred: np.ndarray, stat: Callable[[list, list], float], n: int = 1000,
              seed: int = 0) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    value = stat(list(truth), list(pred))
    draws = [stat(list(truth[i]), list(pred[i])) for i in rng.integers(0, len(truth), size=(n, len(truth)))]
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return value, float(lo), float(hi)


def macro(t: list, p: list) -> float:
    return score_routes(t, p).macro_f1


def accuracy(t: list, p: list) -> float:
    return score_routes(t, p).accuracy


def route_f1(route: str) -> Callable[[list, list], float]:
    return lambda t, p: score_routes(t, p).score(route).f1 if route in t else float("nan")


def decide(probs: np.ndarray, classes: tuple[str, ...], thr: float) -> tuple[list[str], list[str], list[bool]]:
    """Final route (fallback to chat under the threshold), the head's own pick, and whether it abstained."""
    thr = max(thr, NO_PREFERENCE_FACTOR / len(classes))  # as EmbeddingRouter.fit does
    best = probs.argmax(axis=1)
    picks = [classes[i] for i in best]
    abstain = [float(probs[k, i]) < thr and classes[i] != FALLBACK for k, i in enumerate(best)]
    final = [FALLBACK if a else p for p, a in zip(picks, abstain)]
    return final, picks, abstain


HOLDOUT: list[str] = []
"""Held-out sources to run (all when empty); --holdout narrows it for slow methods."""


def loso(name: str, fit: Callable, x: np.ndarray, data: Data) -> None:
    srcs = sorted(HOLDOUT or np.unique(data.sources), key=lambda s: (s != "covey", s))
    final = np.empty(len(data.labels), dtype=object)
    picks = np.empty(len(data.labels), dtype=object)
    abstain = np.zeros(len(data.labels), dtype=bool)
    t0 = time.perf_counter()
    print(f"\n== {name}")
    print(f"{'held-out source':16} {'n':>4}  {'macro-F1 [95% CI]':>22}  {'accuracy [95% CI]':>22}  routes")
    for s in srcs:
        tr, te = data.sources != s, data.sources == s
        pred, classes, thr = fit(x[tr], data.labels[tr], data.sources[tr])
        f, p, a = decide(pred(x[te]), classes, thr)
        final[te], picks[te], abstain[te] = f, p, a
        t, fp = data.labels[te], np.asarray(f, dtype=object)
        m, ml, mh = bootstrap(t, fp, macro)
        acc, al, ah = bootstrap(t, fp, accuracy)
        print(f"{s:16} {te.sum():4}  {m:.3f} [{ml:.3f}, {mh:.3f}]  {acc:.3f} [{al:.3f}, {ah:.3f}]  "
              + ", ".join(sorted(set(t))))
    done = np.isin(data.sources, srcs)
    t, fp, picks, abstain = data.labels[done], final[done], picks[done], abstain[done]
    external = data.sources[done] != "covey"
    held = np.isin(data.sources[done], HELD_OUT)
    tuning = external & ~held
    m, ml, mh = bootstrap(t, fp, macro)
    me, mel, meh = bootstrap(t[external], fp[external], macro)
    print(f"{'pooled':16} {len(t):4}  {m:.3f} [{ml:.3f}, {mh:.3f}]   (every prompt predicted by a model that never saw its source)")
    print(f"{'pooled, public':16} {external.sum():4}  {me:.3f} [{mel:.3f}, {meh:.3f}]   (the gathered public sources only)")
    for label, mask, note in (("public, tuning", tuning, "public sources options are chosen by"),
                              ("public, held-out", held, "never tuned on: " + ", ".join(HELD_OUT))):
        if mask.any():
            v, lo, hi = bootstrap(t[mask], fp[mask], macro)
            print(f"{label:16} {mask.sum():4}  {v:.3f} [{lo:.3f}, {hi:.3f}]   ({note})")
    report = score_routes(list(t), list(fp))
    cells = []
    for r in data.classes:
        v, lo, hi = bootstrap(t, fp, route_f1(r), n=400)
        cells.append(f"{r} {v:.2f} [{lo:.2f},{hi:.2f}]")
    print("per-route F1 (pooled): " + "; ".join(cells))
    summ = report.score("summarize")
    ab = score_abstention(list(t), list(picks), list(abstain))
    print(f"summarize precision {summ.precision:.2f} recall {summ.recall:.2f}; abstained {ab.abstained}/{len(t)}, "
          f"abstention precision {ab.precision:.2f} recall {ab.recall:.2f}; {time.perf_counter() - t0:.0f} s")


def latency(embed_one: Callable[[str], np.ndarray], pred: Predictor, prompts: list[str], cue_scale: np.ndarray,
            repeat: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Per-task wall and CPU milliseconds of split + embed + cues + head, one prompt at a time."""
    times, cpu = [], []
    for _ in range(repeat):
        for p in prompts:
            t0, c0 = time.perf_counter(), time.thread_time()
            part = split_prompt(p)
            v = np.hstack([embed_one(part.instruction), cue_scale * prompt_features(p, part)])
            pred(v[None, :].astype(np.float32))
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
    return 1000 * np.asarray(times), 1000 * np.asarray(cpu)


def _pct(ms: np.ndarray) -> str:
    return f"p50 {np.percentile(ms, 50):5.1f} ms, p95 {np.percentile(ms, 95):5.1f} ms"


def head_fit(kind: str, fallback: bool = True) -> Callable:
    """covey's own head of `kind`, class- and source-balanced, with the shipped fallback calibration."""
    def fit(xt: np.ndarray, yt: np.ndarray, st: np.ndarray):
        head = fit_head(kind, xt, list(yt), list(st))
        thr = 0.0
        if fallback:
            oof = out_of_fold(kind, xt, list(yt), groups=list(st))
            thr = calibrate_fallback(oof, [head.classes.index(v) for v in yt], head.classes.index(FALLBACK))
        return head.probabilities, head.classes, thr
    return fit


def ensemble(*fits: Callable) -> Callable:
    """Mean of the members' probabilities (members must share their classes), no fallback threshold."""
    def fit(xt: np.ndarray, yt: np.ndarray, st: np.ndarray):
        members = [f(xt, yt, st) for f in fits]
        return (lambda x: np.mean([m[0](x) for m in members], axis=0)), members[0][1], 0.0
    return fit


def early_exit(dim: int, tau: float) -> Callable:
    """Heads on the full vectors (columns :dim) and the early layer's (dim:); the early one answers when sure.
    The fallback threshold is the full head's, as in a router that only sometimes runs all layers."""
    def fit(xt: np.ndarray, yt: np.ndarray, st: np.ndarray):
        full = head_fit("logistic")(xt[:, :dim], yt, st)
        early = head_fit("logistic")(xt[:, dim:], yt, st)
        assert full[1] == early[1]

        def pred(xs: np.ndarray) -> np.ndarray:
            pe, pf = early[0](xs[:, dim:]), full[0](xs[:, :dim])
            exits = pe.max(axis=1, keepdims=True) >= tau
            EXITED.append((int(exits.sum()), len(exits)))
            return np.where(exits, pe, pf)
        return pred, full[1], full[2]
    return fit


EXITED: list[tuple[int, int]] = []
"""(answered early, predicted) per early-exit prediction, for the share printed after the method."""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", default="before,default", help="comma list (see the code); add setfit to fine-tune")
    ap.add_argument("--embedder", default="numpy", choices=("numpy", "int8", "onnx-int8", "onnx"),
                    help="numpy: MiniLM in numpy (fp32); int8: sentence-transformers int8; onnx-int8 / onnx: "
                    "onnxruntime int8 (the default backend) / fp32")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/covey_router_xsource"))
    ap.add_argument("--setfit-steps", type=int, default=150, help="contrastive fine-tuning steps per fold")
    ap.add_argument("--holdout", default="", help="comma list of held-out sources to run (default: all)")
    ap.add_argument("--depth", default="", help="comma list of shallower encoders to score (see the docstring)")
    ap.add_argument("--latency", type=int, default=100, help="prompts timed for the latency lines (0 skips)")
    args = ap.parse_args()
    HOLDOUT[:] = [s for s in args.holdout.split(",") if s]
    data = load_data()
    counts = {s: int((data.sources == s).sum()) for s in np.unique(data.sources)}
    print(f"{len(data.labels)} examples, {len(counts)} sources: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(f"held out, never tuned on: {', '.join(HELD_OUT)}")
    if args.embedder == "numpy":
        from covey.embedding import minilm

        inner = minilm(threads=1)
    elif args.embedder.startswith("onnx"):
        from covey.minilm_onnx import OnnxMiniLM

        inner = OnnxMiniLM(args.cache / "onnx-graphs", int8=args.embedder == "onnx-int8", threads=1)
    else:
        import torch

        torch.set_num_threads(1)
        inner = PackagedMiniLM(int8=True, threads=1)
    emb = CachedEmbedder(inner, args.cache)
    e = emb.embed(data.instructions)
    material = np.asarray([n.startswith("pasted") for n in FEATURE_NAMES])
    asked = np.asarray([n.endswith("_asked") for n in FEATURE_NAMES])

    def vectors(cue_scale: float = 0.5, material_scale: float = 1.0) -> np.ndarray:
        """Embedding plus cues at `cue_scale` (the material cues times `material_scale`); the variants
        below are relative to the uniform 0.5 that was shipped before MATERIAL_CUE_WEIGHT."""
        cues = data.cues * np.where(material, material_scale, 1.0)
        return np.hstack([e, cue_scale * cues]).astype(np.float32)

    x = np.hstack([e, FEATURE_SCALE * data.cues]).astype(np.float32)  # what the router ships now
    no_ask = np.hstack([e, FEATURE_SCALE * data.cues * ~asked]).astype(np.float32)
    ask_strong = np.hstack([e, FEATURE_SCALE * data.cues * np.where(asked, 2.0, 1.0)]).astype(np.float32)
    before = vectors()
    methods = args.methods.split(",")
    grid = {f"C={c}": sk_logistic(c, True) for c in (0.5, 2.0, 8.0)}
    runs: dict[str, tuple[str, Callable, np.ndarray]] = {
        "before": ("shipped before: covey logistic, source-balanced, fallback-better, cues 0.5", head_fit("logistic"),
                   before),
        "default": ("shipped now: covey logistic, source-balanced, fallback-better, material cues at "
                    f"{MATERIAL_CUE_WEIGHT}", head_fit("logistic"), x),
        "no-ask-cues": ("as default, without the *_asked cues (the cues shipped before)",
                        head_fit("logistic"), no_ask),
        "ask-strong": ("as default, the *_asked cues at twice the weight", head_fit("logistic"), ask_strong),
        "mlp-default": ("covey MLP, source-balanced, fallback-better, the shipped cue weights", head_fit("mlp"), x),
        "mlp-default-nofb": ("covey MLP, source-balanced, no fallback calibration, the shipped cue weights",
                             head_fit("mlp", fallback=False), x),
        "sk-mlp-default": ("sklearn MLP (256), class- and source-balanced resampling, the shipped cue weights", sk_mlp, x),
        "logreg-cv-default": ("sklearn logistic, C by inner leave-one-source-out, the shipped cue weights",
                              lambda xt, yt, st: grid[inner_choice(grid, xt, yt, st)](xt, yt, st), x),
        "logistic-nofb": ("covey logistic, source-balanced, no fallback calibration, cues 0.5",
                          head_fit("logistic", False), before),
        "cues-half": ("covey logistic, all cues at half weight", head_fit("logistic", False), vectors(0.25)),
        "material-half": ("covey logistic, pasted-material cues at half weight", head_fit("logistic", False),
                          vectors(material_scale=0.5)),
        "material-quarter": ("covey logistic, pasted-material cues at quarter weight", head_fit("logistic", False),
                             vectors(material_scale=0.25)),
        "material-zero": ("covey logistic, no pasted-material cues", head_fit("logistic", False),
                          vectors(material_scale=0.0)),
        "mlp": ("covey MLP (numpy, 256 hidden), source-balanced, fallback-better, cues 0.5", head_fit("mlp"), before),
        "mlp-nofb": ("covey MLP, no fallback calibration, cues 0.5", head_fit("mlp", fallback=False), before),
        "mlp-cues-half": ("covey MLP, all cues at half weight", head_fit("mlp", fallback=False), vectors(0.25)),
        "mlp-material-half": ("covey MLP, pasted-material cues at half weight", head_fit("mlp", fallback=False),
                              vectors(material_scale=0.5)),
        "ens-centroid": ("mean of covey logistic and nearest centroid", ensemble(
            head_fit("logistic", False), lambda a, b, c: (lambda h: (h.probabilities, h.classes, 0.0))(
                fit_head("centroid", a, list(b)))), before),
        "ens-mlp": ("mean of covey logistic and covey MLP", ensemble(head_fit("logistic", False),
                                                                   head_fit("mlp", False)), before),
        "baseline": ("covey logistic, class-balanced only (calibrated coin-flip fallback)", covey_logistic, before),
        "logreg": ("sklearn logistic, class-balanced, C=2", sk_logistic(2.0, False), before),
        "logreg-src": ("sklearn logistic, class- and source-balanced, C=2", sk_logistic(2.0, True), before),
        "logreg-src-cv": ("sklearn logistic, C by inner leave-one-source-out",
                          lambda xt, yt, st: grid[inner_choice(grid, xt, yt, st)](xt, yt, st), before),
        "sk-mlp": ("sklearn MLP (256), class- and source-balanced resampling", sk_mlp, before),
    }
    for spec in [d for d in args.depth.split(",") if d]:
        if args.embedder != "numpy":
            raise SystemExit("--depth needs --embedder numpy")
        from router_variants import FnEmbedder, parse_variant, shallower, variant_name

        exit_at, _, tau = spec.partition("@")
        layers, tokens = parse_variant("L" + exit_at[1:] if exit_at.startswith("X") else exit_at)
        cut = CachedEmbedder(FnEmbedder(variant_name(layers, tokens), shallower(inner._get(), layers, tokens)),
                             args.cache)
        xk = np.hstack([cut.embed(data.instructions), FEATURE_SCALE * data.cues]).astype(np.float32)
        if exit_at.startswith("X"):
            EXITED.clear()
            loso(f"{spec}: early exit after layer {layers} when its head's top probability >= {tau}, else 6 layers",
                 early_exit(x.shape[1], float(tau)), np.hstack([x, xk]), data)
            print(f"answered after layer {layers}: {sum(a for a, _ in EXITED) / sum(n for _, n in EXITED):.2f} of prompts")
        else:
            loso(f"{spec}: {variant_name(layers, tokens)}, covey logistic refitted on its vectors (as default)",
                 head_fit("logistic"), xk, data)
    for m in methods:
        if m == "setfit":
            from router_setfit import (
                setfit_fold,  # bench-local helper, imported only when asked for
            )

            loso(f"SetFit-style: MiniLM contrastively fine-tuned ({args.setfit_steps} steps/fold) + logistic",
                 setfit_fold(data, args.setfit_steps), x, data)
            continue
        if m not in runs:
            raise SystemExit(f"unknown method {m!r}; choose from {', '.join([*runs, 'setfit'])}")
        title, fit, xm = runs[m]
        loso(f"{m}: {title}", fit, xm, data)
    if args.latency and args.embedder == "numpy":
        prompts = [data.examples[i].prompt for i in np.random.default_rng(1).choice(len(data.examples), args.latency)]
        from covey.minilm import blas_limiter

        bert = inner.weights
        pred = fit_head("logistic", x, list(data.labels), list(data.sources)).probabilities
        one_thread = blas_limiter(1)

        def batch_path(t: str) -> np.ndarray:
            with one_thread():
                return bert.encode([t])[0]

        def one_prompt_path(t: str) -> np.ndarray:
            with one_thread():
                return bert.encode_one(t)

        paths = {"batch path (before)": batch_path, "one-prompt path (now)": one_prompt_path}
        for fn in paths.values():
            fn("warm up")
        results = {k: latency(fn, pred, prompts, FEATURE_SCALE) for k, fn in paths.items()}
        # interleave a second round so load changes hit both alike
        for k, fn in paths.items():
            w, c = latency(fn, pred, prompts, FEATURE_SCALE, repeat=1)
            results[k] = (np.concatenate([results[k][0], w]), np.concatenate([results[k][1], c]))
        print(f"\nlatency, numpy MiniLM + logistic head, one thread, {len(prompts)} prompts x 3; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        base = None
        for k, (w, c) in results.items():
            base = base or np.percentile(c, 95)
            print(f"  {k:24} wall {_pct(w)}; CPU {_pct(c)}; CPU p95 ratio {np.percentile(c, 95) / base:.2f}")



if __name__ == "__main__":
    main()
