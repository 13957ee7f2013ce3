"""Frugality, measured: `covey eval frugality` on a mixed task set, `covey tune` on a held-out split,
and the cost of energy accounting (tokens/s with it on and off on the same node).

The task set (math, code, short knowledge, translation) is built at run time, each task naming its
source: grade-school maths from /work/shared/eval/gsm8k_train_sample.jsonl (openai/grade-school-math,
MIT) and the maths and coding questions of /work/shared/eval/vicuna_bench_questions.jsonl (lm-sys/FastChat,
Apache-2.0; the coding ones given a function name and tests written for this bench, the maths ones a
hand-checked answer), plus short-knowledge and translation tasks written for this bench (no reference
dataset for them is in that folder). covey's thresholds were never tuned on any of them. Models: the
two bundled offline ones (SmolLM2-135M and Gemma-3-270M) on the embedded node, as `covey ask` serves
them with no other node.

Then where the joules go (per route and policy: tokens in/out, escalations, tool answers; then per route,
policy and model from the ledger's attempts: prefill and completion joules, generations cut at the cap,
code repairs, joules of attempts that escalated), and
`covey tune`'s choice replayed on the same outcome table (all tasks, in sample) and made on the
even-numbered tasks and replayed on the odd ones (held out): the shipped cascade, tuned thresholds only,
and tuned ladders with thresholds, each with its quality and joules as shares of always-strongest's,
PGR, APGR and CPT. With --remeasure, `covey tune` is run for real (agents.toml in the data dir) and the
eval again with the tuned cascade and the same always-model baselines. Finally one NodeService serving SmolLM2 answers the same request in rounds with its
energy accounting on (the node's meter and hooks) and off (a meter that reads nothing), interleaved;
the on/off tokens/s ratio must stay >= 0.98.

With --math-costs ROUNDS, one math word problem's call is split (few-shot prompt and grammar, as the math path
sends it; without the grammar; the bare question) per model, interleaved.

Not a test: `python bench/bench_frugality.py [--remeasure] [--math-costs 3] [--out DIR]` (about ten minutes on two busy
cores, twice that with --remeasure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EVAL_DIR = Path(os.environ.get("COVEY_EVAL_DIR", "/work/shared/eval"))
TARGET = 0.98
GSM8K = "gsm8k_train_sample.jsonl (openai/grade-school-math train split, MIT)"
VICUNA = "vicuna_bench_questions.jsonl (lm-sys/FastChat, Apache-2.0)"
OWN = "written for this bench"

VICUNA_MATH = {68: 39, 70: 10}  # f(2) for 5x^3 - 2x + 3; the length from (2,-2) to (10,4)
VICUNA_CODE = {
    62: ("Name it lcs(a, b) and return the length of the longest common subsequence.", "lcs",
         "assert lcs('abcde', 'ace') == 3\nassert lcs('abc', 'def') == 0\nassert lcs('', 'x') == 0"),
    64: ("Use Python, name it fib(n), with fib(0) == 0 and fib(1) == 1.", "fib",
         "assert fib(0) == 0\nassert fib(1) == 1\nassert fib(10) == 55"),
    65: ("Use Python, name it binary_search(arr, target) and return the index, or -1 when absent.", "binary_search",
         "assert binary_search([1, 3, 5, 7], 5) == 2\nassert binary_search([1, 3, 5, 7], 4) == -1"),
}
OWN_CODE = [
    ("Write a Python function is_palindrome(s) that returns True when the string s reads the same backwards.",
     "is_palindrome", "assert is_palindrome('level')\nassert not is_palindrome('covey')"),
    ("Write a Python function celsius_to_fahrenheit(c) that converts degrees Celsius to Fahrenheit.",
     "celsius_to_fahrenheit", "assert celsius_to_fahrenheit(100) == 212\nassert celsius_to_fahrenheit(0) == 32"),
]
KNOWLEDGE = [("How many days are there in a leap year?", 366), ("In what year did the Second World War end?", 1945),
             ("How many sides does a hexagon have?", 6), ("How many legs does a spider have?", 8),
             ("At sea level, at how many degrees Celsius does water boil?", 100),
             ("How many planets are there in the Solar System?", 8)]
TRANSLATION = [("Translate into French: Good morning, my friend.", "Bonjour, mon ami."),
               ("Translate into Spanish: I like to read books.", "Me gusta leer libros."),
               ("Translate into German: Thank you very much.", "Vielen Dank."),
               ("Translate into French: The cat is sleeping.", "Le chat dort."),
               ("Translate into Spanish: The house is big.", "La casa es grande."),
               ("Translate into Italian: The water is cold.", "L'acqua è fredda.")]


def build_tasks(n_gsm8k: int) -> list[dict]:
    """The mixed task set, each task with its source."""
    if not (EVAL_DIR / "gsm8k_train_sample.jsonl").exists():
        sys.exit(f"error: {EVAL_DIR} lacks gsm8k_train_sample.jsonl; set COVEY_EVAL_DIR to the shared eval folder")
    gsm = [json.loads(line) for line in (EVAL_DIR / "gsm8k_train_sample.jsonl").read_text().splitlines() if line]
    vicuna = {q["question_id"]: q for q in map(json.loads, (EVAL_DIR / "vicuna_bench_questions.jsonl")
                                                .read_text().splitlines()) if q}
    tasks: list[dict] = []
    for i, row in enumerate(gsm[-n_gsm8k:]):  # the end of the sample: the part least used while developing
        tasks.append({"prompt": row["prompt"], "answer": row["answer"], "kind_label": "math",
                      "source": f"{GSM8K} line {len(gsm) - n_gsm8k + i + 1}"})
    for qid, answer in VICUNA_MATH.items():
        tasks.append({"prompt": vicuna[qid]["turns"][0], "answer": answer, "kind_label": "math",
                      "source": f"{VICUNA} question {qid}, answer checked by hand"})
    for qid, (extra, entry, tests) in VICUNA_CODE.items():
        tasks.append({"prompt": f"{vicuna[qid]['turns'][0]} {extra}", "tests": tests, "entry_point": entry,
                      "kind_label": "code", "source": f"{VICUNA} question {qid}, function name and tests {OWN}"})
    for prompt, entry, tests in OWN_CODE:
        tasks.append({"prompt": prompt, "tests": tests, "entry_point": entry, "kind_label": "code", "source": OWN})
    for prompt, answer in KNOWLEDGE:
        tasks.append({"prompt": prompt, "answer": answer, "kind_label": "knowledge", "source": OWN})
    for prompt, ref in TRANSLATION:
        tasks.append({"prompt": prompt, "reference": ref, "kind_label": "translation", "source": OWN})
    return tasks


def run_eval(tasks_file: Path, data_dir: Path, max_tokens: int, plot: Path, models: list[str] | None = None) -> dict:
    cmd = [sys.executable, "-m", "covey", "eval", "frugality", str(tasks_file), "--no-discover", "--json",
           "--max-tokens", str(max_tokens), "--data-dir", str(data_dir), "--plot", str(plot), "--limit", "100"]
    for m in models or ():
        cmd += ["--model", m]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COVEY_ORCHESTRATOR__DISCOVER": "false"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"covey eval frugality failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def print_table(rep: dict) -> None:
    print(f"\n{rep['tasks']} tasks; weak {rep['weak']}, strong {rep['strong']}")
    print(f"{'policy':38s} {'quality':>7s} {'right':>6s} {'J/answer':>9s} {'J range':>15s} {'strong':>6s} "
          f"{'PGR':>6s} {'pareto':>6s}")
    for p in rep["policies"]:
        pgr = "-" if p["pgr"] is None else f"{p['pgr']:.2f}"
        print(f"{p['policy']:38s} {p['quality']:7.3f} {p['right']:6.1f} {p['joules']:9.2f} "
              f"{p['joules_low']:6.2f}-{p['joules_high']:<8.2f} {100 * p['strong_calls']:5.0f}% {pgr:>6s} "
              f"{'yes' if p['pareto'] else '':>6s}")
    for m in (rep["cascade"], rep["random_router"]):
        def f(x, unit=""):
            return "-" if x is None else f"{x:.3f}{unit}" if not unit else f"{x:.1f}{unit}"
        print(f"{m['name']:16s} APGR calls {f(m['apgr_calls'])}, joules {f(m['apgr_joules'])}; "
              f"CPT(50%) {f(m['cpt50_calls'], '%')} calls / {f(m['cpt50_joules'], '%')} J; "
              f"CPT(80%) {f(m['cpt80_calls'], '%')} calls / {f(m['cpt80_joules'], '%')} J")
    print(f"covey: {rep['quality_share']:.0%} of always-strongest's quality at {rep['joules_share']:.0%} of its joules "
          f"(targets: >= 95% at <= 50%); PGR {rep['covey_pgr']}")
    s = rep["savings"]
    print("savings at >= 95% of always-strongest's quality: " + (
        f"{s['point']}: {s['joules']:.2f} J/answer, {s['joules_saved']:.2f} J ({s['share_saved']:.0%}) saved"
        if s else "none (no cascade point reaches it)"))
    print(f"replay at the shipped thresholds agrees with the measured cascade on {rep['replay_agreement']:.0%} of tasks")


def figures(tasks, models, thresholds, ladders, name: str):
    """A replayed cascade's point and its RouteLLM figures (APGR, CPT) on `tasks`."""
    from covey.orchestrator.frugality_metrics import (
        always, cascade_curve, measured, pgr, point, replay, router_metrics,
    )

    weak, strong = models[0], models[-1]
    w, s = measured(tasks, always(weak), strong), measured(tasks, always(strong), strong)
    p = point(name, "replayed", replay(tasks, models, thresholds, ladders=ladders), strong)
    curve = cascade_curve(tasks, models, strong, s.joules, thresholds, ladders=ladders)
    return p, router_metrics(name, curve, w.quality, s.quality), pgr(p.quality, w.quality, s.quality), s


