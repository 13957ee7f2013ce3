"""Does the model's own tool call help on date and unit questions? The `call_tool` step on vs off, side by side.

The full answer graph (`wiring.build`: the embedded node with the bundled models, discovery off),
each question asked of the librarian (its tools: dates, weekdays, durations, units) with one model
pinned, so no rung escalates and the two settings differ only in the step. The two settings alternate
per question, so load on the machine falls on both alike. A question counts as right when the
answer matches its ``want`` pattern (case-insensitive); the joules are the answer's whole energy
(both generations, the tool run, routing). Prints each answer, then accuracy, joules and seconds
per question for each setting, and the ratios of on to off.
Not a test: `python bench/bench_tool_calls.py [bench/data/tool_questions.jsonl] [--models ...] [--limit N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
from collections import Counter
from pathlib import Path

from covey.settings import Settings
from covey.tools.questions import answer_directly

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"
DEFAULT_FILE = Path(__file__).parent / "data" / "tool_questions.jsonl"


def questions(path: Path, limit: int) -> list[tuple[str, re.Pattern[str]]]:
    """(prompt, wanted pattern) for questions no tool answers alone (those never reach a model)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["prompt"], re.compile(r["want"], re.I)) for r in rows if answer_directly(r["prompt"]) is None][:limit]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--models", default=f"{SMOL},{GEMMA}")
    ap.add_argument("--limit", type=int, default=50)
    args = ap.parse_args()
    from covey.wiring import build

    qs = questions(args.file, args.limit)
    models = args.models.split(",")
    right: Counter = Counter()
    joules: Counter = Counter()
    seconds: Counter = Counter()
    calls_ok: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        orch = await build(Settings(data_dir=Path(tmp), orchestrator={"discover": False, "embedded": "always"}))
        base = orch.deps.settings
        try:
            for model in models:
                for i, (prompt, want) in enumerate(qs):
                    for on in (i % 2 == 0, i % 2 != 0):  # alternate which setting goes first
                        orch.deps.settings = base.model_copy(update={"model_tool_calls": on})
                        t0 = time.perf_counter()
                        result = await orch.ask(prompt, agent="librarian", model=model)
                        key = (model, on)
                        seconds[key] += time.perf_counter() - t0
                        ok = bool(want.search(result.text))
                        right[key] += ok
                        joules[key] += result.energy.joules
                        calls_ok[key] += any(c.ok for c in result.tool_calls)
                        called = "; ".join(f"{c.tool}({c.arguments}) {'ok' if c.ok else 'failed'}"
                                           for c in result.tool_calls) or "no call"
                        print(f"{model[:12]} {'on ' if on else 'off'} {i + 1}/{len(qs)} "
                              f"{'right' if ok else 'wrong'} {result.energy.joules:6.1f} J [{called}] "
                              f"{prompt!r} -> {' '.join(result.text.split())[:140]!r}", flush=True)
        finally:
            await orch.close()
    n = max(len(qs), 1)
    print(f"\n{len(qs)} questions from {args.file.name}, agent librarian, one model pinned per row")
    print(f"{'model':<28} {'step':>4} {'right':>5} {'acc':>5} {'calls ok':>8} {'J/question':>10} {'s/question':>10}")
    for model in models:
        for on in (False, True):
            key = (model, on)
            print(f"{model:<28} {'on' if on else 'off':>4} {right[key]:>5} {right[key] / n:>5.2f} {calls_ok[key]:>8} "
                  f"{joules[key] / n:>10.1f} {seconds[key] / n:>10.1f}")
        off, on_ = (model, False), (model, True)
        acc_ratio = right[on_] / right[off] if right[off] else float("inf") if right[on_] else float("nan")
        print(f"{'':<28} on/off: accuracy x{acc_ratio:.2f}, joules x{joules[on_] / max(joules[off], 1e-9):.2f}, "
              f"time x{seconds[on_] / max(seconds[off], 1e-9):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
