"""What a reader notices in a word problem, as features of each candidate expression.

"Sara had 50 stickers. She gave 18 to her friend. How many stickers does she have left?" A reader sees
that the question asks for stickers and both numbers count stickers, that 'gave' takes some away and
that 'left' asks for what remains: 50 - 18. `read_quantities` reads, for each of the problem's
quantities, its unit (the words after the number: "50 stickers" -> stickers; "$3" -> dollar), whether it
is a rate ("3 apples in each box", "$2 per hour", "bags of 5"), a loss or a gain (the verb before it:
gave, ate, spent, lost / bought, found, got), and whether it stands in the question sentence; and, for
the problem, the thing the question asks for ("how many apples" -> apple) and its cues (in all, left,
how many more, each, times as many, started with). `reader_features` turns those into the numbers the
ranker weighs for one candidate (covey.tools.expression_ranker). Pure functions, no model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from covey.tools.candidates import Candidate, Quantity

CUES = ("total", "left", "more", "each", "times", "start")
READER_FEATURES = (
    "target_used", "target_unused", "offtarget_used", "question_number_used", "question_number_unused",
    "addsub_same_unit", "addsub_other_unit", "mul_same_unit", "rate_times", "rate_divisor", "rate_addsub",
    "rate_divided", "loss_subtracted", "loss_added", "gain_added", "gain_subtracted", "equals_stated",
    "comparison_times", "comparison_plus_minus", "start_question_minus", "total_multiplied", "total_split",
    "total_added",
    *(f"cue_{cue}|has{op}" for cue in CUES for op in "+-*/"))

_WORD = re.compile(r"[a-z]+|\$")
_SKIP = {"more", "of", "the", "a", "an", "extra", "new", "old", "other", "different", "additional", "each", "in",
         "total", "whole", "full", "big", "small", "large", "little", "times", "as", "and", "to", "for", "on", "at"}
_RATE_AFTER = re.compile(r"^\s*(?:[a-z$]+\s+){0,4}?(?:each|per|every|apiece|a piece|an? (?:hour|day|week|month|minute|"
                         r"year|box|bag|pack|row|page|shelf|table|team|group|person|child|student|friend))\b")
_RATE_BEFORE = re.compile(r"\b(?:each|every|per|groups? of|bags? of|boxes of|box of|packs? of|cartons? of|rows? of|"
                          r"piles? of|stacks? of|sets? of|teams? of|packages? of|cases? of|in)\s+(?:[a-z$]+\s+){0,1}$")
_LOSS = re.compile(r"\b(?:gave|give|gives|giving|ate|eat|eats|spent|spend|spends|lost|lose|loses|sold|sell|sells|used|"
                   r"uses|broke|broken|took|takes|threw|deleted|cut|paid|pays|pay|shared|donated|left|removed|"
                   r"dropped|missed|drank|popped|fewer|less|away)\b")
_GAIN = re.compile(r"\b(?:bought|buy|buys|found|finds|find|got|gets|get|received|receives|picked|added|adds|more|won|"
                   r"earned|earns|collected|grew|planted|plants|plant|made|baked|another|joined|gained|saved|borrowed)\b")
_CUE = {
    "total": re.compile(r"\b(?:in all|total|altogether|all together|together|combined|sum|both|in total)\b"),
    "left": re.compile(r"\b(?:left|remain|remaining|remains|now|still|after|end with|have then)\b"),
    "more": re.compile(r"\b(?:how (?:many|much) (?:more|fewer|less|longer|shorter|taller|heavier|farther|further)|"
                       r"difference|more than|fewer than|less than|than)\b"),
    "each": re.compile(r"\b(?:each|per|every|equally|share|split|average|apiece|a piece)\b"),
    "times": re.compile(r"\b(?:times|twice|double|triple|half)\b"),
    "start": re.compile(r"\b(?:start|started|begin|began|beginning|initially|at first|originally|before|to begin)\b"),
}
_COMPARE_TIMES = re.compile(r"\b\d[\d.,]*\s+times\s+(?:as|more|that|the)\b|\btimes\s+as\s+many\b")
_COMPARE_PLUS = re.compile(r"\b\d[\d.,]*\s+(?:[a-z$]+\s+){0,2}?(?:more|fewer|less|longer|shorter|taller|older|younger)"
                           r"\s+(?:[a-z]+\s+){0,3}?than\b")
_MONEY = re.compile(r"\$|\b(?:money|cost|costs|spend|spent|earn|earned|pay|paid|dollars?|price|worth|change)\b")


@dataclass(frozen=True)
class Reading:
    """Per quantity: unit words, rate, loss, gain, in the question; for the problem: target words and cues."""

    units: tuple[frozenset[str], ...]
    rate: tuple[bool, ...]
    loss: tuple[bool, ...]
    gain: tuple[bool, ...]
    in_question: tuple[bool, ...]
    target: frozenset[str]
    cues: frozenset[str]
    compare_times: tuple[bool, ...]
    compare_plus: tuple[bool, ...]
    total: tuple[bool, ...]  # "a total of 36 points", "36 in all": the whole that others make up


def singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and re.search(r"(?:ch|sh|ss|x)es$", word):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


_STOP = {"with", "in", "on", "at", "for", "to", "from", "into", "that", "which", "and", "but", "he", "she", "they",
         "it", "how", "are", "is", "was", "were", "each", "per", "every", "did", "does", "do", "will", "would", "can",
         "could", "had", "has", "have", "if", "than", "then", "there", "this", "his", "her", "their", "you", "we", "i",
         "by", "as", "so", "left", "over", "altogether", "together", "total", "all", "now", "after", "before"}


def _content(text: str, limit: int = 2) -> list[str]:
    """The first content words of `text` up to punctuation or a function word ('pieces of candy' -> both)."""
    clause = re.split(r"[.?!,;:]", text.lower(), maxsplit=1)[0]
    out: list[str] = []
    for w in _WORD.findall(clause)[:5]:
        if w in _STOP:
            break
        if w in _SKIP:
            continue
        out.append(w)
        if len(out) == limit:
            break
    return out


def unit_words(after: str, before: str) -> frozenset[str]:
    """Up to two content words after a number ("12 red apples" -> red, apple); "$5" is a dollar."""
    words = _content(after)
    found = {singular(w) for w in words if w != "$"}
    if before.rstrip().endswith("$") or found & {"dollar", "cent", "buck"}:
        found.add("dollar")
    return frozenset(found)


def question_target(question: str) -> frozenset[str]:
    """The thing the question asks for: 'how many (more) red apples' -> {red, apple}; money -> {dollar}."""
    lower = question.lower()
    match = re.search(r"\bhow\s+(many|much)\s+(?:more\s+|fewer\s+|less\s+|extra\s+)?(.*)", lower)
    if match is None:
        return frozenset({"dollar"}) if _MONEY.search(lower) else frozenset()
    found = {singular(w) for w in _content(match.group(2))}
    if match.group(1) == "much" and _MONEY.search(lower):
        found.add("dollar")
    return frozenset(found)


def read_quantities(prompt: str, qs: tuple[Quantity, ...] | list[Quantity]) -> Reading:
    from covey.tools.expression_ranker import question_sentence

    question = question_sentence(prompt)
    q_start = prompt.rfind(question) if question else len(prompt)
    lower = prompt.lower()
    units: list[frozenset[str]] = []
    rate: list[bool] = []
    loss: list[bool] = []
    gain: list[bool] = []
    in_q: list[bool] = []
    ctimes: list[bool] = []
    cplus: list[bool] = []
    total: list[bool] = []
    for q in qs:
        if q.start < 0:
            units.append(frozenset())
            rate.append(True)  # an implied factor (7 days a week) is a rate by nature
            loss.append(False)
            gain.append(False)
            in_q.append(False)
            ctimes.append(False)
            cplus.append(False)
            total.append(False)
            continue
        after = lower[q.end:q.end + 60]
        before = lower[max(0, q.start - 40):q.start]
        clause_before = re.split(r"[.?!,;]", before)[-1]
        units.append(unit_words(after, before))
        rate.append(bool(_RATE_AFTER.match(after) or _RATE_BEFORE.search(clause_before)))
        verb_window = " ".join(_WORD.findall(clause_before)[-4:])
        loss.append(bool(_LOSS.search(verb_window)) or bool(re.match(r"\s*(?:[a-z]+\s+){0,2}?(?:left|fewer|less)\b", after)))
        gain.append(bool(_GAIN.search(verb_window)) or bool(re.match(r"\s*(?:[a-z]+\s+){0,1}?more\b", after)))
        in_q.append(q.start >= q_start)
        window = lower[q.start:q.end + 50]
        ctimes.append(bool(_COMPARE_TIMES.match(window)))
        cplus.append(bool(_COMPARE_PLUS.match(window)))
        total.append(bool(re.search(r"\b(?:total of|totals?|altogether|in all|combined|sum of)\s*\$?$", before)
                          or re.match(r"\s*(?:[a-z]+\s+){0,2}?(?:in all|altogether|in total)\b", after)))
    q_lower = question.lower()
    cues = frozenset(name for name, pattern in _CUE.items() if pattern.search(q_lower))
    return Reading(tuple(units), tuple(rate), tuple(loss), tuple(gain), tuple(in_q), question_target(question),
                   cues, tuple(ctimes), tuple(cplus), tuple(total))


def _pairs(c: Candidate) -> list[tuple[str, int, int]]:
    """The operations applied directly to two quantities: (operator, left index, right index)."""
    u = c.uses
    if c.shape == "ab":
        return [(c.ops[0], u[0], u[1])]
    if c.shape == "(ab)c":
        return [(c.ops[0], u[0], u[1])]
    if c.shape == "a(bc)":
        return [(c.ops[0], u[1], u[2])]
    return []


def reader_features(f, c: Candidate, qs, r: Reading, stated: set[int], stated_values: set[Fraction]) -> None:
    """Fill `f` (a row slice, in READER_FEATURES' order) for candidate `c`."""
    used = set(c.uses)
    unused = stated - used
    target = r.target

    def on_target(i: int) -> bool:
        unit = r.units[i]
        return bool(target and unit and (target <= unit or unit <= target))

    f[0] = sum(on_target(i) for i in used & stated)
    f[1] = sum(on_target(i) for i in unused)
    f[2] = sum(1 for i in used & stated if target and r.units[i] and not on_target(i))
    f[3] = sum(r.in_question[i] for i in used)
    f[4] = sum(r.in_question[i] for i in unused)
    for op, a, b in _pairs(c):
        same = bool(r.units[a] & r.units[b])
        if op in "+-":
            f[5 + (not same)] += 1
        elif op == "*" and same:
            f[7] += 1
    for k, i in enumerate(c.uses):
        parent, side = c.parents[k], c.sides[k]
        if r.rate[i]:
            if parent == "*":
                f[8] += 1
            elif parent == "/" and side == 1:
                f[9] += 1
            elif parent in "+-":
                f[10] += 1
            elif parent == "/" and side == 0:
                f[11] += 1
        if r.loss[i]:
            f[12 if parent == "-" and side == 1 else 13] += parent in "+-"
        if r.gain[i]:
            f[14 if parent == "+" else 15] += parent in "+-"
        if r.compare_times[i]:
            f[17] += parent in "*/"
        if r.compare_plus[i]:
            f[18] += parent in "+-"
        if r.total[i]:
            if parent == "*":
                f[20] += 1
            elif parent in "-/" and side == 0:
                f[21] += 1
            elif parent == "+":
                f[22] += 1
    f[16] = float(len(used) > 1 and c.value in stated_values)
    f[19] = float("start" in r.cues and "-" in c.ops)
    for k, cue in enumerate(CUES):
        if cue in r.cues:
            for j, op in enumerate("+-*/"):
                f[23 + 4 * k + j] = float(op in c.ops)