def print_figures(rows: list) -> None:
    """One line per replayed cascade: quality, J/answer, shares of always-strongest, PGR, APGR, CPT."""
    def f(x, fmt=".3f"):
        return "-" if x is None else format(x, fmt)

    print(f"  {'cascade':36s} {'quality':>7s} {'J/ans':>6s} {'q share':>7s} {'J share':>7s} {'PGR':>6s} "
          f"{'APGR c/J':>11s} {'CPT50 c/J %':>13s} {'CPT80 c/J %':>13s}")
    for p, m, g, s in rows:
        print(f"  {p.policy:36s} {p.quality:7.3f} {p.joules:6.2f} {p.quality / s.quality if s.quality else 1:7.0%} "
              f"{p.joules / s.joules if s.joules else 0:7.0%} {f(g, '.2f'):>6s} "
              f"{f(m.apgr_calls, '.2f'):>5s}/{f(m.apgr_joules, '.2f'):<5s} "
              f"{f(m.cpt50_calls, '.0f'):>6s}/{f(m.cpt50_joules, '.0f'):<6s} {f(m.cpt80_calls, '.0f'):>6s}/"
              f"{f(m.cpt80_joules, '.0f'):<6s}")


def tune_replays(data_dir: Path, target: str, run_id: str) -> None:
    """`covey tune`'s choice replayed on the same outcome table (all tasks), then chosen on the even tasks
    and replayed on the odd ones (held out): thresholds only, and ladders with thresholds."""
    from covey.agents import default_roster
    from covey.orchestrator.frugality_metrics import always, measured, models_of, pareto, point, replay, tasks_of
    from covey.orchestrator.outcomes import FILENAME, OutcomeStore
    from covey.orchestrator.tune import choose, current_ladders, parse_target

    store = OutcomeStore(data_dir / FILENAME)
    rows = store.load(run_id)
    store.close()
    roster = default_roster()  # the shipped agents: the ladders and thresholds the eval ran with
    current = {a.name: (a.accept.min_mean_logprob, a.accept.min_token_logprob) for a in roster}
    whole = {a.name: a.ladder for a in roster}
    models = models_of(rows)
    strong = models[-1]
    for label, fit, held in (("all tasks (in sample)", rows, rows),
                             ("the even tasks, replayed on the held-out odd ones",
                              [r for r in rows if r.task % 2 == 0], [r for r in rows if r.task % 2 == 1])):
        fit_tasks = tasks_of(fit)
        q_fit = measured(fit_tasks, always(strong), strong).quality
        tasks = tasks_of(held)
        in_use = current_ladders(held, whole)
        # "same": the quality the cascade in use reaches on the fit tasks (as good, for fewer joules)
        q_same = point("in use", "replayed", replay(fit_tasks, models, current, ladders=current_ladders(fit, whole)),
                       strong).quality
        print(f"\ncovey tune, chosen on {label} ({len(fit_tasks)} -> {len(tasks)} tasks); targets: {target} of "
              f"always-strongest's quality ({parse_target(target, q_fit):.3f}), and 'same' (the cascade in use's, "
              f"{q_same:.3f}):")
        lines = [figures(tasks, models, current, in_use, "before (shipped ladders, thresholds)")]
        for goal, q_goal in ((target, parse_target(target, q_fit, q_same)), ("same", q_same)):
            for keep, what in ((True, "thresholds"), (False, "ladders + thresholds")):
                name = f"tuned {what}, {goal}"
                try:
                    chosen = choose(fit, current, target_quality=q_goal, ladders=whole, tune_ladders=not keep)
                except Exception as exc:
                    print(f"  {name}: {exc}")
                    continue
                th = {**current, **{a: c.thresholds for a, c in chosen.items()}}
                lad = {**in_use, **{a: c.ladder for a, c in chosen.items()}}
                for a, c in sorted(chosen.items()):
                    m0, t0 = current.get(a, (-1.0, -9.0))
                    if c.thresholds != (m0, t0) or c.ladder != in_use.get(a):
                        print(f"  {name}: {a}: ladder {' > '.join(in_use.get(a, ()))} -> {' > '.join(c.ladder)}; "
                              f"min_mean_logprob {m0:g} -> {c.thresholds[0]:g}, min_token_logprob {t0:g} -> "
                              f"{c.thresholds[1]:g}")
                lines.append(figures(tasks, models, th, lad, name))
        print_figures(lines)
        base = [measured(tasks, always(m), strong) for m in models]
        front = pareto(base + [p for p, *_ in lines])
        for p in [*base, *(p for p, *_ in lines)]:
            print(f"  {p.policy:36s} quality {p.quality:.3f}  {p.joules:.2f} J/answer  strong on {p.strong_calls:.0%}"
                  f"{'  (Pareto front)' if p.policy in front else ''}")


