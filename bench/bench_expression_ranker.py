"""The expression ranker's top-1 per source with no model at all: main's shipped ranker beside this one.

Sources (none fitted on, except the first, which is reported by cross-validation in the fit script):
MAWPS fold 1 (data/word_problems/mawps_fold1.tsv, a cross-validation fold the shipped weights were not
fitted on), SVAMP (data/word_problems/svamp.tsv, never fitted on), the GSM8K-simple files in
bench/data, and arith_dev's word problems (written by covey: reported separately, never tuned on). A
bare question a tool answers with no ranker (answer_directly) is left out of every source.

For each source and ranker: top-1 (the likeliest value is the answer), top-3, and at each probability
threshold the precision (right among those at or above it) and coverage (share at or above it). The
"main" ranker is main's candidates.py, expression_ranker.py and weights, read with `git show` (so it
needs a git checkout with a `main` branch; pass --main-ref to compare with another).
Not a test: `python bench/bench_expression_ranker.py [--main-ref main] [--thresholds 0.5 0.8 0.9 0.95]`.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import types
from fractions import Fraction
from pathlib import Path

import numpy as np

from covey.tools import expression_ranker as er
from covey.tools.questions import answer_directly
from covey.tools.word_problem_data import read_tsv

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "word_problems"
BENCH = ROOT / "bench" / "data"


def sources() -> dict[str, list[tuple[str, Fraction]]]:
    out: dict[str, list[tuple[str, Fraction]]] = {}
    for name in ("mawps_fold1", "svamp"):
        out[name] = [(p.prompt, p.answer) for p in read_tsv(DATA / f"{name}.tsv")]
    # MAWPS repeats templates across folds with other numbers (and now and then the same problem): fold 1's
    # problems whose template is in no training fold are reported on their own too
    seen = {template(p.prompt) for k in (0, 2) for p in read_tsv(DATA / f"mawps_fold{k}.tsv")}
    out["mawps_fold1 new templates"] = [(q, a) for q, a in out["mawps_fold1"] if template(q) not in seen]
    for name in ("gsm8k_dev_simple", "gsm8k_heldout_short", "arith_dev"):
        rows = [json.loads(line) for line in (BENCH / f"{name}.jsonl").read_text().splitlines() if line.strip()]
        out[name + (" (covey's)" if name == "arith_dev" else "")] = [
            (r["prompt"], Fraction(str(r["answer"]).replace(",", ""))) for r in rows
            if answer_directly(r["prompt"]) is None]
    return out


def template(prompt: str) -> str:
    return re.sub(r"\d[\d.,]*", "N", prompt)


def main_ranker(ref: str):
    """main's ranker modules (candidates, reading, expression_ranker), loaded from `git show` so its features
    and weights are the ones it ships."""
    def show(path: str) -> bytes:
        return subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{path}"], check=True, capture_output=True).stdout

    cand = types.ModuleType("covey_main_candidates")
    sys.modules["covey_main_candidates"] = cand
    exec(compile(show("src/covey/tools/candidates.py"), "main:candidates.py", "exec"), cand.__dict__)  # noqa: S102
    reading = types.ModuleType("covey_main_reading")
    sys.modules["covey_main_reading"] = reading
    exec(compile(show("src/covey/tools/reading.py").decode().replace(  # noqa: S102
        "from covey.tools.candidates import", "from covey_main_candidates import"), "main:reading.py", "exec"),
        reading.__dict__)
    source = show("src/covey/tools/expression_ranker.py").decode().replace(
        "from covey.tools.candidates import", "from covey_main_candidates import").replace(
        "from covey.tools.reading import", "from covey_main_reading import")
    ranker = types.ModuleType("covey_main_ranker")
    sys.modules["covey_main_ranker"] = ranker
    ranker.__file__ = str(ROOT / "src" / "covey" / "tools" / "expression_ranker.py")  # its weights are passed in
    exec(compile(source, "main:expression_ranker.py", "exec"), ranker.__dict__)  # noqa: S102
    with np.load(io.BytesIO(show("src/covey/data/expression_ranker.npz"))) as data:
        weights = np.asarray(data["weights"], dtype=np.float64)
    return ranker, weights


def close(a: Fraction, b: Fraction) -> bool:
    return abs(float(a) - float(b)) <= 1e-4 * max(1.0, abs(float(b)))


def judge(ranker, weights, items: list[tuple[str, Fraction]]) -> list[tuple[bool, bool, float]]:
    out = []
    for prompt, answer in items:
        ranked = ranker.rank_values(ranker.read_problem(prompt), weights, top=3)
        top1 = bool(ranked) and close(ranked[0].value, answer)
        top3 = any(close(r.value, answer) for r in ranked)
        out.append((top1, top3, ranked[0].probability if ranked else 0.0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--main-ref", default="main")
    ap.add_argument("--thresholds", type=float, nargs="*", default=[0.5, 0.8, 0.9, 0.95])
    ap.add_argument("--json", type=Path, help="also write the table here")
    args = ap.parse_args()
    rankers = {"main": main_ranker(args.main_ref), "this": (er, er.shipped_weights())}
    table = []
    head = f"{'source':28} {'ranker':6} {'n':>4} {'top-1':>6} {'top-3':>6}" + "".join(
        f"  p>={t:<5g} prec/cov" for t in args.thresholds)
    print(head)
    for source, items in sources().items():
        for name, (ranker, weights) in rankers.items():
            results = judge(ranker, weights, items)
            n = len(results)
            row = {"source": source, "ranker": name, "n": n, "top1": sum(r[0] for r in results) / n,
                   "top3": sum(r[1] for r in results) / n, "thresholds": {}}
            cells = []
            for t in args.thresholds:
                sure = [r[0] for r in results if r[2] >= t]
                precision = sum(sure) / len(sure) if sure else None
                row["thresholds"][t] = {"answered": len(sure), "right": sum(sure), "precision": precision,
                                        "coverage": len(sure) / n}
                cells.append(f"  {sum(sure):>3}/{len(sure):<3} {'-' if precision is None else f'{precision:.2f}':>4}/"
                             f"{len(sure) / n:.2f}")
            table.append(row)
            print(f"{source:28} {name:6} {n:4} {row['top1']:6.2f} {row['top3']:6.2f}" + "".join(cells))
    shipped = served(sources())
    print(f"\nanswered with no model as covey serves them (program_choices.offer_for, ranker_confidence "
          f"{shipped['threshold']:g}):")
    for source, (right, answered, n) in shipped["sources"].items():
        precision = f"{right / answered:.2f}" if answered else "-"
        print(f"{source:28} {right:>3}/{answered:<3} right  precision {precision:>4}  coverage {answered / n:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"ranker": table, "served": shipped}, indent=1))


def served(items_by_source: dict[str, list[tuple[str, Fraction]]]) -> dict:
    """Precision and coverage of the answers the orchestrator gives with no model (its own offer and threshold)."""
    from covey.orchestrator.program_choices import confident, offer_for
    from covey.settings import OrchestratorSettings

    threshold = OrchestratorSettings().ranker_confidence
    out: dict[str, tuple[int, int, int]] = {}
    for source, items in items_by_source.items():
        right = answered = 0
        for prompt, answer in items:
            offer = offer_for(prompt)
            if confident(offer, threshold):
                assert offer is not None
                answered += 1
                right += close(offer.values[0], answer)
        out[source] = (right, answered, len(items))
    return {"threshold": threshold, "sources": out}


if __name__ == "__main__":
    main()
