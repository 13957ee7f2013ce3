"""Translation answers before and after, side by side per policy, from runs of `covey eval frugality`.

Reads the newest run in each data dir's outcome table (DATA_DIR/frugality.db) and prints, per policy
(covey's cascade and each model alone): answers, mean token F1 against the reference (the score of
`covey eval answers` for reference tasks), right (F1 >= 0.5), answers in the wrong language (the
`translation` checker's language test: it reads as the source or a third language, or is the text
left untranslated), echoes of the request (the `nonempty` check's difflib test; shown, or withheld for
it), answers withheld
("I could not get this right"), and joules per answer and per right answer; then after/before ratios.
Not a test: run the two evaluations first, e.g.

    covey eval frugality bench/data/translate_dev.jsonl --no-discover --limit 40 --data-dir /tmp/before
    (change the code)
    covey eval frugality bench/data/translate_dev.jsonl --no-discover --limit 40 --data-dir /tmp/after
    python bench/bench_translate.py /tmp/before /tmp/after
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from covey.agents.checkers import echoes
from covey.agents.translation import language_check
from covey.orchestrator.frugality import Outcome
from covey.orchestrator.outcomes import FILENAME, OutcomeStore
from covey.orchestrator.tool_steps import COULD_NOT


def wrong_language(o: Outcome) -> bool:
    check = language_check(o.prompt, o.answer)
    return not check.ok and ("reads as" in check.reason or "left in" in check.reason)


def summary(rows: list[Outcome]) -> dict[str, dict[str, float]]:
    by: dict[str, list[Outcome]] = defaultdict(list)
    for o in rows:
        by[o.policy].append(o)
    out = {}
    for policy, group in by.items():
        shown = [o for o in group if not o.answer.startswith(COULD_NOT)]
        right = sum(o.right for o in group)
        joules = sum(o.joules + o.overhead_joules for o in group)
        out[policy] = {
            "n": len(group), "f1": sum(o.score for o in group) / len(group), "right": right,
            "wrong_lang": sum(wrong_language(o) for o in shown), "echo": sum(echoes(o.prompt, o.answer) for o in shown)
                    + sum("repeats the request" in o.answer for o in group if o not in shown),
            "withheld": len(group) - len(shown), "j": joules / len(group), "j_right": joules / right if right else 0.0,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dirs", nargs="+", type=Path, help="data dirs holding frugality.db (before, after, ...)")
    args = ap.parse_args()
    tables = []
    for d in args.data_dirs:
        store = OutcomeStore(d / FILENAME)
        try:
            tables.append((d.name, summary(store.load())))
        finally:
            store.close()
    print(f"{'run':10} {'policy':38} {'n':>3} {'F1':>5} {'right':>5} {'wrong lang':>10} {'echo':>4} "
          f"{'withheld':>8} {'J/ans':>6} {'J/right':>7}")
    for label, table in tables:
        for policy, s in sorted(table.items()):
            print(f"{label:10} {policy:38} {s['n']:>3.0f} {s['f1']:>5.3f} {s['right']:>5.0f} {s['wrong_lang']:>10.0f} "
                  f"{s['echo']:>4.0f} {s['withheld']:>8.0f} {s['j']:>6.2f} {s['j_right']:>7.2f}")
    if len(tables) >= 2:
        (b_label, before), (a_label, after) = tables[0], tables[-1]
        print(f"\nratios {a_label}/{b_label}")
        for policy in sorted(set(before) & set(after)):
            b, a = before[policy], after[policy]
            f1 = a["f1"] / b["f1"] if b["f1"] else float("inf")
            j = a["j"] / b["j"] if b["j"] else float("inf")
            print(f"  {policy:38} F1 x{f1:.2f}  J/answer x{j:.2f}")


if __name__ == "__main__":
    main()
