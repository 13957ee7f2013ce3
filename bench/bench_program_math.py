"""Which program-aided set-up solves word problems? Configurations side by side on the same problems.

Real models through a real NodeService, programs run in the real sandbox. For each problem (lines
{"prompt", "answer"} of the given files) and each configuration (model x grammar on/off x votes), the
program step's own prompt (`program_messages`, begun with the python fence) is sent, the printed value
voted on, and compared with the answer. Prints accuracy and seconds per configuration, and each
configuration's accuracy and time as ratios to the first.
Not a test: `python bench/bench_program_math.py FILE.jsonl [--limit N] [--votes 1,3] [--models ...]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import tempfile
import time
from collections import Counter
from pathlib import Path

from covey.device_node.runner import build_node
from covey.device_node.service import collect
from covey.orchestrator.answer_eval import numeric_right
from covey.orchestrator.tool_steps import (
    PROGRAM_CONSTRAINT, PROGRAM_START, _NUMBER, extract_code, format_number, program_constraint_for,
    _majority, program_messages, uses_every_number,
)
from covey.settings import Settings
from covey.tools.questions import answer_directly
from covey.tools.sandbox import Sandbox, SandboxLimits
from covey.types import GenerateRequest, ModelId, RequestId, Sampling

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"
SHOW = False


def word_problems(paths: list[Path], limit: int) -> list[tuple[str, float, str]]:
    """(prompt, answer, file) for problems no tool answers alone (those never reach the program step)."""
    out = []
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if answer_directly(row["prompt"]) is None:
                    out.append((row["prompt"], float(row["answer"]), path.name))
    return out[:limit]


async def solve(service, box: Sandbox, model: str, prompt: str, grammar: str, votes: int
                ) -> tuple[str | None, str | None, int]:
    """(the greedy program's value, the voted value, its count), voting as the program step does: programs
    that use every number the problem states are preferred, and sampling stops once enough of them agree."""
    values: list[str] = []
    complete: list[str] = []
    first: str | None = None
    needed = max(1, math.ceil(0.6 * votes - 1e-9))
    for sample in range(votes):
        req = GenerateRequest(request_id=RequestId(f"b{sample}"), model_id=ModelId(model), max_tokens=160,
                              messages=tuple(program_messages(prompt)), continue_from=PROGRAM_START,
                              sampling=Sampling(temperature=0.0 if sample == 0 else 0.7, seed=sample),
                              constraint={"on": PROGRAM_CONSTRAINT, "question": program_constraint_for(prompt)}.get(grammar))
        text, _ = await collect(service.generate(req))
        code = extract_code(PROGRAM_START + text)
        if SHOW:
            print("   ", " | ".join((code or text).strip().splitlines()), flush=True)
        if code is None:
            continue
        result = await asyncio.to_thread(box.run, code)
        numbers = _NUMBER.findall(result.stdout) if result.ok else []
        if numbers:
            value = format_number(numbers[-1])
            values.append(value)
            first = value if sample == 0 else first
            if uses_every_number(code, prompt):
                complete.append(value)
        if votes > 1 and complete and _majority(complete)[1] >= needed:
            break
    if not values:
        return first, None, 0
    best, count = _majority(complete or values)
    return first, best, count


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--models", default=f"{SMOL},{GEMMA}")
    ap.add_argument("--grammar", default="off,on,question",
                    help="off, on (PROGRAM_GRAMMAR) and/or question (its numbers limited to the problem's)")
    ap.add_argument("--votes", default="1")
    ap.add_argument("--show", action="store_true", help="print each program")
    args = ap.parse_args()
    global SHOW
    SHOW = args.show
    problems = word_problems(args.files, args.limit)
    models = args.models.split(",")
    configs = [(m, g, int(v)) for m in models for g in args.grammar.split(",") for v in args.votes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(data_dir=Path(tmp), node={"models": models, "self_benchmark": False,
                                                           "announce": False, "port": 0, "n_ctx": 1024})
        service = build_node(settings, measure=False)
        await service.start()
        box = Sandbox(SandboxLimits(wall_seconds=5.0, cpu_seconds=3))
        right = Counter()
        seconds = Counter()
        per_file: Counter = Counter()
        try:
            for i, (prompt, answer, source) in enumerate(problems):
                for cfg in configs:
                    t0 = time.perf_counter()
                    greedy, value, count = await solve(service, box, cfg[0], prompt, cfg[1], cfg[2])
                    seconds[cfg] += time.perf_counter() - t0
                    ok = value is not None and numeric_right(f"The answer is {value}.", answer)
                    right[cfg] += ok
                    per_file[(cfg, source)] += ok
                    greedy_ok = greedy is not None and numeric_right(f"The answer is {greedy}.", answer)
                    right[(*cfg, "greedy")] += greedy_ok
                    per_file[((*cfg, "greedy"), source)] += greedy_ok
                    print(f"{i + 1}/{len(problems)} {cfg[0][:12]} grammar={cfg[1]} "
                          f"votes={cfg[2]}: {value} ({count}) want {format_number(str(answer))} "
                          f"{'right' if ok else 'wrong'}", flush=True)
        finally:
            await service.close()
    base = configs[0]
    print(f"\n{len(problems)} word problems from {', '.join(p.name for p in args.files)}")
    print(f"{'model':<28} {'grammar':>8} {'votes':>5} {'right':>6} {'acc':>5} {'s/problem':>9} "
          f"{'acc ratio':>9} {'time ratio':>10}")
    for cfg in configs:
        acc = right[cfg] / max(len(problems), 1)
        base_acc = right[base] / max(len(problems), 1)
        print(f"{cfg[0]:<28} {cfg[1]:>8} {cfg[2]:>5} {right[cfg]:>6} {acc:>5.2f} "
              f"{seconds[cfg] / max(len(problems), 1):>9.1f} "
              f"{(acc / base_acc if base_acc else float('nan')):>9.2f} {seconds[cfg] / seconds[base]:>10.2f}")
    for cfg in configs:
        for f in sorted({s for _, _, s in problems}):
            n = sum(1 for _, _, s in problems if s == f)
            print(f"  {cfg[0][:12]} grammar={cfg[1]} votes={cfg[2]} {f}: {per_file[(cfg, f)]}/{n} "
                  f"(its greedy first program alone: {per_file[((*cfg, 'greedy'), f)]}/{n})")


if __name__ == "__main__":
    asyncio.run(main())
