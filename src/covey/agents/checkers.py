"""Cheap answer checkers a cascade runs before accepting a small model's answer.

Each checker is a pure function `(prompt, answer) -> CheckResult`. A failed check is a reason
to climb the model ladder, never an error. Checkers check what they can see and pass what they
cannot judge (an explanation without code passes `python_parses`).
"""

from __future__ import annotations

import ast
import json
import math
import operator
import re
from collections.abc import Callable

from covey.types import Frozen


class CheckResult(Frozen):
    ok: bool
    reason: str = ""


Checker = Callable[[str, str], CheckResult]

_FENCE = re.compile(r"```([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PY_LANGS = {"python", "py", "python3", ""}
_LOOKS_PYTHON = re.compile(r"^\s*(def |class |import |from \w+ import |for .+:|if .+:|print\()", re.M)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:e-?\d+)?")
_NUM = r"-?\d+(?:,\d{3})*(?:\.\d+)?"
_EQUATION = re.compile(
    rf"(?<![\w.^])(\(?\s*{_NUM}(?:\s*(?:[-+*/×÷^]|\bx\b)\s*\(?\s*{_NUM}\s*\)?)+)\s*=\s*({_NUM})(?![\d.]*\s*[-+*/×÷^(])"
)
_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


_ASKS_FOR_CODE = re.compile(r"\b(?:write|implement|create|code|give\s+me|make|define)\b[^.?!\n]{0,60}?\b(?:function|"
                            r"program|script|class|method|snippet|code)\b", re.I)


def python_parses(prompt: str, answer: str) -> CheckResult:
    """Every Python code block in the answer is valid Python syntax; an answer to a request for code has some,
    and an answer with no code is not the request repeated."""
    from covey.text import balanced_fences

    answer = balanced_fences(answer)
    blocks = [code for lang, code in _FENCE.findall(answer) if lang.lower() in _PY_LANGS]
    if not blocks and _LOOKS_PYTHON.search(answer) and "```" not in answer:
        blocks = [answer]
    if not blocks:
        if not answer.strip():
            return CheckResult(ok=False, reason="empty answer")
        if echoes(prompt, answer):  # Gemma 270M answered "Write a Python function that ..." with the request
            return CheckResult(ok=False, reason="the answer repeats the request instead of answering it")
        if _ASKS_FOR_CODE.search(prompt) and not _LOOKS_PYTHON.search(answer):
            return CheckResult(ok=False, reason="the request asks for code and the answer has none")
        return CheckResult(ok=True, reason="no Python code to check")
    for i, code in enumerate(blocks, 1):
        try:
            ast.parse(code)
        except SyntaxError as exc:
            return CheckResult(ok=False, reason=f"code block {i} does not parse: {exc.msg} (line {exc.lineno})")
    return CheckResult(ok=True, reason=f"{len(blocks)} Python block(s) parse")


def number_consistent(prompt: str, answer: str) -> CheckResult:
    """The answer ends with a number, every `a op b = c` it writes is right, and it answers the question asked.

    When the prompt asks a sum the tools can read ("What is 17 times 23?", "Solve 3x + 7 = 28",
    "How many minutes are in 3.5 hours?"), the final number must equal what sympy or pint compute.
    """
    numbers = _NUMBER.findall(answer)
    if not numbers:
        return CheckResult(ok=False, reason="no number in the answer")
    asked = matches_question(prompt, answer)
    if not asked.ok:
        return asked
    if wrong := wrong_equation(answer):
        return wrong
    return CheckResult(ok=True, reason=f"final number {numbers[-1]}")


def wrong_equation(answer: str) -> CheckResult | None:
    """The first `a op b = c` the answer writes whose arithmetic is wrong ('2025 x 37.6 = 7480'), as a failed check."""
    for lhs, rhs in _EQUATION.findall(answer):
        value = _evaluate(lhs)
        if value is None:
            continue
        claimed = float(rhs.replace(",", ""))
        decimals = len(rhs.split(".")[1]) if "." in rhs else 0
        tolerance = max(0.5 * 10**-decimals, 1e-9 * abs(claimed)) + 1e-9
        if not math.isfinite(value) or abs(value - claimed) > tolerance:
            shown = f"{value:.6g}" if math.isfinite(value) else "undefined"
            return CheckResult(ok=False, reason=f"'{lhs.strip()} = {rhs}' is wrong ({shown})")
    return None


def matches_question(prompt: str, answer: str) -> CheckResult:
    """The final number of the answer is what the arithmetic question asks (computed exactly); passes otherwise."""
    try:
        from covey.tools.questions import check_answer
    except ImportError:  # a base install without sympy/pint: nothing to compare with
        return CheckResult(ok=True, reason="no maths tools installed to check the question")
    checked = check_answer(prompt, answer) if prompt.strip() else None
    if checked is None:
        return CheckResult(ok=True, reason="the prompt asks no arithmetic the tools can read")
    return CheckResult(ok=checked.ok, reason=checked.reason)


def json_parses(prompt: str, answer: str) -> CheckResult:
    """The answer (or its ```json block) is valid JSON."""
    blocks = [code for lang, code in _FENCE.findall(answer) if lang.lower() in {"json", ""}]
    text = blocks[0] if blocks else answer
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return CheckResult(ok=False, reason=f"not valid JSON: {exc.msg} (line {exc.lineno})")
    return CheckResult(ok=True, reason="valid JSON")


