"""Tools in the answer graph: answers without a model, program-aided maths, verification, settling, the ledger."""

from __future__ import annotations

import json
import threading

from covey.energy.ledger import Ledger
from covey.models.catalog import Catalog
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.graph import Deps
from covey.orchestrator.recorder import to_record
from covey.orchestrator.pool import NodePool
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.results import AnswerResult, Notice, Token
from covey.orchestrator.tool_steps import COULD_NOT, degenerate, extract_code, follow_up
from covey.settings import OrchestratorSettings, Settings
from covey.tools.sandbox import SandboxResult
from covey.types import Message

from fakes import FakeNodeClient, FakeSandbox, ScriptedNodeClient, ScriptedRouter, node_info, roster, spec

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"
WORD = "Tom has 3 boxes with 12 apples in each box. He eats 5 apples. How many apples are left?"


def math_spec(ladder=(SMOL,)):
    return spec("mathematician", ladder, routes=("math",), checker="number_consistent", max_tokens=64)


async def make(clients, agents, *, sandbox=None, route="math", **settings_kw):
    settings_kw.setdefault("program_votes", 1)  # one scripted program per rung (voting: test_program_votes.py)
    settings_kw.setdefault("program_candidates", False)  # free programs here (the candidate grammar: test_program_choices.py)
    settings_kw.setdefault("ranker_choice", "model")  # the model's program (the ranker's own answers: test_ranker_answers.py)
    settings = OrchestratorSettings(discover=False, embedded="never", **settings_kw)
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    for c in clients:
        await pool.add_client(c)
    deps = Deps(router=ScriptedRouter(route), pool=pool, catalog=Catalog(), settings=settings, agents=agents,
                sandbox=sandbox)
    return Orchestrator(deps)


async def events(orch, prompt):
    return [ev async for ev in orch.stream(prompt, session_id="s")]


def ran(stdout: str) -> SandboxResult:
    return SandboxResult(ok=True, outcome="ok", stdout=stdout, exit_code=0, seconds=0.2)


def crashed(error: str) -> SandboxResult:
    return SandboxResult(ok=False, outcome="error", error=error, exit_code=1, seconds=0.1)


async def test_a_bare_expression_is_answered_by_the_tool_and_no_model_runs() -> None:
    client = FakeNodeClient(node_info("a", {SMOL: 100}))
    orch = await make([client], roster(math_spec()))
    evs = await events(orch, "What is 17 times 23?")
    result = evs[-1]
    assert isinstance(result, AnswerResult)
    assert client.seen == []  # no model was asked
    assert result.text == "17 times 23 = 391." and [e.text for e in evs if isinstance(e, Token)] == [result.text]
    assert result.model == "tool:calculator" and result.node == "orchestrator"
    assert any("computed exactly with sympy" in n and "no model was run" in n for n in result.notes)
    (call,) = result.tool_calls
    assert call.tool == "calculator" and call.ok and call.arguments == {"expression": "17*23"}
    assert "391" in call.outcome


