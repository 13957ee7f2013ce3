"""Word problems the fitted expression ranker is sure of are answered by the tools with no model, and say
how; unsure ones go to the model; with a floor, implausible ones say "I could not get this right"."""

from __future__ import annotations

import json

from covey.energy.ledger import Ledger
from covey.models.catalog import Catalog
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.graph import Deps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.pool import NodePool
from covey.orchestrator.program_choices import confident, offer_for
from covey.orchestrator.recorder import to_record
from covey.orchestrator.results import AnswerResult, Token
from covey.orchestrator.tool_steps import COULD_NOT
from covey.settings import OrchestratorSettings, Settings
from covey.tools.sandbox import SandboxResult

from fakes import FakeSandbox, ScriptedNodeClient, ScriptedRouter, node_info, roster, spec

SMOL = "smollm2-135m-instruct-q4_1"
SARA = "Sara had 50 stickers. She gave 18 to her friend. How many stickers does she have left?"
TOM = "Tom has 3 boxes with 12 apples in each box. He eats 5 apples. How many apples are left?"


def ran(stdout: str) -> SandboxResult:
    return SandboxResult(ok=True, outcome="ok", stdout=stdout, exit_code=0, seconds=0.1)


async def make(client, *, route="math", **kw):
    kw.setdefault("program_votes", 1)
    settings = OrchestratorSettings(discover=False, embedded="never", **kw)
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    await pool.add_client(client)
    agents = roster(spec("mathematician", (SMOL,), routes=("math",), checker="number_consistent", max_tokens=64),
                    spec("chatter", (SMOL,), routes=("chat",), max_tokens=64))
    return Orchestrator(Deps(router=ScriptedRouter(route), pool=pool, catalog=Catalog(), settings=settings,
                             agents=agents, sandbox=FakeSandbox([ran("31\n")])))


async def answer(orch, prompt: str) -> tuple[AnswerResult, list[str]]:
    evs = [ev async for ev in orch.stream(prompt, session_id="s")]
    result = evs[-1]
    assert isinstance(result, AnswerResult)
    return result, [e.text for e in evs if isinstance(e, Token)]


def test_the_ranker_is_sure_of_one_problem_and_not_of_another() -> None:
    sure, unsure = offer_for(SARA), offer_for(TOM)
    assert confident(sure, 0.95) and sure is not None and sure.expressions[0] == "50 - 18"
    assert not confident(unsure, 0.95) and not confident(None, 0.0)


async def test_a_sure_word_problem_is_answered_with_no_model_and_says_how(tmp_path) -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 50 - 18\nprint(answer)\n```"])
    orch = await make(client)
    result, tokens = await answer(orch, SARA)
    assert client.seen == []  # no model was asked
    assert result.text == "The answer is 32 (computed as 50 - 18 = 32 from the numbers in the question)."
    assert tokens == [result.text] and result.model == "tool:expression_ranker" and result.node == "orchestrator"
    assert any("no model was run" in n and "50 - 18 = 32" in n for n in result.notes)
    (call,) = result.tool_calls
    assert call.tool == "expression_ranker" and call.ok and call.arguments == {"expression": "50 - 18"}
    threshold = OrchestratorSettings().ranker_confidence
    shown_p = float(call.outcome.split("p=")[1].split()[0])
    assert shown_p >= threshold and f">= {threshold:g})" in call.outcome
    ledger = Ledger(tmp_path / "ledger.db")
    rec = to_record(result, Settings(data_dir=tmp_path))
    ledger.record(rec)
    (row,) = ledger.query("SELECT * FROM tool_calls")
    assert row["tool"] == "expression_ranker" and row["ok"] == 1 and row["answer_id"] == rec.answer_id
    assert json.loads(row["arguments"]) == {"expression": "50 - 18"}


async def test_an_unsure_word_problem_is_answered_with_the_likeliest_reading_said_to_be_unchecked() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 3 * 12\nprint(answer)\n```"])
    orch = await make(client)
    result, _ = await answer(orch, TOM)
    assert client.seen == [] and result.model == "tool:expression_ranker"
    assert result.text == "The answer is 31 (the likeliest reading: (3 * 12) - 5 = 31; not checked)."
    (note,) = [n for n in result.notes if "likeliest reading" in n]
    assert note.startswith("unchecked: (3 * 12) - 5 = 31") and "not sure" in note and "no model was run" in note
    assert "leaving out" not in note  # it uses every number the problem states
    (call,) = result.tool_calls
    assert call.ok and "unchecked" in call.outcome


async def test_with_the_model_choosing_an_unsure_word_problem_goes_to_the_model() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = (3 * 12) - 5\nprint(answer)\n```"])
    orch = await make(client, ranker_choice="model")
    result, _ = await answer(orch, TOM)
    assert len(client.seen) == 1 and result.model == SMOL and result.text == "The answer is 31."


async def test_the_setting_off_or_another_route_leaves_the_model_to_answer() -> None:
    for kw, route in (({"ranker_answers": False}, "math"), ({}, "chat")):
        client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 50 - 18\nprint(answer)\n```",
                                                                   "She has 32 stickers left."])
        orch = await make(client, route=route, **kw)
        result, _ = await answer(orch, SARA)
        assert len(client.seen) >= 1 and result.model == SMOL
        assert all(c.tool != "expression_ranker" for c in result.tool_calls)


async def test_below_the_floor_the_answer_says_it_could_not_and_no_model_runs() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 3 * 12\nprint(answer)\n```"])
    orch = await make(client, ranker_floor=0.99, ranker_confidence=1.0)
    result, _ = await answer(orch, TOM)
    assert client.seen == [] and result.text.startswith(COULD_NOT) and "the likeliest expression" in result.text
    assert result.unanswered
    (call,) = result.tool_calls
    assert call.tool == "expression_ranker" and not call.ok and "nothing plausible" in call.outcome


async def test_a_percentage_written_as_its_fraction_is_not_said_to_be_left_out() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 1\nprint(answer)\n```"])
    orch = await make(client)
    result, _ = await answer(orch, "A shirt costs $40 and is 25% off. What is the sale price?")
    assert client.seen == [] and result.text.startswith("The answer is 30 ")
    (note,) = [n for n in result.notes if "likeliest reading" in n]
    assert "40 * (1 - 0.25)" in note and "leaving out" not in note
