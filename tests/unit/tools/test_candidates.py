"""Candidate expressions over a word problem's quantities: what is read, what is enumerated."""

from __future__ import annotations

from fractions import Fraction

from covey.tools.candidates import enumerate_candidates, quantities, value_text

TOM = "Tom has 3 boxes with 12 apples in each box. He eats 5 apples. How many apples are left?"


def test_stated_numbers_are_read_in_order_with_where_they_stand() -> None:
    qs = quantities(TOM)
    assert [(q.value, q.kind) for q in qs] == [(3, "stated"), (12, "stated"), (5, "stated")]
    assert TOM[qs[1].start:qs[1].end] == "12"


def test_percentages_fractions_commas_and_number_words() -> None:
    qs = quantities("Ann had $1,200 and spent 25% of it, then gave away 1/3 of the rest to her twin sisters.")
    values = [(q.value, q.kind) for q in qs]
    assert (Fraction(1200), "stated") in values and (Fraction(1, 4), "stated") in values
    assert (Fraction(1, 3), "stated") in values
    assert next(q for q in qs if q.value == Fraction(1, 4)).percent
    assert (Fraction(1), "implied") in values  # the whole, for '1 - 25%'


def test_units_the_problem_names_imply_their_factor_and_half_is_a_divisor() -> None:
    qs = quantities("Lisa reads 20 pages a day. How many pages does she read in 2 weeks?")
    assert [q.value for q in qs if q.kind == "implied"] == [7]
    assert [q.value for q in quantities("She ate half of the 18 crayons.") if q.kind == "word"] == [2]
    assert not [q for q in quantities("One day she bought 4 pens.") if q.kind == "word"]  # 'one' as an article


def test_two_operations_reach_the_answer_and_commutative_repeats_are_left_out() -> None:
    cands = enumerate_candidates(quantities(TOM))
    exprs = {c.expression: c for c in cands}
    assert exprs["(3 * 12) - 5"].value == 31
    assert exprs["(3 * 12) - 5"].uses == (0, 1, 2) and exprs["(3 * 12) - 5"].parents == ("*", "*", "-")
    assert "12 * 3" not in exprs and "3 * 12" in exprs
    assert len({c.expression for c in cands}) == len(cands)


def test_division_by_zero_and_multiplying_by_one_are_not_candidates() -> None:
    cands = enumerate_candidates(quantities("Sam has 0 cats and 4 dogs and 1 bird."))
    assert all("/ 0" not in c.expression and "* 1" not in c.expression for c in cands)


def test_a_long_list_of_amounts_gets_in_order_sums_and_differences() -> None:
    prompt = "Sonny got 45 boxes. He gave 12 to his brother, 9 to his sister and 7 to his cousin. How many are left?"
    chains = [c for c in enumerate_candidates(quantities(prompt)) if c.shape == "chain"]
    assert any(c.expression == "45 - 12 - 9 - 7" and c.value == 17 for c in chains)


def test_values_are_shown_plainly() -> None:
    assert value_text(Fraction(31)) == "31" and value_text(Fraction(25, 2)) == "12.5"
    assert value_text(Fraction(1, 3)) == "0.333333"