async def test_a_follow_up_pointing_at_the_previous_answer_is_computed_with_its_number() -> None:
    client = FakeNodeClient(node_info("a", {SMOL: 100}))
    orch = await make([client], roster(math_spec()))
    await orch.ask("What is 17 times 23?", session_id="s")
    result = await orch.ask("And what is that number plus one?", session_id="s")
    assert client.seen == [] and result.text == "391 plus 1 = 392." and result.model == "tool:calculator"
    assert "'that number' read as 391, the number of an earlier answer" in result.notes
    # a prompt pointing at nothing, or at an answer with no number, is left to the model
    assert follow_up({"prompt": "What is that number plus one?", "history": []}) is None
    assert follow_up({"prompt": "And what is it plus one?",
                      "history": [Message(role="assistant", content="Paris.")]}) is None
    poem_after_sum = [Message(role="assistant", content="17 times 23 = 391."),
                      Message(role="assistant", content="An old laptop hums."),
                      Message(role="assistant", content="def rev(s):\n    return s[::-1]"),
                      # a failure's numbers are what was tried ("log-prob -1.42 < -1.40"), not an answer
                      Message(role="assistant", content="I could not get this right. Tried: m: log-prob -1.42 < -1.40.")]
    assert follow_up({"prompt": "And what is that number plus one?", "history": poem_after_sum}) == (
        "What is 391 plus 1?", "'that number' read as 391, the number of an earlier answer")
    # a poem that quotes numbers is not where the user's number is: the answer to the numeric question is
    quoting_poem = [Message(role="user", content="What is 17 times 23?"),
                    Message(role="assistant", content="17 times 23 = 391."),
                    Message(role="user", content="Write a short poem about an old laptop."),
                    Message(role="assistant", content="It runs.\nI'll make it say \"17 times 23\" with no mistakes."),
                    Message(role="user", content="Say hello to my grandmother."),
                    Message(role="assistant", content="Hello, dear grandmother!")]
    assert follow_up({"prompt": "And what is that number plus one?", "history": quoting_poem})[0] == "What is 391 plus 1?"
    assert follow_up({"prompt": "And what is that number plus one?", "history": quoting_poem[2:]})[0] == (
        "What is 23 plus 1?")  # with no numeric question before it, the latest number stated still counts
    assert follow_up({"prompt": "A box holds 3. It has 2 more. How many?",
                      "history": [Message(role="assistant", content="391.")]}) is None


async def test_a_unit_conversion_is_answered_by_pint() -> None:
    orch = await make([FakeNodeClient(node_info("a", {SMOL: 100}))], roster(math_spec()))
    result = await orch.ask("How many minutes are in 3.5 hours?")
    assert result.text == "3.5 hours = 210 minutes." and result.model == "tool:convert_units"
    assert any("pint" in n for n in result.notes)


async def test_a_word_problem_is_solved_by_the_models_program_in_the_sandbox() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["answer = 3 * 12 - 5\nprint(answer)\n```"])
    box = FakeSandbox([ran("31\n")])
    orch = await make([client], roster(math_spec()), sandbox=box)
    evs = await events(orch, WORD)
    result = evs[-1]
    assert result.text == "The answer is 31."
    assert [e.text for e in evs if isinstance(e, Token)] == ["The answer is 31."]  # the code is not the answer
    assert box.seen[0][0].strip() == "answer = 3 * 12 - 5\nprint(answer)"
    assert box.threads[0] != threading.main_thread().name  # the sandbox runs off the event loop
    assert client.seen[0].continue_from == "```python\n"  # the reply is begun for the model: it writes code
    assert client.seen[0].messages[-1].content == WORD and "print(answer)" in client.seen[0].messages[0].content
    (call,) = result.tool_calls
    assert call.tool == "python" and call.ok and call.outcome == "printed 31" and call.energy.joules > 0
    assert result.model == SMOL


async def test_a_failing_program_is_repaired_once_with_its_error() -> None:
    # A version-1 node cannot constrain the program with the grammar, so a failing program gets one repair.
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}).model_copy(update={"protocol_version": 1}),
                                ["print(boxes * 12)\n```", "boxes = 3\nprint(boxes * 12 - 5)\n```"])
    box = FakeSandbox([crashed("NameError: name 'boxes' is not defined"), ran("31")])
    orch = await make([client], roster(math_spec()), sandbox=box)
    result = await orch.ask(WORD)
    assert result.text == "The answer is 31."
    repair = client.seen[1].messages
    assert "NameError: name 'boxes' is not defined" in repair[-1].content and repair[-2].role == "assistant"
    assert [c.ok for c in result.tool_calls] == [False, True]


async def test_when_every_rung_fails_the_answer_says_so_and_what_was_tried() -> None:
    small = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["```python\nprint(x)\n```"])
    big = ScriptedNodeClient(node_info("b", {GEMMA: 50}), ["no code at all"])
    box = FakeSandbox([crashed("NameError: name 'x' is not defined")])
    orch = await make([small, big], roster(math_spec((SMOL, GEMMA))), sandbox=box)
    result = await orch.ask(WORD)
    assert result.text.startswith(COULD_NOT) and "Tried:" in result.text and result.unanswered
    assert SMOL in result.text and GEMMA in result.text
    assert [a.outcome for a in result.attempts] == ["escalated", "answered"]
    assert any("failed: NameError" in n for n in result.notes)