def joules_by_route(data_dir: Path, run_id: str) -> None:
    """Where the joules go: per route and policy, tokens in/out, escalations, tool answers."""
    from covey.orchestrator.frugality import ALWAYS
    from covey.orchestrator.outcomes import FILENAME, OutcomeStore

    store = OutcomeStore(data_dir / FILENAME)
    rows = store.load(run_id)
    store.close()
    groups: dict[tuple[str, str], list] = {}
    for r in rows:
        groups.setdefault((r.route, r.policy.removeprefix(ALWAYS)), []).append(r)
    print(f"\n{'route':10s} {'policy':28s} {'n':>3s} {'quality':>7s} {'J/ans':>6s} {'tok in':>6s} {'tok out':>7s} "
          f"{'escalated':>9s} {'tool calls':>10s}")
    for (route, policy), rs in sorted(groups.items()):
        n = len(rs)
        print(f"{route:10s} {policy:28s} {n:3d} {sum(r.score for r in rs) / n:7.3f} {sum(r.joules for r in rs) / n:6.2f} "
              f"{sum(r.tokens_in for r in rs) / n:6.0f} {sum(r.tokens_out for r in rs) / n:7.0f} "
              f"{sum(len(r.models_called) > 1 for r in rs):9d} {sum(r.direct for r in rs):10d}")


