"""Candidate answers to a word problem: every expression of one or two operations over its quantities.

A one- or two-step word problem ("Tom has 3 boxes with 12 apples in each box. He eats 5 apples. How
many apples are left?") is answered by some expression over the numbers it states (3 * 12 - 5), now and
then with a number it only implies (a dozen is 12, half is / 2, an hour has 60 minutes). `quantities`
reads those numbers with where they stand; `enumerate_candidates` builds every expression of one or two
operations over distinct quantities (and, for problems that list several amounts, the sums and
differences of all of them in order), each computed exactly with fractions. Which candidate is the
answer is for a scorer to say (covey.tools.expression_ranker). Pure functions, no model.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from fractions import Fraction

MAX_QUANTITIES = 9
"""More quantities than this and only the stated ones are kept (the enumeration grows as n^3)."""

_NUMBER = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)(?:\s*/\s*(\d+))?(\s*(?:%|percent\b))?", re.I)
_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
          "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
          "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "twice": 2, "double": 2, "doubles": 2, "triple": 3, "half": 2,
          "halves": 2, "quarter": 4, "third": 3, "dozen": 12, "dozens": 12, "pair": 2, "pairs": 2}
"""Numbers written as words. 'half' and 'quarter' are the divisor (x / 2), so one operation still reaches them."""
_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.I)
_UNIT_PAIRS = (  # a problem naming both units usually needs the factor between them
    (("week", "weeks", "weekly"), ("day", "days", "daily"), 7),
    (("hour", "hours", "hourly"), ("minute", "minutes"), 60),
    (("minute", "minutes"), ("second", "seconds"), 60),
    (("day", "days"), ("hour", "hours"), 24),
    (("year", "years", "yearly", "annual", "annually"), ("month", "months", "monthly"), 12),
    (("year", "years"), ("week", "weeks"), 52),
    (("year", "years"), ("day", "days"), 365),
    (("dollar", "dollars", "$"), ("cent", "cents"), 100),
    (("foot", "feet"), ("inch", "inches"), 12),
    (("meter", "meters", "metre", "metres"), ("centimeter", "centimeters", "cm"), 100),
    (("kilogram", "kilograms", "kg"), ("gram", "grams"), 1000),
    (("liter", "liters", "litre", "litres"), ("milliliter", "milliliters", "ml"), 1000),
    (("kilometer", "kilometers", "kilometre", "kilometres", "km"), ("meter", "meters", "metre", "metres"), 1000),
    (("pound", "pounds", "lb", "lbs"), ("ounce", "ounces", "oz"), 16),
    (("gallon", "gallons"), ("quart", "quarts"), 4),
    (("hour", "hours", "hourly"), ("second", "seconds"), 3600),
)
_OFF = re.compile(r"\b(?:off|discount(?:ed)?|less|cheaper|decreases?|decreased|drops?|dropped|falls?|fell|reduced|"
                  r"reduction|lower|down|loses?|lost|spends?|spent|sold|sells|uses?|used|ate|eats|gave|gives)\b")
_ON = re.compile(r"\b(?:tip|tips|tax|taxes|increases?|increased|more|raise|raised|rises?|rose|grows?|grew|up|markup|"
                 r"marked up|interest|profit|gains?|gained|higher|extra|added|adds?|plus)\b")
"""Words near a percentage that make it a change of the whole: '25% off' leaves 1 - 25%, 'a 15% tip' adds it."""
_PERCENT_WORDS = re.compile(r"\b(?:percent|percentage)\b|%", re.I)
OPS = ("+", "-", "*", "/")
SHAPES = ("a", "ab", "(ab)c", "a(bc)", "chain", "(ab)(cd)", "(ab)a", "mean")
_TIMES_WORDS = re.compile(r"\b(?:times|twice|double|triple|thrice|half)\b", re.I)
_THAN = re.compile(r"\b(?:more|fewer|less|older|younger|taller|shorter|longer|heavier|lighter)\b[^.?!]{0,40}?\bthan\b",
                   re.I)
_AVERAGE_WORDS = re.compile(r"\b(?:average|mean)\b", re.I)


@dataclass(frozen=True)
class Quantity:
    """A number the problem states ('12'), writes as a word ('twice') or implies ('a week' -> 7)."""

    value: Fraction
    text: str
    kind: str  # "stated", "word" or "implied"
    start: int = -1  # where it stands in the prompt (-1: implied by the problem as a whole)
    end: int = -1
    percent: bool = False  # a stated percentage (25% -> 1/4), or what a whole becomes after one (1 - 25%)
    bigger: tuple[str, ...] = ()  # an implied unit factor's units: the bigger one's words (hour, hours) ...
    smaller: tuple[str, ...] = ()  # ... and the smaller one's (minute, minutes)
    source: int = -1  # what a whole becomes after a percentage: where that stated percentage starts


@dataclass(frozen=True)
class Candidate:
    """One expression over the quantities: its text, exact value, the quantities it uses and its operators."""

    expression: str
    value: Fraction
    uses: tuple[int, ...]  # indices into the quantities, in the order they appear in the expression
    ops: tuple[str, ...]  # operators, outermost last
    parents: tuple[str, ...]  # for each used quantity, the operator applied to it ("" when it stands alone)
    sides: tuple[int, ...]  # for each used quantity, 0 left of its operator, 1 right
    shape: str  # "a", "ab", "(ab)c", "a(bc)", "chain", "(ab)(cd)", "(ab)a" or "mean"


def _clean(raw: str) -> Fraction:
    return Fraction(raw.replace(",", ""))


def quantities(prompt: str) -> list[Quantity]:
    """The problem's quantities in order: stated numbers, number words, then implied factors."""
    found: list[Quantity] = []
    taken: list[tuple[int, int]] = []
    for m in _NUMBER.finditer(prompt):
        whole = m.group(1).rstrip(",")
        if not re.search(r"\d", whole):
            continue
        value = _clean(whole)
        if m.group(2):
            denominator = int(m.group(2))
            if denominator == 0:
                continue
            value = value / denominator
        is_percent = bool(m.group(3))
        if is_percent:
            value = value / 100
        found.append(Quantity(value, m.group(0).strip(), "stated", m.start(), m.end(), is_percent))
        taken.append((m.start(), m.end()))
    for m in _WORD.finditer(prompt):
        word = m.group(1).lower()
        if word == "one" and not re.match(r"\s+(?:of|more|less|fewer|third|half|quarter|dozen)\b", prompt[m.end():], re.I):
            continue  # 'one' is usually the article, not a quantity
        found.append(Quantity(Fraction(_WORDS[word]), m.group(1), "word", m.start(), m.end()))
    lower = prompt.lower()
    tokens = set(re.findall(r"[a-z]+|\$", lower))
    for bigger, smaller, factor in _UNIT_PAIRS:
        if tokens & set(bigger) and tokens & set(smaller):
            found.append(Quantity(Fraction(factor), f"{bigger[0]}={factor} {smaller[1]}", "implied",
                                  bigger=bigger, smaller=smaller))
    if _PERCENT_WORDS.search(prompt):
        if any(q.percent for q in found):
            found.append(Quantity(Fraction(1), "1 (the whole)", "implied"))
        found += _complements(prompt, found)
        if re.search(r"\bwhat\s+(?:percent|percentage)\b|\bpercentage\s+of\b|\bin\s+percent\b", lower):
            found.append(Quantity(Fraction(100), "100 (percent)", "implied"))
    found.sort(key=lambda q: (q.start < 0, q.start))
    found = _dedupe(found)
    if len(found) > MAX_QUANTITIES:
        stated = [q for q in found if q.kind == "stated"]
        found = (stated + [q for q in found if q.kind != "stated"])[:MAX_QUANTITIES]
        found.sort(key=lambda q: (q.start < 0, q.start))
    return found


