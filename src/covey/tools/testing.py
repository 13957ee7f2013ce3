"""Run the user's tests and doctests against code in the sandbox: pass/fail with the first error.

For a later code checker: the code becomes ``solution.py`` in the sandbox directory, its doctests
run, then each top-level statement of `tests` (usually ``assert f(2) == 4``) runs in the module's
namespace, one by one, so a report says how many passed and which failed first and why.
"""

from __future__ import annotations

import json

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
finish()
'''


class CodeTestReport(Frozen):
    passed: bool
    tests_passed: int = Field(0, description="asserts and doctest examples that passed")
    tests_failed: int = 0
    doctests: int = Field(0, description="doctest examples found in the code")
    error: str = Field("", description="the first failure, or why nothing could run")
    output: str = Field("", description="what the code printed")
    sandbox: SandboxResult | None = None


def run_code_tests(sandbox: Sandbox, code: str, tests: str = "", *, doctests: bool = True) -> CodeTestReport:
    """Run `code` then its doctests and the `tests` statements in `sandbox`; never raises for bad code."""
    try:
        compile(tests, "tests.py", "exec")
    except SyntaxError as exc:
        return CodeTestReport(passed=False, error=f"the tests do not parse: {exc.msg} (line {exc.lineno})")
    runner = _RUNNER % {"marker": _MARKER, "doctests": doctests}
    result = sandbox.run(runner, files={"solution.py": code, "tests.py": tests})
    lines = [line for line in result.stdout.splitlines() if line.startswith(_MARKER)]
    output = "\n".join(line for line in result.stdout.splitlines() if not line.startswith(_MARKER))
    if not lines:
        return CodeTestReport(passed=False, error=result.error or "the tests did not report", output=output,
                              sandbox=result)
    report = json.loads(lines[-1][len(_MARKER):])
    ran = report["passed"] + report["failed"]
    error = report["first_failure"]
    if not error and ran == 0:
        error = "no tests ran: give asserts or doctests"
    return CodeTestReport(passed=not error and report["failed"] == 0, tests_passed=report["passed"],
                          tests_failed=report["failed"], doctests=report["doctests"], error=error, output=output,
                          sandbox=result)
