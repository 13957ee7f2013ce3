"""The program step's tighter grammar: the model picks one of the problem's candidate expressions.

A 135M or 270M model asked to write a program for "Tom has 3 boxes with 12 apples in each box. He eats
5 apples. How many apples are left?" writes `answer = 12 - 3` as readily as `answer = 3 * 12 - 5`.
Here the program it may write is `answer = <E>` with E one of the likeliest values' expressions over two
or more of the problem's quantities (covey.tools.candidates), a counting question's negative or fractional
values left out, ordered and weighed by the fitted ranker (covey.tools.expression_ranker; a distractor
number may go unused): the grammar makes the model choose, the numbers are the problem's. The
probabilities are the ranker's over all its candidates, so they say how sure it is: the program step
answers with no model when the first is high enough (`confident`), and says it could not get this right
when it is too low to be plausible. A problem with no expression to offer gets a free program.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

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
    """The `limit` likeliest values of expressions over two or more of the problem's quantities (the ranker's
    probabilities, summed per value; stated numbers may go unused: problems state distractors), each with
    its best-scored expression; None when the problem has no such expression."""
    from covey.tools import expression_ranker as er

    problem = er.read_problem(prompt)
    if not any(q.kind == "stated" for q in problem.quantities):
        return None
    counting = counts_things(prompt)
    scores = er.scores(problem, er.shipped_weights())
    mass: dict[Fraction, float] = {}
    best: dict[Fraction, tuple[float, str]] = {}
    top = float(np.max(scores)) if len(scores) else 0.0
    for c, s in zip(problem.candidates, scores):
        if len(c.uses) < 2:
            continue  # a number the problem states is not an answer it asks for
        if counting and (c.value.denominator != 1 or c.value < 0):
            continue  # a count is whole and not negative
        mass[c.value] = mass.get(c.value, 0.0) + math.exp(float(s) - top)
        if c.value not in best or s > best[c.value][0]:
            best[c.value] = (float(s), c.expression)
    if not mass:
        return None
    total = sum(float(math.exp(s - top)) for s in scores)
    chosen = sorted(mass, key=lambda v: -mass[v])[:limit]
    return Offer(tuple(best[v][1] for v in chosen), tuple(chosen), tuple(mass[v] / total for v in chosen))


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


def confident(offer: Offer | None, threshold: float) -> bool:
    """Whether the ranker's likeliest value is sure enough to stand with no model."""
    return offer is not None and offer.probabilities[0] >= threshold
