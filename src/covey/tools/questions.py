"""Read the arithmetic a question asks, check the number an answer states, and answer exactly without a model.

`read_question` finds what a prompt asks in the forms people type ("What is 17 times 23?",
"How much is 15% of 240?", "Solve 3x + 7 = 28", "How many minutes are in 3.5 hours?",
"What percent of 240 is 36?") and computes it exactly with the tools (sympy, pint).
`check_answer` compares that with the final number an answer states; `answer_directly` answers a
prompt that is nothing but such a question, so no model needs to run. All are pure functions:
a prompt they cannot read gives None, never an error.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from covey.errors import ToolError
from covey.types import Frozen

Kind = Literal["expression", "equation", "conversion", "percent"]

_NUM = r"[-+]?\d[\d,]*(?:\.\d+)?"
_PREFIX = re.compile(
    r"^(?:(?:please|hey|quick question|ok|so)[,:]?\s+)?(?:can you\s+|could you\s+)?(?:tell me\s+)?"
    r"(?:what\s+is|what's|whats|what\s+are|how\s+much\s+is|calculate|compute|evaluate|work\s+out|"
    r"what\s+does|what\s+do\s+you\s+get\s+(?:for|when\s+you|if\s+you)|what\s+number\s+is|find(?!\s+[a-z]\b))?\s*[:,]?\s*"
    r"(?:the\s+)?", re.I)
_SUFFIX = re.compile(r"\s*(?:equal|equals|make|come\s+to|give)?\s*[?.]*\s*$", re.I)
_MATHY = re.compile(r"^[\d\s.,+\-*/×÷^()%!√πa-z²³·−]+$", re.I)
_OPERATOR = re.compile(r"[-+*/×÷^%!√²³·−]|\d\s*x\s*\d|\b(?:times|plus|minus|divided|multiplied|over|squared|cubed|percent|"
                       r"sqrt|root|power|of|mod|modulo|factorial|log|sin|cos|tan)\b", re.I)
_DATE_LIKE = re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b\d{3}-\d{3,4}-\d{4}\b")
_CONVERSIONS = (
    re.compile(r"^how\s+(?:many|much)\s+(?P<to>[a-z°/ ]{1,30}?)\s+(?:are\s+|is\s+)?(?:there\s+)?(?:in\s+|(?<=are\s)|(?<=is\s))(?:an?\s+|one\s+)?"
               rf"(?P<q>(?:{_NUM}(?:/\d+)?)?\s*[a-z°/ ]{{1,30}}?)\s*[?.!]*$", re.I),
    re.compile(rf"^(?:convert\s+|what\s+is\s+|what's\s+|how\s+much\s+is\s+)?(?P<q>{_NUM}(?:/\d+)?\s*[a-z°/ ]{{1,30}}?)"
               r"\s+(?:to|in|into|in\s+terms\s+of)\s+(?P<to>[a-z°/ ]{1,30}?)\s*[?.!]*$", re.I),
)
_EQUATIONS = (
    re.compile(r"^if\s+(?P<eq>[^=?]+=[^=?]+?),?\s*(?:then\s+)?(?:what\s+is|find|solve\s+for)\s+(?P<var>[a-z])"
               r"\s*[?.!]*$", re.I),
    re.compile(r"^(?:solve|find|what\s+is)?\s*:?\s*(?:(?:for\s+)?(?P<var>[a-z])(?:\s*[:,]|\s+(?:if|in|when|where))\s*)?"
               r"(?P<eq>[^=?]*[a-z][^=?]*=[^=?]+?|[^=?]+=[^=?]*[a-z][^=?]*?)"
               r"(?:\s*,?\s*(?:for|solve\s+for|find|what\s+is)\s+(?P<var2>[a-z]))?\s*[?.!]*$", re.I),
)
_RATIO = (
    re.compile(rf"^what\s+(?:percent|percentage|%)\s+of\s+(?P<b>{_NUM})\s+is\s+(?P<a>{_NUM})\s*[?.!]*$", re.I),
    re.compile(rf"^(?P<a>{_NUM})\s+is\s+what\s+(?:percent|percentage|%)\s+of\s+(?P<b>{_NUM})\s*[?.!]*$", re.I),
    re.compile(rf"^what\s+(?:percent|percentage|%)\s+is\s+(?P<a>{_NUM})\s+(?:of|out\s+of)\s+(?P<b>{_NUM})\s*[?.!]*$",
               re.I),
    re.compile(rf"^(?:what\s+is\s+|express\s+)?(?P<a>{_NUM})\s+(?:as|in)\s+(?:a\s+)?(?:percent|percentage)\s+of\s+"
               rf"(?P<b>{_NUM})\s*[?.!]*$", re.I),
)
_SUBSTITUTION = (
    # "What is 3x^2 + 1 when x = 2?", "Evaluate 5y - 3 for y = 4", "If x = 7, what is 2x?"
    re.compile(rf"^(?:what\s+is|what's|evaluate|find|calculate|compute)\s+(?P<e>[^=?]+?)\s*,?\s+(?:if|when|for|where|"
               rf"given(?:\s+that)?|with)\s+(?P<v>[a-z])\s*=\s*(?P<n>-?{_NUM})\s*[?.!]*$", re.I),
    re.compile(rf"^(?:if|when|given(?:\s+that)?)\s+(?P<v>[a-z])\s*=\s*(?P<n>-?{_NUM})\s*,?\s*(?:then\s+)?(?:what\s+is|"
               rf"what's|evaluate|find|calculate|compute)\s+(?P<e>[^=?]+?)\s*[?.!]*$", re.I),
)
_ANSWER_MARK = re.compile(rf"(?:answer\s*(?:is|:|=)|result\s*(?:is|:)|\\boxed\{{)\s*\**\s*\$?\s*({_NUM}(?:/\d+)?)", re.I)
_EQUALS_MARK = re.compile(rf"=\s*\**\s*\$?\s*({_NUM}(?:/\d+)?)(?![\d.]*\s*[-+*/×÷^(])")
_ANY_NUMBER = re.compile(rf"(?<![\w.]){_NUM}(?:/\d+)?(?![\w])")


class Question(Frozen):
    """What a prompt asks, computed exactly."""

    kind: Kind
    text: str = Field(description="the part of the prompt read as maths, e.g. '17 times 23'")
    expression: str = Field(description="what was computed, e.g. '17*23', '3*x + 7 = 28', '3.5 hours -> minutes'")
    values: tuple[float, ...] = Field(description="the exact result(s) as numbers; several for an equation")
    shown: str = Field(description="the result as text, e.g. '391', 'x = 7', '210 minutes'")
    method: str = Field(description="the tool that computed it: 'sympy' or 'pint'")
    alternatives: tuple[float, ...] = Field((), description="other forms an answer may state (0.15 for 15%)")

    @property
    def statement(self) -> str:
        """The computed fact in one line: '17*23 = 391', '3x+7 = 28 gives x = 7', '3.5 hours = 210 minutes'."""
        if self.kind == "equation":
            return f"{self.expression} gives {self.shown}"
        if self.kind == "percent":
            return self.shown
        if self.kind == "conversion":
            return f"{self.text} = {self.shown}"
        return f"{self.expression} = {self.shown}"


class DirectAnswer(Frozen):
    """An answer computed by the tools alone, and how."""

    text: str
    value: float | tuple[float, ...]
    question: Question
    method: str


class AnswerCheck(Frozen):
    ok: bool
    reason: str
    stated: float | None = None
    question: Question | None = None


def read_question(prompt: str) -> Question | None:
    """The arithmetic the prompt asks, from the whole prompt or its one sentence with numbers; else None."""
    whole = _read(prompt.strip())
    if whole is not None:
        return whole
    # A sentence is read only when it is the one sentence with numbers: in a word problem the sum
    # one sentence asks is not the answer the whole problem asks for.
    with_numbers = [s.strip() for s in re.split(r"(?<=[?!.])\s+|\n+", prompt.strip()) if re.search(r"\d", s)]
    return _read(with_numbers[0]) if len(with_numbers) == 1 else None


def answer_directly(prompt: str) -> DirectAnswer | None:
    """The exact answer when the whole prompt is a bare expression, a conversion, an equation or a percentage."""
    question = _read(prompt.strip())
    if question is None:
        return None
    text = question.shown if question.kind in ("equation", "percent") else f"{question.text} = {question.shown}"
    value: float | tuple[float, ...] = question.values[0] if len(question.values) == 1 else question.values
    return DirectAnswer(text=text, value=value, question=question, method=f"{question.method}: {question.expression}")


def stated_number(answer: str, *, operands: tuple[float, ...] = ()) -> float | None:
    """The final number an answer states: after 'Answer:', else the last '= N', else its last new number."""
    for pattern in (_ANSWER_MARK, _EQUALS_MARK):
        found = pattern.findall(answer)
        if found:
            return _number(found[-1])
    numbers = [n for n in (_number(m) for m in _ANY_NUMBER.findall(answer)) if n is not None]
    fresh = [n for n in numbers if not any(_close(n, o, 1e-12) for o in operands)]
    picked = fresh or numbers
    return picked[-1] if picked else None


def check_answer(prompt: str, answer: str) -> AnswerCheck | None:
    """Whether the answer's final number is what the question asks; None when the prompt asks no readable sum."""
    question = read_question(prompt)
    if question is None:
        return None
    operands = tuple(n for n in (_number(m) for m in _ANY_NUMBER.findall(question.text)) if n is not None)
    raw = _last_raw_number(answer)
    stated = stated_number(answer, operands=operands)
    if stated is None:
        return AnswerCheck(ok=False, reason=f"the answer states no number; {question.statement}",
                           question=question)
    decimals = _decimals(raw) if raw else 0
    if any(_agrees(stated, v, decimals) for v in question.values + question.alternatives):
        return AnswerCheck(ok=True, reason=f"the answer {_fmt(stated)} agrees: {question.statement} "
                           f"({question.method})", stated=stated, question=question)
    return AnswerCheck(ok=False, reason=f"the answer says {_fmt(stated)} but {question.statement} "
                       f"({question.method})", stated=stated, question=question)


