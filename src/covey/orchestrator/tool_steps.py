"""Graph steps that use tools: answer without a model, solve by program, verify, and settle the answer.

* `solve` (after classify): a prompt that is nothing but an expression, an equation, a percentage or
  a unit conversion is answered exactly by sympy or pint; no model runs. A math word problem whose
  likeliest expression the fitted ranker is sure of (`ranker_confidence`) is answered with it, also with
  no model, and the answer says which expression over the question's numbers gave it (`ranked_answer`).
* `program` (instead of generate, for math word problems): the model writes a short Python program,
  the sandbox runs it, and the answer quotes what it printed; a failing program is repaired once with
  its error, then the rung counts as failed (assess escalates).
* `verify` (before assess): the answer is checked with the tools: its final number against what the
  question computes to, its code run with the tests or doctests the prompt gives (repaired once with
  the error). A proven failure fails assess's confidence, so the cascade escalates.
* `settle` (before record): an answer a check proved wrong never stands: the tool's verified value
  does (or the result of the model's own tool call, covey.orchestrator.tool_calls), or a plain
  "I could not get this right" with what was tried. A Notice of kind "replaced"
  tells the stream which answer stands.

Every tool call lands in ``state["tool_calls"]`` (and so in the result and the ledger) with its time
and joules; its joules are part of the orchestrator's own share.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from covey.agents.spec import AgentSpec
from covey.errors import CoveyError
from covey.estimates import WATTS_PER_CORE
from covey.orchestrator.graph import Deps, State
from covey.orchestrator.program_choices import choice_constraint, choice_messages
from covey.orchestrator.results import Attempt, Notice, Token, ToolCallRecord
from covey.tools.testing import WrongClaim
from covey.types import (
    Constraint, Energy, EnergyComponent, EnergyMethod, GenerateFinal, GenerateRequest, Message, ModelId, RequestId, TokenPiece,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

COULD_NOT = "I could not get this right."


def could_not(text: str) -> bool:
    """Whether an answer is covey's "I could not get this right" (no answer passed its checks)."""
    return text.lstrip().startswith(COULD_NOT)
PROGRAM_MAX_TOKENS = 160
PROGRAM_START = "```python\n"  # the reply is begun for the model: a small one then writes code, not prose

PROGRAM_SYSTEM = ("You solve math word problems by writing a short Python program. Reply with only one "
                  "```python code block. Put each number from the problem in a variable, compute the answer "
                  "step by step, and end with print(answer).")
PROGRAM_EXAMPLES = (  # written for covey (not from any evaluation set): one- and two-step problems
    ("A shop sells pens at 3 dollars each. Ann buys 4 pens and pays with a 20 dollar bill. How much change does "
     "she get?",
     "```python\nprice = 3\npens = 4\npaid = 20\ncost = price * pens\nanswer = paid - cost\nprint(answer)\n```"),
    ("A baker makes 45 rolls and puts them into bags of 5. How many bags does he fill?",
     "```python\nrolls = 45\nper_bag = 5\nanswer = rolls / per_bag\nprint(answer)\n```"),
    ("Kim runs 4 km every day for 2 weeks. How many km does she run?",
     "```python\nkm_per_day = 4\ndays = 2 * 7\nanswer = km_per_day * days\nprint(answer)\n```"),
)
PROGRAM_EXAMPLE = PROGRAM_EXAMPLES[0]

PROGRAM_GRAMMAR = r"""
root   ::= line{1,12} "print(" name ")\n```"
line   ::= name " = " expr "\n"
expr   ::= term (" " op " " term)*
term   ::= number | name | "(" expr ")" | func "(" expr (", " expr)* ")"
op     ::= "+" | "-" | "*" | "/" | "//" | "%" | "**"
func   ::= "round" | "abs" | "min" | "max"
number ::= [0-9]+ ("." [0-9]+)?
name   ::= [a-z] [a-z0-9_]{0,24}
"""
"""What a program may be (after the opening fence covey writes): up to 12 assignments of arithmetic, then
``print(name)`` and the closing fence. A small model constrained by it always writes a program that
parses and prints one number; the node applies it (protocol version 2) as llama.cpp's GBNF grammar."""
PROGRAM_CONSTRAINT = Constraint(kind="grammar", text=PROGRAM_GRAMMAR)

_QUANTITY = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
IMPLIED_NUMBERS = {"half": "2", "twice": "2", "double": "2", "triple": "3", "dozen": "12", "week": "7",
                   "hour": "60", "minute": "60", "percent": "100", "%": "100", "year": "12", "quarter": "4"}
"""Numbers a word problem implies without writing them (a dozen is 12, a week 7 days, 25% is 25/100)."""


def question_numbers(prompt: str) -> list[str]:
    """The numbers a word problem states or implies, in order, without repeats ('1,000' -> '1000')."""
    found = stated_numbers(prompt)
    lower = prompt.lower()
    found += [n for word, n in IMPLIED_NUMBERS.items() if word in lower]
    return list(dict.fromkeys(n.rstrip(".") for n in [*found, "1", "2"] if n))


