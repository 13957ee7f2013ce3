"""Fit the expression ranker's weights (covey.tools.expression_ranker) on MAWPS one- and two-step problems.

Data: data/word_problems/mawps_fold0.tsv and mawps_fold2.tsv (problems of MAWPS' cross-validation folds
0 and 2, transcribed from the SVAMP repository, MIT) and covey_train.tsv (63 short problems written for
covey: percent changes, unit conversions, rates, averages, which MAWPS hardly has); provenance in
data/word_problems/README.md. MAWPS fold 1 and SVAMP are held out (bench/bench_expression_ranker.py
reports them); nothing from bench/data is read here. The k-fold figures are printed per source too.
A stated percentage ('25%') counts as the equation's 25 when the equation divides it by 100.
A candidate is a positive when its value is the answer and every stated number it uses is one the
equation uses (so '4 - 2' from a distractor is not taught as the way to 2). Problems no candidate
reaches are kept for the cross-validated figures (they count as wrong) but give no gradient.

Loss: listwise softmax over each problem's candidates (the log of the probability mass on the
positives), L2, minimised with scipy's L-BFGS (scipy is needed only here, not at run time). Prints
k-fold figures for each L2 value and keeps the strongest L2 within 1% of the best top-1; picks the
confident-answer threshold on its out-of-fold probabilities (the lowest one whose precision is at
least --precision); fits on everything with that L2 and writes covey/data/expression_ranker.npz and its provenance (expression_ranker.json).
Run: python scripts/fit_expression_ranker.py [--l2 1 3 10] [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from covey.tools import expression_ranker as er
from covey.tools.word_problem_data import WordProblem, read_tsv

ROOT = Path(__file__).resolve().parent.parent
TRAIN = [ROOT / "data" / "word_problems" / name for name in ("mawps_fold0.tsv", "mawps_fold2.tsv", "covey_train.tsv")]
MAX_NEGATIVES = 1500
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99)


def close(a: Fraction, b: Fraction) -> bool:
    return abs(float(a) - float(b)) <= 1e-4 * max(1.0, abs(float(b)))


def labels(problem: er.Problem, wp: WordProblem) -> np.ndarray:
    out = np.zeros(len(problem.candidates), dtype=bool)
    for k, c in enumerate(problem.candidates):
        if close(c.value, wp.answer) and all(_operand(problem.quantities[i], wp) for i in c.uses):
            out[k] = True
    return out


def _operand(q, wp: WordProblem) -> bool:
    """Whether quantity `q` is one the equation uses (a stated '25%' is the equation's 25 / 100)."""
    if q.kind != "stated":
        return True
    return any(close(q.value, o) or (q.percent and close(q.value * 100, o)) for o in wp.operands)


def design(problems: list[er.Problem], marks: list[np.ndarray], rng: random.Random):
    """Sparse X over the kept candidates (all positives, up to MAX_NEGATIVES negatives), group starts, y."""
    from scipy import sparse

    data, cols, indptr, ys, starts = [], [], [0], [], []
    nh = er.HAND_DIM
    for prob, y in zip(problems, marks):
        if not y.any():
            continue
        neg = [k for k in range(len(y)) if not y[k]]
        keep = [k for k in range(len(y)) if y[k]] + (rng.sample(neg, MAX_NEGATIVES) if len(neg) > MAX_NEGATIVES else neg)
        starts.append(len(ys))
        for k in keep:
            dense = prob.dense[k]
            nz = np.nonzero(dense)[0]
            cols.extend(nz.tolist())
            data.extend(dense[nz].tolist())
            cols.extend(nh + i for i in prob.hashed[k])
            data.extend([1.0] * len(prob.hashed[k]))
            indptr.append(len(cols))
            ys.append(bool(y[k]))
    x = sparse.csr_matrix((np.array(data), np.array(cols), np.array(indptr)), shape=(len(ys), er.DIM))
    return x, np.array(starts), np.array(ys)


def fit(x, starts: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    from scipy.optimize import minimize

    gid = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(y))))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = x @ w
        m = np.maximum.reduceat(s, starts)
        e = np.exp(s - m[gid])
        z_all = np.add.reduceat(e, starts)
        ep = np.where(y, e, 0.0)
        z_pos = np.add.reduceat(ep, starts)
        value = float(np.sum(np.log(z_all) - np.log(z_pos))) + 0.5 * l2 * float(w @ w)
        g_rows = e / z_all[gid] - ep / z_pos[gid]
        return value, x.T @ g_rows + l2 * w

    result = minimize(loss, np.zeros(er.DIM), jac=True, method="L-BFGS-B", options={"maxiter": 400})
    return result.x


def evaluate(problems: list[er.Problem], answers: list[Fraction], w: np.ndarray) -> list[tuple[bool, float]]:
    out = []
    for prob, answer in zip(problems, answers):
        ranked = er.rank_values(prob, w, top=1)
        out.append((bool(ranked) and close(ranked[0].value, answer), ranked[0].probability if ranked else 0.0))
    return out


def at_threshold(results: list[tuple[bool, float]], tau: float) -> tuple[int, int]:
    sure = [r for r, p in results if p >= tau]
    return sum(sure), len(sure)