def where_joules_go(data_dir: Path, run_id: str, max_tokens: int) -> None:
    """Per route, policy and model, from the ledger's attempts: calls, prompt and completion tokens, calls cut
    at the token cap, code repairs (a second sandbox run), joules of attempts that escalated (paid for an
    answer that did not stand), and a least-squares split of each model's joules into prefill and completion."""
    import sqlite3

    import numpy as np

    db = sqlite3.connect(data_dir / "ledger.db")
    prefix = f"frugal-{run_id}-"
    rows = db.execute(
        "SELECT a.session, a.route, t.model, t.tokens_in, t.tokens_out, t.joules, t.outcome, "
        "(SELECT count(*) FROM tool_calls c WHERE c.answer_id = a.answer_id AND c.tool = 'run_code_tests') "
        "FROM answers a JOIN attempts t USING (answer_id) WHERE a.session LIKE ? ORDER BY a.ts, t.n",
        (prefix + "%",)).fetchall()
    db.close()
    if not rows:
        print(f"\nno ledger rows for run {run_id}: nothing to split")
        return
    per_token: dict[str, tuple[float, float]] = {}
    for model in sorted({r[2] for r in rows}):
        mine = [r for r in rows if r[2] == model]
        a = np.array([[r[3], r[4]] for r in mine], dtype=float)
        (j_in, j_out), *_ = np.linalg.lstsq(a, np.array([r[5] for r in mine]), rcond=None)
        per_token[model] = (float(j_in), float(j_out))
        print(f"\n{model}: {1000 * j_in:.1f} mJ per prompt token, {1000 * j_out:.1f} mJ per completion token "
              f"(least squares over its {len(mine)} attempts)")
    groups: dict[tuple[str, str, str], list] = {}
    for r in rows:
        policy = r[0].removeprefix(prefix).split("-", 1)[1].removeprefix("always:")
        groups.setdefault((r[1], policy[:12], r[2][:12]), []).append(r)
    print(f"\nwhere the joules go (ledger attempts; cap = {max_tokens} tokens per generation)")
    print(f"{'route':10s} {'policy':12s} {'model':12s} {'calls':>5s} {'J':>7s} {'prefill':>7s} {'complet':>7s} "
          f"{'tok in':>6s} {'tok out':>7s} {'at cap':>6s} {'repair':>6s} {'escal J':>7s}")
    for (route, policy, model), rs in sorted(groups.items()):
        j_in, j_out = per_token[rs[0][2]]
        joules = sum(r[5] for r in rs)
        at_cap = sum(r[4] >= max_tokens for r in rs)
        print(f"{route:10s} {policy:12s} {model:12s} {len(rs):5d} {joules:7.1f} {j_in * sum(r[3] for r in rs):7.1f} "
              f"{j_out * sum(r[4] for r in rs):7.1f} {sum(r[3] for r in rs) / len(rs):6.0f} "
              f"{sum(r[4] for r in rs) / len(rs):7.0f} {at_cap:6d} {sum(r[7] > 1 for r in rs):6d} "
              f"{sum(r[5] for r in rs if r[6] == 'escalated'):7.1f}")


