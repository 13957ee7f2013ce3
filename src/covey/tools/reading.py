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

from covey.tools.candidates import Candidate, Quantity, covered, is_complement

CUES = ("total", "left", "more", "each", "times", "start")
READER_FEATURES = (
    "target_used", "target_unused", "offtarget_used", "question_number_used", "question_number_unused",
    "addsub_same_unit", "addsub_other_unit", "mul_same_unit", "rate_times", "rate_divisor", "rate_addsub",
    "rate_divided", "loss_subtracted", "loss_added", "gain_added", "gain_subtracted", "equals_stated",
    "comparison_times", "comparison_plus_minus", "start_question_minus", "total_multiplied", "total_split",
    "total_added",
    *(f"cue_{cue}|has{op}" for cue in CUES for op in "+-*/"),
    "complement_times", "complement_part_asked", "percent_part_asked", "convert_toward", "convert_against",
    "per_target_divisor", "per_target_times", "itself_total", "itself_more", "mean_average_asked",
    "compare_toward", "compare_against", "mul_same_unit_outer")

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
    "each": re.compile(r"\b(?:each|per|every|equally|share|split|average|apiece|a piece|one|a single)\b"),
    "times": re.compile(r"\b(?:times|twice|double|triple|half)\b"),
    "start": re.compile(r"\b(?:start|started|begin|began|beginning|initially|at first|originally|before|to begin)\b"),
}
_COMPARE_TIMES = re.compile(r"\b\d[\d.,]*\s+times\s+(?:as|more|that|the)\b|\btimes\s+as\s+many\b")
_COMPARE_PLUS = re.compile(r"\b\d[\d.,]*\s+(?:[a-z$]+\s+){0,2}?(?:more|fewer|less|longer|shorter|taller|older|younger)"
                           r"\s+(?:[a-z]+\s+){0,3}?than\b")
_PART = re.compile(r"\b(?:tip|tax|discount|save|saves|saved|saving|savings|interest|commission|profit|markup|"
                   r"increase|decrease|by how much)\b")
"""A question asking for the percentage's part itself ('How much is the tip?'), not the changed whole."""
_CHANGE = re.compile(r"\b(?:sold|sells|sell|used|uses|use|ate|eats|eat|spent|spends|spend|gave|gives|give|lost|loses|"
                     r"lose|won|wins|win|got|gets|get|scored|scores|read|reads|answered|ran|walked)\b")
_PER_AFTER = re.compile(r"^\s*(?:[a-z$]+\s+){0,3}?(?:(?:per|each|every)\s+([a-z]+)|an?\s+(second|minute|hour|day|week|"
                        r"month|year|mile|km|kilometer|meter|pound|kg|kilogram|gallon|liter|litre|person|page|box|bag))\b")
_PER_BEFORE = re.compile(r"\b(?:an?|each|one|every)\s+([a-z]+)\s+(?:holds?|has|have|contains?|costs?|takes?|fits?|"
                         r"can hold|can fit|carries|seats?)\s*$")
_LESS = re.compile(r"\b(?:fewer|less|shorter|younger|lighter|smaller|lower|cheaper)\b")
_GONE_AFTER = re.compile(r"\s*(?:[a-z]+\s+){0,2}?(?:are|were|is|was|got|get)\s+(?:absent|empty|missing|broken|rotten|"
                         r"sick|away|lost|spoiled|damaged|sold|eaten|used)\b")
"""'12 students are absent', '47 chairs are empty': a number that counts what is gone."""
_SAME_VERB = re.compile(r"^\s*(?:[a-z$]+\s*){0,4}?(?:\band|,)\s*\$?$")
"""Between two numbers with no verb of its own: the second shares the first's ('gave 12 to his brother, 9 to ...')."""
_AVERAGE = re.compile(r"\b(?:average|mean)\b")
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
    per: tuple[str, ...] = ()  # what a rate is per ("18 km per hour" -> hour, "a box holds 8" -> box), or ""
    part_asked: bool = False  # the question asks for a percentage's part (the tip, the amount sold), not the rest
    question_words: frozenset[str] = frozenset()  # the question's words, singular
    asked_units: frozenset[str] = frozenset()  # what the answer is counted in: 'how many hours', 'in seconds'
    compare_sign: tuple[int, ...] = ()  # '5 years older than' +1, '3 inches shorter than' -1, else 0


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
    per: list[str] = []
    sign: list[int] = []
    for q in qs:
        if q.start < 0:
            per.append("")
            sign.append(0)
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
        per_match = _PER_AFTER.match(after) or _PER_BEFORE.search(clause_before)
        per.append(singular(next(g for g in per_match.groups() if g)) if per_match else "")
        rate.append(bool(_RATE_AFTER.match(after) or _RATE_BEFORE.search(clause_before)))
        verb_window = " ".join(_WORD.findall(clause_before)[-4:])
        lost = bool(_LOSS.search(verb_window)) or bool(re.match(r"\s*(?:[a-z]+\s+){0,2}?(?:left|fewer|less)\b", after)
                                                          or _GONE_AFTER.match(after))
        gained = bool(_GAIN.search(verb_window)) or bool(re.match(r"\s*(?:[a-z]+\s+){0,1}?more\b", after))
        previous = next((k for k in range(len(units) - 2, -1, -1) if qs[k].start >= 0), None)
        if previous is not None and not (lost or gained) and _SAME_VERB.match(prompt[qs[previous].end:q.start].lower()):
            lost, gained = loss[previous], gain[previous]  # 'spent 35 dollars on food and 20 on a movie'
        loss.append(lost)
        gain.append(gained)
        in_q.append(q.start >= q_start)
        window = lower[q.start:q.end + 50]
        ctimes.append(bool(_COMPARE_TIMES.match(window)))
        compared = _COMPARE_PLUS.match(window)
        cplus.append(bool(compared))
        sign.append(0 if compared is None else _compare_sign(compared.group(0), clause_before, lower[q.end:], question))
        total.append(bool(re.search(r"\b(?:total of|totals?|altogether|in all|combined|sum of)\s*\$?$", before)
                          or re.match(r"\s*(?:[a-z]+\s+){0,2}?(?:in all|altogether|in total)\b", after)))
    q_lower = question.lower()
    cues = frozenset(name for name, pattern in _CUE.items() if pattern.search(q_lower))
    q_words = frozenset(singular(w) for w in _WORD.findall(q_lower))
    asked = question_target(question) | {singular(w) for w in re.findall(r"\bin\s+([a-z]+)\b", q_lower)}
    part = bool(_PART.search(q_lower))
    for q in qs:  # 'It sold 35% of them. How many were sold?' asks for the part the percentage names
        if q.percent and q.start >= 0 and q.start < q_start:
            clause = re.split(r"[.?!;]", lower[:q.start])[-1] + re.split(r"[.?!;]", lower[q.end:])[0]
            part = part or bool(set(_CHANGE.findall(clause)) & set(_CHANGE.findall(q_lower)))
    return Reading(tuple(units), tuple(rate), tuple(loss), tuple(gain), tuple(in_q), question_target(question),
                   cues, tuple(ctimes), tuple(cplus), tuple(total), tuple(per), part, q_words, frozenset(asked),
                   tuple(sign))