# reading ------------------------------------------------------------------------------------------


_PARTS = {"half": ".5", "quarter": ".25"}
_AND_A_PART = re.compile(r"\b(\d+) and a (half|quarter)\b", re.I)


def _read(text: str) -> Question | None:
    if not text or len(text) > 300 or _DATE_LIKE.search(text):
        return None
    found = _read_digits(text)
    if found is None and (spelled := _spelled_out(text)) != text:
        found = _read_digits(spelled)  # "seventeen times twenty-three": read again with its numbers as digits
    return found


def _spelled_out(text: str) -> str:
    """The text with numbers written in words as digits (text2num), or the text itself without text2num."""
    try:
        from text_to_num import alpha2digit
    except ImportError:  # pragma: no cover - an orchestrator install has it
        return text
    for words in sorted(_FRACTION_WORDS, key=len, reverse=True):  # "a third" would become "a 3rd"
        text = re.sub(rf"(?<!and )(?<!and a )\b{words}\b", _FRACTION_WORDS[words], text, flags=re.I)  # "3 and a half" stays
    return alpha2digit(text, "en", threshold=0)


def _read_digits(text: str) -> Question | None:
    text = _AND_A_PART.sub(lambda m: f"{m.group(1)}{_PARTS[m.group(2).lower()]}", text)  # 2 and a half -> 2.5
    for reader in (_read_ratio, _read_conversion, _read_substitution, _read_equation, _read_phrase, _read_expression):
        try:
            found = reader(text)
        except ToolError:
            found = None
        if found is not None:
            return found
    return None


