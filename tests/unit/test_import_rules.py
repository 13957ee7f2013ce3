"""Import rules read from the source (an AST scan of src/covey, lazy imports inside functions included).

- No module imports a `_private` name (or a `_private` module) from another covey module: what is
  shared is public, like the command runner in covey.cli_run.
- The orchestrator room's library never imports the command line (covey.cli, covey.cli_*); its own
  command modules (`*_cli.py`) are the CLI's, mounted lazily from covey.cli.
- Only the console script (covey.entry) imports covey.cli: the sub-CLIs it mounts use covey.cli_run.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import covey

SRC = Path(covey.__file__).parent


def imports(source: str) -> Iterator[tuple[int, str, str | None]]:
    """(line, module, name) for each covey import; `name` is None for `import covey.x`. Relative
    imports are covey's by definition and keep their dots (`.pool`)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if node.level or module == "covey" or module.startswith("covey."):
                for alias in node.names:
                    yield node.lineno, module, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "covey" or alias.name.startswith("covey."):
                    yield node.lineno, alias.name, None


def private_imports(source: str) -> list[str]:
    """The imports that reach a `_private` name or module (dunders such as `__version__` are public)."""
    found = []
    for line, module, name in imports(source):
        parts = [p for p in module.split(".") if p] + ([name] if name else [])
        if any(p.startswith("_") and not (p.startswith("__") and p.endswith("__")) for p in parts):
            found.append(f"{line}: {module} {name or ''}".rstrip())
    return found


def cli_imports(source: str, *, only: tuple[str, ...] | None = None) -> list[str]:
    """The imports of the command line: covey.cli and the covey.cli_* modules (or just those in `only`)."""

    def target(module: str, name: str | None) -> str:
        return f"covey.{name}" if module == "covey" and name else module  # `from covey import cli_run`

    def is_cli(module: str) -> bool:
        if only is not None:
            return module in only
        return module == "covey.cli" or module.startswith(("covey.cli.", "covey.cli_"))

    return [f"{line}: {module} {name or ''}".rstrip() for line, module, name in imports(source)
            if is_cli(target(module, name))]


def modules() -> list[Path]:
    found = sorted(SRC.rglob("*.py"))
    assert len(found) > 100, f"only {len(found)} modules under {SRC}: is covey imported from its source tree?"
    return found


def is_command_module(path: Path) -> bool:
    return path.name == "cli.py" or path.stem.endswith("_cli")


def test_the_scans_see_what_they_look_for() -> None:
    source = ("from covey.cli import _Run, app\nfrom . import _jail\nimport covey.tools._jail\n"
              "from covey import __version__, cli_run\nfrom covey.cli_output import err\nimport typer\n"
              "def f():\n    from covey.energy.pmic import _run_vcgencmd\n")
    assert private_imports(source) == ["1: covey.cli _Run", "2: . _jail", "3: covey.tools._jail",
                                       "8: covey.energy.pmic _run_vcgencmd"]
    assert cli_imports(source) == ["1: covey.cli _Run", "1: covey.cli app", "4: covey cli_run",
                                   "5: covey.cli_output err"]
    assert cli_imports(source, only=("covey.cli",)) == ["1: covey.cli _Run", "1: covey.cli app"]
    assert cli_imports("from covey import cli\n", only=("covey.cli",)) == ["1: covey cli"]


def test_no_module_imports_a_private_name_from_another_covey_module() -> None:
    found = {str(p.relative_to(SRC)): hits for p in modules() if (hits := private_imports(p.read_text("utf-8")))}
    assert not found, f"make these names public where they are defined (or keep them in one module): {found}"


def test_the_orchestrator_library_never_imports_the_command_line() -> None:
    library = [p for p in (SRC / "orchestrator").rglob("*.py") if not is_command_module(p)]
    assert SRC / "orchestrator" / "answer_eval.py" in library and SRC / "orchestrator" / "pool.py" in library
    found = {str(p.relative_to(SRC)): hits for p in library if (hits := cli_imports(p.read_text("utf-8")))}
    assert not found, f"move the command-line part into an orchestrator/*_cli.py module: {found}"


def test_only_the_console_script_imports_covey_cli() -> None:
    others = [p for p in modules() if p not in (SRC / "cli.py", SRC / "entry.py")]
    found = {str(p.relative_to(SRC)): hits for p in others
             if (hits := cli_imports(p.read_text("utf-8"), only=("covey.cli",)))}
    assert not found, f"import the shared command helpers from covey.cli_run instead: {found}"
