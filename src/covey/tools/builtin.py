"""The tools covey ships: exact maths, percentages, unit conversion, dates, document search, a Python sandbox."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from covey.errors import BadRequest, CoveyError, ToolError
from covey.tools import arithmetic, dates, units
from covey.tools.registry import Tool, ToolOutput, ToolRegistry, load_plugins
from covey.tools.sandbox import Sandbox
from covey.tools.types import BUILTIN_TOOLS


class Searcher(Protocol):
    """What `search_documents` needs: covey.rag.Store has this method."""

    def search(self, query: str, k: int = 5) -> Sequence[Any]: ...


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CalculatorArgs(_Args):
    expression: str = Field(max_length=arithmetic.MAX_LENGTH, description="e.g. '17*23', '15% of 240', 'sqrt(2)/3'")


class SolveArgs(_Args):
    equation: str = Field(max_length=arithmetic.MAX_LENGTH, description="e.g. '3x + 7 = 28' or 'x^2 - 4'")
    variable: str | None = Field(None, description="the unknown to solve for, when there are several")


class PercentArgs(_Args):
    operation: Literal["of", "ratio", "change"] = Field(
        description="'of': a% of b; 'ratio': what percent a is of b; 'change': percent change from a to b")
    a: int | float | str
    b: int | float | str


class ConvertArgs(_Args):
    quantity: str = Field(max_length=100, description="a number and a unit, e.g. '3.5 hours', '100 degF'")
    to: str = Field(max_length=60, description="the unit wanted, e.g. 'minutes', 'degC', 'km/h'")


class DateDifferenceArgs(_Args):
    start: str = Field(max_length=60, description="a date, e.g. '2024-03-01', 'March 1, 2024' or 'today'")
    end: str = Field(max_length=60)
    unit: Literal["days", "weeks", "months", "years"] = "days"


class WeekdayArgs(_Args):
    date: str = Field(max_length=60)


class DateAddArgs(_Args):
    date: str = Field(max_length=60)
    duration: str = Field(max_length=60, description="e.g. '3 weeks 2 days', '-10 days', '2 months'")


class SearchArgs(_Args):
    query: str = Field(min_length=1, max_length=500)
    k: int = Field(3, ge=1, le=10, description="how many passages")


class PythonArgs(_Args):
    code: str = Field(min_length=1, max_length=20_000, description="a Python script; print what you want to see")


def number_value(value: Any) -> Any:
    """A JSON-able form of a sympy result: an int, a float, or its text when it is not a real number."""
    import sympy

    if isinstance(value, sympy.Integer):
        return int(value)
    approx = arithmetic.to_float(value)
    return approx if approx is not None else str(value)


def calculator_tool() -> Tool:
    def run(args: CalculatorArgs) -> ToolOutput:
        value = arithmetic.evaluate(args.expression)
        return ToolOutput(number_value(value), f"{args.expression.strip()} = {arithmetic.format_number(value)}",
                          "sympy")

    return Tool("calculator", "Exact arithmetic: + - * / ^, %, sqrt, factorial, log, trig. Use it for every "
                "calculation instead of computing in your head.", CalculatorArgs, run)


def solve_tool() -> Tool:
    def run(args: SolveArgs) -> ToolOutput:
        name, solutions = arithmetic.solve(args.equation, args.variable)
        if not solutions:
            return ToolOutput([], f"{args.equation.strip()} has no solution", "sympy")
        shown = ", ".join(f"{name} = {arithmetic.format_number(s)}" for s in solutions)
        return ToolOutput([number_value(s) for s in solutions], shown, "sympy")

    return Tool("solve", "Solve an equation for its unknown exactly, e.g. '3x + 7 = 28'.", SolveArgs, run)


def percent_tool() -> Tool:
    def run(args: PercentArgs) -> ToolOutput:
        value = arithmetic.percent(args.operation, args.a, args.b)
        shown = arithmetic.format_number(value)
        text = {"of": f"{args.a}% of {args.b} = {shown}", "ratio": f"{args.a} is {shown}% of {args.b}",
                "change": f"from {args.a} to {args.b} is a change of {shown}%"}[args.operation]
        return ToolOutput(number_value(value), text, "sympy")

    return Tool("percent", "Percentages: a% of b, what percent a is of b, or the percent change from a to b.",
                PercentArgs, run)


def convert_units_tool() -> Tool:
    def run(args: ConvertArgs) -> ToolOutput:
        magnitude, _ = units.convert(args.quantity, args.to)
        return ToolOutput(magnitude, f"{args.quantity.strip()} = {units.format_magnitude(magnitude)} {args.to.strip()}",
                          "pint")

    return Tool("convert_units", "Convert a quantity between units: time, length, mass, volume, speed, "
                "temperature, energy, data sizes.", ConvertArgs, run)


def date_tools(today: Callable[[], dt.date] = dt.date.today) -> tuple[Tool, ...]:
    def difference(args: DateDifferenceArgs) -> ToolOutput:
        start, end = dates.parse_date(args.start, today=today), dates.parse_date(args.end, today=today)
        n = dates.difference(start, end, args.unit)
        return ToolOutput(n, f"from {start.isoformat()} to {end.isoformat()} is {n} {args.unit}", "dateutil")

    def weekday(args: WeekdayArgs) -> ToolOutput:
        day = dates.parse_date(args.date, today=today)
        name = dates.weekday(day)
        return ToolOutput(name, f"{day.isoformat()} is a {name}", "calendar")

    def add(args: DateAddArgs) -> ToolOutput:
        day = dates.parse_date(args.date, today=today)
        result = dates.add(day, args.duration)
        return ToolOutput(result.isoformat(), f"{day.isoformat()} + {args.duration.strip()} = {result.isoformat()} "
                          f"({dates.weekday(result)})", "dateutil")

    return (
        Tool("date_difference", "Days (or weeks, months, years) from one date to another.", DateDifferenceArgs,
             difference),
        Tool("weekday", "The day of the week of a date.", WeekdayArgs, weekday),
        Tool("date_add", "The date a duration after (or before, with a minus sign) a date.", DateAddArgs, add),
    )


def search_documents_tool(searcher: Searcher | Callable[[], Searcher] | None) -> Tool:
    """Retrieval over the user's documents; `searcher` is a Store or a function opening one on first use."""
    opened: list[Searcher] = []

    def run(args: SearchArgs) -> ToolOutput:
        if searcher is None:
            raise ToolError("no documents are indexed here (add some with `covey rag add PATH`)")
        if not opened:
            try:
                opened.append(searcher if hasattr(searcher, "search") else searcher())
            except CoveyError as exc:  # no collection yet: say how to make one
                raise ToolError(str(exc)) from None
        try:
            passages = list(opened[0].search(args.query, k=args.k))
        except BadRequest as exc:
            raise ToolError(exc.message) from None
        except CoveyError as exc:
            raise ToolError(f"document search failed: {exc.message}") from None
        if not passages:
            return ToolOutput([], "no passage matches", "retrieval")
        value = [{"text": p.text, "source": p.label, "score": round(float(p.score), 4)} for p in passages]
        text = "\n".join(f"[{i}] {p.label}\n{p.text}" for i, p in enumerate(passages, 1))
        return ToolOutput(value, text, "retrieval")

    return Tool("search_documents", "Search the user's own documents; returns the best passages with their "
                "sources, to cite as [1], [2].", SearchArgs, run)