def _read_expression(text: str) -> Question | None:
    from covey.tools import arithmetic

    body = _SUFFIX.sub("", _PREFIX.sub("", text, count=1))
    if not body or not re.search(r"\d", body) or not _OPERATOR.search(body) or not _MATHY.match(body):
        return None
    if "=" in body:
        return None
    value = arithmetic.evaluate(body)
    number = arithmetic.to_float(value)
    if number is None:
        return None
    return Question(kind="expression", text=body.strip(), expression=_compact(arithmetic.normalize(body)),
                    values=(number,), shown=arithmetic.format_number(value), method="sympy")


_LIST = rf"(?P<list>{_NUM}(?:\s*,\s*{_NUM})*,?\s+and\s+{_NUM})"
_FRACTION_WORDS = {"half": "1/2", "a half": "1/2", "one half": "1/2", "a third": "1/3", "one third": "1/3",
                   "a quarter": "1/4", "one quarter": "1/4", "a fourth": "1/4", "one fourth": "1/4",
                   "a fifth": "1/5", "one fifth": "1/5", "two thirds": "2/3", "three quarters": "3/4",
                   "three fourths": "3/4", "a tenth": "1/10", "one tenth": "1/10"}
_MULTIPLES = {"double": "2", "twice": "2", "triple": "3", "thrice": "3", "quadruple": "4"}
_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = (
    # (pattern over the prompt without its "what is"/"calculate", sympy template over its named groups)
    (re.compile(rf"^(?:average|mean|arithmetic\s+mean)\s+of\s+{_LIST}$", re.I), "mean"),
    (re.compile(rf"^sum\s+of\s+{_LIST}$", re.I), "sum"),
    (re.compile(rf"^product\s+of\s+{_LIST}$", re.I), "product"),
    (re.compile(rf"^(?:greatest|highest|largest)\s+common\s+(?:divisor|factor)\s+of\s+{_LIST}$|^(?:gcd|gcf|hcf)"
                rf"\s+of\s+{_LIST.replace('list', 'list2')}$", re.I), "gcd"),
    (re.compile(rf"^(?:least|lowest|smallest)\s+common\s+multiple\s+of\s+{_LIST}$|^lcm\s+of\s+"
                rf"{_LIST.replace('list', 'list2')}$", re.I), "lcm"),
    (re.compile(rf"^multiply\s+(?P<a>{_NUM})\s+(?:by|and|with)\s+(?P<b>{_NUM})$", re.I), "({a})*({b})"),
    (re.compile(rf"^divide\s+(?P<a>{_NUM})\s+by\s+(?P<b>{_NUM})$", re.I), "({a})/({b})"),
    (re.compile(rf"^add\s+(?P<a>{_NUM})\s+(?:and|to|plus)\s+(?P<b>{_NUM})$", re.I), "({a})+({b})"),
    (re.compile(rf"^subtract\s+(?P<a>{_NUM})\s+from\s+(?P<b>{_NUM})$", re.I), "({b})-({a})"),
    (re.compile(rf"^take\s+(?P<a>{_NUM})\s+(?:away\s+)?from\s+(?P<b>{_NUM})$", re.I), "({b})-({a})"),
    (re.compile(rf"^difference\s+between\s+(?P<a>{_NUM})\s+and\s+(?P<b>{_NUM})$", re.I), "({a})-({b})"),
    (re.compile(rf"^(?P<a>{_NUM})\s+factorial$|^factorial\s+of\s+(?P<a2>{_NUM})$", re.I), "factorial({a})"),
    (re.compile(rf"^(?:the\s+)?remainder\s+(?:when|if|of)\s+(?P<a>{_NUM})\s+(?:is\s+)?divided\s+by\s+(?P<b>{_NUM})$",
                re.I), "({a}) mod ({b})"),
    (re.compile(rf"^(?P<a>{_NUM})\s+more\s+than\s+(?P<b>{_NUM})$", re.I), "({b})+({a})"),
    (re.compile(rf"^(?P<a>{_NUM})\s+(?:less|fewer)\s+than\s+(?P<b>{_NUM})$", re.I), "({b})-({a})"),
    (re.compile(rf"^(?P<f>{'|'.join(sorted(_FRACTION_WORDS, key=len, reverse=True))})\s+of\s+(?P<a>{_NUM})$", re.I),
     "({f})*({a})"),
    (re.compile(rf"^(?P<m>{'|'.join(_MULTIPLES)})\s+(?P<a>{_NUM})$", re.I), "({m})*({a})"),
    (re.compile(rf"^(?P<f>\d+\s*/\s*\d+)\s+of\s+(?P<a>{_NUM})$", re.I), "({f})*({a})"),
    (re.compile(rf"^(?P<a>{_NUM})\s+(?:to|raised\s+to)\s+the\s+(?P<b>\d+)(?:st|nd|rd|th)(?:\s+power)?$", re.I),
     "({a})^({b})"),
    (re.compile(rf"^square\s+of\s+(?P<a>{_NUM})$", re.I), "({a})^2"),
    (re.compile(rf"^(?P<a>{_NUM}|a|half\s+a)\s+dozens?$", re.I), "dozen"),
    (re.compile(rf"^cube\s+of\s+(?P<a>{_NUM})$", re.I), "({a})^3"),
    (re.compile(rf"^(?P<p>{_NUM})\s*(?:%|percent)\s+off\s+(?:of\s+)?\$?(?P<a>{_NUM})$", re.I), "({a})*(1-({p})/100)"),
    (re.compile(rf"^(?:increase\s+\$?(?P<a>{_NUM})\s+by|\$?(?P<a2>{_NUM})\s+increased\s+by)\s+(?P<p>{_NUM})\s*(?:%|percent)$",
                re.I), "({a})*(1+({p})/100)"),
    (re.compile(rf"^(?:decrease|reduce)\s+\$?(?P<a>{_NUM})\s+by\s+(?P<p>{_NUM})\s*(?:%|percent)$|^\$?(?P<a2>{_NUM})\s+"
                rf"(?:decreased|reduced)\s+by\s+(?P<p2>{_NUM})\s*(?:%|percent)$", re.I), "({a})*(1-({p})/100)"),
    (re.compile(rf"^(?P<a>{_NUM}\s*/\s*{_NUM}|{_NUM})\s+(?:as|in)\s+(?:a\s+)?(?:percent|percentage)$", re.I), "percent"),
    (re.compile(rf"^(?P<a>{_NUM}\s*/\s*{_NUM}|{_NUM})\s+(?:as|in)\s+(?:a\s+)?decimal(?:\s+form)?$", re.I), "({a})"),
    (re.compile(rf"^round\s+(?P<a>{_NUM})\s+to\s+(?:the\s+nearest\s+)?(?P<d>\w+)(?:\s+decimal\s+places?|"
                r"\s+places?)?$", re.I), "round"),
)
_IMPERATIVE = re.compile(r"^(?:multiply|divide|add|subtract|take)\b", re.I)
_PLACES = {"whole": 0, "whole number": 0, "integer": 0, "one": 1, "two": 2, "three": 3, "four": 4, "tenth": 1,
           "hundredth": 2, "thousandth": 3, "ten": -1, "hundred": -2, "thousand": -3}


