"""covey eval answers: task reading, grading per kind, and the summary per kind and route."""

from __future__ import annotations

import json

import pytest

from covey.errors import BadRequest
from covey.orchestrator.answer_eval import grade, numeric_right, read_tasks, run_answer_eval, summarize, token_f1
from covey.orchestrator.results import AnswerResult, Attempt, Confidence
from covey.types import Energy, EnergyComponent, EnergyMethod


def result(text: str, joules: float = 2.0, proven_wrong: bool = False) -> AnswerResult:
    conf = Confidence(mean_logprob=-0.1, min_logprob=-1.0, check_ok=not proven_wrong, passed=not proven_wrong)
    return AnswerResult(session_id="s", text=text, route="math", route_confidence=0.9, agent="m", node="n",
                        model="smol", attempts=(Attempt(node_id="i", node_name="n", address="a", model_id="smol",
                                                        outcome="answered", text=text, confidence=conf),),
                        energy=Energy.of([EnergyComponent(name="cpu", joules=joules, method=EnergyMethod.ESTIMATED)]))


def test_read_tasks_by_fields_and_bad_lines_are_clear(tmp_path) -> None:
    f = tmp_path / "t.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "2+2?", "answer": "4"}, {"prompt": "add", "tests": "assert add(1, 2) == 3", "entry_point": "add"},
        {"prompt": "capital of France?", "reference": "Paris"}]) + "\n")
    assert [t.kind for t in read_tasks(f)] == ["numeric", "code", "reference"]
    f.write_text('{"prompt": "x"}\n')
    with pytest.raises(BadRequest) as exc:
        read_tasks(f)
    assert "t.jsonl:1" in str(exc.value) and exc.value.hint


def test_numeric_and_reference_grading() -> None:
    assert numeric_right("The answer is 1,000.", 1000) and not numeric_right("The answer is 999.", 1000)
    assert numeric_right("3.5 hours = 210 minutes.", 210)
    assert token_f1("It is Paris.", "Paris") == pytest.approx(0.5) and token_f1("London", "Paris") == 0.0


async def test_run_and_summarize_counts_joules_per_right_answer_and_wrong_shown(tmp_path) -> None:
    class Scripted:
        def __init__(self):
            self.replies = iter([result("The answer is 4.", 1.0), result("The answer is 7.", 3.0, proven_wrong=True)])
            self.seen = []

        async def ask(self, prompt, session_id=None):
            self.seen.append((prompt, session_id))
            return next(self.replies)

    f = tmp_path / "t.jsonl"
    f.write_text('{"prompt": "2+2?", "answer": 4}\n{"prompt": "3+3?", "answer": 6}\n')
    orch = Scripted()
    graded = await run_answer_eval(orch, read_tasks(f))
    assert [g.right for g in graded] == [True, False] and orch.seen[0][1] != orch.seen[1][1]
    (math, overall) = summarize(graded)
    assert (math.kind, math.route, math.answers, math.right) == ("numeric", "math", 2, 1)
    assert overall.joules_per_answer == pytest.approx(2.0) and overall.joules_per_right == pytest.approx(4.0)
    assert overall.proven_wrong_shown == 1
    assert grade(read_tasks(f)[0], result("4")).right
