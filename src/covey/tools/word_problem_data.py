"""Word problems transcribed from MAWPS and SVAMP (data/word_problems/*.tsv) read into prompts and answers.

Each line is ``question<TAB>numbers<TAB>equation``, as the SVAMP repository (arkilpatel/SVAMP, MIT
licence) stores them: the question with its numbers masked as ``number0``, ``number1`` ..., the numbers
(space-separated) and the equation in prefix notation (``- number0 * number1 number2``). `read_tsv`
puts the numbers back, undoes the datasets' tokenisation ("Emily 's" -> "Emily's", "$ 5" -> "$5"),
and evaluates the equation exactly; `operands` are the values the equation uses (a candidate that uses
other stated numbers is not the way the problem is solved). Pure functions, used by the ranker's fit
script and the bench; nothing here runs on a user's question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

_MASK = re.compile(r"\bnumber(\d+)\b")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}


@dataclass(frozen=True)
class WordProblem:
    """One problem: the prompt as a user would write it, the exact answer and the values its equation uses."""

    prompt: str
    answer: Fraction
    operands: frozenset[Fraction]
    equation: str
    source: str


def number_text(raw: str) -> str:
    """'56.0' -> '56', '0.16666666666666666' -> '0.166667', '3.00' -> '3'."""
    value = float(raw)
    if value.is_integer():
        return str(int(value))
    return f"{value:.6g}"


def detokenize(text: str) -> str:
    """Undo the datasets' word tokenisation so the prompt reads as typed."""
    text = re.sub(r"\s+([.,?!;:%])", r"\1", text)
    text = re.sub(r"\s+(['’]s|n't|['’]re|['’]ll|['’]ve|['’]m|['’]d)\b", r"\1", text)
    text = re.sub(r"\s+[’']\s+s\b", "'s", text)
    text = re.sub(r"\$\s+", "$", text)
    text = re.sub(r"(\w) - (\w)", r"\1-\2", text)
    text = text.strip()
    return text[:1].upper() + text[1:]


def evaluate_prefix(equation: str, numbers: list[Fraction]) -> Fraction:
    """The exact value of a prefix equation over ``number<i>`` names and literals ('* number0 12.0')."""
    tokens = equation.split()
    position = 0

    def walk() -> Fraction:
        nonlocal position
        if position >= len(tokens):
            raise ValueError(f"equation {equation!r} ends early")
        token = tokens[position]
        position += 1
        if token in _OPS:
            left = walk()
            right = walk()
            if token == "/" and right == 0:
                raise ValueError(f"equation {equation!r} divides by zero")
            return _OPS[token](left, right)
        masked = _MASK.fullmatch(token)
        if masked:
            return numbers[int(masked.group(1))]
        return Fraction(token)

    value = walk()
    if position != len(tokens):
        raise ValueError(f"equation {equation!r} has tokens left over")
    return value


def equation_operands(equation: str, numbers: list[Fraction]) -> frozenset[Fraction]:
    found: set[Fraction] = set()
    for token in equation.split():
        masked = _MASK.fullmatch(token)
        if masked:
            found.add(numbers[int(masked.group(1))])
        elif token not in _OPS:
            found.add(Fraction(token))
    return frozenset(found)


def read_line(line: str, source: str) -> WordProblem:
    """One TSV line as a problem; a clear error for a line that is not question, numbers, equation."""
    parts = line.rstrip("\n").split("\t")
    if len(parts) != 3:
        raise ValueError(f"{source}: expected question<TAB>numbers<TAB>equation, got {len(parts)} field(s): {line[:80]!r}")
    question, numbers_text, equation = parts
    shown = [number_text(n) for n in numbers_text.split()]
    numbers = [Fraction(s) for s in shown]
    masks = {int(m) for m in _MASK.findall(question)} | {int(m) for m in _MASK.findall(equation)}
    if masks and max(masks) >= len(numbers):
        raise ValueError(f"{source}: the line names number{max(masks)} but lists {len(numbers)} number(s)")
    prompt = detokenize(_MASK.sub(lambda m: shown[int(m.group(1))], question))
    return WordProblem(prompt, evaluate_prefix(equation, numbers), equation_operands(equation, numbers), equation,
                       source)


def read_tsv(path: Path) -> list[WordProblem]:
    """Every problem in a transcribed file (blank lines skipped)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [read_line(line, f"{path.name}:{i + 1}") for i, line in enumerate(lines)]