def program_constraint_for(prompt: str) -> Constraint:
    """`PROGRAM_GRAMMAR` with its numbers limited to the ones the problem states or implies: a small model
    can then only combine the problem's own quantities (it cannot invent a 900 or drop a digit)."""
    numbers = question_numbers(prompt)
    alternatives = " | ".join(f'"{n}"' for n in sorted(numbers, key=len, reverse=True))
    grammar = re.sub(r"^number ::= .*$", f"number ::= {alternatives}", PROGRAM_GRAMMAR, flags=re.M)
    return Constraint(kind="grammar", text=grammar)

_FENCE = re.compile(r"```(?:python|py|python3)?[^\n]*\n(.*?)(?:```|\Z)", re.S | re.I)
_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?")
_PROMPT_TESTS = re.compile(r"^\s*(assert\s.+)$", re.M)
_TOOL_FOR_KIND = {"expression": "calculator", "equation": "solve", "percent": "percent", "conversion": "convert_units"}


# -- steps -----------------------------------------------------------------------------------------------

async def solve(state: State, deps: Deps) -> dict[str, Any]:
    """Answer a bare expression, equation, percentage or conversion with the tools (no model); reset this turn's fields."""
    spec = deps.agents.get(state["agent"])
    fresh: dict[str, Any] = {"tool_calls": (), "direct_model": None, "check_failure": None, "verified": None,
                             "standing_text": None, "standing_attempt": None,
                             "unsure": None, "program_aided": wants_program(spec, deps), "tool_results": (),
                             "call_final": None, "cued_tools": cued_for(spec, state["prompt"], deps)}
    if not deps.settings.tool_answers:
        return fresh
    from covey.tools.questions import answer_directly

    direct, seconds, energy = await tool_work(deps, answer_directly, state["prompt"])
    own = (*state.get("own_energy", ()), energy)
    notes = tuple(state.get("notes", ()))
    if direct is None and (resolved := follow_up(state)) is not None:
        direct, seconds, energy = await tool_work(deps, answer_directly, resolved[0])
        own = (*own, energy)
        if direct is not None:
            notes = (*notes, resolved[1])
    if direct is None and fresh["program_aided"] and deps.settings.ranker_answers:
        from covey.orchestrator.tool_calls import BEFORE_PROGRAM

        # a one-sentence date or unit question ("What weekday was 14 July 1789?") is the tool call's, not a sum's
        tool_question = one_sentence(state["prompt"]) and bool(BEFORE_PROGRAM.intersection(fresh["cued_tools"]))
        ranked = await ranked_answer(deps, state["prompt"], tool_question=tool_question)
        if ranked is not None:
            reply, call, note = ranked
            return {**fresh, "own_energy": (*own, call.energy), "direct_reply": reply,
                    "direct_model": "tool:expression_ranker", "tool_calls": (call,), "notes": (*notes, note)}
    if direct is None:
        return {**fresh, "own_energy": own}
    question = direct.question
    tool = _TOOL_FOR_KIND.get(question.kind, "calculator")
    call = ToolCallRecord(tool=tool, arguments={"expression": question.expression}, ok=True,
                          outcome=question.statement, seconds=seconds, energy=energy)
    note = f"computed exactly with {question.method} ({question.expression}); no model was run"
    reply = f"{direct.text}."
    if question.kind == "percent":  # "50 is 25% of 200" ends on 200: say the asked number plainly
        reply = f"The answer is {format_number(str(question.values[0]))}% ({direct.text})."
    return {**fresh, "own_energy": own, "direct_reply": reply, "direct_model": f"tool:{tool}",
            "tool_calls": (call,), "notes": (*notes, note)}


async def ranked_answer(deps: Deps, prompt: str, *, tool_question: bool = False) -> tuple[str, ToolCallRecord, str] | None:
    """A word problem answered by the fitted expression ranker with no model: its likeliest value when it is
    at least `ranker_confidence` sure; below that, the likeliest value said to be unchecked (`ranker_choice`
    'ranker', and no date or unit tool is cued: "What weekday was 14 July 1789?" is no sum of its numbers) or
    None, the model's turn to choose ('model'); "I could not get this right" when even the
    likeliest is below `ranker_floor`. The reply, the tool-call record and the note."""
    from covey.orchestrator.program_choices import confident, offer_for

    try:
        offer, seconds, energy = await tool_work(deps, offer_for, prompt, deps.settings.program_candidate_count)
    except CoveyError as exc:  # the shipped ranker weights are missing or stale
        logger.warning("no ranked answer: %s", exc.message)
        return None
    settings = deps.settings
    best = offer.probabilities[0] if offer is not None else 0.0
    sure = confident(offer, settings.ranker_confidence)
    if offer is not None and (sure or (settings.ranker_choice == "ranker" and best >= settings.ranker_floor
                                       and not tool_question)):
        expression, shown, bound = offer.expressions[0], _exact(offer.values[0]), f"{settings.ranker_confidence:g}"
        if sure:
            outcome = f"{expression} = {shown} (p={best:.2f} >= {bound})"
            note = (f"computed as {expression} = {shown} from the numbers in the question: the fitted expression "
                    f"ranker gave it p={best:.2f} (>= {bound}); no model was run")
            reply = f"The answer is {shown} (computed as {expression} = {shown} from the numbers in the question)."
        else:
            outcome = f"{expression} = {shown} (p={best:.2f} < {bound}: the likeliest reading, unchecked)"
            note = (f"unchecked: {expression} = {shown} is the likeliest reading of the question's numbers, at "
                    f"p={best:.2f} (below {bound}, so not sure){_unused(expression, prompt)}; no model was run")
            reply = f"The answer is {shown} (the likeliest reading: {expression} = {shown}; not checked)."
        call = ToolCallRecord(tool="expression_ranker", arguments={"expression": expression}, ok=True,
                              outcome=outcome, seconds=seconds, energy=energy)
        return reply, call, note
    if settings.ranker_floor > 0 and best < settings.ranker_floor:
        tried = (f"the likeliest expression, {offer.expressions[0]}, had p={best:.2f}" if offer is not None
                 else "no expression of one or two operations over its numbers")
        call = ToolCallRecord(tool="expression_ranker", arguments={"prompt_numbers": question_numbers(prompt)},
                              ok=False, outcome=f"nothing plausible ({tried}; floor {settings.ranker_floor:g})",
                              seconds=seconds, energy=energy)
        return (f"{COULD_NOT} No expression over the numbers in the question is plausible enough ({tried}).", call,
                f"no model was run: the ranker found nothing plausible ({tried})")
    return None