def _read_phrase(text: str) -> Question | None:
    """Arithmetic said in words: 'the average of 3, 5 and 10', 'the gcd of 12 and 18', '10 factorial',
    'half of 86', '5 more than 12', '3/4 as a decimal', 'round 3.14159 to two decimal places'."""
    from covey.tools import arithmetic

    body = _SUFFIX.sub("", _PREFIX.sub("", text, count=1)).strip()
    body = re.sub(r"^the\s+", "", body, flags=re.I)
    for pattern, template in _PHRASES:
        match = pattern.match(body)
        if match is None:
            continue
        groups = {k.rstrip("2"): v for k, v in match.groupdict().items() if v is not None}
        if "list" in groups:
            numbers = [n.replace(",", "") for n in re.findall(_NUM, groups["list"].replace(", ", " "))]  # '1,250' whole
            expression = {"mean": f"({'+'.join(numbers)})/{len(numbers)}", "sum": "+".join(numbers),
                          "product": "*".join(f"({n})" for n in numbers),
                          "gcd": f"gcd({', '.join(numbers)})" if len(numbers) == 2 else "",
                          "lcm": f"lcm({', '.join(numbers)})" if len(numbers) == 2 else ""}[template]
        elif template == "percent":
            expression = f"({groups['a']})*100"
        elif template == "dozen":
            count = {"a": "1", "half a": "1/2"}.get(re.sub(r"\s+", " ", groups["a"].lower()), groups["a"].replace(",", ""))
            expression = f"({count})*12"
        elif template == "round":
            places = _PLACES.get(re.sub(r"\s+", " ", groups["d"].lower()))
            digits = places if places is not None else (int(groups["d"]) if groups["d"].isdigit() else None)
            if digits is None:
                return None
            expression = f"round({groups['a']}, {digits})"
        else:
            values = {k: _FRACTION_WORDS.get(v.lower(), _MULTIPLES.get(v.lower(), v.replace(",", "")))
                      for k, v in groups.items()}
            expression = template.format(**values)
        if not expression:
            return None
        value = arithmetic.evaluate(expression)
        number = arithmetic.to_float(value)
        if number is None:
            return None
        shown = arithmetic.format_number(value) + ("%" if template == "percent" else "")
        if _IMPERATIVE.match(body):  # "Add 234 and 567 = 801" reads wrongly: "234 + 567 = 801"
            body = re.sub(r"\s*([-+*/])\s*", r" \1 ", expression.replace("(", "").replace(")", ""))
        return Question(kind="expression", text=body, expression=_compact(expression), values=(number,),
                        shown=shown, method="sympy")
    return None


