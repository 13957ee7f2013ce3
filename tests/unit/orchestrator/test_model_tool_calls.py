"""The model's own tool call: one JSON call constrained by the agent's tools' schemas, run, quoted by the answer."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import jsonschema
import pytest

from covey.agents.specialists import SPECIALISTS
from covey.energy.ledger import Ledger
from covey.energy.meter import CpuTimeEstimator
from covey.models.catalog import Catalog
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.graph import Deps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.pool import NodePool
from covey.orchestrator.recorder import to_record
from covey.orchestrator.results import Notice
from covey.orchestrator.tool_calls import TOOL_CUES, argument_spans, call_schema, cued_tools, in_prompt_order
from covey.settings import OrchestratorSettings, Settings
from covey.tools.builtin import default_registry

from fakes import ScriptedNodeClient, ScriptedRouter, node_info, roster, spec

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"
LIBRARIAN_TOOLS = ("search_documents", "date_difference", "weekday", "date_add", "convert_units")
WEEKDAY_Q = "What weekday was 14 July 1789?"
WEEKDAY_CALL = '{"tool": "weekday", "arguments": {"date": "14 July 1789"}}'


def librarian(ladder=(SMOL,), **kw):
    return spec("librarian", ladder, routes=("knowledge",), **kw).model_copy(update={"tools": LIBRARIAN_TOOLS})


def cpu_meter() -> CpuTimeEstimator:
    ticks = itertools.count()
    return CpuTimeEstimator(10.0, read_cpu_seconds=lambda: next(ticks) * 0.5)


async def make(clients, agents, *, meter=None, route="knowledge", **settings_kw) -> Orchestrator:
    settings = OrchestratorSettings(discover=False, embedded="never", **settings_kw)
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    for c in clients:
        await pool.add_client(c)
    deps = Deps(router=ScriptedRouter(route), pool=pool, catalog=Catalog(), settings=settings, agents=agents,
                meter=meter, tools=default_registry(plugins=False, today=lambda: dt.date(2026, 1, 1)))
    return Orchestrator(deps)


def offered(schema: dict) -> list[str]:
    return [choice["properties"]["tool"]["const"] for choice in schema["anyOf"]]


async def test_the_constraint_is_a_json_schema_of_the_cued_tools_that_a_call_satisfies() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [WEEKDAY_CALL, "It was a Tuesday."])
    orch = await make([client], roster(librarian()))
    await orch.ask(WEEKDAY_Q)
    call_req, answer_req = client.seen
    assert call_req.constraint is not None and call_req.constraint.kind == "json_schema"
    assert call_req.protocol_needed == 2 and answer_req.constraint is None
    schema = json.loads(call_req.constraint.text)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert offered(schema) == ["weekday", "none"]
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(json.loads(WEEKDAY_CALL)) and validator.is_valid({"tool": "none"})
    assert not validator.is_valid({"tool": "python", "arguments": {"code": "print(1)"}})
    assert not validator.is_valid({"tool": "weekday", "arguments": {"day": "Monday"}})  # its parameters' schema
    # A date must be copied from the question (or be 'today'): the model cannot invent one.
    assert not validator.is_valid({"tool": "weekday", "arguments": {"date": "15 July 1789"}})
    assert validator.is_valid({"tool": "weekday", "arguments": {"date": "today"}})
    # The model is shown the tool and one worked call, then the question.
    assert "weekday(date)" in call_req.messages[0].content and call_req.messages[-1].content == WEEKDAY_Q


def test_the_schema_over_every_tool_an_agent_names_is_valid_and_caps_strings() -> None:
    registry = default_registry(plugins=False)
    for agent in SPECIALISTS:
        if not agent.tools:
            continue
        schema = call_schema(registry.specs(agent.tools))
        jsonschema.Draft202012Validator.check_schema(schema)
        assert offered(schema) == [*agent.tools, "none"]
    calc = call_schema(registry.specs(["calculator"]))["anyOf"][0]["properties"]["arguments"]
    assert calc["properties"]["expression"]["maxLength"] == 80  # the tool allows 400; the grammar stays small


async def test_a_call_runs_and_its_result_reaches_the_answer_and_the_ledger(tmp_path) -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [WEEKDAY_CALL, "14 July 1789 was a Tuesday."],
                                joules=2.0)
    orch = await make([client], roster(librarian()), meter=cpu_meter())
    evs = [ev async for ev in orch.stream(WEEKDAY_Q, session_id="s")]
    result = evs[-1]
    (call,) = result.tool_calls
    assert call.tool == "weekday" and call.ok and call.arguments == {"date": "14 July 1789"}
    assert call.outcome == "1789-07-14 is a Tuesday" and call.energy.joules == pytest.approx(5.0)
    question = client.seen[1].messages[-1]
    assert question.role == "user" and "- 1789-07-14 is a Tuesday" in question.content
    assert question.content.endswith(f"Question: {WEEKDAY_Q}")
    # The answer is begun with the result, so even a small model's answer states it.
    assert client.seen[1].continue_from == "1789-07-14 is a Tuesday. "
    assert result.text == "1789-07-14 is a Tuesday. 14 July 1789 was a Tuesday."
    assert any(isinstance(e, Notice) and e.kind == "tool" and "Tuesday" in e.text for e in evs)
    assert any("called weekday(date='14 July 1789')" in n for n in result.notes)
    # Both generations are the rung's: tokens and joules of the call count in the answer.
    (attempt,) = result.attempts
    assert attempt.prompt_tokens == 20 and attempt.energy.joules == pytest.approx(4.0)
    assert result.energy.joules == pytest.approx(4.0 + result.overhead.joules)
    assert result.overhead.joules >= call.energy.joules
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.record(to_record(result, Settings(data_dir=tmp_path)))
    (row,) = ledger.query("SELECT * FROM tool_calls")
    assert row["tool"] == "weekday" and row["ok"] == 1 and json.loads(row["arguments"]) == {"date": "14 July 1789"}
    assert row["joules"] == pytest.approx(5.0)


async def test_none_adds_nothing() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ['{"tool": "none"}', "It was a Tuesday."])
    orch = await make([client], roster(librarian()))
    result = await orch.ask(WEEKDAY_Q)
    assert result.tool_calls == () and result.text == "It was a Tuesday."
    assert client.seen[1].messages[-1].content == WEEKDAY_Q
    assert any("chose no tool" in n for n in result.notes)


@pytest.mark.parametrize(("reply", "tool", "why"), [
    ('{"tool": "weekday", "arguments": {"date": "the day after never"}}', "weekday", "is not a date"),
    ('{"tool": "weekday", "arguments": {"date": "1 May 2020", "tz": "UTC"}}', "weekday", "bad arguments"),
    ('{"tool": "weekday", "argu', "weekday", "not a valid call"),
    ('{"tool": "teleport", "arguments": {}}', "teleport", "no tool named 'teleport'"),
])
async def test_a_bad_call_is_recorded_as_failed_and_the_answer_still_comes(reply, tool, why) -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [reply, "I think it was a Tuesday."])
    orch = await make([client], roster(librarian()))
    result = await orch.ask(WEEKDAY_Q)
    (call,) = result.tool_calls
    assert call.tool == tool and not call.ok and why in call.outcome
    assert result.text == "I think it was a Tuesday." and len(client.seen) == 2
    assert client.seen[1].messages[-1].content == WEEKDAY_Q  # nothing from a failed call reaches the answer


async def test_an_old_node_gets_no_constraint_and_no_call() -> None:
    old = node_info("a", {SMOL: 100}).model_copy(update={"protocol_version": 1})
    client = ScriptedNodeClient(old, ["It was a Tuesday."])
    orch = await make([client], roster(librarian()))
    result = await orch.ask(WEEKDAY_Q)
    (req,) = client.seen
    assert req.constraint is None and result.tool_calls == ()


@pytest.mark.parametrize("prompt", ["Tell me about the French Revolution.", "Who was Napoleon?"])
async def test_a_prompt_with_no_cue_pays_no_extra_generation(prompt) -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["An answer."])
    orch = await make([client], roster(librarian()))
    result = await orch.ask(prompt)
    (req,) = client.seen
    assert req.constraint is None and result.tool_calls == ()


async def test_the_setting_turns_it_off_and_agents_without_tools_never_call() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["It was a Tuesday."])
    orch = await make([client], roster(librarian()), model_tool_calls=False)
    await orch.ask(WEEKDAY_Q)
    plain = ScriptedNodeClient(node_info("b", {SMOL: 100}), ["It was a Tuesday."])
    orch2 = await make([plain], roster(spec("librarian", (SMOL,), routes=("knowledge",))))
    await orch2.ask(WEEKDAY_Q)
    assert len(client.seen) == 1 and len(plain.seen) == 1


async def test_an_escalated_rung_keeps_the_result_and_does_not_ask_again() -> None:
    small = ScriptedNodeClient(node_info("a", {SMOL: 100}), [WEEKDAY_CALL, "Maybe Monday?"], logprob=-3.0)
    big = ScriptedNodeClient(node_info("b", {GEMMA: 50}), ["It was a Tuesday."], logprob=-0.1)
    orch = await make([small, big], roster(librarian((SMOL, GEMMA), min_mean_logprob=-1.0)))
    result = await orch.ask(WEEKDAY_Q)
    assert [a.outcome for a in result.attempts] == ["escalated", "answered"]
    assert len(small.seen) == 2 and len(big.seen) == 1 and big.seen[0].constraint is None
    assert "1789-07-14 is a Tuesday" in big.seen[0].messages[-1].content
    assert [c.tool for c in result.tool_calls] == ["weekday"]
    assert result.attempts[0].prompt_tokens == 20 and result.attempts[1].prompt_tokens == 10


@pytest.mark.parametrize(("tool", "argument", "prompt", "spans"), [
    ("date_difference", "start", "How many days from 1 March 2024 to 25 December 2024?",
     ("1 March 2024", "25 December 2024", "today")),
    ("date_add", "duration", "What date is 2 weeks and 3 days after 1 June 2026?", ("2 weeks and 3 days",)),
    ("date_add", "date", "What date is 2 weeks and 3 days after 1 June 2026?", ("1 June 2026", "today")),
    ("date_add", "duration", "What date is 45 days before 1 March 2026?", ("-45 days",)),
    ("convert_units", "quantity", "How many feet is 3.2 metres?", ("3.2 metres",)),
    ("convert_units", "to", "What's 70 kg in pounds?", ("pounds",)),
    ("weekday", "date", "What day of the week was July 4, 1776?", ("July 4, 1776", "today")),
    ("calculator", "expression", "What is 12.5 times 8?", ()),  # free
])
def test_copied_arguments_are_limited_to_spans_of_the_question(tool, argument, prompt, spans) -> None:
    assert argument_spans(tool, argument, prompt) == spans
    schema = call_schema(default_registry(plugins=False).specs([tool]), prompt)
    prop = schema["anyOf"][0]["properties"]["arguments"]["properties"][argument]
    assert prop.get("enum", []) == list(spans)


@pytest.mark.parametrize(("prompt", "tools"), [
    ("What weekday was 14 July 1789?", ("weekday",)),
    ("Which day of the week is 2030-01-01?", ("weekday",)),
    ("How many days are there between 1 March 2024 and 25 December 2024?", ("date_difference",)),
    ("What date is 100 days after 3 February 2025?", ("date_add",)),
    ("How many feet is 3.2 metres?", ("convert_units",)),
    ("Convert 70 kg to pounds", ("convert_units",)),
    ("What is 15% of 80?", ("percent",)),
    ("Hello, how are you?", ()),
    ("Tell me a story about a dragon.", ()),
    ("I have 3 cats and 2 dogs, any tips?", ()),
    ("Write a poem in 5 lines", ()),
    ("I was in a 5 km race last week", ()),
])
def test_the_cues_gate_which_tools_are_offered(prompt, tools) -> None:
    assert cued_tools(prompt, TOOL_CUES) == tools


async def test_a_degenerate_answer_is_replaced_by_the_calls_result() -> None:
    loop = "\n".join(["1789-07-14 is a Tuesday."] * 6)
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [WEEKDAY_CALL, loop])
    orch = await make([client], roster(librarian()))
    result = await orch.ask(WEEKDAY_Q)
    assert result.text == "1789-07-14 is a Tuesday."
    assert any("the result of its tool call stands" in n for n in result.notes), result.notes


def test_cues_made_of_lookaheads_are_anchored_so_a_long_pasted_text_costs_one_pass() -> None:
    # unanchored, `search` runs `(?=.*...)` from every position: quadratic (25 s for 20,000 characters)
    from covey.orchestrator.tool_calls import TOOL_CUES

    for name, cue in TOOL_CUES.items():
        if "(?=.*" in cue.pattern:
            assert cue.pattern.startswith(r"\A"), name


def mathematician(ladder=(SMOL,)):
    tools = ("calculator", "solve", "percent", "convert_units", "weekday", "date_difference", "date_add")
    return spec("mathematician", ladder, routes=("math",)).model_copy(update={"tools": tools})


async def test_a_one_sentence_date_question_routed_to_maths_is_answered_by_the_tool_call_not_a_program() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [WEEKDAY_CALL, " It was a Tuesday."])
    orch = await make([client], roster(mathematician()), route="math", program_aided=True)
    result = await orch.ask(WEEKDAY_Q)
    assert len(client.seen) == 2 and client.seen[0].constraint.kind == "json_schema"
    assert "weekday" in offered(json.loads(client.seen[0].constraint.text))
    assert [c.tool for c in result.tool_calls] == ["weekday"] and result.tool_calls[0].ok
    assert result.text.startswith("1789-07-14 is a Tuesday")


async def test_a_word_problem_with_units_keeps_the_program() -> None:
    problem = ("A train covers 120 km in 2 hours. It then travels 3 more hours at the same speed. "
               "How many km does it travel in all?")
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["print(120 / 2 * 5)"])
    orch = await make([client], roster(mathematician()), route="math", program_aided=True, ranker_choice="model")
    await orch.ask(problem)
    assert client.seen and all(r.constraint is None or r.constraint.kind != "json_schema" for r in client.seen)


async def test_dates_given_in_the_reverse_of_the_questions_order_are_put_back() -> None:
    question = "How many days are there between 1 March 2024 and 25 December 2024?"
    swapped = '{"tool": "date_difference", "arguments": {"start": "25 December 2024", "end": "1 March 2024"}}'
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [swapped, " That is the count."])
    orch = await make([client], roster(librarian()))
    result = await orch.ask(question)
    (call,) = result.tool_calls
    assert call.ok and call.arguments == {"start": "1 March 2024", "end": "25 December 2024"}
    assert call.outcome == "from 2024-03-01 to 2024-12-25 is 299 days"
    assert any("reverse of the question's order" in n for n in result.notes)


@pytest.mark.parametrize("arguments", [
    {"start": "1 March 2024", "end": "25 December 2024"},   # already in order
    {"start": "today", "end": "1 March 2024"},              # one not copied from the question
    {"start": "1 March 2024", "end": "1 March 2024"},        # the same date twice
])
def test_arguments_already_in_order_or_not_from_the_question_are_left_as_given(arguments) -> None:
    question = "How many days are there between 1 March 2024 and 25 December 2024?"
    assert in_prompt_order("date_difference", arguments, question) is arguments
    assert in_prompt_order("weekday", {"date": "x"}, question) == {"date": "x"}
