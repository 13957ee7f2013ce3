"""The program step's candidate grammar: the model chooses among expressions that use every stated number;
the choice is run in the sandbox and lands in the result's tool calls."""

from __future__ import annotations

from fractions import Fraction

from covey.models.catalog import Catalog
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.graph import Deps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.pool import NodePool
from covey.orchestrator.program_choices import (
    CHOICE_EXAMPLES, choice_constraint, choice_messages, chosen_expression, counts_things, offer_for,
)
from covey.settings import OrchestratorSettings
from covey.tools.sandbox import SandboxResult

from fakes import FakeSandbox, ScriptedNodeClient, ScriptedRouter, node_info, roster, spec

SMOL = "smollm2-135m-instruct-q4_1"
TOM = "Tom has 3 boxes with 12 apples in each box. He eats 5 apples. How many apples are left?"


def ran(stdout: str) -> SandboxResult:
    return SandboxResult(ok=True, outcome="ok", stdout=stdout, exit_code=0, seconds=0.1)


async def make(client, sandbox, **kw):
    settings = OrchestratorSettings(discover=False, embedded="never", tool_answers=False, program_votes=1, **kw)
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    await pool.add_client(client)
    agents = roster(spec("mathematician", (SMOL,), routes=("math",), checker="number_consistent", max_tokens=64))
    return Orchestrator(Deps(router=ScriptedRouter("math"), pool=pool, catalog=Catalog(), settings=settings,
                             agents=agents, sandbox=sandbox))


def test_the_offer_ranks_values_of_two_or_more_quantities_and_keeps_counts_whole() -> None:
    offer = offer_for(TOM)
    assert offer is not None and "(3 * 12) - 5" in offer.expressions
    assert offer.value_of("(3 * 12) - 5") == 31
    assert all(v.denominator == 1 and v >= 0 for v in offer.values)  # 'how many apples': whole, not negative
    assert all(any(op in e for op in "+-*/") for e in offer.expressions)  # a bare stated number is not offered
    probs = list(offer.probabilities)  # the ranker's own probabilities over all its candidates
    assert len(set(offer.values)) == len(offer.values) and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-9


def test_a_distractor_number_may_go_unused() -> None:
    offer = offer_for("Sean has 9 apples. Susan gives Sean 8 more. Later, Sean buys 18 tickets at the store. "
                      "How many apples does Sean have in all?")
    assert offer is not None and offer.value_of("9 + 8") == 17


def test_a_unit_question_may_come_out_fractional() -> None:
    assert counts_things(TOM) and not counts_things("How many hours does she drive?")
    offer = offer_for("A car goes 150 km in 4 hours and 1 minute less. How many km does it go each hour?")
    assert offer is not None and Fraction(75, 2) in offer.values  # km are a unit: 37.5 may stand
    assert any(e.startswith("150 / 4") for e in offer.expressions)  # the stated 1 need not be used


def test_a_problem_with_no_expression_to_offer_gets_none() -> None:
    assert offer_for("What is the colour of the sky?") is None  # no stated number
    assert offer_for("Ann has 7 cats. How many cats does she have?") is None  # one number: no operation to choose


def test_the_grammar_allows_exactly_the_offered_expressions() -> None:
    offer = offer_for(TOM)
    assert offer is not None
    grammar = choice_constraint(offer).text
    assert grammar.startswith('root ::= "answer = " expr "\\nprint(answer)\\n```"')
    assert '"(3 * 12) - 5"' in grammar and grammar.count(" | ") == len(offer.expressions) - 1
    assert chosen_expression("answer = (3 * 12) - 5\nprint(answer)\n") == "(3 * 12) - 5"
    msgs = choice_messages(TOM)
    assert msgs[-1].content == TOM and len(msgs) == 2 + 2 * len(CHOICE_EXAMPLES)


async def test_the_model_chooses_an_expression_and_the_sandbox_runs_it() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = (3 * 12) - 5\nprint(answer)\n```"])
    box = FakeSandbox([ran("31")])
    orch = await make(client, box)
    result = await orch.ask(TOM)
    assert result.text == "The answer is 31."
    (req,) = client.seen
    assert req.constraint is not None and '"(3 * 12) - 5"' in req.constraint.text
    assert [c.tool for c in result.tool_calls] == ["candidates", "python"]
    assert "(3 * 12) - 5" in result.tool_calls[0].arguments["offered"]
    assert [code for code, _ in box.seen] == ["answer = (3 * 12) - 5\nprint(answer)\n"]
    (note,) = [n for n in result.notes if "sandbox" in n]
    assert note.startswith("unchecked: ") and "chose (3 * 12) - 5 among the" in note  # never reads as verified
    assert "leaving out" not in note and note.endswith("nothing proves it is what the problem asks")


async def test_a_choice_that_leaves_out_a_stated_number_says_which() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 3 * 12\nprint(answer)\n```"])
    orch = await make(client, FakeSandbox([ran("36")]))
    result = await orch.ask(TOM)
    (note,) = [n for n in result.notes if "sandbox" in n]
    assert "chose 3 * 12 among the" in note and "leaving out 5;" in note


async def test_with_the_setting_off_the_program_is_free() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 3 * 12 - 5\nprint(answer)\n```"])
    orch = await make(client, FakeSandbox([ran("31")]), program_candidates=False)
    result = await orch.ask(TOM)
    assert result.text == "The answer is 31." and [c.tool for c in result.tool_calls] == ["python"]
    assert "number ::=" in client.seen[0].constraint.text


async def test_a_fractional_count_is_proven_wrong_and_does_not_stand() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 12 / 5\nprint(answer)\n```"])
    orch = await make(client, FakeSandbox([ran("2.4")]), program_candidates=False)
    result = await orch.ask(TOM)
    assert result.attempts[-1].confidence is not None and not result.attempts[-1].confidence.check_ok
    assert "counts apples" in result.attempts[-1].reason
    assert result.text.startswith("I could not get this right.") and "2.4" not in result.text.split("Tried")[0]


def test_count_checks_leave_units_and_whole_counts_alone() -> None:
    from covey.orchestrator.tool_steps import count_failure

    assert count_failure(TOM, "The answer is 31.") is None
    assert "whole number" in (count_failure(TOM, "The answer is -3.") or "")
    assert count_failure("A car goes 150 km in 4 hours. How many km does it go each hour?", "The answer is 37.5.") is None
