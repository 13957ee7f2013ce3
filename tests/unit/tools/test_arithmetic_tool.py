"""Exact arithmetic with sympy's parser, never eval: values, safety, limits, solving, percentages."""

import pytest

from covey.errors import ToolError
from covey.tools import arithmetic


@pytest.mark.parametrize(("text", "shown"), [
    ("17 times 23", "391"), ("17*23", "391"), ("17 x 23", "391"), ("17 × 23", "391"), ("15% of 240", "36"),
    ("0.1 + 0.2", "0.3"), ("2^10", "1024"), ("1/3", "1/3 ≈ 0.333333333333"), ("sqrt(2)", "sqrt(2) ≈ 1.41421356237"),
    ("5!", "120"), ("1,234 + 1", "1235"), ("3.5 * 60", "210"), ("(3 + 4)2", "14"), ("7 squared", "49"),
    ("144 divided by 12", "12"), ("square root of 81", "9"), ("2**-1", "0.5"), ("sin(pi/6)", "0.5"),
    ("round(2.567, 2)", "2.57"), ("-3 - -3", "0"), ("12.5% of 80", "10"),
])
def test_evaluate_is_exact(text, shown):
    assert arithmetic.format_number(arithmetic.evaluate(text)) == shown


def test_decimals_are_exact_rationals():
    import sympy

    assert arithmetic.evaluate("0.1 + 0.2") == sympy.Rational(3, 10)
    assert arithmetic.evaluate("1/3 + 1/6") == sympy.Rational(1, 2)


@pytest.mark.parametrize("attack", [
    "__import__('os').system('id')", "().__class__.__base__.__subclasses__()", "x.__class__", "'a' * 3",
    "[1, 2]", "lambda x: x", "open('/etc/passwd')", "exec('1')", "eval('1')", "getattr(1, 'real')",
    "Symbol('x').__class__", "{1: 2}", "a[0]",
])
def test_code_is_refused_not_run(attack):
    with pytest.raises(ToolError):
        arithmetic.evaluate(attack)


@pytest.mark.parametrize("huge", ["9^9^9", "10^100000", "factorial(100000)", "1e99999"])
def test_numbers_too_large_to_compute_are_refused_quickly(huge):
    with pytest.raises(ToolError, match="too large"):
        arithmetic.evaluate(huge)


def test_division_by_zero_and_unknowns_are_clear_errors():
    with pytest.raises(ToolError, match="division by zero"):
        arithmetic.evaluate("10/0")
    with pytest.raises(ToolError, match="unknown; to find it, solve"):
        arithmetic.evaluate("3x + 1")
    with pytest.raises(ToolError, match="at most"):
        arithmetic.evaluate("1+" * 300 + "1")
    with pytest.raises(ToolError, match="empty"):
        arithmetic.evaluate("  ")


def test_solve_equations():
    assert arithmetic.solve("3x + 7 = 28") == ("x", [7])
    name, roots = arithmetic.solve("x^2 = 9")
    assert name == "x" and sorted(int(r) for r in roots) == [-3, 3]
    assert arithmetic.solve("2y - 4") == ("y", [2])
    assert arithmetic.solve("a + b = 3", "a")[0] == "a"


def test_solve_errors_say_what_to_do():
    with pytest.raises(ToolError, match="several unknowns"):
        arithmetic.solve("a + b = 3")
    with pytest.raises(ToolError, match="no unknown"):
        arithmetic.solve("2 = 2")
    with pytest.raises(ToolError, match="one equation"):
        arithmetic.solve("x = 1 = 2")
    with pytest.raises(ToolError, match="does not appear"):
        arithmetic.solve("x = 1", "y")


def test_percentages():
    assert arithmetic.percent("of", 15, 240) == 36
    assert arithmetic.percent("ratio", 36, 240) == 15
    assert arithmetic.percent("change", 80, 100) == 25
    with pytest.raises(ToolError, match="undefined"):
        arithmetic.percent("ratio", 3, 0)
    with pytest.raises(ToolError, match="unknown percent operation"):
        arithmetic.percent("double", 3, 4)
