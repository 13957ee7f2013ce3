"""A tool call the model makes: one JSON call, constrained by a schema of the agent's tools so it always parses.

`call_tool` runs between `place` and `generate` for an agent that has tools, on a node that applies
constraints (protocol version 2), when a cue in the prompt says one of its tools may help. The rung's
model is asked for ONE call, constrained by `call_constraint`: a JSON schema whose ``anyOf`` holds
``{"tool": <name>, "arguments": <that tool's parameters>}`` for each cued tool and ``{"tool": "none"}``.
The registry runs it (validated; a bad call is a failed result, never an exception), and a result
is put before the question in the messages the answer is generated from (`steps.messages_for`), so
the answer quotes it.

The gate is `TOOL_CUES`, one regular expression per tool: ordinary chat (no cue) pays no extra
generation, and a tool with no cue is never offered here (``search_documents`` is the `retrieve`
step's job, ``python`` the `program` and `verify` steps'). Only the cued tools are offered: a small
model picks better among two tools than among five.

Every call lands in ``state["tool_calls"]`` (so in the result and the ledger) with the time and
joules of running it; the generation that chose it is kept in ``state["call_final"]`` and counted
in the rung's attempt by `assess` (its tokens and joules are part of the answer's).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any

from covey.errors import CoveyError
from covey.orchestrator.graph import Deps, State
from covey.orchestrator.results import Notice, ToolCallRecord
from covey.types import Constraint, Message

logger = logging.getLogger(__name__)

CALL_MAX_TOKENS = 96
MAX_ARGUMENT_CHARS = 80
"""Strings in the constraint are capped at this length (a tool's own limit may be longer): a small
grammar, and a small model cannot run on inside a string."""
NONE = "none"

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|"
          r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_DATE = (rf"(?:\b\d{{4}}-\d{{1,2}}-\d{{1,2}}\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?"
         rf"{_MONTH}\b|\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b|\b(?:today|tomorrow|yesterday|now)\b)")
_SPAN = r"(?:days?|weeks?|months?|years?)"
_UNIT = (r"(?:km|kilomet(?:er|re)s?|miles?|mi|met(?:er|re)s?|m|cm|mm|centimet(?:er|re)s?|millimet(?:er|re)s?|"
         r"feet|foot|ft|inch(?:es)?|yards?|yd|kg|kilograms?|grams?|g|pounds?|lbs?|ounces?|oz|stones?|tonnes?|tons?|"
         r"lit(?:er|re)s?|l|ml|millilit(?:er|re)s?|gallons?|gal|pints?|quarts?|cups?|fl ?oz|mph|km/h|kph|m/s|knots?|"
         r"°[cf]|deg[cf]|degrees?(?: (?:celsius|fahrenheit))?|celsius|fahrenheit|kelvin|hours?|h|minutes?|min|"
         r"seconds?|s|joules?|j|kj|calories?|kcal|kwh|watts?|w|kw|horsepower|hp|bytes?|kb|mb|gb|tb|kib|mib|gib|"
         r"acres?|hectares?|ha|square (?:feet|met(?:er|re)s|miles|kilomet(?:er|re)s))")

TOOL_CUES: dict[str, re.Pattern[str]] = {name: re.compile(pattern, re.I | re.S) for name, pattern in {
    # "What weekday was 14 July 1789?", "Which day of the week is 2030-01-01?"
    "weekday": rf"\A(?=.*\b(?:weekday|day\s+of\s+the\s+week|what\s+day\s+(?:is|was|will|does|did)|which\s+day)\b)(?=.*{_DATE})",
    # "How many days are there between 1 March and 25 December 2024?", "How long until 1 January 2030?"
    "date_difference": rf"\A(?=.*\b(?:how\s+(?:many|long|old)|number\s+of)\b)(?=.*{_DATE})",
    # "What date is 100 days after 3 February 2025?", "What is the date 6 weeks from today?"
    "date_add": rf"\A(?=.*\b\d+\s+{_SPAN}\s+(?:after|before|from|later|earlier|since|ago)\b)(?=.*{_DATE})",
    # "How many feet is 3.2 metres?", "Convert 70 kg to pounds"
    "convert_units": rf"\A(?=.*\d\s*{_UNIT}\b)(?=.*\b(?:in|into|to|how\s+many|how\s+much)\s+(?:an?\s+)?{_UNIT}\b)",
    # "What is 12.5 times 8.2?", "17 * 23 + 4" (not a date: 2030-01-01, 1/2/2024)
    "calculator": (r"(?<![\d\-/.])\d+(?:\.\d+)?\s*(?:[+*×÷^]|-(?!\d{1,2}-)|/(?!\d{1,2}/)|times|plus|minus|"
                   r"divided\s+by|multiplied\s+by|squared|to\s+the\s+power)"),
    # "What is 15% of 80?", "By what percent did 40 grow to 50?"
    "percent": r"\d\s*(?:%|percent\b)|\bpercent(?:age)?\b",
    # "Solve 2x + 3 = 11"
    "solve": r"\bsolve\b|[a-z]\s*[+\-*/^]?\s*[\d)]*\s*=\s*-?\d|\d\s*=\s*[-+]?\d*\s*[a-z]\b",
}.items()}
"""The gate: a tool is offered to the model only when its cue matches the prompt (case-insensitive).
Cues made of lookaheads are anchored at the start (``\\A``): unanchored, `search` would run each lookahead
from every position, quadratic in the prompt (25 s for 20,000 characters of pasted text).
Ordinary chat matches none, so it pays no extra generation. To offer another tool (a plugin), add
its name and cue here."""

_DATE_SPAN = (rf"\b\d{{4}}-\d{{1,2}}-\d{{1,2}}\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b|"
              rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b(?:,?\s+\d{{3,4}}\b)?|"
              rf"\b{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{3,4}}\b)?|\b(?:today|tomorrow|yesterday)\b")
_DURATION_SPAN = (rf"[-+]?\b\d+\s+{_SPAN}\b(?:(?:\s*,\s*|\s+and\s+|\s+)\d+\s+{_SPAN}\b)*"
                  r"(?:(?=\s+(?P<back>before|earlier|ago)\b)|)")  # "45 days before": the value is -45 days
_QUANTITY_SPAN = rf"[-+]?\b\d[\d,]*(?:\.\d+)?\s*{_UNIT}(?![\w/])"
_UNIT_SPAN = rf"(?<![\w'’]){_UNIT}(?![\w/])"

ARGUMENT_SPANS: dict[tuple[str, str], tuple[re.Pattern[str], tuple[str, ...]]] = {
    (tool, argument): (re.compile(pattern, re.I), always) for (tool, argument), (pattern, always) in {
        ("weekday", "date"): (_DATE_SPAN, ("today",)),
        ("date_difference", "start"): (_DATE_SPAN, ("today",)),
        ("date_difference", "end"): (_DATE_SPAN, ("today",)),
        ("date_add", "date"): (_DATE_SPAN, ("today",)),
        ("date_add", "duration"): (_DURATION_SPAN, ()),
        ("convert_units", "quantity"): (_QUANTITY_SPAN, ()),
        ("convert_units", "to"): (_UNIT_SPAN, ()),
    }.items()}
"""Arguments the model must copy from the question: in the constraint each becomes an ``enum`` of the
spans of the prompt the pattern finds (plus the values in ``always``), as `program_constraint_for`
limits a program's numbers to the problem's own. A model can then not invent a date, or mangle
"100 days after 3 February 2025" into one date argument; a duration before a date ("45 days before")
is offered with its minus sign. With no span found the argument stays free."""

CALL_SYSTEM = ("You choose one tool call that helps answer the user's question. Reply with only a JSON object "
               '{"tool": NAME, "arguments": {...}}, copying numbers, dates and units from the question; reply '
               '{"tool": "none"} when no tool helps.\nTools:\n')

TOOL_EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {  # written for covey, not from any evaluation set
    "weekday": ("What day of the week was 4 July 1976?", {"date": "4 July 1976"}),
    "date_difference": ("How many days are there from 1 March 2024 to 15 April 2024?",
                        {"start": "1 March 2024", "end": "15 April 2024", "unit": "days"}),
    "date_add": ("What date is 3 weeks after 10 May 2025?", {"date": "10 May 2025", "duration": "3 weeks"}),
    "convert_units": ("How many kilometres is 12 miles?", {"quantity": "12 miles", "to": "km"}),
    "calculator": ("What is 12.5 times 8?", {"expression": "12.5*8"}),
    "percent": ("What is 15% of 80?", {"operation": "of", "a": 15, "b": 80}),
    "solve": ("Solve 2x + 3 = 11", {"equation": "2x + 3 = 11"}),
}
"""One worked call per tool, shown to the model as an earlier turn when that tool is offered."""


def cued_tools(prompt: str, tools: Iterable[str]) -> tuple[str, ...]:
    """The agent's tools whose cue matches the prompt (in the agent's order): the ones worth offering."""
    return tuple(name for name in tools if name in TOOL_CUES and TOOL_CUES[name].search(prompt))


def argument_spans(tool: str, argument: str, prompt: str) -> tuple[str, ...]:
    """The values `argument` of `tool` may take for this prompt (`ARGUMENT_SPANS`); () when it is free."""
    if (tool, argument) not in ARGUMENT_SPANS:
        return ()
    pattern, always = ARGUMENT_SPANS[tool, argument]
    found = [("-" if "back" in m.groupdict() and m.group("back") else "") + m.group(0).strip()
             for m in pattern.finditer(prompt)]
    if (tool, argument) == ("convert_units", "to"):  # the unit wanted, not the one the quantity is in
        quantities = " ".join(argument_spans("convert_units", "quantity", prompt)).lower()
        found = [u for u in found if u.lower() not in quantities.split()] or found
    found = [f for f in found if f]
    return tuple(dict.fromkeys([*found, *always])) if found else ()


def call_schema(specs: Iterable[Any], prompt: str = "") -> dict[str, Any]:
    """The JSON schema of one call: ``anyOf`` one object per tool (its name as a const, its parameters,
    the arguments `ARGUMENT_SPANS` names limited to spans of `prompt`) and ``{"tool": "none"}``; each
    tool's ``$defs`` are lifted to the top, where its references point."""
    choices: list[dict[str, Any]] = []
    defs: dict[str, Any] = {}
    for spec in specs:
        parameters = _capped(dict(spec.parameters))
        for name, prop in parameters.get("properties", {}).items():
            if spans := argument_spans(spec.name, name, prompt):
                prop.pop("maxLength", None)
                prop["enum"] = list(spans)
        own = parameters.pop("$defs", {})
        if any(k in defs and defs[k] != v for k, v in own.items()):
            logger.info("tool %s is not offered: its $defs clash with another tool's", spec.name)
            continue
        defs.update(own)
        choices.append({"type": "object", "properties": {"tool": {"const": spec.name}, "arguments": parameters},
                        "required": ["tool", "arguments"], "additionalProperties": False})
    choices.append({"type": "object", "properties": {"tool": {"const": NONE}}, "required": ["tool"],
                    "additionalProperties": False})
    schema: dict[str, Any] = {"anyOf": choices}
    if defs:
        schema["$defs"] = defs
    return schema


