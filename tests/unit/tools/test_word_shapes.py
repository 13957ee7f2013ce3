"""The candidate shapes and reader features for short word problems: percent changes, two products, a
quantity with its own multiple, averages, unit factors, conversion direction, rates per the asked unit,
comparison sides and unit questions."""

from __future__ import annotations

from fractions import Fraction

from covey.tools import expression_ranker as er
from covey.tools.candidates import enumerate_candidates, is_complement, quantities
from covey.tools.reading import read_quantities

SALE = "A shirt costs 40 dollars and is on sale for 25% off. What is the sale price?"
TIP = "A dinner bill is $60 and Mia adds an 18% tip. How much does she pay in total?"


def expressions(prompt: str) -> dict[str, Fraction]:
    return {c.expression: c.value for c in enumerate_candidates(quantities(prompt), prompt)}


def hand(prompt: str, expression: str) -> dict[str, float]:
    problem = er.read_problem(prompt)
    row = next(k for k, c in enumerate(problem.candidates) if c.expression == expression)
    return dict(zip(er.HAND_FEATURES, (float(v) for v in problem.dense[row])))


def test_a_percentage_off_or_added_is_also_what_the_whole_becomes() -> None:
    off = [q for q in quantities(SALE) if is_complement(q)]
    assert [(q.value, q.text) for q in off] == [(Fraction(3, 4), "1 - 25%")]
    on = [q for q in quantities(TIP) if is_complement(q)]
    assert [(q.value, q.text) for q in on] == [(Fraction(118, 100), "1 + 18%")]
    # a percentage that changes nothing ('got 85% of them right') has no complement
    assert not [q for q in quantities("A test has 40 questions. Ben got 85% of them right. How many did he get right?")
                if is_complement(q)]


def test_the_sale_price_is_one_operation_written_with_the_stated_percentage() -> None:
    found = expressions(SALE)
    assert found["40 * (1 - 0.25)"] == 30
    assert expressions(TIP)["60 * (1 + 0.18)"] == Fraction(708, 10)


def test_two_products_added_or_subtracted() -> None:
    prompt = "Tickets cost $9 for adults and $5 for children. How much do 2 adult tickets and 3 child tickets cost?"
    cands = {c.expression: c for c in enumerate_candidates(quantities(prompt), prompt)}
    both = cands["(9 * 2) + (5 * 3)"]
    assert both.value == 33 and both.shape == "(ab)(cd)" and both.uses == (0, 2, 1, 3)
    assert cands["(9 * 2) - (5 * 3)"].value == 3
    assert "(5 * 3) + (9 * 2)" not in cands  # the sum is built once


def test_a_quantity_with_its_own_multiple_only_where_the_problem_says_times() -> None:
    prompt = "Peter has 4 times as many stamps as Ann. Ann has 15 stamps. How many stamps do they have together?"
    cands = {c.expression: c for c in enumerate_candidates(quantities(prompt), prompt)}
    assert cands["(15 * 4) + 15"].value == 75 and cands["(15 * 4) + 15"].shape == "(ab)a"
    plain = "Peter has 4 stamps. Ann has 15 stamps. How many stamps do they have together?"
    assert not [c for c in enumerate_candidates(quantities(plain), plain) if c.shape == "(ab)a"]


def test_averages_over_the_listed_numbers_or_a_count_of_them() -> None:
    nina = "Nina scored 80, 90 and 70 on three tests. What is her average score?"
    assert expressions(nina)["(80 + 90 + 70) / 3"] == 80
    hats = "Over 4 days, a shop sold 30, 42, 36 and 52 hats. What was the average number of hats sold per day?"
    assert expressions(hats)["(30 + 42 + 36 + 52) / 4"] == 40
    no_average = "Nina scored 80, 90 and 70 on three tests. What is her total score?"
    assert not [c for c in enumerate_candidates(quantities(no_average), no_average) if c.shape == "mean"]


def test_metres_and_kilometres_and_hours_and_seconds_imply_their_factors() -> None:
    implied = [q for q in quantities("A runner runs 5 laps of 400 meters. How many kilometers does he run?")
               if q.kind == "implied"]
    assert [(q.value, q.bigger[0], q.smaller[0]) for q in implied] == [(1000, "kilometer", "meter")]
    assert 3600 in [q.value for q in quantities("A trip takes 2 hours. How many seconds is that?")]


def test_a_question_for_the_part_of_a_percentage_is_noticed() -> None:
    def part(prompt: str) -> bool:
        return read_quantities(prompt, quantities(prompt)).part_asked

    assert part("A meal costs $50. Leo leaves a 15% tip. How much is the tip?")
    assert part("A store had 200 apples. It sold 35% of them. How many apples were sold?")
    assert not part("A farmer had 80 chickens and sold 25% of them. How many chickens does he have left?")
    tip = "A meal costs $50. Leo leaves a 15% tip. How much is the tip?"
    assert hand(tip, "50 * 0.15")["percent_part_asked"] == 1
    assert hand(tip, "50 * (1 + 0.15)")["complement_part_asked"] == 1