def remeasure(tasks_file: Path, data_dir: Path, max_tokens: int, plot: Path, target: str, models: list[str]) -> None:
    """`covey tune` for real (agents.toml in the data dir), then the eval again with the tuned cascade and
    the same always-model baselines."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COVEY_ORCHESTRATOR__DISCOVER": "false"}
    done = subprocess.run([sys.executable, "-m", "covey", "tune", "--target-quality", target, "--data-dir",
                           str(data_dir)], env=env, capture_output=True, text=True)
    print(f"\n$ covey tune --target-quality {target} --data-dir {data_dir}  (exit {done.returncode})\n"
          f"{done.stdout}{done.stderr}")
    if done.returncode != 0:
        return
    agents = data_dir / "agents.toml"
    print(f"{agents}:\n{agents.read_text() if agents.exists() else '(not written)'}")
    t0 = time.perf_counter()
    rep = run_eval(tasks_file, data_dir, max_tokens, plot, models)
    print(f"tuned eval took {time.perf_counter() - t0:.0f} s")
    print_table(rep)


async def math_call_costs(tasks: list[dict], reps: int, threads: int, extra: list[str]) -> None:
    """Where one math word problem's joules go, per model on one NodeService: the program call as the math path
    sends it (few-shot prompt, grammar), the same without the grammar, and the bare question (no few-shot, no
    grammar), interleaved `reps` times; prompt and generation milliseconds and joules, medians. `extra`: more
    models (catalog ids or .gguf paths, e.g. another quantization of SmolLM2) measured the same way."""
    from covey.device_node.runner import build_node
    from covey.device_node.service import collect
    from covey.orchestrator.program_choices import choice_constraint, choice_messages, offer_for
    from covey.orchestrator.tool_steps import PROGRAM_START, program_constraint_for, program_messages
    from covey.settings import Settings
    from covey.types import GenerateRequest, Message, ModelId, RequestId, Sampling

    models = ["smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m", *extra]
    prompt = next(t["prompt"] for t in tasks if t["kind_label"] == "math")
    offer = offer_for(prompt, 12)
    full = (choice_messages(prompt), choice_constraint(offer)) if offer else (
        program_messages(prompt), program_constraint_for(prompt))
    cases = {"few-shot + grammar (as sent)": (*full, PROGRAM_START), "few-shot, no grammar": (full[0], None, PROGRAM_START),
             "bare question, no grammar": ([Message(role="user", content=prompt)], None, "")}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.load(data_dir=Path(tmp), node={"models": models, "self_benchmark": False,
                                                           "announce": False, "n_threads": threads})
        service = build_node(settings)
        await service.start()
        got: dict[tuple[str, str], list] = {}
        try:
            for m in (Path(m).stem if m.endswith(".gguf") else m for m in models):  # a path is served by its stem
                for r in range(reps + 1):  # the first round warms the model up and is not counted
                    for name, (msgs, constraint, start) in cases.items():
                        req = GenerateRequest(request_id=RequestId(f"m{r}"), model_id=ModelId(m), messages=tuple(msgs),
                                              sampling=Sampling(temperature=0.0, seed=0), max_tokens=24,
                                              constraint=constraint, continue_from=start)
                        _text, final = await collect(service.generate(req))
                        if r:
                            got.setdefault((m, name), []).append(final)
        finally:
            await service.close()
    print(f"\none math word problem's call, {reps} interleaved rounds, medians (max 24 tokens, {threads} thread(s)):")
    print(f"  {'model':12s} {'call':30s} {'tok in':>6s} {'tok out':>7s} {'prompt ms':>9s} {'gen ms':>7s} {'J':>6s}")
    for (m, name), finals in got.items():
        def med(f, finals=finals):
            return statistics.median(f(x) for x in finals)
        print(f"  {m[:12]:12s} {name:30s} {med(lambda x: x.prompt_tokens):6.0f} {med(lambda x: x.completion_tokens):7.0f} "
              f"{med(lambda x: x.timings.prompt_ms):9.0f} {med(lambda x: x.timings.generate_ms):7.0f} "
              f"{med(lambda x: x.energy.joules):6.2f}")


async def accounting_overhead(rounds: int, tokens: int, threads: int) -> None:
    from covey.device_node.runner import build_node
    from covey.device_node.service import collect
    from covey.settings import Settings
    from covey.types import Energy, GenerateRequest, Message, ModelId, RequestId, Sampling

    class Off:
        """A meter that reads nothing: accounting off."""

        def open(self, label: str = ""):
            return self

        def close(self) -> Energy:
            return Energy()

    model = "smollm2-135m-instruct-q4_1"
    with tempfile.TemporaryDirectory() as tmp:
        # One llama.cpp thread: on a shared, oversubscribed machine spinning threads collapse throughput.
        settings = Settings.load(data_dir=Path(tmp), node={"models": [model], "self_benchmark": False,
                                                           "announce": False, "n_threads": threads})
        service = build_node(settings)  # measure=True: the device's sensor or estimate, battery, power cap
        await service.start()
        try:
            on_meter, on_energy = service.meter, service.energy
            req = GenerateRequest(request_id=RequestId("bench"), model_id=ModelId(model),
                                  messages=(Message(role="user", content="Write a short paragraph about rivers."),),
                                  sampling=Sampling(temperature=0.0, seed=0), max_tokens=tokens)
            await collect(service.generate(req))  # warm-up
            rates: dict[str, list[float]] = {"on": [], "off": []}
            joules = 0.0
            for r in range(rounds):
                for mode in (("on", "off") if r % 2 == 0 else ("off", "on")):
                    service.meter, service.energy = (on_meter, on_energy) if mode == "on" else (Off(), None)
                    t0 = time.perf_counter()
                    _text, final = await collect(service.generate(req))
                    rates[mode].append(final.completion_tokens / (time.perf_counter() - t0))
                    if mode == "on":
                        joules += final.energy.joules
                print(f"  round {r + 1}: on {rates['on'][-1]:.1f} tok/s, off {rates['off'][-1]:.1f} tok/s", flush=True)
            service.meter, service.energy = on_meter, on_energy
        finally:
            await service.close()
    paired = statistics.median(a / b for a, b in zip(rates["on"], rates["off"]))
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    print(f"\naccounting overhead, {model} on one NodeService, {rounds} rounds x {tokens} tokens, interleaved:")
    print(f"  on  {on:7.1f} tok/s   off {off:7.1f} tok/s   on/off paired median {paired:.3f} "
          f"(target >= {TARGET}: {'ok' if paired >= TARGET else 'BELOW TARGET'}); "
          f"{joules / rounds:.2f} J per answer with it on ({on_meter.__class__.__name__})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gsm8k", type=int, default=6, help="grade-school maths tasks")
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads of the overhead node")
    ap.add_argument("--target", default="95%", help="covey tune's --target-quality")
    ap.add_argument("--remeasure-target", default="95%",
                    help="the --target-quality of the real `covey tune` before the re-measure ('same': the quality "
                         "of the cascade in use, replayed)")
    ap.add_argument("--out", type=Path, default=None, help="keep the data dir, tasks and plot here")
    ap.add_argument("--skip-eval", action="store_true", help="only the accounting overhead")
    ap.add_argument("--math-costs", type=int, default=0, metavar="ROUNDS",
                    help="also split one math word problem's call (few-shot prompt, grammar) into its parts")
    ap.add_argument("--math-model", action="append", default=[], metavar="MODEL",
                    help="another model for --math-costs (a catalog id or a .gguf path); repeatable")
    ap.add_argument("--remeasure", action="store_true",
                    help="after the replays, run `covey tune` for real and the eval again with the tuned cascade")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        if not args.skip_eval:
            tasks = build_tasks(args.gsm8k)
            tasks_file = out / "frugality_tasks.jsonl"
            tasks_file.write_text("".join(json.dumps(t) + "\n" for t in tasks))
            kinds = {}
            for t in tasks:
                kinds[t["kind_label"]] = kinds.get(t["kind_label"], 0) + 1
            print(f"{len(tasks)} tasks ({', '.join(f'{n} {k}' for k, n in kinds.items())}); sources:")
            for src in dict.fromkeys(t["source"].split(" line ")[0].split(" question ")[0] for t in tasks):
                print(f"  {src}")
            t0 = time.perf_counter()
            rep = run_eval(tasks_file, out / "data", args.max_tokens, out / "frugality.png")
            print(f"eval took {time.perf_counter() - t0:.0f} s (max_tokens {args.max_tokens})")
            print_table(rep)
            print(f"outcome table {rep['outcome_table']}; RouteLLM CSV {rep['routellm_csv']}; plot {out / 'frugality.png'}")
            joules_by_route(out / "data", rep["run_id"])
            where_joules_go(out / "data", rep["run_id"], args.max_tokens)
            tune_replays(out / "data", args.target, rep["run_id"])
            if args.remeasure:
                models = [p["policy"].removeprefix("always:") for p in rep["policies"]
                          if p["policy"].startswith("always:")]
                remeasure(tasks_file, out / "data", args.max_tokens, out / "frugality_tuned.png",
                          args.remeasure_target, models)
        if args.math_costs:
            asyncio.run(math_call_costs(build_tasks(args.gsm8k), args.math_costs, args.threads, args.math_model))
        asyncio.run(accounting_overhead(args.rounds, args.tokens, args.threads))
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
