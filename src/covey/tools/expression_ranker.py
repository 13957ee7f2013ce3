"""Which candidate expression answers a word problem: a small fitted linear scorer over the candidates.

`covey.tools.candidates` builds every expression of one or two operations over a problem's quantities;
this module scores each one with a linear model over its features and turns the scores into a
probability per distinct value (softmax over the candidates, summed by value). The features are what
a reader weighs: how many stated numbers are used and which are left out (problems state distractors),
the operators, whether a count comes out whole and positive, what covey.tools.reading notices (the
question's target noun against each number's unit, rates, change verbs, comparisons, the question's
cues) and hashed pairs of (word near a number, the operator applied to it) and (word of the question,
the operator). The weights ship in the package (`covey/data/expression_ranker.npz`, fitted by
`scripts/fit_expression_ranker.py` with a listwise softmax objective on MAWPS one- and two-step
problems, data/word_problems; the provenance, the cross-validated figures and the confident-answer
threshold are in `expression_ranker.json`), so nothing is fitted on a user's question. numpy only.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np

from covey.tools.candidates import (SHAPES, Candidate, Quantity, covered, enumerate_candidates, is_complement, quantities,
                                    value_text)
from covey.tools.reading import READER_FEATURES, read_quantities, reader_features

HASH_DIM = 1 << 14
_HAND = ("frac_stated_used", "stated_unused", "all_stated_used", "words_used", "implied_used", "words_unused",
         "op+", "op-", "op*", "op/", "integer", "negative", "zero", "above_max_stated", "below_min_used",
         "count_not_integer", "in_text_order", *(f"shape_{shape}" for shape in SHAPES),
         "percent_used", "percent_times", "many_decimals", "n_used", "whole_used", "fraction_result_count",
         "implied_unused", "integer_measure", "percent_divisor", "percent_addsub", *READER_FEATURES)
_IX = {name: k for k, name in enumerate(_HAND)}
HAND_DIM = len(_HAND)
HAND_FEATURES = _HAND
"""The dense features by name, in the order the weights use them."""
DIM = HAND_DIM + HASH_DIM
_TOKEN = re.compile(r"[a-z]+|\$|%")
_STOP = {"the", "a", "an", "and", "of", "to", "in", "is", "it", "for", "on", "at", "his", "her", "he", "she", "they",
         "their", "was", "were", "be", "that", "this", "with", "if", "as", "by"}
_COUNT_QUESTION = re.compile(r"\bhow\s+many\s+(?:more\s+|fewer\s+|less\s+)?([a-z]+)", re.I)
MEASURES = frozenset(
    "second seconds minute minutes hour hours day days week weeks month months year years mile miles km kilometer "
    "kilometers kilometre kilometres meter meters metre metres cm centimeter centimeters foot feet inch inches yard "
    "yards liter liters litre litres ml gallon gallons quart quarts cup cups pound pounds ounce ounces kg kilogram "
    "kilograms gram grams ton tons degree degrees dollar dollars cent cents".split())
"""Units a 'how many' question may ask for in fractions ('how many hours': 1.5), unlike things it counts."""
_DATA = Path(__file__).resolve().parent.parent / "data"
WEIGHTS_PATH = _DATA / "expression_ranker.npz"
PROVENANCE_PATH = _DATA / "expression_ranker.json"


@dataclass(frozen=True)
class Ranked:
    """One value the candidates reach, its probability, and the best-scored expression giving it."""

    value: Fraction
    probability: float
    expression: str

    @property
    def shown(self) -> str:
        return value_text(self.value)


@dataclass(frozen=True)
class Problem:
    """A problem read for ranking: its quantities, candidates and their feature rows (sparse: index lists)."""

    prompt: str
    quantities: tuple[Quantity, ...]
    candidates: tuple[Candidate, ...]
    dense: np.ndarray  # (n_candidates, len(_HAND))
    hashed: tuple[tuple[int, ...], ...]  # per candidate, indices into the hashed block (each counts 1)


def _words(text: str) -> list[str]:
    return [w for w in _TOKEN.findall(text.lower()) if w not in _STOP]


def _hash(key: str) -> int:
    return zlib.crc32(key.encode()) % HASH_DIM


def question_sentence(prompt: str) -> str:
    """The sentence that asks (the last one with a question mark, else the last sentence)."""
    sentences = [s for s in re.split(r"(?<=[.?!])\s+", prompt.strip()) if s]
    asking = [s for s in sentences if "?" in s]
    return (asking or sentences or [prompt])[-1]


def read_problem(prompt: str) -> Problem:
    """Quantities, candidates and features of `prompt` (no model; a few thousand candidates at most)."""
    qs = tuple(quantities(prompt))
    cands = tuple(enumerate_candidates(list(qs), prompt))
    asking = _words(question_sentence(prompt))
    count = _COUNT_QUESTION.search(question_sentence(prompt))
    measuring = count is not None and count.group(1).lower() in MEASURES
    counting = count is not None and not measuring
    contexts = [_context(prompt, q) for q in qs]
    stated = [i for i, q in enumerate(qs) if q.kind == "stated"]
    words = [i for i, q in enumerate(qs) if q.kind == "word"]
    implied = [i for i, q in enumerate(qs) if q.kind == "implied"]
    max_stated = max((qs[i].value for i in stated), default=Fraction(0))
    reading = read_quantities(prompt, qs)
    stated_values = {qs[i].value for i in stated}
    dense = np.zeros((len(cands), len(_HAND)), dtype=np.float32)
    hashed: list[tuple[int, ...]] = []
    for row, c in enumerate(cands):
        used = covered(qs, c)
        n_stated_used = len(used & set(stated))
        integer = c.value.denominator == 1
        f = dense[row]
        f[_IX["frac_stated_used"]] = n_stated_used / len(stated) if stated else 1.0
        f[_IX["stated_unused"]] = len(stated) - n_stated_used
        f[_IX["all_stated_used"]] = float(n_stated_used == len(stated))
        f[_IX["words_used"]] = len(used & set(words))
        f[_IX["implied_used"]] = len(used & set(implied))
        f[_IX["words_unused"]] = len(words) - len(used & set(words))
        for op in "+-*/":
            f[_IX[f"op{op}"]] = c.ops.count(op)
        f[_IX["integer"]] = float(integer)
        f[_IX["negative"]] = float(c.value < 0)
        f[_IX["zero"]] = float(c.value == 0)
        f[_IX["above_max_stated"]] = float(c.value > max_stated)
        f[_IX["below_min_used"]] = float(c.value < min(qs[i].value for i in c.uses))
        f[_IX["count_not_integer"]] = float(counting and not integer)
        order = [qs[i].start for i in c.uses if qs[i].start >= 0]
        f[_IX["in_text_order"]] = float(order == sorted(order))
        f[_IX[f"shape_{c.shape}"]] = 1.0
        percents = [k for k, i in enumerate(c.uses) if qs[i].percent]
        f[_IX["percent_used"]] = float(bool(percents))
        f[_IX["percent_times"]] = float(any(c.parents[k] == "*" for k in percents))
        f[_IX["many_decimals"]] = float(not integer and (c.value * 100).denominator != 1)
        f[_IX["n_used"]] = len(c.uses)
        f[_IX["whole_used"]] = float(any(qs[i].text.startswith("1 (") for i in c.uses))
        f[_IX["fraction_result_count"]] = float(counting and c.value.denominator == 1 and c.value < 0)
        f[_IX["implied_unused"]] = len(implied) - len(used & set(implied))
        f[_IX["integer_measure"]] = float(measuring and integer)
        whole = any(qs[i].text.startswith("1 (") for i in c.uses)
        f[_IX["percent_divisor"]] = sum(c.parents[k] == "/" and c.sides[k] == 1 for k in percents)
        f[_IX["percent_addsub"]] = 0.0 if whole else sum(c.parents[k] in "+-" for k in percents)
        reader_features(f[_IX[READER_FEATURES[0]]:], c, qs, reading, set(stated), stated_values)
        keys: list[str] = []
        root = c.ops[-1] if c.ops else "="
        keys += [f"q:{w}|root{root}" for w in asking]
        keys += [f"q:{w}|has{op}" for w in set(asking) for op in set(c.ops)]
        keys.append(f"shape:{c.shape}|root{root}")
        for k, i in enumerate(c.uses):
            tag = f"{c.parents[k]}{c.sides[k]}"
            keys += [f"ctx:{w}|{tag}" for w in contexts[i]]
            if is_complement(qs[i]):
                keys.append(f"word:complement{qs[i].text[2]}|{tag}")  # '1 - 25%' -> complement-
            elif qs[i].kind != "stated":
                keys.append(f"word:{qs[i].text.lower()}|{tag}")
        hashed.append(tuple(sorted({_hash(key) for key in keys})))
    return Problem(prompt, qs, cands, dense, tuple(hashed))


def _context(prompt: str, q: Quantity, before: int = 3, after: int = 3) -> list[str]:
    if is_complement(q):
        return [f"implied:1{q.text[2]}p"]  # what a whole becomes after a percentage change, whatever the value
    if q.start < 0:
        return [f"implied{q.value}"]
    left = _words(prompt[max(0, q.start - 60):q.start])[-before:]
    right = _words(prompt[q.end:q.end + 60])[:after]
    return [f"<{w}" for w in left] + [f">{w}" for w in right]


def scores(problem: Problem, weights: np.ndarray) -> np.ndarray:
    """One linear score per candidate."""
    nh = len(_HAND)
    tail = weights[nh:]
    return problem.dense @ weights[:nh] + np.array([tail[list(ix)].sum() if ix else 0.0 for ix in problem.hashed],
                                                   dtype=np.float64)


def rank_values(problem: Problem, weights: np.ndarray, top: int = 5) -> list[Ranked]:
    """The `top` values by probability (softmax over candidates, summed per value)."""
    if not problem.candidates:
        return []
    s = scores(problem, weights)
    p = np.exp(s - s.max())
    p /= p.sum()
    by_value: dict[Fraction, tuple[float, float, str]] = {}
    for c, pc, sc in zip(problem.candidates, p, s):
        total, best, expr = by_value.get(c.value, (0.0, -np.inf, ""))
        by_value[c.value] = (total + float(pc), max(best, float(sc)), c.expression if sc > best else expr)
    ordered = sorted(by_value.items(), key=lambda kv: -kv[1][0])[:top]
    return [Ranked(value, total, expr) for value, (total, _, expr) in ordered]


@lru_cache(maxsize=1)
def shipped_weights() -> np.ndarray:
    """The fitted weights shipped with covey (a clear error when the file is missing or does not fit)."""
    from covey.errors import ToolError

    if not WEIGHTS_PATH.exists():
        raise ToolError(f"the expression ranker's weights are missing ({WEIGHTS_PATH}); "
                        "run scripts/fit_expression_ranker.py to fit them")
    with np.load(WEIGHTS_PATH) as data:
        weights = np.asarray(data["weights"], dtype=np.float64)
    if weights.shape != (DIM,):
        raise ToolError(f"the expression ranker's weights have shape {weights.shape}, this covey needs ({DIM},); "
                        "refit them with scripts/fit_expression_ranker.py")
    return weights


def provenance() -> dict[str, object]:
    """Where the shipped weights came from (data, licence, fit settings, cross-validated figures)."""
    return json.loads(PROVENANCE_PATH.read_text()) if PROVENANCE_PATH.exists() else {}


def rank(prompt: str, top: int = 5) -> list[Ranked]:
    """The likeliest answers to a word problem by the shipped scorer, best first."""
    return rank_values(read_problem(prompt), shipped_weights(), top)