async def test_a_proven_wrong_answer_is_never_the_result_text() -> None:
    wrong = "17 * 23 = 406. The answer is 406."
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [wrong])
    orch = await make([client], roster(math_spec()), tool_answers=False, program_aided=False)
    evs = await events(orch, "What is 17 times 23?")
    result = evs[-1]
    assert result.text != wrong and "406" not in result.text
    assert result.text == "The answer is 391."  # the tools' verified value stands
    replaced = [e for e in evs if isinstance(e, Notice) and e.kind == "replaced"]
    assert replaced and "391" in replaced[0].text
    assert [e.text for e in evs if isinstance(e, Token)][-1] == "The answer is 391."  # shown after the notice
    assert result.attempts[-1].confidence is not None and not result.attempts[-1].confidence.check_ok


async def test_escalation_replaces_a_proven_wrong_answer_with_the_next_rungs() -> None:
    small = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["The answer is 406."])
    big = ScriptedNodeClient(node_info("b", {GEMMA: 50}), ["17 * 23 = 391. The answer is 391."])
    orch = await make([small, big], roster(math_spec((SMOL, GEMMA))), tool_answers=False, program_aided=False)
    evs = await events(orch, "What is 17 times 23?")
    result = evs[-1]
    assert result.text == "17 * 23 = 391. The answer is 391." and result.model == GEMMA
    assert [a.outcome for a in result.attempts] == ["escalated", "answered"]
    assert any(isinstance(e, Notice) and e.kind == "escalate" for e in evs)


async def test_with_the_new_steps_off_the_old_path_runs() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["The answer is 406."])
    orch = await make([client], roster(math_spec()), tool_answers=False, program_aided=False, verify_answers=False)
    result = await orch.ask("What is 17 times 23?")
    assert result.text == "The answer is 406." and result.tool_calls == ()


CODE_PROMPT = "Write a Python function add(a, b) that returns their sum.\nassert add(2, 3) == 5"
BUGGY = "```python\ndef add(a, b):\n    return a - b\n```"
FIXED = "```python\ndef add(a, b):\n    return a + b\n```"


def code_report(passed: bool) -> SandboxResult:
    report = {"stage": "tests", "passed": int(passed), "failed": int(not passed), "doctests": 0,
              "first_failure": "" if passed else "assert add(2, 3) == 5 (line 1) failed: AssertionError"}
    return ran("__covey_tests__ " + json.dumps(report))


def coder():
    return spec("coder", (SMOL, GEMMA), routes=("code",), checker="python_parses", max_tokens=64)


async def test_code_is_run_with_the_prompts_tests_and_repaired_once() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [BUGGY, FIXED])
    box = FakeSandbox([code_report(False), code_report(True)])
    orch = await make([client], roster(coder()), sandbox=box, route="code")
    evs = await events(orch, CODE_PROMPT)
    result = evs[-1]
    assert result.text == FIXED
    assert box.seen[0][1]["tests.py"] == "assert add(2, 3) == 5" and "a - b" in box.seen[0][1]["solution.py"]
    assert "AssertionError" in client.seen[1].messages[-1].content
    assert any(isinstance(e, Notice) and e.kind == "replaced" for e in evs)
    assert [c.tool for c in result.tool_calls] == ["run_code_tests", "run_code_tests"]
    assert [c.ok for c in result.tool_calls] == [False, True]


async def test_code_without_tests_is_called_once_on_an_ordinary_input_and_a_crash_is_repaired() -> None:
    crashes = '```python\ndef reverse_string(s):\n    return "".join([reversed(c) for c in s])\n```'
    works = "```python\ndef reverse_string(s):\n    return s[::-1]\n```"
    failed = {"stage": "tests", "passed": 0, "failed": 1, "doctests": 0, "first_failure":
              "reverse_string('hello world') (line 1) failed: TypeError: sequence item 0: expected str instance"}
    clean = {"stage": "claims", "passed": 0, "failed": 0, "doctests": 0, "first_failure": "", "claims": []}
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [crashes, works])
    box = FakeSandbox([ran("__covey_tests__ " + json.dumps(failed)), ran("__covey_tests__ " + json.dumps(clean))])
    orch = await make([client], roster(spec("coder", (SMOL,), routes=("code",), checker="python_parses")),
                      sandbox=box, route="code")
    result = await orch.ask("Write a Python function that reverses a string.")
    assert [files["tests.py"] for _, files in box.seen] == ["reverse_string('hello world')"] * 2
    assert "TypeError" in client.seen[1].messages[-1].content and result.text == works
    assert result.attempts[-1].confidence.verified == ""  # it no longer crashes; what it returns is not proven right


