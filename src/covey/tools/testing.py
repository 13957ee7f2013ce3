"""Run the user's tests and doctests against code in the sandbox: pass/fail with the first error.

For a later code checker: the code becomes ``solution.py`` in the sandbox directory, its doctests
run, then each top-level statement of `tests` (usually ``assert f(2) == 4``) runs in the module's
namespace, one by one, so a report says how many passed and which failed first and why.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from dataclasses import dataclass

from pydantic import Field

from covey.tools.sandbox import Sandbox, SandboxResult
from covey.types import Frozen

_MARKER = "__covey_tests__ "

_RUNNER = r'''
import ast, doctest, io, json, sys, traceback
sys.path.insert(0, ".")
report = {"stage": "import", "passed": 0, "failed": 0, "doctests": 0, "first_failure": ""}
def finish():
    print(%(marker)r + json.dumps(report))
try:
    import solution
except BaseException as exc:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith("solution.py")]
    where = " (line %%d)" %% frames[-1].lineno if frames else ""
    report["first_failure"] = "the code does not run: %%s: %%s%%s" %% (type(exc).__name__, exc, where)
    report["failed"] = 1
    finish()
    raise SystemExit(0)
report["stage"] = "doctest"
if %(doctests)r:
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(solution, "solution"):
        runner.run(test, out=out.write)
    import contextlib
    with contextlib.redirect_stdout(io.StringIO()):
        result = runner.summarize(verbose=False)
    report["doctests"] = result.attempted
    report["passed"] += result.attempted - result.failed
    report["failed"] += result.failed
    if result.failed:
        text = out.getvalue().strip().splitlines()
        shown = [l.strip() for l in text[1:9] if l.strip() and not l.startswith("File ")]
        report["first_failure"] = "doctest failed: " + " | ".join(shown)
report["stage"] = "tests"
source = open("tests.py", encoding="utf-8").read()
namespace = dict(vars(solution))
for node in ast.parse(source, "tests.py").body:
    statement = ast.get_source_segment(source, node) or ""
    try:
        exec(compile(ast.Module(body=[node], type_ignores=[]), "tests.py", "exec"), namespace)
    except BaseException as exc:
        report["failed"] += 1
        if not report["first_failure"]:
            detail = ("%%s: %%s" %% (type(exc).__name__, exc)) if str(exc) else type(exc).__name__
            report["first_failure"] = "%%s (line %%d) failed: %%s" %% (statement.splitlines()[0][:120],
                                                                   node.lineno, detail)
    else:
        if isinstance(node, ast.Assert):
            report["passed"] += 1
report["stage"] = "claims"
report["claims"] = []
for expr in json.load(open("claims.json", encoding="utf-8")):
    try:
        value = eval(compile(expr, "claim", "eval"), dict(vars(solution)))
        report["claims"].append([str(value), repr(value)])
    except BaseException:
        report["claims"].append(None)
finish()
'''


_CLAIM = re.compile(r"#\s*(?:expected\s+)?(?:output|prints?|result|returns?)\s*(?:is\s*)?[:=]\s*(?P<a>.+)"
                    r"|#\s*(?:->|=>)\s*(?P<b>.+)", re.I)


@dataclass(frozen=True)
class OutputClaim:
    """A top-level `print(x)  # Output: y` in model-written code: what the comment says x prints."""

    line: int  # 1-based, in the code
    expression: str
    claimed: str  # the comment's text after "Output:", as written
    comment: str  # the whole comment


def _unquoted(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def output_claims(code: str) -> list[OutputClaim]:
    """Each top-level (or `if __name__ == "__main__":`) `print(one argument)` with an output comment."""
    try:
        tree = ast.parse(code)
        comments = {tok.start[0]: tok.string for tok in tokenize.generate_tokens(io.StringIO(code).readline)
                    if tok.type == tokenize.COMMENT}
    except (SyntaxError, tokenize.TokenError, IndentationError):
        return []
    body = list(tree.body)
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in (ast.get_source_segment(code, node.test) or ""):
            body.extend(node.body)
    found = []
    for node in body:
        call = node.value if isinstance(node, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print"
                and len(call.args) == 1 and not call.keywords and node.end_lineno == node.lineno):
            continue
        comment = comments.get(node.lineno, "")
        m = _CLAIM.search(comment)
        expression = ast.get_source_segment(code, call.args[0])
        if m and expression:
            found.append(OutputClaim(node.lineno, expression, (m.group("a") or m.group("b")).strip(), comment))
    return found


@dataclass(frozen=True)
class WrongClaim:
    claim: OutputClaim
    actual: str  # what the expression prints

    def corrected_comment(self) -> str:
        quote = self.claim.claimed.strip()[:1] if _unquoted(self.claim.claimed) != self.claim.claimed.strip() else ""
        return self.claim.comment.replace(self.claim.claimed, f"{quote}{self.actual}{quote}", 1)


def _matches(claimed: str, shown: tuple[str, str]) -> bool:
    norm = " ".join(claimed.split())
    return any(norm in (" ".join(v.split()), " ".join(_unquoted(v).split())) or _unquoted(norm) == v for v in shown)


def corrected_code(code: str, wrong: list[WrongClaim]) -> str:
    """The code with each wrong output comment replaced by what the line really prints."""
    lines = code.split("\n")
    for w in wrong:
        i = w.claim.line - 1
        lines[i] = lines[i].replace(w.claim.comment, w.corrected_comment(), 1)
    return "\n".join(lines)


class CodeTestReport(Frozen):
    passed: bool
    tests_passed: int = Field(0, description="asserts and doctest examples that passed")
    tests_failed: int = 0
    doctests: int = Field(0, description="doctest examples found in the code")
    error: str = Field("", description="the first failure, or why nothing could run")
    output: str = Field("", description="what the code printed")
    wrong_claims: tuple[tuple[int, str, str], ...] = Field(
        (), description="(line, claimed, actual) for each `print(x)  # Output: y` whose y is not what x prints")
    sandbox: SandboxResult | None = None

    def wrong(self, code: str) -> list[WrongClaim]:
        by_line = {c.line: c for c in output_claims(code)}
        return [WrongClaim(by_line[line], actual) for line, _, actual in self.wrong_claims if line in by_line]


_STRING_NAMES = {"s", "st", "string", "text", "word", "sentence", "phrase", "input_string", "input_str", "string_input",
                 "txt", "message", "line"}
_LIST_NAMES = {"lst", "arr", "array", "nums", "numbers", "items", "values", "data", "xs", "seq", "sequence",
               "input_list", "my_list", "elements", "list_of_numbers", "l"}
_INT_NAMES = {"n", "num", "number", "k", "count", "limit", "num1", "num2"}  # not a, b, x: lcs(a, b) takes strings
_SAMPLES = {"str": "'hello world'", "list": "[3, 1, 2]", "int": "5", "float": "2.5"}
_NO_SMOKE = re.compile(r"\bopen\s*\(|\bsys\.argv\b|\bsocket\b|\brequests\b|\burllib\b")
_READS_INPUT = re.compile(r"\binput\s*\(")
_ASKS_FOR_INPUT = re.compile(r"\b(?:input|inputs|enters?|entered|types?|typed|keyboard|interactive(?:ly)?|prompts? (?:the|a) "
                             r"user|asks? (?:the|a) user|from the user|stdin|command[- ]line)\b", re.I)


def _sample_kind(arg: ast.arg) -> str | None:
    """The kind of value a parameter takes, by its annotation or, failing that, its name."""
    if arg.annotation is not None:
        name = ast.unparse(arg.annotation).split("[")[0].lower()
        return {"str": "str", "list": "list", "int": "int", "float": "float", "sequence": "list"}.get(name)
    lowered = arg.arg.lower()
    if lowered in _STRING_NAMES or lowered.endswith(("_str", "_string", "_text", "_word")):
        return "str"
    if lowered in _LIST_NAMES or lowered.endswith("_list"):
        return "list"
    return "int" if lowered in _INT_NAMES else None


def smoke_calls(code: str, prompt: str = "") -> str:
    """Calls of the code's own top-level functions on an ordinary input, when every parameter's kind is
    plain from its annotation or name (`reverse_string(s)` -> "reverse_string('hello world')"): with no
    test in the prompt, a function that raises on such an input is proven broken (TypeError from
    `''.join(reversed(c) for c in s)`), while whatever it returns is left unjudged. Nothing is called
    for code that reads files, arguments or the network, nor for code that reads input() when the prompt
    asks for a program the user types into; otherwise `is_prime(n)` calling input() is called too, and its
    EOFError (the sandbox has no stdin) proves the function does not work on its argument."""
    if _NO_SMOKE.search(code) or (_READS_INPUT.search(code) and (not prompt or _ASKS_FOR_INPUT.search(prompt))):
        return ""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ""
    calls = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_") or node.name == "main":
            continue
        spec = node.args
        if spec.vararg or spec.kwarg or spec.kwonlyargs or spec.posonlyargs or spec.defaults or not spec.args:
            continue
        kinds = [_sample_kind(a) for a in spec.args]
        if None in kinds:
            continue
        calls.append(f"{node.name}({', '.join(_SAMPLES[k] for k in kinds if k)})")
    return "\n".join(calls)


def run_code_tests(sandbox: Sandbox, code: str, tests: str = "", *, doctests: bool = True) -> CodeTestReport:
    """Run `code` then its doctests and the `tests` statements in `sandbox`; never raises for bad code."""
    try:
        compile(tests, "tests.py", "exec")
    except SyntaxError as exc:
        return CodeTestReport(passed=False, error=f"the tests do not parse: {exc.msg} (line {exc.lineno})")
    runner = _RUNNER % {"marker": _MARKER, "doctests": doctests}
    claims = output_claims(code)
    result = sandbox.run(runner, files={"solution.py": code, "tests.py": tests,
                                        "claims.json": json.dumps([c.expression for c in claims])})
    # The report is the marker's line; a prompt printed with no newline (input("Enter: ")) sits before it
    printed, lines = [], []
    for line in result.stdout.splitlines():
        before, marker, after = line.partition(_MARKER)
        if before or not marker:
            printed.append(before)
        if marker:
            lines.append(marker + after)
    output = "\n".join(printed)
    if not lines:
        return CodeTestReport(passed=False, error=result.error or "the tests did not report", output=output,
                              sandbox=result)
    report = json.loads(lines[-1][len(_MARKER):])
    ran = report["passed"] + report["failed"]
    error = report["first_failure"]
    if not error and ran == 0:
        error = "no tests ran: give asserts or doctests"
    wrong = tuple((c.line, c.claimed, shown[0]) for c, shown in zip(claims, report.get("claims", []), strict=False)
                  if shown is not None and not _matches(c.claimed, (shown[0], shown[1])))
    return CodeTestReport(passed=not error and report["failed"] == 0, tests_passed=report["passed"],
                          tests_failed=report["failed"], doctests=report["doctests"], error=error, output=output,
                          wrong_claims=wrong, sandbox=result)