def _exact(value) -> str:
    from covey.tools.candidates import value_text

    return value_text(value)


_BACK_REFERENCE = re.compile(r"\b(?:that number|that result|the result|the answer|that|it)\b", re.I)
_PROSE_NUMBER = re.compile(r"(?<![\w:\[\](.=-])-?\d[\d,]*(?:\.\d+)?(?![\w\](])")
_SMALL_NUMBERS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}


def follow_up(state: State) -> tuple[str, str] | None:
    """A one-sentence follow-up that points at an earlier answer ("And what is that number plus one?")
    rewritten with the final number of the latest answer that has one ("What is 391 plus 1?"), and the
    note that says so; None when the prompt points at nothing or no earlier answer has a number."""
    prompt = state["prompt"].strip()
    pointer = _BACK_REFERENCE.search(prompt)
    if pointer is None or not one_sentence(prompt):
        return None
    # the latest answer that states a number in prose: "that number" after a poem is still the sum
    # before it, and code's numbers ("s[::-1]") are not an answer's. Answers to questions that state a
    # number come first: a poem that happens to quote "17 times 23" is not where the user's number is.
    history = list(state.get("history") or ())
    answers = [(history[i - 1].content if i and history[i - 1].role == "user" else "", m.content)
               for i, m in enumerate(history) if m.role == "assistant"]
    usable = [(asked, said) for asked, said in reversed(answers)
              if "```" not in said and "def " not in said
              and not could_not(said)]  # a failure's numbers are what was tried, not an answer
    numbers = next((found for asked, said in usable if re.search(r"\d", asked)
                    and (found := _PROSE_NUMBER.findall(said))), None) or next(
        (found for _, said in usable if (found := _PROSE_NUMBER.findall(said))), [])
    if not numbers:
        return None
    number = numbers[-1].replace(",", "").rstrip(".")
    rewritten = _BACK_REFERENCE.sub(number, prompt, count=1)
    rewritten = re.sub(r"^(?:and|so|then|now)\b[,\s]*", "", rewritten, flags=re.I)
    rewritten = re.sub(r"\b(" + "|".join(_SMALL_NUMBERS) + r")\b",
                       lambda m: _SMALL_NUMBERS[m.group(1).lower()], rewritten, flags=re.I)
    return (rewritten[:1].upper() + rewritten[1:],
            f"'{pointer.group(0)}' read as {number}, the number of an earlier answer")


def one_sentence(text: str) -> bool:
    """Whether `text` is at most one sentence (no '.', '!' or '?' followed by more text)."""
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]) <= 1


async def tool_work(deps: Deps, fn: Callable[..., T], *args: Any) -> tuple[T, float, Energy]:
    """`fn(*args)` run off the event loop as the orchestrator's own tool work: its result, seconds and joules."""
    window = deps.meter.open("tool") if deps.meter is not None else None
    start = time.perf_counter()
    result = await asyncio.to_thread(fn, *args)
    seconds = time.perf_counter() - start
    return result, seconds, window.close() if window is not None else Energy()


def after_place(state: State) -> str:
    """generate, program (a math word problem solved by a program), call_tool (the model makes a tool call
    first) or record (a direct reply)."""
    from covey.orchestrator.tool_calls import call_before_program, wants_tool_call

    if not state.get("placement"):
        return "record"
    if state.get("program_aided") and not (call_before_program(state) or state.get("tool_results")):
        return "program"
    return "call_tool" if wants_tool_call(state) else "generate"


