"""`covey eval answers FILE.jsonl`: are the answers right, and what does a right one cost in joules?

Each line is one task, its kind told by its fields:

* ``{"prompt", "answer"}``: numeric. Right when the number the answer states (after "The answer is",
  "Answer:", the last "= N", else its last number) equals `answer` within `tolerance` (relative, and at
  least 1e-6 absolute).
* ``{"prompt", "tests", "entry_point"}``: code, pass@1. The answer's first Python block runs in the
  sandbox with `tests` (HumanEval style: a ``check(candidate)`` function is called with `entry_point`).
* ``{"prompt", "reference"}``: free text. Scored by token F1 against the reference (SQuAD's metric:
  lower-cased words without punctuation or articles); right when F1 >= 0.5. Crude but cheap and
  deterministic; the mean F1 is reported alongside.

Printed per kind and route: accuracy, joules per answer and per right answer, and how many shown
answers a check had proved wrong (the target is zero). The command itself is answer_eval_cli.py;
this module grades and never imports the CLI.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from covey.errors import BadRequest
from covey.types import Frozen

Kind = Literal["numeric", "code", "reference"]
F1_RIGHT = 0.5


class AnswerTask(Frozen):
    prompt: str
    kind: Kind
    answer: float | None = None
    tests: str = ""
    entry_point: str = ""
    reference: str = ""
    source: str = Field("", description="where the task comes from (the line's optional 'source' field)")


class Graded(Frozen):
    prompt: str
    kind: Kind
    route: str
    right: bool
    score: float = Field(description="1/0, or token F1 for reference tasks")
    joules: float
    shown: str
    model: str
    proven_wrong_shown: bool = False


class Group(Frozen):
    kind: str
    route: str
    answers: int
    right: int
    joules: float
    mean_score: float
    proven_wrong_shown: int

    @property
    def accuracy(self) -> float:
        return self.right / self.answers if self.answers else 0.0

    @property
    def joules_per_answer(self) -> float:
        return self.joules / self.answers if self.answers else 0.0

    @property
    def joules_per_right(self) -> float | None:
        return self.joules / self.right if self.right else None


def read_tasks(path: Path) -> list[AnswerTask]:
    """Tasks from JSONL; a bad line is a BadRequest naming it."""
    tasks = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror}", hint="give a JSONL file of tasks") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            tasks.append(_task(row))
        except (json.JSONDecodeError, ValueError, TypeError, KeyError) as exc:
            raise BadRequest(f"{path}:{n}: not a task ({exc})",
                             hint='each line: {"prompt", "answer"}, {"prompt", "tests", "entry_point"} or '
                                  '{"prompt", "reference"}') from None
    if not tasks:
        raise BadRequest(f"{path} holds no tasks", hint="one JSON object per line")
    return tasks


def _task(row: dict[str, Any]) -> AnswerTask:
    prompt = row["prompt"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("empty prompt")
    source = str(row.get("source", ""))
    if "answer" in row:
        return AnswerTask(prompt=prompt, kind="numeric", answer=float(str(row["answer"]).replace(",", "")),
                          source=source)
    if "tests" in row:
        return AnswerTask(prompt=prompt, kind="code", tests=row["tests"], entry_point=row.get("entry_point", ""),
                          source=source)
    if "reference" in row:
        return AnswerTask(prompt=prompt, kind="reference", reference=str(row["reference"]), source=source)
    raise ValueError("no 'answer', 'tests' or 'reference' field")


def numeric_right(text: str, expected: float, tolerance: float = 1e-6) -> bool:
    from covey.tools.questions import stated_number

    stated = stated_number(text)
    return stated is not None and abs(stated - expected) <= max(tolerance * abs(expected), 1e-6)


def token_f1(text: str, reference: str) -> float:
    def words(s: str) -> list[str]:
        s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
        return [w for w in s.split() if w not in {"a", "an", "the"}]

    got, want = words(text), words(reference)
    common = sum((Counter(got) & Counter(want)).values())
    if not got or not want or not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def code_right(text: str, task: AnswerTask, sandbox) -> bool:
    from covey.orchestrator.tool_steps import extract_code
    from covey.tools.testing import run_code_tests

    code = extract_code(text)
    if code is None:
        return False
    tests = task.tests
    if re.search(r"^def check\(", tests, re.M) and task.entry_point:
        tests = f"{tests}\ncheck({task.entry_point})"
    return run_code_tests(sandbox, code, tests, doctests=False).passed


def grade(task: AnswerTask, result, *, sandbox=None, tolerance: float = 1e-6) -> Graded:
    text = result.text
    if task.kind == "numeric":
        score = 1.0 if numeric_right(text, task.answer or 0.0, tolerance) else 0.0
        right = score == 1.0
    elif task.kind == "code":
        right = code_right(text, task, sandbox)
        score = float(right)
    else:
        score = token_f1(text, task.reference)
        right = score >= F1_RIGHT
    wrong_shown = any(a.text == text and a.confidence is not None and not a.confidence.check_ok
                      for a in result.attempts)
    return Graded(prompt=task.prompt, kind=task.kind, route=result.route, right=right, score=score,
                  joules=result.energy.joules, shown=text, model=result.model, proven_wrong_shown=wrong_shown)


def summarize(graded: Sequence[Graded]) -> list[Group]:
    keys = sorted({(g.kind, g.route) for g in graded}) + [("all", "all")]
    out = []
    for kind, route in keys:
        rows = [g for g in graded if kind == "all" or (g.kind == kind and g.route == route)]
        out.append(Group(kind=kind, route=route, answers=len(rows), right=sum(g.right for g in rows),
                         joules=sum(g.joules for g in rows), mean_score=sum(g.score for g in rows) / len(rows),
                         proven_wrong_shown=sum(g.proven_wrong_shown for g in rows)))
    return out


async def run_answer_eval(orch, tasks: Sequence[AnswerTask], *, tolerance: float = 1e-6,
                          on_answer=None) -> list[Graded]:
    """Ask each task (a fresh session each) and grade the answer."""
    import asyncio

    sandbox = None
    if any(t.kind == "code" for t in tasks):
        from covey.tools.sandbox import Sandbox

        sandbox = Sandbox()
    import uuid

    graded = []
    run_id = uuid.uuid4().hex[:8]  # sessions of earlier runs in the same data dir must not feed this one
    for i, task in enumerate(tasks):
        result = await orch.ask(task.prompt, session_id=f"eval-{run_id}-{i}")
        g = await asyncio.to_thread(grade, task, result, sandbox=sandbox, tolerance=tolerance)
        graded.append(g)
        if on_answer is not None:
            on_answer(i, g)
    return graded