def _complements(prompt: str, found: list[Quantity]) -> list[Quantity]:
    """For each percentage that changes a whole ('25% off', 'a 15% tip', 'goes up by 10%'), what the whole
    becomes as one factor (0.75, 1.15), so 'the sale price' is one operation (40 * 0.75) like any rate. The
    words in the percentage's own clause decide which way; a percentage with neither kind of word gets none."""
    out: list[Quantity] = []
    lower = prompt.lower()
    for q in found:
        if not q.percent or q.value >= 1:
            continue
        start = max(lower.rfind(mark, 0, q.start) for mark in ".?!;,") + 1
        ends = [i for i in (lower.find(mark, q.end) for mark in ".?!;,") if i >= 0]
        clause = lower[start:min(ends, default=len(lower))]
        if _OFF.search(clause):
            out.append(Quantity(1 - q.value, f"1 - {q.text}", "implied", percent=True, source=q.start))
        elif _ON.search(clause):
            out.append(Quantity(1 + q.value, f"1 + {q.text}", "implied", percent=True, source=q.start))
    return out


def covered(qs: list[Quantity] | tuple[Quantity, ...], c: Candidate) -> set[int]:
    """The quantities candidate `c` uses, with the stated percentage behind each '1 - 25%' it uses (40 * 0.75
    uses the 25% as much as 40 * 0.25 does)."""
    used = set(c.uses)
    sources = {qs[i].source for i in c.uses if is_complement(qs[i])}
    if sources:
        used |= {k for k, q in enumerate(qs) if q.kind == "stated" and q.start in sources}
    return used


