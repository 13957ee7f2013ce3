"""Fit the expression ranker's weights (covey.tools.expression_ranker) on GSM8K training problems.

Data: ../shared/eval/gsm8k_train_sample.jsonl (300 GSM8K *train* problems, MIT licence, with the
solution's `<<a*b=c>>` calculator annotations), minus every prompt in the files given with
--exclude (by default the held-out lines covey reports on, bench/data/gsm8k_heldout_short.jsonl).
A candidate is a positive when its value is the gold answer and every stated number it uses appears
in the gold annotations (so '4 - 2' from unrelated numbers is not taught as the way to 2). Problems no
candidate reaches are kept for the cross-validated figures (they count as wrong) but give no gradient.

Loss: listwise softmax (the log of the probability mass on the positives), L2, minimised with
scipy's L-BFGS (scipy is needed only here, not at run time). Prints k-fold figures for each L2 value,
fits on everything with the best one, and writes covey/data/expression_ranker.npz and its
provenance (expression_ranker.json). Run: python scripts/fit_expression_ranker.py [--check]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from covey.tools import expression_ranker as er

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT.parent.parent / "shared" / "eval" / "gsm8k_train_sample.jsonl"
if not TRAIN.exists():
    TRAIN = Path("/work/shared/eval/gsm8k_train_sample.jsonl")
EXCLUDE = [ROOT / "bench" / "data" / "gsm8k_heldout_short.jsonl"]
MAX_NEGATIVES = 800
_ANNOTATION = re.compile(r"<<([^=>]*)=")
_NUM = re.compile(r"\d+(?:\.\d+)?")


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def gold_operands(solution: str) -> set[Fraction]:
    found: set[Fraction] = set()
    for expr in _ANNOTATION.findall(solution):
        for n in _NUM.findall(expr.replace(",", "")):
            value = Fraction(n)
            found |= {value, value / 100}
    return found


def labels(problem: er.Problem, answer: Fraction, solution: str) -> np.ndarray:
    gold = gold_operands(solution)
    out = np.zeros(len(problem.candidates), dtype=bool)
    for k, c in enumerate(problem.candidates):
        if c.value == answer and all(problem.quantities[i].kind != "stated" or problem.quantities[i].value in gold
                                     for i in c.uses):
            out[k] = True
    return out


def design(problems: list[er.Problem], marks: list[np.ndarray], rng: random.Random):
    """Sparse X over the kept candidates (all positives, up to MAX_NEGATIVES negatives), group starts, y."""
    from scipy import sparse

    data, cols, indptr, ys, starts = [], [], [0], [], []
    nh = len(er._HAND)  # noqa: SLF001  (a script of the same package's fit)
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

    result = minimize(loss, np.zeros(er.DIM), jac=True, method="L-BFGS-B", options={"maxiter": 300})
    return result.x


def evaluate(problems: list[er.Problem], answers: list[Fraction], w: np.ndarray) -> list[tuple[bool, float]]:
    out = []
    for prob, answer in zip(problems, answers):
        ranked = er.rank_values(prob, w, top=1)
        out.append((bool(ranked) and ranked[0].value == answer, ranked[0].probability if ranked else 0.0))
    return out


def summary(results: list[tuple[bool, float]]) -> str:
    n = len(results)
    right = sum(r for r, _ in results)
    parts = [f"top-1 {right}/{n} = {right / n:.2f}"]
    for tau in (0.3, 0.5, 0.7, 0.9):
        sure = [r for r, p in results if p >= tau]
        if sure:
            parts.append(f"p>={tau}: {sum(sure)}/{len(sure)} right ({len(sure) / n:.0%} answered)")
    return "; ".join(parts)


def _shown(path: Path) -> str:
    full = path.resolve()
    return str(full.relative_to(ROOT)) if full.is_relative_to(ROOT) else str(full)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exclude", type=Path, nargs="*", default=EXCLUDE)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--l2", type=float, nargs="*", default=[10.0])
    ap.add_argument("--check", action="store_true", help="only report whether the shipped weights are the ones this data fits")
    args = ap.parse_args()
    excluded = {r["prompt"] for path in args.exclude for r in rows(path)}
    train = [r for r in rows(TRAIN) if r["prompt"] not in excluded]
    digest = hashlib.sha256(TRAIN.read_bytes()).hexdigest()
    if args.check:
        shipped = er.provenance()
        ok = shipped.get("train_sha256") == digest and shipped.get("n_train") == len(train)
        print("shipped weights match the training data" if ok else "shipped weights are stale: refit")
        return 0 if ok else 1
    print(f"reading {len(train)} problems ({len(excluded)} prompts excluded) ...", file=sys.stderr)
    problems = [er.read_problem(r["prompt"]) for r in train]
    answers = [Fraction(r["answer"].replace(",", "")) for r in train]
    marks = [labels(p, a, r["solution"]) for p, a, r in zip(problems, answers, train)]
    print(f"{sum(m.any() for m in marks)} of {len(train)} problems have a gold candidate", file=sys.stderr)
    order = list(range(len(train)))
    random.Random(0).shuffle(order)
    cv: dict[float, list[tuple[bool, float]]] = {}
    for l2 in args.l2:
        results: list[tuple[bool, float]] = []
        for fold in range(args.folds):
            test = set(order[fold::args.folds])
            tr = [i for i in order if i not in test]
            x, starts, y = design([problems[i] for i in tr], [marks[i] for i in tr], random.Random(fold))
            w = fit(x, starts, y, l2)
            results += evaluate([problems[i] for i in sorted(test)], [answers[i] for i in sorted(test)], w)
        cv[l2] = results
        print(f"l2={l2:g}: {args.folds}-fold {summary(results)}")
    best = max(cv, key=lambda l2: sum(r for r, _ in cv[l2]))
    x, starts, y = design(problems, marks, random.Random(0))
    w = fit(x, starts, y, best)
    np.savez_compressed(er.WEIGHTS_PATH, weights=w.astype(np.float32))
    right = sum(r for r, _ in cv[best])
    er.PROVENANCE_PATH.write_text(json.dumps({
        "data": "GSM8K train split, 300-problem sample (openai/grade-school-math, MIT licence): "
                "../shared/eval/gsm8k_train_sample.jsonl",
        "train_sha256": digest, "n_train": len(train), "excluded_files": [_shown(p) for p in args.exclude],
        "n_with_gold_candidate": int(sum(m.any() for m in marks)), "l2": best, "folds": args.folds,
        "cv_top1": round(right / len(train), 3), "cv_summary": summary(cv[best]),
        "labels": "value equals the answer and every stated number used appears in the <<...>> annotations",
        "fitted_by": "scripts/fit_expression_ranker.py",
    }, indent=2) + "\n")
    print(f"wrote {er.WEIGHTS_PATH.name} (l2={best:g}, 5-fold top-1 {right}/{len(train)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