async def program(state: State, deps: Deps) -> dict[str, Any]:
    """The model writes Python programs, the sandbox runs them, the answer quotes the result.

    The first program is greedy; with ``program_votes`` > 1 more are sampled and the value most of them
    print stands (self-consistency). Where the node speaks protocol version 2 the programs are constrained
    by `PROGRAM_GRAMMAR` with the problem's own numbers (`program_constraint_for`), so each one parses,
    prints one value and computes only with quantities the problem gives; elsewhere a failing program is
    repaired once with its error. Too little agreement makes the rung unsure (assess escalates)."""
    spec = deps.agents.get(state["agent"])
    placement = state["placement"]
    assert placement is not None
    attempt_no = len(state.get("attempts", ()))
    votes = max(1, deps.settings.program_votes)
    constrained = supports_constraints(placement.node)
    emit(Notice(kind="tool", text=f"{placement.model_id} is writing {'a program' if votes == 1 else f'{votes} programs'}"
                                  f"{' (grammar-constrained)' if constrained else ''}; the sandbox runs them"))
    calls = list(state.get("tool_calls", ()))
    own = list(state.get("own_energy", ()))
    offer = None
    if constrained and deps.settings.program_candidates:
        offer, call = await offer_candidates(deps, state["prompt"])
        if call is not None:
            calls.append(call)
            own.append(call.energy)
    messages = choice_messages(state["prompt"]) if offer is not None else program_messages(state["prompt"])
    constraint = (choice_constraint(offer) if offer is not None else program_constraint_for(state["prompt"])
                  if constrained else None)
    finals: list[GenerateFinal] = []
    logprobs: list[float] = []
    tried: list[str] = []
    values: list[str] = []
    complete: list[str] = []  # values of programs that use every number the problem states
    programs: dict[str, str] = {}  # each value with the first program that printed it
    needed = max(1, math.ceil(deps.settings.program_agreement * votes - 1e-9))
    for sample in range(votes):
        value, error, code = None, "", None
        round_messages = list(messages)
        for round_no in range(1 if constrained else 2):  # without a grammar: the program, then one repair
            try:
                text, lps, final = await generate_whole(
                    deps, spec, state, round_messages, prefill=PROGRAM_START,
                    temperature=0.0 if sample == 0 else deps.settings.program_vote_temperature,
                    seed=sample, constraint=constraint)
            except CoveyError as exc:
                tried.append(f"{placement.model_id} could not write a program: {exc.message}")
                break
            finals.append(final)
            if sample == 0:
                logprobs.extend(lps)
            code = extract_code(text)
            if code is None:
                error = "the reply has no Python code block"
            else:
                call, value, error = await run_program(deps, code)
                calls.append(call)
                own.append(call.energy)
            if value is not None:
                break
            tried.append(f"{placement.model_id}'s program {'(repaired) ' if round_no else ''}failed: {error}")
            round_messages += [Message(role="assistant", content=text),
                               Message(role="user", content=f"That program failed: {error}. Reply with the corrected "
                                                            "program in one ```python block that ends with print(answer).")]
        if value is not None:
            values.append(value)
            if code is not None:
                programs.setdefault(value, code)
            if code is not None and uses_every_number(code, state["prompt"]):
                complete.append(value)
        if sample == 0 and not values and tried and "could not write" in tried[-1]:
            break  # the node cannot run this rung at all: more samples would fail the same way
        if votes > 1 and complete and _majority(complete)[1] >= needed:
            break  # enough programs that use every stated number agree: the rest could not outvote them
    answer, unsure, best = "", None, ""
    if values:
        # Programs that use every quantity the problem states are the ones worth believing.
        best, count = _majority(complete or values)
        answer = f"The answer is {best}."
        if votes > 1 and count < needed:
            unsure = (f"only {count} of {votes} programs agree on {best} "
                      f"(values: {', '.join(values)}; {deps.settings.program_agreement:.0%} needed)")
    if answer:
        emit(Token(text=answer, attempt=attempt_no))
    final = combined_final(finals, placement)
    notes = state.get("notes", ())
    if answer:
        notes = (*notes, _program_note(placement.model_id, state["prompt"], offer, programs.get(best, ""), len(values),
                                       _majority(complete or values)[1] if votes > 1 else 0))
    else:
        notes = (*notes, *tried)
    return {"text": answer, "logprobs": tuple(logprobs), "final": final, "tool_calls": tuple(calls),
            "own_energy": tuple(own), "notes": notes, "unsure": unsure}


_PERCENT_OF_TEXT = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(?:%|percent\b)", re.I)


def _unused(expression: str, prompt: str) -> str:
    """', leaving out 5' when the chosen expression does not use every number the problem states."""
    used = set(stated_numbers(expression))
    percents = {m.replace(",", "") for m in _PERCENT_OF_TEXT.findall(prompt)}  # 25% is written 0.25
    left = [n for n in stated_numbers(prompt)
            if n not in used and not (n in percents and f"{float(n) / 100:g}" in used)]
    return f", leaving out {', '.join(left)}" if left else ""



def _program_note(model_id: str, prompt: str, offer: Any, code: str, programs: int, agreeing: int) -> str:
    """What the program did, said as unchecked: the sandbox computed the value, but nothing proves that the
    expression is what the problem asks (Tom's apples: '3 * 12' printed 36, leaving out the 5 eaten)."""
    from covey.orchestrator.program_choices import chosen_expression

    agreed = f"; {agreeing} of {programs} programs agree" if agreeing else ""
    if offer is not None:
        expression = chosen_expression(code)
        chose = f"chose {expression}" if expression else "chose an expression"
        return (f"unchecked: {model_id} {chose} among the {len(offer.expressions)} likeliest over the problem's "
                f"numbers and the sandbox computed it{agreed}{_unused(expression or '', prompt)}; nothing proves it "
                "is what the problem asks")
    return (f"unchecked: a program {model_id} wrote, run in the sandbox{agreed}{_unused(code, prompt)}; nothing "
            "proves it computes what the problem asks")


