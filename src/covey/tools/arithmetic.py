"""Exact arithmetic and algebra with sympy: a safe parser, evaluation, equation solving and percentages.

The text is tokenised and rewritten by sympy's own parser (`stringify_expr`: implicit
multiplication as in ``3x``, ``^`` for powers, ``5!``), but the Python it produces is never
evaluated: `_Builder` walks its syntax tree and builds sympy objects from a short list of
numbers, symbols, operators and functions, refusing everything else (attributes, strings,
subscripts, lambdas, unknown names). Decimals become exact rationals (0.1 + 0.2 is 3/10), and
numbers too large to be worth computing (``9^9^9``) are refused before sympy computes them.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from typing import Any

from covey.errors import ToolError
from covey.tools.registry import require

MAX_LENGTH = 400
MAX_DIGITS = 5000
MAX_FACTORIAL = 2000

_WORDS: tuple[tuple[str, str], ...] = (
    (r"\bmultiplied\s+by\b", "*"), (r"\btimes\b", "*"), (r"\bdivided\s+by\b", "/"), (r"\bover\b", "/"),
    (r"\bplus\b", "+"), (r"\bminus\b", "-"), (r"\bto\s+the\s+power\s+of\b", "^"), (r"\bsquared\b", "^2"),
    (r"\bcubed\b", "^3"), (r"\bsquare\s+root\s+of\b", "sqrt"), (r"\bcube\s+root\s+of\b", "cbrt"),
    (r"\bmod(?:ulo)?\b", "%%"),
)
_PERCENT_OF = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|percent\b)\s*of\b")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|percent\b)(?!%)")


def normalize(text: str) -> str:
    """Plain-text maths to parser input: unicode operators, number commas, words, 'x' between numbers, '%'."""
    s = re.sub(r"[?.\s]+$", "", text.strip())
    s = (s.replace("×", "*").replace("·", "*").replace("÷", "/").replace("−", "-").replace("–", "-")
         .replace("√", "sqrt").replace("π", "pi").replace("²", "^2").replace("³", "^3"))
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", s)
    for pattern, repl in _WORDS:
        s = re.sub(pattern, repl, s, flags=re.I)
    s = re.sub(r"(?<=[\d)])\s*[xX]\s*(?=[\d(])", "*", s)
    s = _PERCENT_OF.sub(r"(\1/100)*", s)
    s = _PERCENT.sub(r"(\1/100)", s)
    return s.replace("%%", "%")


def parse(text: str, *, symbols: bool = True) -> Any:
    """A sympy expression from maths text, built without eval; ToolError says what is not allowed."""
    sympy = require("sympy")
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        standard_transformations,
        stringify_expr,
    )

    if len(text) > MAX_LENGTH:
        raise ToolError(f"the expression is {len(text)} characters; at most {MAX_LENGTH} are accepted")
    source = normalize(text)
    if not source:
        raise ToolError("the expression is empty")
    names: dict[str, Any] = {**_FUNCTIONS_SYMPY(sympy), **_CONSTANTS_SYMPY(sympy)}
    try:
        known = {**names, "Integer": sympy.Integer, "Float": sympy.Float, "Rational": sympy.Rational,
                 "Symbol": sympy.Symbol}
        code = stringify_expr(source, {}, known,
                              standard_transformations + (implicit_multiplication_application, convert_xor))
        tree = ast.parse(code.strip(), mode="eval")
    except Exception as exc:  # sympy's tokenizer raises TokenError, SyntaxError, ...
        raise ToolError(f"cannot read {text!r} as maths ({type(exc).__name__})") from None
    return _Builder(sympy, names, symbols=symbols).build(tree.body, text)


def evaluate(text: str) -> Any:
    """The exact value of an arithmetic expression (no unknowns), e.g. '17 times 23' -> 391."""
    value = parse(text, symbols=False)
    return _simplified(value)


def solve(equation: str, variable: str | None = None) -> tuple[str, list[Any]]:
    """Solutions of an equation ('3x + 7 = 28') or of expression = 0, for `variable` or its only unknown."""
    import sympy

    sides = equation.split("=")
    if len(sides) > 2 or (len(sides) == 2 and not all(s.strip() for s in sides)):
        raise ToolError(f"cannot read {equation!r} as one equation; write it as 'left = right'")
    left = parse(sides[0])
    right = parse(sides[1]) if len(sides) == 2 else sympy.Integer(0)
    expr = left - right
    free = sorted(expr.free_symbols, key=lambda s: s.name)
    if variable:
        target = sympy.Symbol(variable)
        if target not in free:
            raise ToolError(f"'{variable}' does not appear in {equation!r}")
    elif len(free) == 1:
        target = free[0]
    elif not free:
        raise ToolError(f"{equation!r} has no unknown to solve for")
    else:
        raise ToolError(f"{equation!r} has several unknowns ({', '.join(s.name for s in free)}); name the variable")
    try:
        solutions = sympy.solve(sympy.Eq(expr, 0), target)
    except NotImplementedError:
        raise ToolError(f"sympy cannot solve {equation!r} exactly") from None
    return target.name, [_simplified(s) for s in solutions]


def percent(operation: str, a: float | str, b: float | str) -> Any:
    """'of': a% of b; 'ratio': what percent a is of b; 'change': percent change from a to b."""
    x, y = evaluate(str(a)), evaluate(str(b))
    if operation == "of":
        return _simplified(x * y / 100)
    if y == 0 and operation == "ratio":
        raise ToolError("the whole is 0; a percentage of nothing is undefined")
    if x == 0 and operation == "change":
        raise ToolError("the starting value is 0; a percent change from 0 is undefined")
    if operation == "ratio":
        return _simplified(x / y * 100)
    if operation == "change":
        return _simplified((y - x) / x * 100)
    raise ToolError(f"unknown percent operation {operation!r}; use 'of', 'ratio' or 'change'")


def to_float(value: Any) -> float | None:
    """A finite float for a real number, else None (symbols, complex numbers, infinities)."""
    try:
        if getattr(value, "is_real", None) is False or getattr(value, "free_symbols", None):
            return None
        f = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def format_number(value: Any) -> str:
    """An exact result as people write it: '391', '-2.5', '1/3 ≈ 0.333333333333', 'sqrt(2) ≈ 1.41421356237'."""
    import sympy

    if isinstance(value, sympy.Integer):
        return str(int(value))
    if isinstance(value, sympy.Rational):
        q = int(value.q)
        while q % 2 == 0:
            q //= 2
        while q % 5 == 0:
            q //= 5
        if q == 1:  # terminating decimal: show it exactly
            return _plain_decimal(value)
        return f"{value} ≈ {float(value):.12g}"
    approx = to_float(value)
    if approx is not None:
        if isinstance(value, sympy.Float):
            return f"{approx:.12g}"
        return f"{sympy.sstr(value)} ≈ {approx:.12g}"
    return sympy.sstr(value)


def _plain_decimal(value: Any) -> str:
    from decimal import Decimal, localcontext

    with localcontext() as ctx:
        ctx.prec = MAX_DIGITS
        d = Decimal(int(value.p)) / Decimal(int(value.q))
    text = format(d.normalize(), "f")
    return text


def _simplified(value: Any) -> Any:
    import sympy

    if isinstance(value, sympy.Basic) and not value.is_Atom and not value.free_symbols:
        try:
            value = sympy.nsimplify(value) if isinstance(value, sympy.Float) else sympy.simplify(value)
        except Exception:  # simplify is best effort; the unsimplified value is still right
            pass
    return value


def _FUNCTIONS_SYMPY(sympy: Any) -> dict[str, Any]:
    return {
        "sqrt": sympy.sqrt, "cbrt": sympy.cbrt, "root": sympy.root, "exp": sympy.exp, "log": sympy.log,
        "ln": sympy.log, "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "asin": sympy.asin,
        "acos": sympy.acos, "atan": sympy.atan, "sinh": sympy.sinh, "cosh": sympy.cosh, "tanh": sympy.tanh,
        "abs": sympy.Abs, "Abs": sympy.Abs, "floor": sympy.floor, "ceiling": sympy.ceiling, "ceil": sympy.ceiling,
        "factorial": sympy.factorial, "binomial": sympy.binomial, "gcd": sympy.gcd, "lcm": sympy.lcm,
        "Mod": sympy.Mod, "mod": sympy.Mod, "round": _round(sympy), "min": sympy.Min, "max": sympy.Max,
    }


def _CONSTANTS_SYMPY(sympy: Any) -> dict[str, Any]:
    return {"pi": sympy.pi, "E": sympy.E, "e": sympy.E, "I": sympy.I, "oo": sympy.oo}


def _round(sympy: Any) -> Callable[..., Any]:
    def round_(x: Any, digits: Any = 0) -> Any:
        d = int(digits)
        scaled = sympy.Rational(x) * sympy.Integer(10) ** d if x.is_Rational else x * 10**d
        return sympy.floor(scaled + sympy.Rational(1, 2)) / sympy.Integer(10) ** d
    return round_


class _Builder:
    """Builds sympy objects from the syntax tree `stringify_expr` wrote, allowing only maths."""

    _BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow", ast.Mod: "mod"}

    def __init__(self, sympy: Any, names: dict[str, Any], *, symbols: bool) -> None:
        self.sympy = sympy
        self.names = names
        self.symbols = symbols

    def build(self, node: ast.AST, text: str) -> Any:
        try:
            return self._node(node)
        except ToolError:
            raise
        except ZeroDivisionError:
            raise ToolError(f"{text!r} divides by zero") from None
        except (TypeError, ValueError, AttributeError, RecursionError) as exc:
            raise ToolError(f"cannot compute {text!r}: {exc}") from None

    def _node(self, node: ast.AST) -> Any:
        sympy = self.sympy
        if isinstance(node, ast.BinOp) and type(node.op) in self._BINOPS:
            left, right = self._node(node.left), self._node(node.right)
            op = self._BINOPS[type(node.op)]
            if op == "pow":
                self._check_power(left, right)
                return left**right
            if op == "div":
                if right == 0:
                    raise ToolError("division by zero")
                return left / right
            if op == "mod":
                if right == 0:
                    raise ToolError("modulo by zero")
                return sympy.Mod(left, right)
            return left + right if op == "add" else left - right if op == "sub" else left * right
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self._node(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Name):
            if node.id in self.names and not callable(self.names[node.id]) or node.id in ("pi", "E", "I", "oo"):
                return self.names[node.id]
            raise ToolError(f"'{node.id}' is not a number or a constant here")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            return self._call(node.func.id, node.args)
        raise ToolError(f"'{ast.unparse(node)[:40]}' is not allowed in maths; use numbers, + - * / ^, and functions")

    def _call(self, name: str, args: list[ast.expr]) -> Any:
        sympy = self.sympy
        if name in ("Integer", "Float", "Rational", "Symbol"):
            if not all(isinstance(a, ast.Constant) and isinstance(a.value, (int, str)) for a in args) or not args:
                raise ToolError(f"malformed number in the expression ({name})")
            raw = [a.value for a in args]  # type: ignore[attr-defined]
            if name == "Symbol":
                symbol = str(raw[0])
                if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,15}", symbol):
                    raise ToolError(f"'{symbol}' is not allowed as a variable name")
                if not self.symbols:
                    raise ToolError(f"'{symbol}' is an unknown; to find it, solve an equation instead")
                return sympy.Symbol(symbol)
            if any(isinstance(r, str) and len(r) > 100 for r in raw):
                raise ToolError("a number in the expression is too long")
            if name == "Float":
                number = sympy.Rational(str(raw[0]))  # decimals are exact
            else:
                number = sympy.Integer(raw[0]) if name == "Integer" else sympy.Rational(*[int(r) for r in raw])
            if max(int(number.p).bit_length(), int(number.q).bit_length()) > MAX_DIGITS * 3.33:
                raise ToolError(f"a number has more than {MAX_DIGITS} digits; too large to compute here")
            return number
        if name not in self.names or not callable(self.names[name]):
            raise ToolError(f"'{name}' is not a function this calculator knows")
        values = [self._node(a) for a in args]
        if name == "factorial" and values and values[0].is_number and values[0] > MAX_FACTORIAL:
            raise ToolError(f"factorial of more than {MAX_FACTORIAL} is too large to compute here")
        return self.names[name](*values)

    def _check_power(self, base: Any, exponent: Any) -> None:
        b, e = to_float(base), to_float(exponent)
        if b is None or e is None or abs(b) <= 1:
            return
        if abs(e) * math.log10(abs(b)) > MAX_DIGITS:
            raise ToolError(f"the result has more than {MAX_DIGITS} digits; too large to compute here")