def _read_substitution(text: str) -> Question | None:
    """An expression in one letter evaluated at a given value: 'What is 3x^2 + 1 when x = 2?' -> 13."""
    from covey.tools import arithmetic

    for pattern in _SUBSTITUTION:
        match = pattern.match(text.strip())
        if match is None:
            continue
        body, letter, raw = match.group("e").strip(), match.group("v").lower(), match.group("n").replace(",", "")
        letters = set(re.findall(r"(?<![a-z])[a-z](?![a-z])", body.lower()))
        if letters != {letter} or not _MATHY.match(body) or re.search(r"[a-z]{2,}", body, re.I):
            return None  # another unknown, or words: not an expression in that one letter
        import sympy

        expr = arithmetic.parse(body)
        value = arithmetic.evaluate(str(expr.subs(sympy.Symbol(letter), sympy.Rational(raw))))
        number = arithmetic.to_float(value)
        if number is None:
            return None
        return Question(kind="expression", text=f"with {letter} = {raw}, {body}",  # "with x = 2, 3x^2 + 1 = 13"
                        expression=f"{_compact(arithmetic.normalize(body))} at {letter} = {raw}", values=(number,),
                        shown=arithmetic.format_number(value), method="sympy")
    return None


def _read_equation(text: str) -> Question | None:
    from covey.tools import arithmetic

    if text.count("=") != 1:
        return None
    for pattern in _EQUATIONS:
        match = pattern.match(text)
        if not match:
            continue
        equation = match.group("eq").strip()
        variable = match.groupdict().get("var") or match.groupdict().get("var2")
        if not _MATHY.match(equation.replace("=", "")):
            continue
        name, solutions = arithmetic.solve(equation, variable)
        values = tuple(v for v in (arithmetic.to_float(s) for s in solutions) if v is not None)
        if not values:
            return None
        shown = " or ".join(f"{name} = {arithmetic.format_number(s)}" for s in solutions
                            if arithmetic.to_float(s) is not None)
        left, right = equation.split("=")
        expr = f"{_compact(arithmetic.normalize(left))} = {_compact(arithmetic.normalize(right))}"
        return Question(kind="equation", text=equation, expression=expr, values=values, shown=shown, method="sympy")
    return None