async def offer_candidates(deps: Deps, prompt: str):
    """The candidate expressions the program may choose from (covey.orchestrator.program_choices), as tool work
    with its record; (None, record) when the problem has no expression of one or two operations to offer."""
    from covey.orchestrator.program_choices import offer_for

    try:
        offer, seconds, energy = await tool_work(deps, offer_for, prompt, deps.settings.program_candidate_count)
    except CoveyError as exc:  # the shipped ranker weights are missing or stale
        logger.warning("no candidate expressions: %s", exc.message)
        return None, None
    if offer is None:
        return None, ToolCallRecord(tool="candidates", arguments={"prompt_numbers": question_numbers(prompt)},
                                    ok=False, outcome="no expression of one or two operations over the problem's "
                                    "numbers; the model writes a free program", seconds=seconds,
                                    energy=energy)
    return offer, ToolCallRecord(tool="candidates", arguments={"offered": list(offer.expressions)}, ok=True,
                                 outcome=f"{len(offer.expressions)} likeliest expressions over the problem's "
                                 f"numbers; ranked first: {offer.expressions[0]} "
                                 f"(p={offer.probabilities[0]:.2f})", seconds=seconds, energy=energy)


def program_messages(prompt: str) -> list[Message]:
    """The system prompt, the few-shot examples as earlier turns, then the problem."""
    messages = [Message(role="system", content=PROGRAM_SYSTEM)]
    for question, code in PROGRAM_EXAMPLES:
        messages += [Message(role="user", content=question), Message(role="assistant", content=code)]
    return [*messages, Message(role="user", content=prompt)]


def stated_numbers(text: str) -> list[str]:
    """The numbers a text writes, in order, once each, without thousands commas ('1,000' -> '1000')."""
    return list(dict.fromkeys(m.replace(",", "") for m in _QUANTITY.findall(text)))


def uses_every_number(code: str, prompt: str) -> bool:
    """Whether the program computes with every number the problem states (a word problem rarely gives one idly)."""
    return set(stated_numbers(prompt)) <= set(stated_numbers(code))


def supports_constraints(node) -> bool:
    """Whether the node applies a grammar: covey nodes of protocol version 2 and up (not OpenAI-style servers)."""
    from covey.types import CONSTRAINED_PROTOCOL

    return node.source != "openai" and node.protocol_version >= CONSTRAINED_PROTOCOL


def _majority(values: list[str]) -> tuple[str, int]:
    """The most common value and its count (ties: the earliest, so the greedy program's value wins)."""
    from collections import Counter

    counts = Counter(values)
    top = max(counts.values())
    best = next(v for v in values if counts[v] == top)
    return best, top


async def verify(state: State, deps: Deps) -> dict[str, Any]:
    """Check the answer with the tools; a code answer that fails its run or tests is repaired once."""
    if not deps.settings.verify_answers:
        return {"check_failure": None, "verified": None}
    spec = deps.agents.get(state["agent"])
    text = state.get("text", "")
    if is_code_agent(spec) and extract_code(text) is not None:
        return await _verify_code(state, deps, spec)
    from covey.tools.questions import check_answer

    checked = await asyncio.to_thread(check_answer, state["prompt"], text) if text.strip() else None
    if checked is not None and not checked.ok and checked.stated is not None:
        return {"check_failure": f"checked with the tools: {checked.reason}", "verified": None}
    if state.get("program_aided") and text.strip() and (why := count_failure(state["prompt"], text)):
        return {"check_failure": why, "verified": None}
    if degenerate(text):
        return {"check_failure": "the answer repeats itself (degenerate output)", "verified": None}
    if checked is not None and checked.ok:  # the tools computed the value the answer states
        return {"check_failure": None, "verified": f"checked with the tools: {checked.reason}"}
    return {"check_failure": None, "verified": None}


def count_failure(prompt: str, answer: str) -> str | None:
    """Why the answer cannot be right when the question counts things ('how many apples'): the number it
    states is fractional or negative. None when the question counts a unit (hours, km) or the count is whole."""
    from covey.orchestrator.program_choices import counted_noun
    from covey.tools.questions import stated_number

    noun = counted_noun(prompt)
    stated = stated_number(answer) if noun else None
    if stated is None or (float(stated).is_integer() and stated >= 0):
        return None
    return f"the question counts {noun}, so the answer must be a whole number of at least 0, not {format_number(str(stated))}"


