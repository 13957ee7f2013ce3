"""The program step's tighter grammar: the model picks one of the problem's candidate expressions.

A 135M or 270M model asked to write a program for "Tom has 3 boxes with 12 apples in each box. He eats
5 apples. How many apples are left?" writes `answer = 12 - 3` as readily as `answer = 3 * 12 - 5`.
Here the program it may write is `answer = <E>` with E one of the few expressions that use every number
the problem states (a stated 1 excepted) (covey.tools.candidates), a counting question's negative or fractional values left
out, ordered by the fitted ranker (covey.tools.expression_ranker): the grammar makes the model choose
the operators, the numbers are the problem's. A problem no such expression answers (more steps than
two, or numbers it does not need) gets no offer and the program step writes a free program as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from covey.tools.candidates import Candidate
from covey.types import Constraint, Message

CHOICE_SYSTEM = ("You solve math word problems by writing a one-line Python program. Reply with only one "
                 "```python code block: answer = the arithmetic the problem asks, then print(answer).")
CHOICE_EXAMPLES = (  # written for covey (not from any evaluation set)
    ("A shop sells pens at 3 dollars each. Ann buys 4 pens and pays with a 20 dollar bill. How much change does "
     "she get?", "```python\nanswer = 20 - (3 * 4)\nprint(answer)\n```"),
    ("A baker makes 45 rolls and puts them into bags of 5. How many bags does he fill?",
     "```python\nanswer = 45 / 5\nprint(answer)\n```"),
    ("Kim has 9 marbles and wins 6 more. How many marbles does she have?",
     "```python\nanswer = 9 + 6\nprint(answer)\n```"),
)
_COUNT = re.compile(r"\bhow\s+many\s+(?:more\s+|fewer\s+|less\s+)?([a-z]+)", re.I)


@dataclass(frozen=True)
class Offer:
    """The expressions the model may choose from, best-ranked first, with the ranker's probabilities."""

    expressions: tuple[str, ...]
    values: tuple[Fraction, ...]
    probabilities: tuple[float, ...]

    def value_of(self, expression: str) -> Fraction | None:
        for e, v in zip(self.expressions, self.values):
            if e == expression:
                return v
        return None


def counted_noun(prompt: str) -> str | None:
    """The things the question counts ('how many apples' -> 'apples'); None for no count or a unit (hours,
    litres: whatever pint knows), which may come out fractional."""
    from covey.tools.expression_ranker import question_sentence

    match = _COUNT.search(question_sentence(prompt))
    if match is None or is_unit(match.group(1)):
        return None
    return match.group(1)


def counts_things(prompt: str) -> bool:
    """Whether the question asks how many *things* (apples, groups): a count comes out whole and not negative."""
    return counted_noun(prompt) is not None


def is_unit(word: str) -> bool:
    from covey.errors import ToolError
    from covey.tools.units import unit_registry

    word = word.lower()
    if word in {"times", "more", "less", "fewer"}:
        return True
    try:
        ureg = unit_registry()
        ureg.parse_units(word)
        return True
    except (ToolError, Exception):  # pint raises its own UndefinedUnitError and friends
        return False


def offer_for(prompt: str, limit: int = 12) -> Offer | None:
    """The expressions using every stated number (ranked), or None when there are none to offer."""
    from covey.tools import expression_ranker as er

    problem = er.read_problem(prompt)
    # A stated 1 ('1 bill of 10 dollars', 'in 1 hour') is often only an article in digits: not required.
    stated = {i for i, q in enumerate(problem.quantities) if q.kind == "stated" and q.value != 1}
    if not stated:
        return None
    counting = counts_things(prompt)
    scores = er.scores(problem, er.shipped_weights())
    keep: list[tuple[int, float, Candidate]] = []
    for c, s in zip(problem.candidates, scores):
        if not stated <= set(c.uses) or len(c.uses) < 2:
            continue
        if counting and (c.value.denominator != 1 or c.value < 0):
            continue  # a count is whole and not negative
        keep.append((len(set(c.uses) - stated), float(s), c))
    if not keep:
        return None
    # The simplest first: expressions with no quantity beyond the required ones, then those with one more
    # (a week's 7 days, half's 2), each tier in the ranker's order.
    keep.sort(key=lambda esc: (esc[0], -esc[1]))
    seen: set[Fraction] = set()
    chosen: list[tuple[float, Candidate]] = []
    for _, s, c in keep:
        if c.value not in seen:  # one expression per value: the choice is between answers, not spellings
            seen.add(c.value)
            chosen.append((s, c))
        if len(chosen) == limit:
            break
    import math

    top = max(s for s, _ in chosen)
    weights = [math.exp(s - top) for s, _ in chosen]
    total = sum(weights)
    return Offer(tuple(c.expression for _, c in chosen), tuple(c.value for _, c in chosen),
                 tuple(w / total for w in weights))


def choice_constraint(offer: Offer) -> Constraint:
    """GBNF: `answer = ` one of the offered expressions, then print(answer) and the closing fence."""
    alternatives = " | ".join(_quote(e) for e in offer.expressions)
    grammar = f'root ::= "answer = " expr "\\nprint(answer)\\n```"\nexpr ::= {alternatives}\n'
    return Constraint(kind="grammar", text=grammar)


def choice_messages(prompt: str) -> list[Message]:
    messages = [Message(role="system", content=CHOICE_SYSTEM)]
    for question, code in CHOICE_EXAMPLES:
        messages += [Message(role="user", content=question), Message(role="assistant", content=code)]
    return [*messages, Message(role="user", content=prompt)]


def chosen_expression(code: str) -> str | None:
    """The expression a program written under `choice_constraint` assigns to `answer`."""
    match = re.search(r"^answer = (.+)$", code, re.M)
    return match.group(1).strip() if match else None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