def test_a_conversion_toward_the_asked_unit_is_told_from_one_away_from_it() -> None:
    prompt = "A bus ride takes 90 minutes. How many hours is the ride?"
    toward, against = hand(prompt, "90 / 60"), hand(prompt, "90 * 60")
    assert toward["convert_toward"] == 1 and toward["convert_against"] == 0
    assert against["convert_against"] == 1 and against["convert_toward"] == 0
    # 'how many hours' asks for a measure, so 1.5 is no broken count
    assert toward["count_not_integer"] == 0 and against["integer_measure"] == 1


def test_a_rate_per_the_asked_unit_divides() -> None:
    prompt = "A cyclist rides at 18 km per hour. How many hours does it take to ride 63 km?"
    assert read_quantities(prompt, quantities(prompt)).per == ("hour", "")
    assert hand(prompt, "63 / 18")["per_target_divisor"] == 1
    assert hand(prompt, "18 * 63")["per_target_times"] == 1
    box = "A box holds 8 muffins. How many boxes are needed for 56 muffins?"
    assert read_quantities(box, quantities(box)).per[0] == "box"


def test_a_comparison_adds_or_takes_away_by_which_side_the_question_asks_for() -> None:
    def sign(prompt: str) -> tuple[int, ...]:
        return read_quantities(prompt, quantities(prompt)).compare_sign

    assert sign("Carl is 8 years old. His sister is 5 years older than him. How old is his sister?") == (0, 1)
    assert sign("Ann is 5 years younger than Bo. Bo is 12. How old is Ann?") == (-1, 0)
    assert sign("Ann is 5 years older than Bo. Ann is 12. How old is Bo?") == (-1, 0)
    carl = "Carl is 8 years old. His sister is 5 years older than him. How old is his sister?"
    assert hand(carl, "8 + 5")["compare_toward"] == 1 and hand(carl, "8 - 5")["compare_against"] == 1


def test_the_shipped_ranker_reads_a_sale_price_as_what_is_left_of_the_whole() -> None:
    best = er.rank(SALE, top=1)[0]
    assert best.value == 30 and best.expression == "40 * (1 - 0.25)"


def test_what_is_gone_and_a_second_object_of_the_same_verb_count_as_losses() -> None:
    def losses(prompt: str) -> tuple[bool, ...]:
        return read_quantities(prompt, quantities(prompt)).loss

    assert losses("A school has 6 classes with 25 students in each. 12 students are absent today. "
                  "How many students are present?") == (False, False, True)
    ben = "Ben had 100 dollars. He spent 35 dollars on food and 20 dollars on a movie. How much money is left?"
    assert losses(ben) == (False, True, True)  # 'and 20 dollars' is spent too
    assert losses("Tom has 5 apples and 3 pears. How many fruits does he have?") == (False, False)


def test_multiplying_by_a_number_of_the_same_unit_outside_the_brackets_is_noticed() -> None:
    ben = "Ben had 100 dollars. He spent 35 dollars on food and 20 dollars on a movie. How much money is left?"
    assert hand(ben, "100 * (35 - 20)")["mul_same_unit_outer"] == 1
    assert hand(ben, "(100 - 35) - 20")["mul_same_unit_outer"] == 0
    assert hand("Tom has 3 boxes with 12 apples in each box. He buys 2 more boxes. How many apples?",
                "(3 + 2) * 12")["mul_same_unit_outer"] == 0


def test_a_quantity_with_what_is_more_than_it_where_the_problem_compares() -> None:
    prompt = ("Wendy polished 50 small glasses and 10 more large glasses than small glasses. "
              "How many glasses did she polish?")
    cands = {c.expression: c for c in enumerate_candidates(quantities(prompt), prompt)}
    assert cands["(50 + 10) + 50"].value == 110 and cands["(50 + 10) + 50"].shape == "(ab)a"
    plain = "Wendy polished 50 small glasses and 10 large glasses. How many glasses did she polish?"
    assert not [c for c in enumerate_candidates(quantities(plain), plain) if c.shape == "(ab)a"]


def test_what_a_percentage_change_leaves_uses_the_stated_percentage() -> None:
    from covey.tools.candidates import covered

    qs = quantities(SALE)
    cand = next(c for c in enumerate_candidates(qs, SALE) if c.expression == "40 * (1 - 0.25)")
    assert {qs[i].text for i in covered(qs, cand)} == {"40", "25%", "1 - 25%"}
    assert hand(SALE, "40 * (1 - 0.25)")["all_stated_used"] == 1


def test_dividing_by_a_percentage_or_adding_one_to_an_amount_is_noticed() -> None:
    prompt = "A phone costs $300. Its price goes up by 10%. What is the new price?"
    assert hand(prompt, "300 / 0.1")["percent_divisor"] == 1
    assert hand(prompt, "300 + 0.1")["percent_addsub"] == 1
    assert hand(prompt, "300 * (1 + 0.1)")["percent_divisor"] == 0
    assert hand(prompt, "300 * (1 + 0.1)")["percent_addsub"] == 0