async def settle(state: State, deps: Deps) -> dict[str, Any]:
    """Make sure an answer a check proved wrong is not the one that stands."""
    attempts = state.get("attempts", ())
    last = attempts[-1] if attempts else None
    conf = last.confidence if last is not None else None
    proven_wrong = last is not None and conf is not None and not conf.check_ok
    empty = last is not None and not last.text.strip()
    if last is not None and conf is not None and not (proven_wrong or empty) and not conf.passed:
        return _surest_unsure(state, attempts)
    if not deps.settings.verify_answers or not (proven_wrong or empty):
        return {}
    assert last is not None  # proven wrong or empty: there is an attempt
    from covey.tools.questions import read_question

    stands: int | None = None  # the attempt whose answer stands, when it is an earlier rung's
    tried = "; ".join(f"{a.model_id}: {a.confidence.reason if a.confidence else a.reason}" for a in attempts
                      if a.outcome in ("answered", "escalated")) or "no model could run it"
    question = await asyncio.to_thread(read_question, state["prompt"])
    notes = state.get("notes", ())
    # An earlier rung's answer that was only unsure (no check proved it wrong) beats no answer at all.
    unsure = [a for a in attempts[:-1] if a.outcome == "escalated" and a.text.strip()
              and (a.confidence is None or a.confidence.check_ok)]
    if question is not None and proven_wrong:
        standing = f"The answer is {question.shown}."
        why = f"{last.model_id}'s answer failed its check; the tools' value stands: {question.statement} " \
              f"({question.method})"
    elif results := state.get("tool_results"):  # the model's own tool call (covey.orchestrator.tool_calls)
        from covey.orchestrator.tool_calls import answer_start

        standing = answer_start(results).strip() or "; ".join(results)
        failed = last.confidence.reason if last.confidence else "it was empty"
        why = f"{last.model_id}'s answer failed its check ({failed}); the result of its tool call stands"
    elif unsure:
        earlier = unsure[-1]
        stands = attempts.index(earlier)
        standing = earlier.text
        failed = last.confidence.reason if last.confidence else "it was empty"
        why = (f"{last.model_id}'s answer failed its check ({failed}); {earlier.model_id}'s answer stands, "
               f"though it was unsure ({earlier.confidence.reason if earlier.confidence else 'no check ran'})")
    else:
        standing = f"{COULD_NOT} Tried: {tried}."
        why = f"no answer passed its checks ({tried})"
    if last.text.strip():
        emit(Notice(kind="replaced", text=f"the answer above is withdrawn: {why}"))
    emit(Token(text=standing, attempt=len(attempts)))
    if could_not(standing):  # the answer itself says what was tried: a note would say it a second time
        return {"standing_text": standing, "standing_attempt": stands}
    return {"standing_text": standing, "standing_attempt": stands, "notes": (*notes, why)}


# -- helpers ---------------------------------------------------------------------------------------------

def emit(event: Token | Notice) -> None:
    from covey.orchestrator.steps import emit as send

    send(event)


def wants_program(spec: AgentSpec, deps: Deps) -> bool:
    return deps.settings.program_aided and "math" in spec.routes


def cued_for(spec: AgentSpec, prompt: str, deps: Deps) -> tuple[str, ...]:
    """The agent's tools the model may call for this prompt (none when `model_tool_calls` is off)."""
    if not deps.settings.model_tool_calls or not spec.tools:
        return ()
    from covey.orchestrator.tool_calls import cued_tools

    return cued_tools(prompt, spec.tools)


def is_code_agent(spec: AgentSpec) -> bool:
    return "code" in spec.routes or spec.checker == "python_parses"


def extract_code(text: str) -> str | None:
    """The first Python block of a reply (or the whole reply when it is bare Python that parses)."""
    import ast

    from covey.text import balanced_fences

    text = balanced_fences(text)
    blocks = [b for b in _FENCE.findall(text) if b.strip()]
    code = blocks[0] if blocks else None
    if code is None and "```" not in text and re.search(r"^\s*(print\(|def |\w+\s*=)", text, re.M):
        code = text
    if code is None:
        return None
    try:
        ast.parse(code)
    except SyntaxError:
        return code if blocks else None  # a fenced block that does not parse is still the code (to repair)
    return code