def call_constraint(specs: Iterable[Any], prompt: str = "") -> Constraint:
    return Constraint(kind="json_schema", text=json.dumps(call_schema(specs, prompt)))


def call_messages(prompt: str, specs: Iterable[Any]) -> list[Message]:
    """The system prompt naming the offered tools, one worked call per tool as earlier turns, the question."""
    specs = tuple(specs)
    lines = [f"- {s.name}({', '.join(s.parameters.get('properties', {}))}): {s.description}" for s in specs]
    messages = [Message(role="system", content=CALL_SYSTEM + "\n".join(lines))]
    for s in specs:
        if s.name in TOOL_EXAMPLES:
            question, arguments = TOOL_EXAMPLES[s.name]
            messages += [Message(role="user", content=question),
                         Message(role="assistant", content=json.dumps({"tool": s.name, "arguments": arguments}))]
    return [*messages, Message(role="user", content=prompt)]


def tool_context(results: Iterable[str]) -> str:
    """What is put before the question in the answer's messages."""
    lines = "\n".join(f"- {r}" for r in results)
    return f"Tool result (computed exactly; use it and quote it in your answer):\n{lines}\n\n"


def answer_start(results: Iterable[str]) -> str:
    """The answer is begun with the results (each a short line), so even a small model's answer states
    them; a long or multi-line result is only in the messages."""
    lines = [r.strip() for r in results if r.strip() and "\n" not in r.strip() and len(r) <= 200]
    return "".join(f"{line[0].upper()}{line[1:]}. " for line in lines)


