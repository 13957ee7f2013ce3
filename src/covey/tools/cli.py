"""`covey tools ...`: list the tools agents may call, call one by hand, and say what the sandbox enforces here."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from covey.errors import CoveyError

app = typer.Typer(help="Tools agents call: exact maths, units, dates, document search, a Python sandbox.",
                  no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _documents():
    """The user's default document collection (DATA_DIR/rag/default), opened on the first search."""
    from covey.rag.store import Store
    from covey.settings import Settings

    return Store.in_data_dir(Settings.load().data_dir, create=False)


def _registry():
    from covey.tools.builtin import default_registry

    try:
        return default_registry(searcher=_documents)
    except CoveyError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


@app.command("ls")
def ls() -> None:
    """The tools installed here: shipped ones and those from 'covey.tools' entry points."""
    from covey.cli_output import Column, Grid, print_grid

    grid = Grid([Column("tool", no_wrap=True), Column("arguments"), Column("what it does")])
    for tool in _registry():
        grid.add(tool.name, ", ".join(tool.spec.parameters.get("properties", {})), tool.spec.description)
    print_grid(grid)  # TSV in a pipe


@app.command("call")
def call(
    name: Annotated[str, typer.Argument(help="tool name, e.g. calculator")],
    arguments: Annotated[str, typer.Argument(help='JSON object, e.g. \'{"expression": "17*23"}\'')] = "{}",
) -> None:
    """Call one tool with JSON arguments and print its result (exit 1 when the tool reports an error)."""
    from covey.tools.types import ToolCall

    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError as exc:
        err.print(f"[red]error:[/red] the arguments are not JSON: {exc.msg}; write them like "
                  "'{\"expression\": \"17*23\"}'")
        raise typer.Exit(2) from None
    if not isinstance(parsed, dict):
        err.print("[red]error:[/red] the arguments must be a JSON object")
        raise typer.Exit(2)
    result = _registry().call(ToolCall(name=name, arguments=parsed))
    if not result.ok:
        err.print(f"[red]error:[/red] {escape(result.error)}")
        raise typer.Exit(1)
    console.print(escape(result.text))
    console.print(f"[dim]{result.method} · {result.seconds * 1000:.0f} ms[/dim]")


@app.command("sandbox")
def sandbox() -> None:
    """What the Python sandbox enforces on this machine, and what is weaker where a layer is missing."""
    from covey.tools.sandbox import Sandbox

    try:
        console.print(escape(Sandbox().describe()))
    except CoveyError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
