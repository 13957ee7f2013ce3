"""Where the right value of each word problem stands among the candidates, with no model at all.

For each word problem of the given files (a line a tool answers with no model, answer_directly, is a
bare question and left out), as covey serves it (covey.orchestrator.program_choices.offer_for over
covey.tools.candidates and the shipped expression ranker): whether the right value is among the
candidate expressions' values, its rank among the values offered (1 = the ranker's likeliest), the
ranker's top value and probability, and whether that top value would be answered with no model
(probability >= ranker_confidence) and wrong. Prints one line per problem and a summary per file;
`--json` writes them for a before/after comparison (`--compare OLD.json` prints both summaries).
Not a test: `python bench/probe_word_candidates.py [FILE.jsonl ...] [--json OUT] [--compare OLD.json]`.
"""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = [HERE / "data" / n for n in ("arith_dev.jsonl", "word_dev_own.jsonl", "gsm8k_heldout_short.jsonl")]


def close(a: Fraction, b: Fraction) -> bool:
    return abs(float(a) - float(b)) <= 1e-4 * max(1.0, abs(float(b)))


def probe(prompt: str, answer: Fraction, threshold: float) -> dict:
    from covey.orchestrator.program_choices import offer_for
    from covey.tools import expression_ranker as er
    from covey.tools.candidates import value_text

    problem = er.read_problem(prompt)
    in_candidates = any(close(c.value, answer) for c in problem.candidates)
    offer = offer_for(prompt, limit=10**6)
    rank = None
    if offer is not None:
        rank = next((k + 1 for k, v in enumerate(offer.values) if close(v, answer)), None)
    top = offer.values[0] if offer is not None else None
    p = offer.probabilities[0] if offer is not None else 0.0
    right = top is not None and close(top, answer)
    return {"prompt": prompt, "answer": value_text(answer), "n_quantities": len(problem.quantities),
            "n_candidates": len(problem.candidates), "in_candidates": in_candidates, "rank": rank,
            "top": value_text(top) if top is not None else None,
            "expression": offer.expressions[0] if offer is not None else None, "p": round(p, 3),
            "top1": right, "confident": p >= threshold, "confident_wrong": p >= threshold and not right}


def summarise(rows: list[dict]) -> dict:
    return {"n": len(rows), "in_candidates": sum(r["in_candidates"] for r in rows),
            "offered": sum(r["rank"] is not None for r in rows),
            "top3": sum(r["rank"] is not None and r["rank"] <= 3 for r in rows),
            "top1": sum(r["top1"] for r in rows), "confident": sum(r["confident"] for r in rows),
            "confident_wrong": sum(r["confident_wrong"] for r in rows)}


def line(name: str, s: dict) -> str:
    return (f"{name:28} n={s['n']:3}  in candidates {s['in_candidates']:3}  offered {s['offered']:3}  "
            f"top-3 {s['top3']:3}  top-1 {s['top1']:3}  confident {s['confident']:3}  confident+wrong "
            f"{s['confident_wrong']:3}")


def main() -> None:
    from covey.settings import OrchestratorSettings
    from covey.tools.questions import answer_directly

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", type=Path, nargs="*", default=FILES)
    ap.add_argument("--json", type=Path, help="write the rows and summaries here")
    ap.add_argument("--compare", type=Path, help="an earlier --json output to print beside this run")
    ap.add_argument("--quiet", action="store_true", help="summaries only")
    args = ap.parse_args()
    threshold = OrchestratorSettings().ranker_confidence
    out: dict[str, dict] = {}
    for path in args.files:
        rows = []
        for raw in path.read_text().splitlines():
            if not raw.strip():
                continue
            item = json.loads(raw)
            if answer_directly(item["prompt"]) is not None:
                continue
            rows.append(probe(item["prompt"], Fraction(str(item["answer"]).replace(",", "")), threshold))
        out[path.stem] = {"summary": summarise(rows), "rows": rows}
        if not args.quiet:
            print(f"== {path.stem}")
            for r in rows:
                mark = "OK " if r["top1"] else ("CW " if r["confident_wrong"] else "-- ")
                print(f"{mark} want {r['answer']:>8} rank {str(r['rank']):>5} top {str(r['top']):>9} p={r['p']:.2f} "
                      f"{'cand' if r['in_candidates'] else 'MISS'}  {r['expression']}  | {r['prompt'][:90]}")
    print(f"\nconfident = p >= ranker_confidence {threshold:g}")
    old = json.loads(args.compare.read_text()) if args.compare else {}
    for name, data in out.items():
        if name in old:
            print(line(f"{name} before", old[name]["summary"]))
            print(line(f"{name} after", data["summary"]))
        else:
            print(line(name, data["summary"]))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