def summary(results: list[tuple[bool, float]]) -> str:
    n = len(results)
    right = sum(r for r, _ in results)
    parts = [f"top-1 {right}/{n} = {right / n:.2f}"]
    for tau in THRESHOLDS:
        good, sure = at_threshold(results, tau)
        if sure:
            parts.append(f"p>={tau}: {good}/{sure} ({sure / n:.0%})")
    return "; ".join(parts)


def pick_threshold(results: list[tuple[bool, float]], precision: float) -> float:
    """The lowest threshold whose out-of-fold precision (over every answer at or above it) is at least
    `precision`; 1.0 (never confident) when none is."""
    for tau in sorted(THRESHOLDS):
        good, sure = at_threshold(results, tau)
        if sure >= 5 and good / sure >= precision:
            return tau
    return 1.0


def _shown(path: Path) -> str:
    full = path.resolve()
    return str(full.relative_to(ROOT)) if full.is_relative_to(ROOT) else str(full)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, nargs="*", default=TRAIN)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--l2", type=float, nargs="*", default=[0.1, 0.3, 1.0])
    ap.add_argument("--precision", type=float, default=0.97, help="out-of-fold precision the threshold must reach")
    ap.add_argument("--check", action="store_true", help="only report whether the shipped weights are the ones this data fits")
    args = ap.parse_args()
    train = [wp for path in args.train for wp in read_tsv(path)]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in args.train)).hexdigest()
    if args.check:
        shipped = er.provenance()
        ok = shipped.get("train_sha256") == digest and shipped.get("n_train") == len(train) and shipped.get("dim") == er.DIM
        print("shipped weights match the training data" if ok else "shipped weights are stale: refit")
        return 0 if ok else 1
    print(f"reading {len(train)} problems ...", file=sys.stderr)
    problems = [er.read_problem(wp.prompt) for wp in train]
    answers = [wp.answer for wp in train]
    marks = [labels(p, wp) for p, wp in zip(problems, train)]
    reachable = sum(m.any() for m in marks)
    print(f"{reachable} of {len(train)} problems have a gold candidate", file=sys.stderr)
    order = list(range(len(train)))
    random.Random(0).shuffle(order)
    cv: dict[float, list[tuple[bool, float]]] = {}
    for l2 in args.l2:
        results: dict[int, tuple[bool, float]] = {}
        for fold in range(args.folds):
            test = sorted(order[fold::args.folds])
            held = set(test)
            tr = [i for i in order if i not in held]
            x, starts, y = design([problems[i] for i in tr], [marks[i] for i in tr], random.Random(fold))
            w = fit(x, starts, y, l2)
            results.update(zip(test, evaluate([problems[i] for i in test], [answers[i] for i in test], w)))
        cv[l2] = [results[i] for i in range(len(train))]
        print(f"l2={l2:g}: {args.folds}-fold {summary(cv[l2])}")
        for source in sorted({wp.source.split(":")[0] for wp in train}):
            print(f"    {source}: {summary([cv[l2][i] for i, wp in enumerate(train) if wp.source.startswith(source + ':')])}")
    # the strongest L2 whose cross-validated top-1 is within 1% of the best one's (a smoother model's
    # probabilities travel better to problems unlike the training ones)
    top = max(sum(r for r, _ in cv[l2]) for l2 in cv)
    best = max(l2 for l2 in cv if sum(r for r, _ in cv[l2]) >= top - 0.01 * len(train))
    threshold = pick_threshold(cv[best], args.precision)
    good, sure = at_threshold(cv[best], threshold)
    print(f"threshold {threshold:g}: out-of-fold {good}/{sure} right, {sure / len(train):.0%} answered")
    x, starts, y = design(problems, marks, random.Random(0))
    w = fit(x, starts, y, best)
    np.savez_compressed(er.WEIGHTS_PATH, weights=w.astype(np.float32))
    right = sum(r for r, _ in cv[best])
    counts = {p.name: sum(wp.source.startswith(p.name + ":") for wp in train) for p in args.train}
    er.PROVENANCE_PATH.write_text(json.dumps({
        "data": "MAWPS cross-validation folds 0 and 2 (their first problems), transcribed from the SVAMP "
                "repository (github.com/arkilpatel/SVAMP, MIT licence; MAWPS' own terms unstated), and short problems "
                "written for covey (percent changes, unit conversions, rates, averages): "
                + ", ".join(f"{_shown(p)} ({counts[p.name]})" for p in args.train),
        "cv_by_source": {source: summary([cv[best][i] for i, wp in enumerate(train)
                                          if wp.source.startswith(source + ":")])
                         for source in sorted({wp.source.split(":")[0] for wp in train})},
        "held_out": ["data/word_problems/mawps_fold1.tsv", "data/word_problems/svamp.tsv", "bench/data/*.jsonl"],
        "train_sha256": digest, "n_train": len(train), "dim": er.DIM, "n_with_gold_candidate": int(reachable),
        "l2": best, "folds": args.folds, "cv_top1": round(right / len(train), 3), "cv_summary": summary(cv[best]),
        "confident_threshold": threshold, "threshold_precision_target": args.precision,
        "threshold_out_of_fold": {"right": good, "answered": sure, "n": len(train)},
        "labels": "value equals the answer and every stated number used is one the equation uses (a stated "
                  "percentage as the equation's number over 100)",
        "fitted_by": "scripts/fit_expression_ranker.py",
    }, indent=2) + "\n")
    print(f"wrote {er.WEIGHTS_PATH.name} (l2={best:g}, {args.folds}-fold top-1 {right}/{len(train)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