BEFORE_PROGRAM = frozenset({"weekday", "date_difference", "date_add", "convert_units"})
"""Tools that answer a short question better than a program the small model writes (calendars and unit
tables are facts, not arithmetic): when one is cued in a one-sentence question, the maths agent's
tool call comes before its program. A multi-sentence word problem keeps the program."""


def call_before_program(state: State) -> bool:
    """A one-sentence question whose cue names a date or unit tool ("How many feet is 3.2 metres?",
    "What weekday was 14 July 1789?"): the tool call, not a program, answers it."""
    from covey.orchestrator.tool_steps import one_sentence

    return (one_sentence(state["prompt"]) and bool(BEFORE_PROGRAM.intersection(state.get("cued_tools", ())))
            and wants_tool_call(state))


def wants_tool_call(state: State) -> bool:
    """Whether `call_tool` runs on this rung: tools were cued, none has answered yet, and the node applies
    constraints (an old node gets no constraint, so no call is asked of it)."""
    from covey.orchestrator.tool_steps import supports_constraints

    placement = state.get("placement")
    return (bool(state.get("cued_tools")) and not state.get("tool_results") and placement is not None
            and supports_constraints(placement.node))


# -- the step --------------------------------------------------------------------------------------------

async def call_tool(state: State, deps: Deps) -> dict[str, Any]:
    """Ask the rung's model for one JSON tool call over the cued tools, run it, and keep its result for the answer."""
    from covey.orchestrator.tool_steps import emit, generate_whole, tool_work

    spec = deps.agents.get(state["agent"])
    placement = state["placement"]
    assert placement is not None
    notes = list(state.get("notes", ()))
    try:
        registry = registry_for(deps)
        specs = tuple(registry.get(n).spec for n in state.get("cued_tools", ()) if n in registry)
    except CoveyError as exc:
        return {"notes": (*notes, f"no tool call: {exc.message}")}
    if not specs:
        return {}
    emit(Notice(kind="tool", text=f"{placement.model_id} is choosing a tool call "
                                  f"({', '.join(s.name for s in specs)} or none; JSON-constrained)"))
    try:
        text, _, final = await generate_whole(deps, spec, state, call_messages(state["prompt"], specs),
                                              max_tokens=CALL_MAX_TOKENS,
                                              constraint=call_constraint(specs, state["prompt"]))
    except CoveyError as exc:
        return {"notes": (*notes, f"{placement.model_id} could not be asked for a tool call: {exc.message}")}
    update: dict[str, Any] = {"call_final": final}
    try:
        call = json.loads(text)
        name, arguments = call["tool"], call.get("arguments", {})
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise TypeError("'tool' must be a string and 'arguments' an object")
    except (ValueError, KeyError, TypeError) as exc:
        why = f"the model's tool call is not a valid call ({type(exc).__name__}: {exc}): {text[:120]!r}"
        record = ToolCallRecord(tool=_named(text), ok=False, outcome=why)
        return {**update, "tool_calls": (*state.get("tool_calls", ()), record), "notes": (*notes, why)}
    if name == NONE:
        return {**update, "notes": (*notes, f"{placement.model_id} chose no tool")}
    from covey.tools.types import ToolCall

    if (ordered := in_prompt_order(name, arguments, state["prompt"])) is not arguments:
        notes.append(f"{placement.model_id} gave the dates of {name} in the reverse of the question's order; "
                     "they were put back in the question's order")
        arguments = ordered
    result, seconds, energy = await tool_work(deps, registry.call, ToolCall(name=name, arguments=arguments))
    record = ToolCallRecord(tool=name, arguments=arguments, ok=result.ok,
                            outcome=result.text if result.ok else result.error, seconds=seconds, energy=energy)
    update |= {"tool_calls": (*state.get("tool_calls", ()), record),
               "own_energy": (*state.get("own_energy", ()), energy)}
    if not result.ok:
        emit(Notice(kind="tool", text=f"the call {name}({_shown(arguments)}) failed: {result.error}"))
        return {**update, "notes": (*notes, f"{placement.model_id}'s call {name}({_shown(arguments)}) failed: "
                                            f"{result.error}")}
    line = f"{name}({_shown(arguments)}) -> {result.text}"
    emit(Notice(kind="tool", text=line))
    return {**update, "tool_results": (*state.get("tool_results", ()), result.text),
            "notes": (*notes, f"{placement.model_id} called {line} ({result.method or 'tool'})")}