async def test_the_callers_token_cap_holds_for_the_repair_too() -> None:
    # `covey eval frugality --max-tokens 20` caps every answer: its repair is the answer written again.
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [BUGGY, FIXED])
    box = FakeSandbox([code_report(False), code_report(True)])
    orch = await make([client], roster(coder()), sandbox=box, route="code")
    result = await orch.ask(CODE_PROMPT, max_tokens=20)
    assert result.text == FIXED
    assert [r.max_tokens for r in client.seen] == [20, 20]  # the agent's own limit is 64


REVERSE_PROMPT = "Write a Python function that reverses a string."
CLAIMED = ('```python\ndef rev(s):\n    return s[::-1]\n\nprint(rev("ab"))  # Output: "AB"\n```')
CLAIMED_FIXED = ('```python\ndef rev(s):\n    return s[::-1]\n\nprint(rev("ab"))  # Output: "ba"\n```')


def claims_report(*printed: str | None) -> SandboxResult:
    """No tests ran; each claimed print's value as the runner reports it (str, repr), None if it raised."""
    report = {"stage": "claims", "passed": 0, "failed": 0, "doctests": 0, "first_failure": "",
              "claims": [[p, repr(p)] if p is not None else None for p in printed]}
    return ran("__covey_tests__ " + json.dumps(report))


async def test_a_wrong_example_output_is_repaired_once_then_corrected_from_the_run() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [CLAIMED, CLAIMED])
    box = FakeSandbox([claims_report("ba"), claims_report("ba")])
    orch = await make([client], roster(coder()), sandbox=box, route="code")
    evs = await events(orch, REVERSE_PROMPT)
    result = evs[-1]
    assert json.loads(box.seen[0][1]["claims.json"]) == ['rev("ab")']
    assert 'line 4 says "AB" but prints ba' in client.seen[1].messages[-1].content
    assert result.text == CLAIMED_FIXED and result.model == SMOL and len(result.attempts) == 1
    assert any("example output in a comment was wrong" in n for n in result.notes)
    assert [c.ok for c in result.tool_calls] == [False, False]
    assert [e.text for e in evs if isinstance(e, Notice) and e.kind == "replaced"][-1].startswith(
        "the answer above is corrected")


async def test_a_repair_no_better_than_the_first_version_is_dropped_with_what_it_added() -> None:
    # SmolLM2 in `make demo` copied the repair request into its code as a comment
    parroted = CLAIMED.replace("\n```", "\n# Fix the code if it is wrong, or the comment if it is right.\n```")
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [CLAIMED, parroted])
    box = FakeSandbox([claims_report("ba"), claims_report("ba")])
    orch = await make([client], roster(coder()), sandbox=box, route="code")
    evs = await events(orch, REVERSE_PROMPT)
    assert evs[-1].text == CLAIMED_FIXED and len(client.seen) == 2
    notices = [e.text for e in evs if isinstance(e, Notice) and e.kind == "replaced"]
    assert notices[0] == ('the code ran, but its example output is wrong (line 4 says "AB" but prints ba); '
                          "repairing it once")


async def test_a_repair_that_gets_the_example_right_stands_as_it_is() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [CLAIMED, CLAIMED_FIXED])
    box = FakeSandbox([claims_report("ba"), claims_report("ba")])
    result = await (await make([client], roster(coder()), sandbox=box, route="code")).ask(REVERSE_PROMPT)
    assert result.text == CLAIMED_FIXED and [c.ok for c in result.tool_calls] == [False, True]
    assert not any("example output" in n for n in result.notes)


