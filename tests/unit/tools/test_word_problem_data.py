"""Transcribed MAWPS/SVAMP lines read into prompts, exact answers and the values their equations use."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from covey.tools.word_problem_data import detokenize, evaluate_prefix, read_line, read_tsv

DATA = Path(__file__).resolve().parents[3] / "data" / "word_problems"


def test_a_line_becomes_a_prompt_an_answer_and_its_operands() -> None:
    wp = read_line("Conner has number0 dollars . Every month he spends number1 dollars . How much money will "
                   "Conner have after number2 months ?\t25000.0 1500.0 8.0\t- number0 * number1 number2", "t")
    assert wp.prompt == "Conner has 25000 dollars. Every month he spends 1500 dollars. How much money will Conner have after 8 months?"
    assert wp.answer == 13000 and wp.operands == {25000, 1500, 8}


def test_literals_fractions_and_tokenisation() -> None:
    assert evaluate_prefix("* number0 12.0", [Fraction(1)]) == 12
    assert evaluate_prefix("/ number0 number1", [Fraction(1), Fraction(3)]) == Fraction(1, 3)
    assert detokenize("Emily 's father did n't pay $ 5 , then left .") == "Emily's father didn't pay $5, then left."


def test_bad_lines_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="question<TAB>numbers<TAB>equation"):
        read_line("no tabs here", "f:1")
    with pytest.raises(ValueError, match="names number2"):
        read_line("a number2 b\t1 2\t+ number0 number2", "f:2")
    with pytest.raises(ValueError, match="divides by zero"):
        evaluate_prefix("/ number0 number1", [Fraction(1), Fraction(0)])


def test_the_shipped_files_read_with_exact_answers() -> None:
    train = {wp.prompt for name in ("mawps_fold0", "mawps_fold2") for wp in read_tsv(DATA / f"{name}.tsv")}
    held = read_tsv(DATA / "mawps_fold1.tsv")
    svamp = read_tsv(DATA / "svamp.tsv")
    assert len(train) > 300 and len(held) >= 70 and len(svamp) >= 100
    assert all(wp.answer is not None for wp in held + svamp)