ORDERED_ARGUMENTS = {"date_difference": ("start", "end")}
"""Arguments whose order is the question's: "from 1 March to 25 December", "between 1 March and 25
December". SmolLM2 sometimes gives them swapped, and the tool then counts backwards (-299 days)."""


def in_prompt_order(tool: str, arguments: dict[str, Any], prompt: str) -> dict[str, Any]:
    """`arguments` with the `ORDERED_ARGUMENTS` of `tool` in the order they appear in the prompt, when each
    was copied from it and they appear reversed; the same object otherwise."""
    names = ORDERED_ARGUMENTS.get(tool)
    if not names or not all(isinstance(arguments.get(n), str) for n in names):
        return arguments
    lowered = prompt.lower()
    where = [lowered.find(str(arguments[n]).lower()) for n in names]
    if -1 in where or where == sorted(where) or len(set(where)) < len(where):
        return arguments
    values = [v for _, v in sorted(zip(where, (arguments[n] for n in names), strict=True))]
    return {**arguments, **dict(zip(names, values, strict=True))}


def registry_for(deps: Deps):
    """The tools the graph runs: `deps.tools`, or the shipped ones plus plugins, made on first use."""
    if deps.tools is None:
        from covey.tools.builtin import default_registry

        deps.tools = default_registry()
    return deps.tools


def _capped(schema: Any) -> Any:
    """A copy of a JSON schema with every string's maxLength at most `MAX_ARGUMENT_CHARS`."""
    if isinstance(schema, list):
        return [_capped(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _capped(v) for k, v in schema.items()}
    if out.get("type") == "string" and "enum" not in out and "const" not in out:
        out["maxLength"] = min(int(out.get("maxLength", MAX_ARGUMENT_CHARS)), MAX_ARGUMENT_CHARS)
    return out


def _shown(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items())


def _named(text: str) -> str:
    """The tool a call that does not parse was naming, for its record ('tool_call' when none shows)."""
    m = re.search(r'"tool"\s*:\s*"([a-z][a-z0-9_]{0,39})"', text)
    return m.group(1) if m else "tool_call"
