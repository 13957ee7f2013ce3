"""Word problems before and after the candidate grammar, side by side per source, through the whole graph.

Each file's lines ({"prompt", "answer"}) are answered end to end by an in-process orchestrator (the
embedded node, the bundled models, the real sandbox) twice: "before" with `program_candidates` off (the
free program the step wrote until now) and "after" with the defaults. Lines are split by source: a
file's bare questions (a tool answers them with no model) and its word problems. Prints per source and
configuration: answers, right, accuracy, joules per answer and per right answer, answers shown that a
check proved wrong, and the after/before ratios.
Not a test: `python bench/bench_word_problems.py [FILE.jsonl ...] [--limit N] [--only after]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from covey.orchestrator.answer_eval import Graded, read_tasks, run_answer_eval
from covey.tools.questions import answer_directly

HERE = Path(__file__).resolve().parent
FILES = [HERE / "data" / "arith_dev.jsonl", HERE / "data" / "gsm8k_heldout_short.jsonl"]
CONFIGS = {"before": {"program_candidates": False}, "after": {}}


def source_of(path: Path, prompt: str) -> str:
    return f"{path.stem}: {'bare' if answer_directly(prompt) is not None else 'word'}"


async def run(config: dict, tasks) -> tuple[list[Graded], float]:
    from covey.cli_run import load_settings
    from covey.wiring import build

    settings = load_settings(0, orchestrator={"discover": False, **config})
    orch = await build(settings)
    start = time.perf_counter()
    try:
        graded = await run_answer_eval(orch, tasks)
    finally:
        await orch.close()
    return graded, time.perf_counter() - start


def row(name: str, graded: list[Graded]) -> dict:
    n = len(graded)
    right = sum(g.right for g in graded)
    joules = sum(g.joules for g in graded)
    return {"config": name, "answers": n, "right": right, "accuracy": right / n if n else 0.0,
            "j_per_answer": joules / n if n else 0.0, "j_per_right": joules / right if right else None,
            "wrong_shown": sum(g.proven_wrong_shown for g in graded)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, default=FILES)
    ap.add_argument("--limit", type=int, default=60)
    ap.add_argument("--only", choices=list(CONFIGS), help="run one configuration")
    ap.add_argument("--json", type=Path, help="also write every graded answer here")
    args = ap.parse_args()
    tasks, sources = [], []
    for path in args.files:
        for task in read_tasks(path)[:args.limit]:
            tasks.append(task)
            sources.append(source_of(path, task.prompt))
    results: dict[str, list[Graded]] = {}
    for name, config in CONFIGS.items():
        if args.only and name != args.only:
            continue
        graded, seconds = asyncio.run(run(config, tasks))
        results[name] = graded
        print(f"{name}: {len(graded)} answers in {seconds:.0f} s", flush=True)
    print(f"\n{'source':36} {'config':7} {'answers':>7} {'right':>5} {'acc':>5} {'J/answer':>9} {'J/right':>8} "
          f"{'wrong shown':>11}")
    table = []
    for source in dict.fromkeys(sources):
        rows = []
        for name, graded in results.items():
            picked = [g for g, s in zip(graded, sources) if s == source]
            r = row(name, picked)
            rows.append(r)
            jr = f"{r['j_per_right']:.2f}" if r["j_per_right"] is not None else "-"
            print(f"{source:36} {name:7} {r['answers']:7} {r['right']:5} {r['accuracy']:5.2f} "
                  f"{r['j_per_answer']:9.2f} {jr:>8} {r['wrong_shown']:11}")
        if len(rows) == 2 and rows[0]["right"]:
            b, a = rows
            jr = (f"{a['j_per_right'] / b['j_per_right']:.2f}" if a["j_per_right"] and b["j_per_right"] else "-")
            print(f"{'':36} {'ratio':7} {'':7} {a['right'] / b['right']:5.2f} {'':5} "
                  f"{a['j_per_answer'] / b['j_per_answer'] if b['j_per_answer'] else 0:9.2f} {jr:>8}")
        table.append({"source": source, "rows": rows})
    if args.json:
        args.json.write_text(json.dumps({"table": table, "answers": {
            name: [{"source": s, **g.model_dump()} for g, s in zip(graded, sources)]
            for name, graded in results.items()}}, indent=1))


if __name__ == "__main__":
    main()
