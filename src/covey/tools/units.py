"""Unit and time conversion with pint: '3.5 hours' to 'minutes', '100 degF' to 'degC', '60 mph' to 'km/h'."""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction
from typing import Any

from covey.errors import ToolError
from covey.tools.registry import require

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?:\s*/\s*\d+)?)\s*(.*?)\s*$")
_ALIASES = {
    "kph": "kilometer / hour", "km/h": "kilometer / hour", "kmh": "kilometer / hour", "mph": "mile / hour",
    "celsius": "degC", "centigrade": "degC", "°c": "degC", "fahrenheit": "degF", "°f": "degF", "kelvin": "kelvin",
    "degrees celsius": "degC", "degrees fahrenheit": "degF", "degree celsius": "degC", "degree fahrenheit": "degF",
    "c": "degC", "f": "degF", "k": "kelvin", "hrs": "hour", "hr": "hour", "mins": "minute", "min": "minute",
    "secs": "second", "sec": "second", "lbs": "pound", "lb": "pound",
}


@functools.lru_cache(maxsize=1)
def unit_registry() -> Any:
    """pint's registry (built once per process: it parses pint's definitions file), with the calendar's
    365-day year: pint's year is the Julian 365.25 days, so "How many days are in 2 years?" said 730.5
    where anyone asking means 730 (a month stays a twelfth of the year)."""
    pint = require("pint")

    registry = pint.UnitRegistry(autoconvert_offset_to_baseunit=True, on_redefinition="ignore")
    registry.define("year = 365 * day = a = yr = julian_year")
    return registry


def parse_quantity(text: str) -> tuple[float, str]:
    """'3.5 hours' -> (3.5, 'hour'); 'an hour' and bare units count as 1."""
    text = text.strip()
    match = _QUANTITY.match(text)
    if match and match.group(1):
        number = float(Fraction(match.group(1).replace(",", "").replace(" ", "")))
        unit = match.group(2)
    else:
        number, unit = 1.0, re.sub(r"^(?:an?|one)\s+", "", text, flags=re.I)
    if not unit:
        raise ToolError(f"{text!r} has no unit; write a number and a unit, e.g. '3.5 hours'")
    return number, unit_name(unit)


def unit_name(unit: str) -> str:
    """Common spellings pint does not know ('kph', 'Celsius', '°F') mapped to its names."""
    key = unit.strip().lower().rstrip(".")
    return _ALIASES.get(key, unit.strip())


def convert(quantity: str, to: str) -> tuple[float, str]:
    """The magnitude and unit of `quantity` expressed in `to`; ToolError for unknown or incompatible units."""
    ureg = unit_registry()
    import pint

    number, unit = parse_quantity(quantity)
    target = unit_name(to)
    try:
        value = ureg.Quantity(number, unit).to(target)
    except pint.errors.UndefinedUnitError as exc:
        names = ", ".join(f"'{n}'" for n in getattr(exc, "unit_names", ()) or (str(exc),))
        raise ToolError(f"unknown unit {names}; use a unit pint knows, e.g. 'minute', 'km/h', 'degC'") from None
    except pint.errors.DimensionalityError as exc:
        raise ToolError(f"cannot convert {exc.units1} to {exc.units2}: they measure different things") from None
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, SyntaxError) as exc:
        raise ToolError(f"cannot convert {quantity!r} to {to!r}: {exc}") from None
    magnitude = float(value.magnitude)
    if not math.isfinite(magnitude):
        raise ToolError(f"converting {quantity!r} to {to!r} gives no finite number")
    return magnitude, str(value.units)


def format_magnitude(value: float) -> str:
    """12 significant digits, no float noise: 210.0 -> '210', 37.77777777777783 -> '37.7777777778'."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"