def python_tool(sandbox: Sandbox | None = None) -> Tool:
    box: list[Sandbox] = [sandbox] if sandbox is not None else []

    def run(args: PythonArgs) -> ToolOutput:
        if not box:
            box.append(Sandbox())
        result = box[0].run(args.code)
        if not result.ok:
            printed = f" (it printed: {result.stdout.strip()[-300:]})" if result.stdout.strip() else ""
            raise ToolError(result.error + printed)
        return ToolOutput(result.stdout, result.stdout.strip() or "(ran; printed nothing)", "sandbox")

    return Tool("python", "Run a short Python script (standard library only) in a sandbox with no network or "
                "files, and see what it prints. Use print() for results.", PythonArgs, run)


def builtin_tools(*, searcher: Searcher | Callable[[], Searcher] | None = None, sandbox: Sandbox | None = None,
                  today: Callable[[], dt.date] = dt.date.today) -> tuple[Tool, ...]:
    tools = (calculator_tool(), solve_tool(), percent_tool(), convert_units_tool(), *date_tools(today),
             search_documents_tool(searcher), python_tool(sandbox))
    assert tuple(t.name for t in tools) == BUILTIN_TOOLS
    return tools


def default_registry(*, searcher: Searcher | Callable[[], Searcher] | None = None, sandbox: Sandbox | None = None,
                     today: Callable[[], dt.date] = dt.date.today, plugins: bool = True) -> ToolRegistry:
    """The shipped tools plus the installed ``covey.tools`` entry points (which may replace a shipped one)."""
    registry = ToolRegistry(builtin_tools(searcher=searcher, sandbox=sandbox, today=today))
    return registry.with_tools(load_plugins()) if plugins else registry