def degenerate(text: str) -> bool:
    """One line or paragraph repeated: a small model stuck in a loop."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) >= 4 and len(set(lines)) <= len(lines) // 3:
        return True
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    return any(paragraphs.count(p) >= 3 for p in set(paragraphs))


def sandbox_for(deps: Deps):
    if deps.sandbox is None:
        from covey.tools.sandbox import Sandbox, SandboxLimits

        deps.sandbox = Sandbox(SandboxLimits(wall_seconds=5.0, cpu_seconds=3))
    return deps.sandbox


async def run_program(deps: Deps, code: str) -> tuple[ToolCallRecord, str | None, str]:
    """Run `code` in the sandbox (off the event loop): the call record, the number it printed, and the error."""
    box = sandbox_for(deps)
    result = await asyncio.to_thread(box.run, code)
    value, error = None, result.error
    if result.ok:
        numbers = _NUMBER.findall(result.stdout)
        if numbers:
            value = format_number(numbers[-1])
        else:
            error = f"it printed no number (it printed: {result.stdout.strip()[:200]!r})"
    call = ToolCallRecord(tool="python", arguments={"code": code}, ok=value is not None,
                          outcome=f"printed {value}" if value is not None else error, seconds=result.seconds,
                          energy=sandbox_energy(deps, result.seconds))
    return call, value, error


def sandbox_energy(deps: Deps, seconds: float) -> Energy:
    # the meter's figure, or the default estimate (the sandbox is a child process: not in our CPU time)
    watts = getattr(deps.meter, "watts_per_core", WATTS_PER_CORE)
    return Energy.of([EnergyComponent(name="sandbox", joules=seconds * watts, marginal_joules=seconds * watts,
                                      method=EnergyMethod.ESTIMATED, source=f"sandbox wall time x {watts:g} W/core",
                                      uncertainty=1.0)])


def format_number(raw: str) -> str:
    """'391.0' -> '391', '12.50' -> '12.5', '1,000' -> '1000'."""
    try:
        value = float(raw.replace(",", ""))
    except ValueError:
        return raw
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{round(value, 6):g}" if abs(value) < 1e6 else f"{value:.10g}"


async def generate_whole(deps: Deps, spec: AgentSpec, state: State, messages: list[Message],
                         max_tokens: int = PROGRAM_MAX_TOKENS, stream_attempt: int | None = None, prefill: str = "",
                         temperature: float = 0.0, seed: int | None = None, constraint: Constraint | None = None
                         ) -> tuple[str, list[float], GenerateFinal]:
    """One whole generation on the current placement (streamed to the user only when `stream_attempt` is set)."""
    from covey.orchestrator.steps import MIN_RUNG_SECONDS, budget_left

    placement = state["placement"]
    assert placement is not None
    req = GenerateRequest(request_id=RequestId(uuid.uuid4().hex[:12]), model_id=ModelId(placement.model_id),
                          messages=tuple(messages),
                          sampling=spec.sampling.model_copy(update={"temperature": temperature, "seed": seed}),
                          max_tokens=min(max_tokens, spec.max_tokens * 2),
                          deadline_ms=max(int(budget_left(state, spec) * 1000), int(MIN_RUNG_SECONDS * 1000)),
                          continue_from=prefill, constraint=constraint)
    text, final = prefill, None
    lps: list[float] = []
    async for ev in deps.pool.generate(placement.node, req):
        if isinstance(ev, TokenPiece):
            text += ev.text
            lps.extend(ev.logprobs)
            if stream_attempt is not None and ev.text:
                emit(Token(text=ev.text, attempt=stream_attempt))
        else:
            final = ev
    if final is None:
        raise CoveyError(f"node '{placement.node.name}' ended the stream without a final message")
    return text, lps, final


def combined_final(finals: list[GenerateFinal], placement) -> GenerateFinal:
    from covey.types import FinishReason, NodeId, Timings

    if not finals:
        return GenerateFinal(finish_reason=FinishReason.STOP, prompt_tokens=0, completion_tokens=0,
                             timings=Timings(), energy=Energy(), node_id=NodeId(placement.node.node_id),
                             model_id=ModelId(placement.model_id))
    energy = Energy()
    for f in finals:
        energy = energy + f.energy
    t = Timings(queue_ms=sum(f.timings.queue_ms for f in finals), prompt_ms=sum(f.timings.prompt_ms for f in finals),
                generate_ms=sum(f.timings.generate_ms for f in finals),
                total_ms=sum(f.timings.total_ms for f in finals))
    return finals[-1].model_copy(update={"prompt_tokens": sum(f.prompt_tokens for f in finals),
                                         "completion_tokens": sum(f.completion_tokens for f in finals),
                                         "timings": t, "energy": energy})


@dataclass(frozen=True)
class _RanClean:
    """A version of the code that ran but whose example output was wrong, kept in case its repair is no better."""

    update: dict[str, Any]  # the state fields of the answer that carried it
    text: str
    code: str
    wrong: list[WrongClaim]


async def _verify_code(state: State, deps: Deps, spec: AgentSpec) -> dict[str, Any]:
    """Run the answer's code with the prompt's tests; repair once with the error; a second failure is proven wrong.

    Code that fails to run is repaired only when no stronger rung could take over (`stronger_rung_runs`): below
    the top of the ladder the escalation is the repair, and the weak rung's repair is not paid as well.

    A `print(x)  # Output: y` whose y is not what x prints is an error too: the model is asked once to fix
    the code or the comment. If its repair is no better, the version that ran is kept with each wrong
    comment replaced by what the sandbox saw (the code's correctness is then as unknown as any untested code's).
    """
    from covey.orchestrator.steps import answer_max_tokens, stronger_rung_runs
    from covey.tools.testing import run_code_tests, smoke_calls

    given = "\n".join(_PROMPT_TESTS.findall(state["prompt"]))
    calls = list(state.get("tool_calls", ()))
    own = list(state.get("own_energy", ()))
    text = state["text"]
    update: dict[str, Any] = {}
    ran_before: _RanClean | None = None  # a clean run with wrong comments
    for round_no in range(2):
        code = extract_code(text) or ""
        tests = given or smoke_calls(code, state["prompt"])  # no tests given: its functions called once on an ordinary input
        box = sandbox_for(deps)
        report = await asyncio.to_thread(run_code_tests, box, code, tests)
        ran_clean = report.passed or (report.tests_failed == 0 and report.error.startswith("no tests ran"))
        wrong = report.wrong(code) if ran_clean else []
        error = report.error if not ran_clean else f"its example output is wrong: {_claims_text(wrong)}"
        seconds = report.sandbox.seconds if report.sandbox is not None else 0.0
        call = ToolCallRecord(tool="run_code_tests", arguments={"code": code, "tests": tests}, ok=ran_clean and not wrong,
                              outcome=(f"{report.tests_passed} test(s) passed" if ran_clean and not wrong else error),
                              seconds=seconds, energy=sandbox_energy(deps, seconds))
        calls.append(call)
        own.append(call.energy)
        if ran_clean and not wrong:
            verified = (f"{report.tests_passed} test(s) from the prompt passed in the sandbox"
                        if given and report.passed and report.tests_passed > 0 else None)
            return {**update, "tool_calls": tuple(calls), "own_energy": tuple(own), "check_failure": None,
                    "verified": verified}
        if wrong and ran_before is None:  # it ran: kept if nothing better comes (a repair no better may add junk)
            ran_before = _RanClean(update, text, code, wrong)
        placement = state.get("placement")
        if round_no == 1 or placement is None:
            break
        if not ran_clean and stronger_rung_runs(deps, spec, state):
            # A repair on this rung costs a second, longer prompt and the answer again, about what the
            # stronger rung's answer costs, and a small model's repair rarely runs: the escalation is the repair.
            update = {**update, "notes": (*state.get("notes", ()), f"{placement.model_id}'s code failed "
                                          f"when run ({error}); not repaired on this rung: a stronger one takes over")}
            break
        emit(Notice(kind="replaced", text=(f"the code failed when run ({error})" if not ran_clean else
                                           f"the code ran, but its example output is wrong ({_claims_text(wrong)})")
                                          + "; repairing it once"))
        ask = (f"Running that code failed: {error}." if not ran_clean else
               f"That code runs, but {error}. Fix the code if it is wrong, or the comment if the code is right.")
        messages = [*_messages(spec, state), Message(role="assistant", content=text),
                    Message(role="user", content=f"{ask} Reply with the corrected code in one fenced block.")]
        try:
            text, lps, final = await generate_whole(deps, spec, state, messages, max_tokens=answer_max_tokens(spec, state),
                                                    stream_attempt=len(state.get("attempts", ())))
        except CoveyError as exc:
            logger.info("repair failed: %s", exc)
            break
        update = {"text": text, "logprobs": tuple(lps), "final": combined_final([f for f in (state["final"], final) if f is not None], state["placement"])}
    if ran_before is not None:
        paid = {"final": update["final"]} if "final" in update else {}  # a repair that did no better still cost its joules
        return {**ran_before.update, **paid,
                "text": _with_true_outputs(state, ran_before.text, ran_before.code, ran_before.wrong),
                "notes": (*state.get("notes", ()), _claims_note(ran_before.wrong)),
                "tool_calls": tuple(calls), "own_energy": tuple(own), "check_failure": None, "verified": None}
    return {**update, "tool_calls": tuple(calls), "own_energy": tuple(own),
            "check_failure": f"the code failed when run in the sandbox: {report.error}", "verified": None}


def _surest_unsure(state: State, attempts: tuple[Attempt, ...]) -> dict[str, Any]:
    """When the top rung ended unsure, an earlier rung's answer that no check faulted and that its model was
    surer of stands instead (Gemma's four-word poem at mean log-prob -2.45 over SmolLM2's whole one at -1.68).
    Log-probs of two models are not strictly comparable, but a stronger rung that is far less sure of
    its own answer has not earned the right to replace one."""
    last = attempts[-1]
    assert last.confidence is not None
    earlier = [a for a in attempts[:-1] if a.outcome == "escalated" and a.text.strip() and a.confidence is not None
               and a.confidence.check_ok and a.confidence.mean_logprob > last.confidence.mean_logprob + SURER_BY]
    if not earlier:
        return {}
    best = max(earlier, key=lambda a: a.confidence.mean_logprob if a.confidence else float("-inf"))
    assert best.confidence is not None
    why = (f"{last.model_id} was less sure of its answer (mean token log-prob {last.confidence.mean_logprob:.2f}) "
           f"than {best.model_id} of its own ({best.confidence.mean_logprob:.2f}): {best.model_id}'s answer stands")
    emit(Notice(kind="replaced", text=f"the answer above is withdrawn: {why}"))
    emit(Token(text=best.text, attempt=len(attempts)))
    return {"standing_text": best.text, "standing_attempt": attempts.index(best),
            "notes": (*state.get("notes", ()), why)}


SURER_BY = 0.25
"""How much higher (nats per token) an earlier rung's mean log-prob must be for its answer to stand over the
top rung's unsure one: a clear margin, not noise."""


def _claims_text(wrong: list[WrongClaim]) -> str:
    return "; ".join(f"line {w.claim.line} says {w.claim.claimed} but prints {w.actual}" for w in wrong[:3])


def _claims_note(wrong: list[WrongClaim]) -> str:
    return f"the example output in a comment was wrong ({_claims_text(wrong)}): corrected from a run in the sandbox"


def _with_true_outputs(state: State, text: str, code: str, wrong: list[WrongClaim]) -> str:
    """The answer with each wrong `# Output:` comment replaced by what the sandbox saw, shown as the standing answer."""
    from covey.tools.testing import corrected_code

    fixed = corrected_code(code, wrong)
    if code in text:
        new_text = text.replace(code, fixed, 1)
    else:
        new_text = text
        for w in wrong:
            new_text = new_text.replace(w.claim.comment, w.corrected_comment(), 1)
    if new_text != text:
        emit(Notice(kind="replaced", text=f"the answer above is corrected: {_claims_note(wrong)}"))
        emit(Token(text=new_text, attempt=len(state.get("attempts", ()))))
    return new_text


def _messages(spec: AgentSpec, state: State) -> list[Message]:
    from covey.orchestrator.steps import messages_for

    return list(messages_for(spec, state))
