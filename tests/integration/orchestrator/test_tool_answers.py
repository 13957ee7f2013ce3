"""Tools in real answers: the embedded SmolLM2 node, the real router, the real sandbox and a real ledger."""

from __future__ import annotations

import re
from pathlib import Path

from covey.energy.ledger import Ledger
from covey.orchestrator.tool_steps import COULD_NOT
from covey.settings import Settings


async def _orchestrator(data: Path, **orchestrator):
    from covey.wiring import build

    settings = Settings(data_dir=data, orchestrator={"discover": False, "embedded": "always", **orchestrator})
    return await build(settings)


async def test_a_word_problem_the_ranker_is_sure_of_is_answered_with_no_model(tmp_path: Path) -> None:
    data = tmp_path / "covey"
    orch = await _orchestrator(data)
    try:
        word = await orch.ask("A book costs 8 dollars. How much do 6 books cost?")
    finally:
        await orch.close()
    assert word.route == "math" and word.attempts == () and word.model == "tool:expression_ranker"
    assert word.text == "The answer is 48 (computed as 8 * 6 = 48 from the numbers in the question)."
    assert word.energy.joules < 1.0 and any("no model was run" in n for n in word.notes)
    ledger = Ledger(data / "ledger.db")
    try:
        rows = ledger.query("SELECT tool, ok FROM tool_calls ORDER BY rowid")
    finally:
        ledger.close()
    assert [(r["tool"], r["ok"]) for r in rows] == [("expression_ranker", 1)]


async def test_a_bare_expression_and_a_word_problem_through_the_embedded_node(tmp_path: Path) -> None:
    data = tmp_path / "covey"
    orch = await _orchestrator(data, ranker_answers=False)  # the model's program, not the ranker's sure answer
    try:
        direct = await orch.ask("What is 17 times 23?")
        word = await orch.ask("A book costs 8 dollars. How much do 6 books cost?")
    finally:
        await orch.close()
    # The tool answers the bare expression: no model, near-zero joules (the orchestrator's own share).
    assert direct.text == "17 times 23 = 391." and direct.model == "tool:calculator" and direct.attempts == ()
    assert direct.energy.joules < 1.0 and any("no model was run" in n for n in direct.notes)
    # The word problem: SmolLM2 writes a program, the real sandbox runs it, the answer quotes its output.
    assert word.route == "math" and word.attempts and word.attempts[0].model_id.startswith("smollm2")
    python_calls = [c for c in word.tool_calls if c.tool == "python"]
    assert python_calls and all(c.seconds > 0 for c in python_calls)
    if any(c.ok for c in python_calls):
        printed = [c.outcome for c in python_calls if c.ok][-1].removeprefix("printed ")
        assert word.text == f"The answer is {printed}."
    else:
        assert word.text.startswith(COULD_NOT)
    assert re.match(r"^(The answer is -?[\d.]+\.|I could not get this right)", word.text), word.text
    ledger = Ledger(data / "ledger.db")
    try:
        rows = ledger.query("SELECT tool, ok, seconds, joules FROM tool_calls ORDER BY rowid")
    finally:
        ledger.close()
    assert [r["tool"] for r in rows][:1] == ["calculator"] and "python" in [r["tool"] for r in rows]
