"""What a new user notices first: flags every command takes, tables in pipes, summaries, wrapped notices."""

from __future__ import annotations

import json
from pathlib import Path

import click
import typer
from typer.testing import CliRunner

from covey.cli import app


def _commands(group, path: tuple[str, ...] = ()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the lazily mounted ones included
        cmd = group.get_command(ctx, name)
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, (*path, name))
        elif cmd is not None:
            yield (*path, name), cmd


def test_every_eval_command_and_the_demo_accept_no_discover() -> None:
    root = typer.main.get_command(app)
    wanted = {path: cmd for path, cmd in _commands(root) if path[0] == "eval" or path == ("demo",)}
    assert {("eval", "route"), ("eval", "answers"), ("eval", "frugality"), ("eval", "cascade"), ("demo",)} <= set(wanted)
    for path, cmd in wanted.items():
        opts = {opt for param in cmd.params for opt in (*param.opts, *param.secondary_opts)}
        assert "--no-discover" in opts, path


def test_eval_route_runs_with_no_discover(tmp_path: Path) -> None:
    from covey.router.classifier import RouteDecision
    from covey.router.cli import make_eval_route

    class Fixed:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def classify(self, text: str, history=()) -> RouteDecision:
            self.seen.append(text)
            return RouteDecision(route="math", confidence=0.9, runner_up="chat", runner_up_confidence=0.05,
                                 margin=0.85, fallback=False, reason="fixed")

    router = Fixed()
    cli = typer.Typer()
    cli.command("route")(make_eval_route(lambda settings: router))
    cli.command("other")(lambda: None)
    tasks = tmp_path / "t.jsonl"
    tasks.write_text(json.dumps({"prompt": "2+2?", "route": "math"}) + "\n")
    res = CliRunner().invoke(cli, ["route", str(tasks), "--no-discover", "--json"])
    assert res.exit_code == 0, res.output
    assert router.seen == ["2+2?"] and json.loads(res.stdout)["report"]["accuracy"] == 1.0