ECHO_RATIO = 0.85
"""An answer this similar to the whole prompt (difflib's ratio, 0-1) repeats the request instead of
answering it: Gemma 270M, asked "Translate 'Where is the train station?' into French", wrote
"Translate 'Where is the train station?' into English". An answer quoting part of a pasted text is
far shorter than the prompt, so its ratio stays low."""
RESTATED_SHARE = 0.7
"""An answer that opens with the request's first two words, is no longer than it and takes this share of its
words from it restates the request."""
_QUESTION_WORDS = frozenset("what who whom whose where when why how which is are was were do does did can could "
                            "will would should".split())
_ECHO_MAX_CHARS = 2000  # difflib is quadratic at worst; longer prompts are not compared


def nonempty(prompt: str, answer: str) -> CheckResult:
    """The answer says something, is not one line repeated over and over, is not the prompt echoed, writes no
    wrong `a op b = c`, and is in the request's language unless the request names one
    (covey.agents.translation.other_language)."""
    lines = [line.strip() for line in answer.splitlines() if line.strip()]
    if not lines:
        return CheckResult(ok=False, reason="empty answer")
    if len(lines) >= 4 and len(set(lines)) == 1:
        return CheckResult(ok=False, reason="the same line repeated")
    if echoes(prompt, answer):
        return CheckResult(ok=False, reason="the answer repeats the request instead of answering it")
    if wrong := wrong_equation(answer):  # a knowledge answer's own sums are checked too
        return wrong
    from covey.agents.translation import other_language

    if why := other_language(prompt, answer):
        return CheckResult(ok=False, reason=why)
    return CheckResult(ok=True, reason="non-empty")


INSTRUCTION_ECHO_WORDS = 8
"""An answer holding this many consecutive words of the agent's own system prompt (or made mostly of
them) recites its instructions instead of answering: Gemma 3 270M, a base model prompted in the plain
"System: ... User: ... Assistant:" format, answered "Say hello to my grandmother" with "You are a
polite, friendly person. Answer in an amiable tone ..."."""


def echoes_instructions(system_prompt: str, answer: str) -> bool:
    """Whether `answer` recites `system_prompt` (word runs compared case- and punctuation-insensitively)."""
    from difflib import SequenceMatcher

    words = re.compile(r"[\w']+")
    sys_words, ans_words = words.findall(system_prompt.lower()), words.findall(answer.lower())
    if len(sys_words) < INSTRUCTION_ECHO_WORDS or not ans_words or len(ans_words) > _ECHO_MAX_CHARS:
        return False  # a one-line prompt ("You are helpful.") shares words with answers by chance
    m = SequenceMatcher(None, sys_words, ans_words, autojunk=False)
    run = m.find_longest_match(0, len(sys_words), 0, len(ans_words)).size
    return run >= INSTRUCTION_ECHO_WORDS or (
        len(ans_words) >= 4 and sum(b.size for b in m.get_matching_blocks()) >= 0.6 * len(ans_words))


def echoes(prompt: str, answer: str) -> bool:
    """Whether `answer` is (nearly) the prompt itself, compared case- and space-insensitively."""
    from difflib import SequenceMatcher

    a, b = " ".join(prompt.lower().split()), " ".join(answer.lower().split())
    if not a or not b or len(a) > _ECHO_MAX_CHARS or len(b) > _ECHO_MAX_CHARS:
        return False
    if b.startswith(a) and len(b.split()) > len(a.split()):
        return False  # the question restated, then answered: "What is the capital of France? Paris."
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    if matcher.quick_ratio() >= ECHO_RATIO and matcher.ratio() >= ECHO_RATIO:
        return True
    # the request restated with a word swapped: "Write a poem about a dog that still works." for "Write a
    # short poem about an old laptop that still works." (Gemma 270M in `make demo`)
    asked, said = re.findall(r"[\w']+", a), re.findall(r"[\w']+", b)
    return (len(said) >= 4 and len(said) <= len(asked) + 2 and said[:2] == asked[:2]
            and asked[0] not in _QUESTION_WORDS  # "What is the capital of France? Paris." answers
            and sum(w in set(asked) for w in said) >= RESTATED_SHARE * len(said))


def translation(prompt: str, answer: str) -> CheckResult:
    """`nonempty`, and the answer is in the language asked for, not the source's (covey.agents.translation)."""
    from covey.agents.translation import language_check

    return language_check(prompt, answer)


CHECKERS: dict[str, Checker] = {
    "python_parses": python_parses,
    "number_consistent": number_consistent,
    "matches_question": matches_question,
    "json_parses": json_parses,
    "nonempty": nonempty,
    "translation": translation,
}
"""Checkers an AgentSpec can name."""


def run_check(name: str, prompt: str, answer: str) -> CheckResult:
    return CHECKERS[name](prompt, answer)


def _evaluate(expression: str) -> float | None:
    """Value of a plain arithmetic expression (numbers, + - * / ^ × ÷ x, parentheses), else None."""
    text = expression.strip().replace(",", "").replace("×", "*").replace("÷", "/").replace("^", "**")
    text = re.sub(r"\bx\b", "*", text)
    try:
        tree = ast.parse(text, mode="eval")
        return _eval_node(tree.body)
    except (SyntaxError, ValueError, OverflowError):
        return None  # not something this checker can judge (unbalanced, too big): skip it
    except ZeroDivisionError:
        return float("nan")


def _eval_node(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval_node(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval_node(node.left), _eval_node(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise OverflowError
        return _OPS[type(node.op)](left, right)
    raise ValueError("not plain arithmetic")
