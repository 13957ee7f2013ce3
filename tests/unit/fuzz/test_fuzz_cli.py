"""Property-based fuzz of the command line in-process: random argv for each command never raises out of the
app and exits 0, 1 or 2 (done, a clear covey error, a usage error).

What would run for minutes or touch the network is cut where the library starts: the orchestrator build
raises NoCapableNode, the node directory is empty, and `rag` embeds with a hashing fake. Commands that serve
or download (node join, serve, demo, models pull, cluster serve/invite, eval, calibrate) are left out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import pytest
import typer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from covey.cli import app
from covey.errors import NoCapableNode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rag"))
from rag_fakes import HashingEmbedder  # noqa: E402

COMMANDS = [["ask"], ["nodes"], ["agents"], ["logs"], ["models", "list"], ["cluster", "status"], ["cluster", "init"],
            ["energy", "report"], ["serve", "keys", "create"], ["serve", "keys", "list"], ["serve", "keys", "revoke"],
            ["rag", "add"], ["rag", "rm"], ["rag", "ls"], ["rag", "search"], ["rag", "stats"], ["tools", "ls"],
            ["tools", "call"], ["config", "show"], ["config", "keys"], ["node", "revoke"], []]
SAFE_TOOLS = ["calculator", "convert_units", "dates", "nope", ""]


def _options(path: list[str]) -> list[str]:
    command: click.Command = typer.main.get_command(app)
    for name in path:  # get_command, not .commands: some commands are mounted lazily
        command = command.get_command(click.Context(command), name)  # type: ignore[attr-defined]
    return sorted({opt for p in command.params for opt in (*p.opts, *p.secondary_opts) if opt.startswith("-")})


OPTIONS = {tuple(c): _options(c) for c in COMMANDS}
values = st.one_of(
    st.text(max_size=20), st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=True).map(str),
    st.sampled_from(["", "-", "--", "0", "-1", "nan", "inf", "1e308", "10**15", "[bold]x[/", "[/bold]", "\udcff\udcfe hi",
                     "127.0.0.1:1", "host:99999", ":", "a" * 300, "~", "/", "/dev/null", "/etc/hostname", "{}",
                     '{"expression": "2+2"}', "never", "always", "json", "*", "..", "\x00"] + SAFE_TOOLS),
)


@st.composite
def argvs(draw) -> list[str]:
    path = draw(st.sampled_from(COMMANDS))
    options = OPTIONS[tuple(path)] + ["--help", "--version", "--bogus"]
    tokens = draw(st.lists(st.one_of(st.sampled_from(options), values), max_size=6))
    return [*path, *tokens]


@pytest.fixture
def cut_at_the_library(monkeypatch, covey_env):
    async def no_nodes(settings, wait):
        return [], []

    async def no_orchestrator(settings, **kw):
        raise NoCapableNode("no node in the fuzz test")

    monkeypatch.setattr("covey.cli_run.directory_snapshot", no_nodes)
    monkeypatch.setattr("covey.wiring.build", no_orchestrator)
    monkeypatch.setattr("covey.rag.embedder.from_settings", lambda *a, **k: HashingEmbedder())
    cwd = Path.cwd()
    os.chdir(covey_env.parent)  # nothing a command writes lands in the repository
    yield
    os.chdir(cwd)


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=argvs())
@example(argv=["ask", "\udcff\udcfe hi"])
@example(argv=["ask", "--embedded", "[bold]x[/", "hi"])
@example(argv=["nodes", "--peer", "host:99999", "--wait", "nan"])
@example(argv=["rag", "add", "/etc/hostname", "--collection", "../x"])
@example(argv=["serve", "keys", "create", "[/bold]"])
@example(argv=["tools", "call", "calculator", "{"])
def test_random_arguments_never_escape_as_an_exception(cut_at_the_library, argv: list[str]) -> None:
    result = CliRunner().invoke(app, argv, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), (argv, repr(result.exception))
    assert result.exit_code in (0, 1, 2), (argv, result.exit_code, result.output[-500:])
    assert "Traceback" not in result.output, (argv, result.output[-2000:])
