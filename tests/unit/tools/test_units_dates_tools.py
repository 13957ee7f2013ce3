"""Unit conversion with pint and calendar arithmetic with dateutil."""

import datetime as dt

import pytest

from covey.errors import ToolError
from covey.tools import dates, units


@pytest.mark.parametrize(("quantity", "to", "expected"), [
    ("3.5 hours", "minutes", 210), ("2 days", "hours", 48), ("an hour", "seconds", 3600), ("1 mile", "km", 1.609344),
    ("100 degF", "degC", 37.7777777778), ("37 celsius", "fahrenheit", 98.6), ("60 mph", "kph", 96.56064),
    ("1,000 m", "km", 1), ("1/2 hour", "minutes", 30), ("1 GB", "MB", 1000),
])
def test_conversions(quantity, to, expected):
    magnitude, _ = units.convert(quantity, to)
    assert magnitude == pytest.approx(expected, rel=1e-9)


def test_conversion_errors_are_clear():
    with pytest.raises(ToolError, match="different things"):
        units.convert("5 kg", "meters")
    with pytest.raises(ToolError, match="unknown unit 'flurbs'"):
        units.convert("3 flurbs", "m")
    with pytest.raises(ToolError, match="no unit"):
        units.convert("3", "m")


def test_magnitudes_print_without_float_noise():
    assert units.format_magnitude(210.0) == "210"
    assert units.format_magnitude(98.59999999999994) == "98.6"


TODAY = dt.date(2026, 12, 1)


def today():
    return TODAY


def test_dates_parse_common_forms():
    assert dates.parse_date("2024-03-01") == dt.date(2024, 3, 1)
    assert dates.parse_date("March 1, 2024") == dt.date(2024, 3, 1)
    assert dates.parse_date("1 March 2024") == dt.date(2024, 3, 1)
    assert dates.parse_date("tomorrow", today=today) == dt.date(2026, 12, 2)
    with pytest.raises(ToolError, match="not a date"):
        dates.parse_date("flurb")


def test_differences_weekdays_and_durations():
    assert dates.difference(dt.date(2024, 1, 1), dt.date(2024, 12, 25)) == 359
    assert dates.difference(dt.date(2024, 12, 25), dt.date(2024, 1, 1)) == -359
    assert dates.difference(dt.date(1990, 5, 17), TODAY, "years") == 36
    assert dates.difference(dt.date(2024, 1, 31), dt.date(2024, 3, 30), "months") == 1
    assert dates.weekday(dt.date(2024, 7, 4)) == "Thursday"
    assert dates.add(dt.date(2024, 1, 31), "1 month") == dt.date(2024, 2, 29)
    assert dates.add(TODAY, "3 weeks 2 days") == dt.date(2026, 12, 24)
    assert dates.add(TODAY, "-10 days") == dt.date(2026, 11, 21)
    with pytest.raises(ToolError, match="not a duration"):
        dates.parse_duration("3 fortnights")
