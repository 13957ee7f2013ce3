"""The command modules import their printing from covey.cli_output, never from covey.cli (no cycles)."""

from __future__ import annotations

import ast
from pathlib import Path

import covey

SRC = Path(covey.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_demo_and_the_output_module_do_not_import_the_cli() -> None:
    for module in ("demo.py", "cli_output.py"):
        imports = imported_modules(SRC / module)
        assert "covey.cli" not in imports, f"{module} imports covey.cli: {sorted(imports)}"
    assert "covey.cli_output" in imported_modules(SRC / "demo.py")  # it prints with the CLI's own helpers