def is_complement(q: Quantity) -> bool:
    """Whether `q` is what a whole becomes after a percentage change (1 - 25%, 1 + 15%)."""
    return q.kind == "implied" and q.percent


def _dedupe(found: list[Quantity]) -> list[Quantity]:
    """Implied factors equal to a stated number are dropped (the stated one already offers the value)."""
    stated = {q.value for q in found if q.kind != "implied"}
    return [q for q in found if q.kind != "implied" or q.value not in stated]


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction | None:
    if (op in "*/" and b == 1) or (op == "*" and a == 1):
        return None  # multiplying or dividing by one adds nothing: the shorter candidate already says it
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b if b != 0 else None


def enumerate_candidates(qs: list[Quantity], prompt: str = "") -> list[Candidate]:
    """Every expression of one or two operations over distinct quantities, plus the in-order sums and
    differences of all stated quantities when there are more than three, the sums and differences of two
    products of stated numbers ('2 adult tickets at $9 and 3 child tickets at $5'), and where `prompt`
    says so, a quantity with what is compared with it ('4 times as many as Ann's 15 ... together':
    15 * 4 + 15; '10 more than the 50 small ones ... in all': 50 + 10 + 50) and averages ('80, 90 and 70 on three tests ... average'). Commutative duplicates are built once
    (a + b, not also b + a); values that divide by zero are left out."""
    out: list[Candidate] = []
    n = len(qs)
    text = [_term(q) for q in qs]
    for i in range(n):
        out.append(Candidate(text[i], qs[i].value, (i,), (), ("",), (0,), "a"))
    for i, j in itertools.permutations(range(n), 2):
        for op in OPS:
            if op in "+*" and i > j:
                continue
            v = _apply(op, qs[i].value, qs[j].value)
            if v is not None:
                out.append(Candidate(f"{text[i]} {op} {text[j]}", v, (i, j), (op,), (op, op), (0, 1), "ab"))
    for i, j, k in itertools.permutations(range(n), 3):
        for op1, op2 in itertools.product(OPS, OPS):
            # (i op1 j) op2 k
            if not (op1 in "+*" and i > j):
                inner = _apply(op1, qs[i].value, qs[j].value)
                v = _apply(op2, inner, qs[k].value) if inner is not None else None
                if v is not None and not (op1 == op2 and op1 in "+*" and j > k):
                    out.append(Candidate(f"({text[i]} {op1} {text[j]}) {op2} {text[k]}", v, (i, j, k), (op1, op2),
                                         (op1, op1, op2), (0, 1, 1), "(ab)c"))
            # i op2 (j op1 k): only where the brackets matter and the inner pair is not a commutative repeat
            if op1 in "+*" and j > k:
                continue
            if op2 in "+*" and op1 == op2:
                continue  # a + (b + c) is (a + b) + c
            inner = _apply(op1, qs[j].value, qs[k].value)
            v = _apply(op2, qs[i].value, inner) if inner is not None else None
            if v is not None:
                out.append(Candidate(f"{text[i]} {op2} ({text[j]} {op1} {text[k]})", v, (i, j, k), (op1, op2),
                                     (op2, op1, op1), (0, 0, 1), "a(bc)"))
    stated = [i for i, q in enumerate(qs) if q.kind == "stated"]
    out += _products(qs, text, stated)
    if _TIMES_WORDS.search(prompt):
        out += _with_itself(qs, text, (("*", "+"), ("/", "+"), ("*", "-")))
    if _THAN.search(prompt):
        out += _with_itself(qs, text, (("+", "+"), ("-", "+")))
    if _AVERAGE_WORDS.search(prompt):
        out += _means(qs, text, stated)
    if len(stated) > 3:
        for signs in itertools.product("+-", repeat=len(stated) - 1):
            v = qs[stated[0]].value
            parts = [text[stated[0]]]
            for sign, i in zip(signs, stated[1:]):
                v = v + qs[i].value if sign == "+" else v - qs[i].value
                parts.append(f"{sign} {text[i]}")
            out.append(Candidate(" ".join(parts), v, tuple(stated), tuple(signs), ("+", *signs),
                                 (0,) + (1,) * len(signs), "chain"))
    return out