def _read_conversion(text: str) -> Question | None:
    from covey.tools import units

    for pattern in _CONVERSIONS:
        match = pattern.match(text)
        if not match:
            continue
        quantity, target = match.group("q").strip(), match.group("to").strip()
        if not re.search(r"[a-z°]", quantity, re.I):
            return None
        magnitude, _ = units.convert(quantity, target)
        shown = f"{units.format_magnitude(float(f'{magnitude:.6g}'))} {target}"  # 3.10686 miles, not 3.10685596119
        if not re.match(r"[-+]?\d", quantity):
            quantity = f"1 {quantity}"
        return Question(kind="conversion", text=quantity, expression=f"{quantity} -> {target}", values=(magnitude,),
                        shown=shown, method="pint")
    return None


def _read_ratio(text: str) -> Question | None:
    from covey.tools import arithmetic

    for pattern in _RATIO:
        match = pattern.match(text)
        if match:
            a, b = match.group("a").replace(",", ""), match.group("b").replace(",", "")
            value = arithmetic.percent("ratio", a, b)
            number = arithmetic.to_float(value)
            if number is None:
                return None
            shown = f"{a} is {arithmetic.format_number(value)}% of {b}"
            return Question(kind="percent", text=text.rstrip("?.! "), expression=f"{a}/{b}*100", values=(number,),
                            shown=shown, method="sympy", alternatives=(number / 100,))
    return None


# numbers ------------------------------------------------------------------------------------------


def _number(raw: str) -> float | None:
    raw = raw.replace(",", "").replace("+", "")
    try:
        if "/" in raw:
            top, bottom = raw.split("/")
            return float(top) / float(bottom) if float(bottom) else None
        return float(raw)
    except ValueError:
        return None


def _last_raw_number(answer: str) -> str | None:
    for pattern in (_ANSWER_MARK, _EQUALS_MARK, _ANY_NUMBER):
        found = pattern.findall(answer)
        if found:
            return found[-1]
    return None


def _decimals(raw: str) -> int:
    return len(raw.split(".")[1]) if "." in raw and "/" not in raw else 0


def _agrees(stated: float, expected: float, decimals: int) -> bool:
    """Equal, or equal after rounding the expected value to the decimals the answer shows (at least 2)."""
    if _close(stated, expected, 1e-9):
        return True
    if float(expected).is_integer():
        return False
    return abs(stated - expected) <= 0.5 * 10 ** -max(decimals, 0) + 1e-12 and decimals >= 1 or \
        (decimals == 0 and abs(stated - expected) < 0.5 and abs(expected) >= 100)


def _close(a: float, b: float, rel: float) -> bool:
    return abs(a - b) <= max(rel * max(abs(a), abs(b)), 1e-12)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.12g}"


def _compact(expression: str) -> str:
    return re.sub(r"\s+", "", expression)
