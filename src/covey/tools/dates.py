"""Calendar arithmetic: days between dates, the weekday of a date, a date plus a duration (python-dateutil)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from covey.errors import ToolError
from covey.tools.registry import require

Today = Callable[[], dt.date]

_RELATIVE = {"today": 0, "tomorrow": 1, "yesterday": -1}
_DURATION_PART = re.compile(r"([-+]?\d+)\s*(years?|yrs?|months?|weeks?|wks?|days?|d)\b", re.I)
_UNIT_KEY = {"y": "years", "m": "months", "w": "weeks", "d": "days"}


def parse_date(text: str, *, today: Today = dt.date.today) -> dt.date:
    """A calendar date from 'today', '2024-03-01', 'March 1, 2024', '1 March 2024'; ToolError otherwise."""
    parser = require("dateutil.parser", "python-dateutil")
    key = text.strip().lower()
    if key in _RELATIVE:
        return today() + dt.timedelta(days=_RELATIVE[key])
    if not key or len(key) > 60:
        raise ToolError(f"{text!r} is not a date; write it like 2024-03-01 or 'March 1, 2024'")
    base = today()
    try:
        return parser.parse(text, default=dt.datetime(base.year, base.month, base.day)).date()
    except (ValueError, OverflowError, parser.ParserError):
        raise ToolError(f"{text!r} is not a date; write it like 2024-03-01 or 'March 1, 2024'") from None


def parse_duration(text: str) -> dict[str, int]:
    """'3 weeks 2 days' -> {'weeks': 3, 'days': 2}; every part must be a whole number of a calendar unit."""
    parts = _DURATION_PART.findall(text)
    leftover = _DURATION_PART.sub("", text).replace(",", " ").replace("and", " ").strip()
    if not parts or leftover:
        raise ToolError(f"{text!r} is not a duration; write it like '3 weeks 2 days' or '-10 days'")
    out: dict[str, int] = {}
    for number, unit in parts:
        key = _UNIT_KEY[unit[0].lower()]
        out[key] = out.get(key, 0) + int(number)
    return out


def days_between(start: dt.date, end: dt.date) -> int:
    return (end - start).days


def difference(start: dt.date, end: dt.date, unit: str = "days") -> int:
    """Whole units from start to end (negative when end is earlier): days, weeks, months or years."""
    from dateutil.relativedelta import relativedelta

    if unit == "days":
        return days_between(start, end)
    if unit == "weeks":
        return int(days_between(start, end) / 7)
    delta = relativedelta(end, start)
    if unit == "months":
        return delta.years * 12 + delta.months
    if unit == "years":
        return delta.years
    raise ToolError(f"unknown unit {unit!r}; use days, weeks, months or years")


def weekday(day: dt.date) -> str:
    return day.strftime("%A")


def add(day: dt.date, duration: str) -> dt.date:
    """The date `duration` after `day` (months and years keep the day of month where it exists)."""
    from dateutil.relativedelta import relativedelta

    try:
        parts = parse_duration(duration)
        return day + relativedelta(years=parts.get("years", 0), months=parts.get("months", 0),
                                   weeks=parts.get("weeks", 0), days=parts.get("days", 0))
    except (OverflowError, ValueError):
        raise ToolError(f"{day} plus {duration} is outside the calendar") from None