async def test_a_repair_that_no_longer_runs_keeps_the_version_that_ran_with_its_comment_corrected() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [CLAIMED, BUGGY])
    box = FakeSandbox([claims_report("ba"), code_report(False)])
    result = await (await make([client], roster(coder()), sandbox=box, route="code")).ask(REVERSE_PROMPT)
    assert result.text == CLAIMED_FIXED and result.completion_tokens > 0
    assert len(client.seen) == 2  # the repair was asked for and is counted


async def test_code_that_still_fails_escalates_and_is_never_the_answer() -> None:
    small = ScriptedNodeClient(node_info("a", {SMOL: 100}), [BUGGY])
    big = ScriptedNodeClient(node_info("b", {GEMMA: 50}), [FIXED])
    box = FakeSandbox([code_report(False), code_report(True)])
    orch = await make([small, big], roster(coder()), sandbox=box, route="code")
    result = await orch.ask(CODE_PROMPT)
    assert result.text == FIXED and result.model == GEMMA
    assert [a.outcome for a in result.attempts] == ["escalated", "answered"]
    # The stronger rung is the repair: the small model is asked once, not a second time with its error.
    assert len(small.seen) == 1 and len(big.seen) == 1 and len(box.seen) == 2
    assert any("not repaired on this rung: a stronger one takes over" in n for n in result.notes)


async def test_code_pinned_to_one_model_is_still_repaired_on_it() -> None:
    # Asked for one model by name (covey eval frugality's always-model baselines): no rung above it to take over.
    small = ScriptedNodeClient(node_info("a", {SMOL: 100}), [BUGGY, FIXED])
    big = ScriptedNodeClient(node_info("b", {GEMMA: 50}), [FIXED])
    box = FakeSandbox([code_report(False), code_report(True)])
    orch = await make([small, big], roster(coder()), sandbox=box, route="code")
    result = await orch.ask(CODE_PROMPT, model=SMOL)
    assert result.text == FIXED and result.model == SMOL and len(small.seen) == 2 and not big.seen


async def test_code_failing_at_the_top_of_the_ladder_is_withdrawn() -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [BUGGY])
    orch = await make([client], roster(spec("coder", (SMOL,), routes=("code",), checker="python_parses")),
                      sandbox=FakeSandbox([code_report(False)]), route="code")
    result = await orch.ask(CODE_PROMPT)
    assert result.text.startswith(COULD_NOT) and "a - b" not in result.text


async def test_degenerate_output_counts_as_a_failed_check() -> None:
    loop = "\n".join(["I like cats."] * 6)
    assert degenerate(loop) and not degenerate("one\ntwo\nthree\nfour")
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), [loop])
    orch = await make([client], roster(spec("chatter", (SMOL,))), route="chat")
    result = await orch.ask("tell me about cats")
    assert result.text.startswith(COULD_NOT)


def test_extract_code_takes_the_first_python_block() -> None:
    assert extract_code("Here:\n```python\nprint(1)\n```\nand ```python\nprint(2)\n```") == "print(1)\n"
    assert extract_code("no code here") is None


async def test_tool_calls_land_in_the_ledger_with_named_columns(tmp_path) -> None:
    client = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["print(31)\n```"])
    orch = await make([client], roster(math_spec()), sandbox=FakeSandbox([ran("31")]))
    result = await orch.ask(WORD)
    ledger = Ledger(tmp_path / "ledger.db")
    rec = to_record(result, Settings(data_dir=tmp_path))
    ledger.record(rec)
    (row,) = ledger.query("SELECT * FROM tool_calls")
    assert row["tool"] == "python" and row["ok"] == 1 and row["outcome"] == "printed 31"
    assert json.loads(row["arguments"]) == {"code": "print(31)\n"} and row["seconds"] > 0 and row["joules"] > 0
    assert row["answer_id"] == rec.answer_id and row["n"] == 0
    assert "m004_tool_calls" in [r["name"] for r in ledger.query("SELECT name FROM _migrations")]