def _pairs(c: Candidate) -> list[tuple[str, int, int]]:
    """The operations applied directly to two quantities: (operator, left index, right index)."""
    u = c.uses
    if c.shape == "ab":
        return [(c.ops[0], u[0], u[1])]
    if c.shape == "(ab)c":
        return [(c.ops[0], u[0], u[1])]
    if c.shape == "a(bc)":
        return [(c.ops[0], u[1], u[2])]
    if c.shape == "(ab)a":
        return [(c.ops[0], u[0], u[1])]
    if c.shape == "(ab)(cd)":
        return [("*", u[0], u[1]), ("*", u[2], u[3])]
    return []


def reader_features(f, c: Candidate, qs, r: Reading, stated: set[int], stated_values: set[Fraction]) -> None:
    """Fill `f` (a row slice, in READER_FEATURES' order) for candidate `c`."""
    used = covered(qs, c)
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
    base = 23 + 4 * len(CUES)
    for k, i in enumerate(c.uses):
        q, parent, side = qs[i], c.parents[k], c.sides[k]
        if is_complement(q) and parent == "*":
            f[base] += 1
            f[base + 1] += r.part_asked
        elif q.percent and parent == "*":
            f[base + 2] += r.part_asked
        if q.bigger:
            direction = _conversion(q, r.asked_units)
            if direction and (parent == "*" or (parent == "/" and side == 1)):
                toward = (direction == "smaller") == (parent == "*")
                f[base + 3 + (not toward)] += 1
        if r.per and r.per[i] and r.per[i] in r.target:
            if parent == "/" and side == 1:
                f[base + 5] += 1
            elif parent == "*":
                f[base + 6] += 1
        if r.compare_sign and r.compare_sign[i] and parent in "+-":
            toward = (r.compare_sign[i] > 0) == (parent == "+")
            f[base + 10 + (not toward)] += 1
    if c.shape in ("(ab)c", "a(bc)") and c.ops[1] == "*":
        single, pair = (c.uses[2], c.uses[:2]) if c.shape == "(ab)c" else (c.uses[0], c.uses[1:])
        f[base + 12] = float(bool(r.units[single] & (r.units[pair[0]] | r.units[pair[1]])))
    if c.shape == "(ab)a":
        f[base + 7] = float("total" in r.cues and c.ops[-1] == "+")
        f[base + 8] = float("more" in r.cues and c.ops[-1] == "-")
    f[base + 9] = float(c.shape == "mean" and bool(_AVERAGE.search(" ".join(sorted(r.question_words)))))


def _compare_sign(compared: str, subject: str, rest: str, question: str) -> int:
    """+1 when the answer is the comparison's subject plus the number ('His sister is 5 years older than him.
    How old is his sister?'), -1 when it is that minus it ('5 years younger', or asking for what it is
    compared with), 0 when the question names neither side or both."""
    sign = -1 if _LESS.search(compared) else 1
    asked = set(_content_words(question))
    than = re.split(r"[.?!,;]", rest.split(" than ", 1)[1] if " than " in rest else "", maxsplit=1)[0]
    subject_asked = bool(asked & set(_content_words(subject)))
    object_asked = bool(asked & set(_content_words(than)))
    if subject_asked == object_asked:
        return 0
    return sign if subject_asked else -sign


def _content_words(text: str) -> list[str]:
    return [singular(w) for w in _WORD.findall(text.lower()) if w not in _STOP and w not in _SKIP and w != "$"
            and w not in {"how", "many", "much", "old", "what", "is", "year", "years", "does", "do"}]


def _conversion(q: Quantity, asked: frozenset[str]) -> str:
    """Which of an implied factor's units the answer is counted in ('smaller': minutes from hours), or ''."""
    bigger = bool(asked & {singular(w) for w in q.bigger})
    smaller = bool(asked & {singular(w) for w in q.smaller})
    if bigger == smaller:
        return ""
    return "smaller" if smaller else "bigger"
