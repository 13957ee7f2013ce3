"""The model's own tool call with the real bundled SmolLM2 on the embedded node: the JSON-schema constraint
makes its call parse, the registry runs it, and the answer quotes the result."""

from __future__ import annotations

import json
from pathlib import Path

from covey.energy.ledger import Ledger
from covey.settings import Settings

SMOL = "smollm2-135m-instruct-q4_1"


async def test_smollm2_makes_a_json_tool_call_for_a_date_question(tmp_path: Path) -> None:
    from covey.wiring import build

    data = tmp_path / "covey"
    orch = await build(Settings(data_dir=data, orchestrator={"discover": False, "embedded": "always"}))
    try:
        result = await orch.ask("What weekday was 14 July 1789?", agent="librarian", model=SMOL)
    finally:
        await orch.close()
    # The constrained reply parsed as JSON and named the cued tool with a date copied from the question.
    (call,) = result.tool_calls
    assert "not a valid call" not in call.outcome, call.outcome
    assert call.tool == "weekday" and call.arguments == {"date": "14 July 1789"} and call.ok
    assert call.outcome == "1789-07-14 is a Tuesday"
    assert result.text.startswith("1789-07-14 is a Tuesday.") and result.attempts[0].model_id == SMOL
    # Two generations on the rung (the call, then the answer): more prompt tokens than the answer alone.
    assert result.attempts[0].prompt_tokens > 100 and result.energy.joules > 0
    ledger = Ledger(data / "ledger.db")
    try:
        rows = ledger.query("SELECT tool, ok, arguments FROM tool_calls ORDER BY rowid")
    finally:
        ledger.close()
    assert [(r["tool"], r["ok"], json.loads(r["arguments"])) for r in rows] == [("weekday", 1, {"date": "14 July 1789"})]