def _products(qs: list[Quantity], text: list[str], stated: list[int]) -> list[Candidate]:
    """(a * b) + (c * d) and (a * b) - (c * d) over four distinct stated quantities."""
    out: list[Candidate] = []
    for a, b, c, d in itertools.permutations(stated, 4):
        if a > b or c > d:
            continue
        left, right = _apply("*", qs[a].value, qs[b].value), _apply("*", qs[c].value, qs[d].value)
        if left is None or right is None:
            continue
        for op in "+-":
            if op == "+" and a > c:
                continue
            out.append(Candidate(f"({text[a]} * {text[b]}) {op} ({text[c]} * {text[d]})",
                                 left + right if op == "+" else left - right, (a, b, c, d), ("*", "*", op),
                                 ("*", "*", "*", "*"), (0, 1, 0, 1), "(ab)(cd)"))
    return out


def _with_itself(qs: list[Quantity], text: list[str], pairs: tuple[tuple[str, str], ...]) -> list[Candidate]:
    """A quantity and what is compared with it, together or apart: (b * k) + b ('4 times as many ... together'),
    (b + k) + b ('10 more large glasses than small ones ... in all'), for each (inner, outer) operator pair."""
    out: list[Candidate] = []
    for k, b in itertools.permutations(range(len(qs)), 2):
        for inner, outer in pairs:
            part = _apply(inner, qs[b].value, qs[k].value)
            if part is None:
                continue
            v = part + qs[b].value if outer == "+" else part - qs[b].value
            out.append(Candidate(f"({text[b]} {inner} {text[k]}) {outer} {text[b]}", v, (b, k, b), (inner, outer),
                                 (inner, inner, outer), (0, 1, 1), "(ab)a"))
    return out


def _means(qs: list[Quantity], text: list[str], stated: list[int]) -> list[Candidate]:
    """The average of the stated numbers: their sum over how many there are, or over another quantity
    that says how many they are ('on 4 days ... 30, 42, 36 and 52': the sum of the rest over 4)."""
    out: list[Candidate] = []
    if len(stated) >= 2:
        total = sum((qs[i].value for i in stated), Fraction(0))
        out.append(Candidate(f"({' + '.join(text[i] for i in stated)}) / {len(stated)}", total / len(stated),
                             tuple(stated), ("+", "/"), ("+",) * len(stated), (0,) + (1,) * (len(stated) - 1),
                             "mean"))
    for k, q in enumerate(qs):
        rest = [i for i in stated if i != k]
        if len(rest) >= 2 and q.kind != "implied" and q.value == len(rest):
            total = sum((qs[i].value for i in rest), Fraction(0))
            out.append(Candidate(f"({' + '.join(text[i] for i in rest)}) / {text[k]}", total / q.value,
                                 (*rest, k), ("+", "/"), ("+",) * len(rest) + ("/",),
                                 (0,) + (1,) * (len(rest) - 1) + (1,), "mean"))
    return out


def _term(q: Quantity) -> str:
    """How a quantity is written in an expression: its value, or for a percentage change '(1 - 0.25)', so
    the expression shows the numbers the problem states."""
    if is_complement(q):
        return f"(1 {q.text[2]} {_fmt(abs(q.value - 1))})"
    return _fmt(q.value)


def _fmt(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    as_float = float(value)
    if round(as_float, 6) == as_float:
        return f"{as_float:g}"
    return f"({value.numerator}/{value.denominator})"


def value_text(value: Fraction) -> str:
    """A candidate's value as an answer shows it: '31', '12.5', '0.333333'."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{round(float(value), 6):g}"
