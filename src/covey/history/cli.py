"""`covey logs`: list and search past prompts, answers, routes, nodes and joules (like `llm logs`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from covey.errors import CoveyError
from covey.history.store import FILENAME, HistoryStore, Turn
from covey.settings import Settings


def logs(
    count: int = typer.Option(10, "-n", "--count", min=0, help="show this many turns, newest last (0 = all)"),
    query: Optional[str] = typer.Option(None, "-q", "--query", help="only turns whose prompt, answer, route, "
                                        "agent, node or model contains these words"),
    session: Optional[str] = typer.Option(None, "--session", help="only this session"),
    as_json: bool = typer.Option(False, "--json", help="print JSON (one array of turns)"),
    sessions: bool = typer.Option(False, "--sessions", help="list sessions instead of turns"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR", help="covey's data directory"),
) -> None:
    """Past conversations: prompts, answers, routes, nodes and joules (DATA_DIR/history.db)."""
    console = Console(highlight=False)
    err = Console(stderr=True)
    try:
        settings = Settings.load(data_dir=data_dir)
        path = settings.data_dir / FILENAME
        if not path.exists():
            if as_json:
                typer.echo("[]")
                return
            console.print(f"No conversations recorded yet ({path} does not exist). Ask covey something first.")
            return
        store = HistoryStore(path, keep_text=settings.history.keep_text)
        try:
            if sessions:
                rows = store.sessions()
                if as_json:
                    typer.echo(json.dumps([{"session": s, "turns": n, "last": t.isoformat()} for s, n, t in rows], indent=2))
                else:
                    for s, n, last in rows:
                        console.print(f"{escape(s)}  {n} turn{'s' * (n != 1)}  last {last:%Y-%m-%d %H:%M:%S}")
                return
            turns = list(reversed(store.search(query=query, session=session, limit=count or None)))
        finally:
            store.close()
    except CoveyError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps([t.model_dump(mode="json") for t in turns], indent=2))
        return
    if not turns:
        console.print("No turns match." if (query or session) else "No conversations recorded yet.")
        return
    for t in turns:
        render(console, t)


def render(console: Console, t: Turn) -> None:
    lo, hi = t.joules * (1 - t.uncertainty), t.joules * (1 + t.uncertainty)
    spread = f" ({lo:.2f}-{hi:.2f})" if t.uncertainty else ""
    flags = "".join((" · escalated" if t.escalated else "", " · failed over" if t.failed_over else ""))
    console.print(f"[bold]## {t.time:%Y-%m-%d %H:%M:%S}[/bold]  session [cyan]{escape(t.session)}[/cyan]")
    tokens = "" if t.model.startswith("tool:") else f"{t.prompt_tokens} in / {t.completion_tokens} out · "  # no model ran
    console.print(f"[dim]route {t.route} · agent {t.agent} · {escape(t.node)} · {t.model} · "
                  f"{tokens}{t.joules:.2f} J{spread} ({t.method}) · {t.seconds:.1f} s{flags}[/dim]", soft_wrap=True)
    if t.prompt is None:
        console.print("[dim](text not kept: history.keep_text is off)[/dim]\n")
        return
    console.print(f"> {escape(t.prompt.strip())}", soft_wrap=True)
    console.print(escape(t.answer or ""), soft_wrap=True)
    console.print()
