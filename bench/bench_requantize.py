"""SmolLM2-135M as shipped (Q4_1) against the copy covey serves (requantized once to Q8_0), side by side.

1. Speed: both files loaded with llama.cpp at one thread, in interleaved rounds; CPU milliseconds per
   prompt token (prefill of a covey-sized prompt) and per generated token, the best round of each.
2. Sameness: greedy chat replies to the same prompts from both files (a 135M model's greedy path flips on
   any numeric change; the count says how often, the replies are printed for reading).
3. Answers: `covey eval answers` on the mixed task set of bench/bench_frugality.py (GSM8K, Vicuna and
   covey-written maths, code, knowledge and translation; never tuned on) twice, each in its own data dir:
   one whose models dir holds the real Q8_0 copy, one whose Q8_0 slot holds the shipped Q4_1 bytes (so
   the catalog serves Q4_1 there). Quality, joules per answer and per right answer, side by side.

Not a test: `python bench/bench_requantize.py [--rounds 3] [--skip-eval]` (about ten minutes on two busy cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from covey.models.catalog import Catalog

HERE = Path(__file__).resolve().parent
MODEL = "smollm2-135m-instruct-q4_1"
PROMPTS = ["What is the capital of France?", "Write a haiku about rain.", "Translate 'good morning' into French.",
           "Write a Python function that reverses a string.", "Who wrote Romeo and Juliet?",
           "Give me three tips for sleeping better.", "Explain what a CPU does in one sentence.",
           "Write a limerick about a dog.", "What is photosynthesis?", "Name three primary colours."]


def files(models_dir: Path) -> tuple[Path, Path]:
    catalog = Catalog(models_dir=models_dir)
    spec, served = catalog.resolve(MODEL)
    found = catalog.shipped_path(spec)
    assert found is not None and served != found, "the catalog did not make a served copy"
    return found, served


def speed(paths: dict[str, Path], rounds: int) -> None:
    from llama_cpp import Llama

    llms = {k: Llama(str(p), n_ctx=1024, n_threads=1, n_threads_batch=1, verbose=False) for k, p in paths.items()}
    prompt = ("You are covey's knowledge agent. Answer in one or two plain sentences. " * 12
              + "\nQuestion: What is the capital of France and why is it famous?\nAnswer:")
    best: dict[str, list[float]] = {k: [1e9, 1e9] for k in llms}
    for _ in range(rounds):
        for name, llm in llms.items():
            tokens = llm.tokenize(prompt.encode())
            llm.reset()
            c0 = time.process_time()
            llm.eval(tokens)
            c1 = time.process_time()
            for i in range(48):
                llm.eval([tokens[5 + i % 20]])
            c2 = time.process_time()
            best[name][0] = min(best[name][0], (c1 - c0) / len(tokens) * 1000)
            best[name][1] = min(best[name][1], (c2 - c1) / 48 * 1000)
    print(f"\n1. CPU ms per token, one thread, best of {rounds} interleaved rounds ({len(tokens)}-token prompt)")
    print(f"{'file':10} {'prefill':>9} {'decode':>9}")
    for name, (p, d) in best.items():
        print(f"{name:10} {p:9.2f} {d:9.2f}")
    (sp, sd), (qp, qd) = best["Q4_1"], best["Q8_0"]
    print(f"Q8_0/Q4_1: prefill {qp / sp:.2f}, decode {qd / sd:.2f}")
    print("\n2. greedy replies (60 tokens)")
    same = 0
    for prompt_text in PROMPTS:
        replies = [llm.create_chat_completion([{"role": "user", "content": prompt_text}], max_tokens=60,
                                              temperature=0.0)["choices"][0]["message"]["content"]
                   for llm in llms.values()]
        same += replies[0] == replies[1]
        print(f"{'same' if replies[0] == replies[1] else 'differ'}: {prompt_text}")
        for name, reply in zip(llms, replies, strict=True):
            print(f"   {name}: {reply[:110]!r}")
    print(f"identical: {same} of {len(PROMPTS)}")


def answers(tasks_file: Path, data_dir: Path) -> dict:
    cmd = [sys.executable, "-m", "covey", "eval", "answers", str(tasks_file), "--no-discover", "--json",
           "--limit", "100", "--data-dir", str(data_dir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COVEY_ORCHESTRATOR__DISCOVER": "false"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"covey eval answers failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gsm8k", type=int, default=6)
    ap.add_argument("--skip-eval", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="covey-requant-") as tmp:
        root = Path(tmp)
        shipped, served = files(root / "q8" / "models")
        speed({"Q4_1": shipped, "Q8_0": served}, args.rounds)
        if args.skip_eval:
            return
        sys.path.insert(0, str(HERE))
        from bench_frugality import build_tasks

        tasks = build_tasks(args.gsm8k)
        tasks_file = root / "tasks.jsonl"
        tasks_file.write_text("".join(json.dumps(t) + "\n" for t in tasks))
        slot = root / "q4" / "models" / served.name
        slot.parent.mkdir(parents=True)
        shutil.copyfile(shipped, slot)  # the catalog serves whatever its Q8_0 slot holds
        reports = {name: answers(tasks_file, root / name) for name in ("q4", "q8")}
        print(f"\n3. covey eval answers on {len(tasks)} mixed tasks (SmolLM2 first rung as Q4_1, then as Q8_0)")
        print(f"{'kind':10} {'route':10} {'right Q4_1':>10} {'right Q8_0':>10} {'J/ans Q4_1':>10} {'J/ans Q8_0':>10}")
        rows = {(g["kind"], g["route"]): g for g in reports["q8"]["groups"]}
        for group in reports["q4"]["groups"]:
            other = rows.get((group["kind"], group["route"]))
            if other is None:
                continue
            print(f"{group['kind']:10} {group['route']:10} {group['right']:>5}/{group['answers']:<4} "
                  f"{other['right']:>5}/{other['answers']:<4} {group['joules_per_answer']:10.2f} "
                  f"{other['joules_per_answer']:10.2f}")
        a, b = reports["q4"]["groups"][-1], reports["q8"]["groups"][-1]
        print(f"all: J/answer Q8_0/Q4_1 {b['joules_per_answer'] / a['joules_per_answer']:.2f}; "
              f"right {a['right']} -> {b['right']}")


if __name__ == "__main__":
    main()
