"""Program-aided maths with a grammar and self-consistency: the constraint is sent only to nodes that apply
it, sampled programs vote, and too little agreement escalates to the next rung."""

from __future__ import annotations

from covey.orchestrator.client import GrpcNodeClient
from covey.models.catalog import Catalog
from covey.orchestrator.graph import Deps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.pool import NodePool
from covey.orchestrator.tool_steps import (
    PROGRAM_EXAMPLES, _majority, program_constraint_for, program_messages, question_numbers,
)
from covey.settings import OrchestratorSettings
from covey.tools.sandbox import SandboxResult

from fakes import FakeSandbox, ScriptedNodeClient, ScriptedRouter, node_info, roster, spec

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"
WORD = "Tom has 3 boxes with 12 apples in each box. He eats 5 apples. How many apples are left?"


def math_spec(ladder=(SMOL,)):
    return spec("mathematician", ladder, routes=("math",), checker="number_consistent", max_tokens=64)


def ran(stdout: str) -> SandboxResult:
    return SandboxResult(ok=True, outcome="ok", stdout=stdout, exit_code=0, seconds=0.1)


async def make(clients, agents, *, sandbox, **settings_kw):
    settings = OrchestratorSettings(discover=False, embedded="never", tool_answers=False,
                                    **{"program_candidates": False, **settings_kw})  # the free program's path
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    for c in clients:
        await pool.add_client(c)
    return Orchestrator(Deps(router=ScriptedRouter("math"), pool=pool, catalog=Catalog(), settings=settings,
                             agents=agents, sandbox=sandbox))


async def test_programs_are_constrained_by_the_grammar_on_a_version_2_node() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 3 * 12 - 5\nprint(answer)\n```"])
    orch = await make([client], roster(math_spec()), sandbox=FakeSandbox([ran("31")]), program_votes=1)
    result = await orch.ask(WORD)
    assert result.text == "The answer is 31."
    (req,) = client.seen
    assert req.constraint == program_constraint_for(WORD) and req.constraint.kind == "grammar"
    assert 'number ::= "12" | "3" | "5" | "1" | "2"' in req.constraint.text
    assert req.protocol_needed == 2 and req.sampling.temperature == 0.0


async def test_a_version_1_node_gets_no_constraint() -> None:
    old = node_info("old", {SMOL: 100}).model_copy(update={"protocol_version": 1})
    client = ScriptedNodeClient(old, ["answer = 31\nprint(answer)\n```"])
    orch = await make([client], roster(math_spec()), sandbox=FakeSandbox([ran("31")]), program_votes=1)
    assert (await orch.ask(WORD)).text == "The answer is 31."
    assert client.seen[0].constraint is None and client.seen[0].protocol_needed == 1


async def test_sampled_programs_vote_and_the_majority_stands() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 36 - 5\nprint(answer)\n```"])
    box = FakeSandbox([ran("36"), ran("31"), ran("31")])  # the greedy program is outvoted
    orch = await make([client], roster(math_spec()), sandbox=box, program_votes=3, program_agreement=0.6)
    result = await orch.ask(WORD)
    assert result.text == "The answer is 31."
    temps = [r.sampling.temperature for r in client.seen]
    assert temps[0] == 0.0 and all(t > 0 for t in temps[1:]) and len(temps) == 3
    assert len({r.sampling.seed for r in client.seen}) == 3  # each sample its own seed
    assert [c.outcome for c in result.tool_calls] == ["printed 36", "printed 31", "printed 31"]
    assert any("2 of 3 programs agree" in n for n in result.notes)


async def test_programs_that_disagree_escalate_to_the_next_rung() -> None:
    small = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 1\nprint(answer)\n```"])
    big = ScriptedNodeClient(node_info("b", {GEMMA: 50}), ["answer = 31\nprint(answer)\n```"])
    box = FakeSandbox([ran("36"), ran("31"), ran("40"), ran("31")])
    orch = await make([small, big], roster(math_spec((SMOL, GEMMA))), sandbox=box, program_votes=3,
                      program_agreement=0.6)
    result = await orch.ask(WORD)
    assert [a.outcome for a in result.attempts] == ["escalated", "answered"]
    assert "only 1 of 3 programs agree" in result.attempts[0].reason
    assert result.model == GEMMA and result.text == "The answer is 31."  # gemma's three programs all print 31


def test_the_few_shot_examples_come_before_the_problem_as_earlier_turns() -> None:
    msgs = program_messages(WORD)
    assert msgs[0].role == "system" and msgs[-1].content == WORD
    assert [m.role for m in msgs[1:-1]] == ["user", "assistant"] * len(PROGRAM_EXAMPLES)
    assert all(m.content.startswith("```python\n") and "print(answer)" in m.content
               for m in msgs[1:-1] if m.role == "assistant")


def test_majority_prefers_the_earliest_value_on_a_tie() -> None:
    assert _majority(["31", "36"]) == ("31", 1)
    assert _majority(["36", "31", "31"]) == ("31", 2)


def test_the_grammar_allows_only_the_numbers_the_problem_states_or_implies() -> None:
    assert question_numbers("Ann buys 1,000 eggs at $2.50 a dozen and sells 25% of them.") == [
        "1000", "2.50", "25", "12", "100", "1", "2"]
    grammar = program_constraint_for("A train goes 60 miles per hour for 3.5 hours.").text
    assert 'number ::= "3.5" | "60" | "1" | "2"' in grammar
    assert grammar.startswith("\nroot   ::= line{1,12}") and 'print(" name ")' in grammar


async def test_a_program_that_uses_every_stated_number_outvotes_ones_that_drop_some() -> None:
    # The greedy program forgets the 3 boxes; the sampled ones use 3, 12 and 5.
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 12 - 5\nprint(answer)\n```",
                                                              "answer = 3 * 12 - 5\nprint(answer)\n```"])
    box = FakeSandbox([ran("7"), ran("31")])
    orch = await make([client], roster(math_spec()), sandbox=box, program_votes=3, program_agreement=0.3)
    result = await orch.ask(WORD)
    assert result.text == "The answer is 31."
    assert len(client.seen) == 2  # one agreeing program was enough (30 % of 3): the third was not asked for


def test_uses_every_number_reads_the_problems_quantities() -> None:
    from covey.orchestrator.tool_steps import uses_every_number

    assert uses_every_number("boxes = 3\napples = 12\nanswer = boxes * apples - 5\nprint(answer)", WORD)
    assert not uses_every_number("answer = 12 - 5\nprint(answer)", WORD)