async def test_an_unsure_earlier_answer_stands_when_the_stronger_one_is_proven_wrong() -> None:
    """Unsure is not wrong: when the next rung's answer fails a check, the first rung's answer stands."""
    loop = "\n".join(["Gracias gracias."] * 6)
    small = FakeNodeClient(node_info("a", {SMOL: 100}), words=("Gracias.",), logprob=-3.0)
    big = ScriptedNodeClient(node_info("b", {GEMMA: 50}), [loop])
    orch = await make([small, big], roster(spec("translator", (SMOL, GEMMA), min_mean_logprob=-1.0)),
                      route="chat")
    result = await orch.ask("Translate 'thank you' into Spanish")
    assert result.text == "Gracias."
    assert [a.outcome for a in result.attempts] == ["escalated", "answered"]
    assert any("answer stands, though it was unsure" in n for n in result.notes), result.notes
    assert not result.unanswered


async def test_a_looping_answer_is_stopped_as_soon_as_it_repeats() -> None:
    """The stream is closed when the text starts repeating, not after max_tokens."""
    looping = ScriptedNodeClient(node_info("a", {SMOL: 100}), [" ".join(["I like cats.\n"] * 40)])
    orch = await make([looping], roster(spec("chatter", (SMOL,), max_tokens=512)), route="chat")
    result = await orch.ask("tell me about cats")
    (attempt,) = result.attempts
    assert attempt.completion_tokens < 40 and attempt.finish is not None and attempt.finish.value == "cancelled"
    assert any("repeating itself" in n for n in result.notes), result.notes
    assert result.text.startswith(COULD_NOT)


async def test_a_stopped_loop_on_a_node_without_a_j_per_token_figure_still_costs_its_time() -> None:
    """The embedded node advertises no J/token (no self-benchmark): a looping answer covey stopped is
    charged by the time the node worked, not zero, and the attempt keeps its seconds."""
    looping = ScriptedNodeClient(node_info("a", {SMOL: 100}, jpt=0.0), [" ".join(["I like cats.\n"] * 40)])
    orch = await make([looping], roster(spec("chatter", (SMOL,), max_tokens=512)), route="chat")
    result = await orch.ask("tell me about cats")
    (attempt,) = result.attempts
    assert attempt.finish is not None and attempt.finish.value == "cancelled"
    assert attempt.seconds > 0 and attempt.energy.joules > 0
    assert "W/core" in attempt.energy.components[0].source


async def test_code_the_prompts_tests_prove_right_stands_despite_low_log_probs() -> None:
    # Unsure by its log-probs (mean -3 < -1), but the prompt's tests passed: the cheap right answer stands.
    small = ScriptedNodeClient(node_info("a", {SMOL: 100}), [FIXED], logprob=-3.0)
    big = ScriptedNodeClient(node_info("b", {GEMMA: 50}), [FIXED])
    unsure_coder = spec("coder", (SMOL, GEMMA), routes=("code",), checker="python_parses", min_mean_logprob=-1.0)
    orch = await make([small, big], roster(unsure_coder), sandbox=FakeSandbox([code_report(True)]), route="code")
    result = await orch.ask(CODE_PROMPT)
    assert result.model == SMOL and not big.seen and [a.outcome for a in result.attempts] == ["answered"]
    conf = result.attempts[0].confidence
    assert conf.passed and conf.verified == "1 test(s) from the prompt passed in the sandbox"
    assert "mean token log-prob -3.00 < -1.00, but verified" in conf.reason


async def test_code_with_no_tests_in_the_prompt_is_not_verified_by_running() -> None:
    # Running cleanly proves nothing about what the code computes: the log-probs still decide.
    small = ScriptedNodeClient(node_info("a", {SMOL: 100}), [FIXED], logprob=-3.0)
    big = ScriptedNodeClient(node_info("b", {GEMMA: 50}), [FIXED])
    unsure_coder = spec("coder", (SMOL, GEMMA), routes=("code",), checker="python_parses", min_mean_logprob=-1.0)
    box = FakeSandbox([ran("")])
    orch = await make([small, big], roster(unsure_coder), sandbox=box, route="code")
    result = await orch.ask("Write a Python function add(a, b) that returns their sum.")
    assert [a.outcome for a in result.attempts] == ["escalated", "answered"] and result.model == GEMMA
    assert not result.attempts[0].confidence.verified
