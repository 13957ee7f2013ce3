"""Clean, scriptable output: the answer on stdout, everything else once on stderr; help and tables at 80 columns."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from covey.cli import app
from covey.cli_output import nodes_grid, print_stream
from covey.cli_output import CliLogHandler, Column, Grid, print_grid, setup_logging
from covey.orchestrator.results import AnswerResult, Attempt, Notice, Source, Token
from covey.types import Battery, ModelOffer, NodeId, NodeInfo

REPO = Path(__file__).resolve().parents[3]
DELEGATED = "gemma3-270m-q4_k_m needs 423 MB, 'laptop' allows 200 MB: delegated to 'den-pc'"


def result(**kw) -> AnswerResult:
    attempt = Attempt(node_id="n1", node_name="den-pc", address="127.0.0.1:1", model_id="gemma3-270m-q4_k_m",
                      outcome="answered", completion_tokens=3, tokens_per_second=12.0)
    base = dict(session_id="s", text="Hola, gracias.", route="translate", route_confidence=0.9, agent="translator",
                node="den-pc", model="gemma3-270m-q4_k_m", attempts=(attempt,), prompt_tokens=9,
                completion_tokens=3, notes=(DELEGATED, "nothing relevant found in your documents"))
    base.update(kw)
    return AnswerResult(**base)


async def scripted(*events):
    for ev in events:
        yield ev


def stream(capsys, *events, **kw) -> tuple[str, str]:
    asyncio.run(print_stream(scripted(*events), **kw))
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_the_answer_goes_to_stdout_and_each_notice_once_to_stderr(capsys) -> None:
    out, err = stream(capsys, Notice(kind="delegate", text=DELEGATED), Token(text="Hola, "), Token(text="gracias."),
                      result(sources=(Source(n=1, path="notes.md", position="§2"),)))
    assert out == "Hola, gracias.\n[1] notes.md §2\n"
    assert err.count(DELEGATED) == 1  # the notice, not again as a note
    assert "note: nothing relevant found in your documents" in err  # a note no notice showed
    assert "den-pc · gemma3-270m-q4_k_m · 9 in / 3 out" in err and "route translate" in err


def test_quiet_prints_the_answer_alone(capsys) -> None:
    out, err = stream(capsys, Notice(kind="delegate", text=DELEGATED), Token(text="Hola."), result(text="Hola."),
                      quiet=True)
    assert out == "Hola.\n" and err == ""


ESCALATED = (Token(text="Cantar de amigos.", attempt=0), Notice(kind="escalate", text="unsure: escalating"),
             Token(text="Gracias.", attempt=1))


def test_into_a_pipe_only_the_answer_that_stands_is_written(capsys) -> None:
    # the unsure first rung's answer was streamed, then escalated: a script reads only the one that stands
    out, err = stream(capsys, *ESCALATED, result(text="Gracias."))
    assert out == "Gracias.\n" and "escalating" in err
    out, err = stream(capsys, *ESCALATED, result(text="Gracias."), quiet=True)
    assert out == "Gracias.\n" and err == ""


def test_on_a_terminal_tokens_stream_and_an_escalated_answer_is_marked_even_when_quiet(capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    out, err = stream(capsys, *ESCALATED, result(text="Gracias."), quiet=True)
    assert out == "Cantar de amigos.\nGracias.\n"
    assert "not kept" in err and "next rung's answer follows" in err


def test_json_prints_one_document_with_the_notices(capsys) -> None:
    out, err = stream(capsys, Notice(kind="delegate", text=DELEGATED), Token(text="Hola."), result(), json_out=True)
    doc = json.loads(out)
    assert doc["text"] == "Hola, gracias." and doc["node"] == "den-pc" and doc["energy"]["method"] == "estimated"
    assert doc["notices"] == [{"kind": "delegate", "text": DELEGATED}] and err == ""


def test_held_warnings_are_dropped_when_the_command_fails_and_printed_once_when_it_succeeds(capsys) -> None:
    handler = setup_logging("WARNING", 0, hold=True)
    log = logging.getLogger("covey.test")
    log.warning("static peer 10.0.0.9:50551 does not answer")
    log.warning("static peer 10.0.0.9:50551 does not answer")
    assert capsys.readouterr().err == ""
    assert handler.drop_held() == 2
    handler = setup_logging("WARNING", 0, hold=True)
    log.warning("router cache unreadable")
    log.warning("router cache unreadable")
    handler.flush_held()
    assert capsys.readouterr().err == "warning: router cache unreadable\n"
    logging.getLogger().removeHandler(handler)


def test_a_failing_command_prints_one_error_line(covey_env: Path) -> None:
    covey_env.mkdir(parents=True, exist_ok=True)
    (covey_env / "config.toml").write_text("[node]\nport = 70000\n")
    res = CliRunner().invoke(app, ["nodes", "--no-discover"])
    assert res.exit_code == 2
    assert res.stdout == ""
    assert [line for line in res.stderr.splitlines() if line] == [
        f"error: invalid setting (node.port: Input should be less than or equal to 65535); "
        f"fix 'port' under [node] in {covey_env / 'config.toml'}"]


def test_dependency_progress_bars_are_off_unless_verbose(monkeypatch) -> None:
    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "TQDM_DISABLE"):
        monkeypatch.delenv(name, raising=False)
    setup_logging("WARNING", 0)
    import os

    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1" and os.environ["TQDM_DISABLE"] == "1"
    assert logging.getLogger("sentence_transformers").level == logging.WARNING
    setup_logging("WARNING", 2)
    assert logging.getLogger("sentence_transformers").level == logging.DEBUG
    for h in list(logging.getLogger().handlers):
        if isinstance(h, CliLogHandler):
            logging.getLogger().removeHandler(h)


def test_version_and_python_dash_m() -> None:
    from covey import __version__

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout == f"covey {__version__}\n"
    done = subprocess.run([sys.executable, "-m", "covey", "--version"], capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO / "src")})
    assert done.returncode == 0 and done.stdout == f"covey {__version__}\n", done.stderr


def test_a_typo_in_a_subcommand_suggests_the_right_one() -> None:
    res = CliRunner().invoke(app, ["ak", "hello"])
    assert res.exit_code == 2 and "No such command 'ak'. Did you mean 'ask'?" in res.output


def test_an_empty_prompt_is_one_clear_error() -> None:
    res = CliRunner().invoke(app, ["ask", "--no-discover", "   "])
    assert res.exit_code == 2 and res.stderr.strip() == 'error: the prompt is empty; write `covey ask "your question"`'


def test_the_prompt_is_read_from_stdin_with_a_dash(monkeypatch) -> None:
    from covey.cli import read_prompt

    monkeypatch.setattr(sys, "stdin", io.StringIO("What is 17 times 23?\n"))
    assert read_prompt("-", run=None) == "What is 17 times 23?\n"  # type: ignore[arg-type]
    monkeypatch.setattr(sys, "stdin", io.StringIO("piped question"))
    assert read_prompt(None, run=None) == "piped question"  # type: ignore[arg-type]


def _all_commands(group, path=()):
    import click

    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # sub-apps mounted lazily included
        cmd = group.get_command(ctx, name)
        if hasattr(cmd, "commands"):
            yield from _all_commands(cmd, (*path, name))
        else:
            yield (*path, name), cmd


def test_help_fits_80_columns_with_whole_flag_names_and_no_type_tags() -> None:
    import typer

    root = typer.main.get_command(app)
    commands = list(_all_commands(root))
    assert len(commands) >= 15
    for path, cmd in commands:
        res = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "80"})
        assert res.exit_code == 0, (path, res.output)
        text = res.stdout
        assert all(len(line) <= 80 for line in text.splitlines()), (path, text)
        for tag in ("<bool>", "<int>", "<str>", "<path>", "<float>", "<list", "INTEGER", "TEXT", "…"):
            assert tag not in text, (path, tag, text)
        for param in cmd.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in text, (path, opt, text)


def models_grid_output(width: int) -> str:
    from covey.cli import models_list  # noqa: F401  (the command builds the grid; render it here as it does)

    res = CliRunner().invoke(app, ["models", "list"])
    assert res.exit_code == 0, res.output
    return res.stdout


def test_models_list_is_tsv_in_a_pipe_with_whole_ids() -> None:
    from covey.models.catalog import Catalog

    out = models_grid_output(80)
    lines = out.splitlines()
    assert lines[0].split("\t") == ["id", "family", "params", "quant", "file MB", "RAM MB", "where"]
    assert [line.split("\t")[0] for line in lines[1:]] == Catalog().ids()


def terminal(width: int) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, width=width, color_system=None), buf


LONG = "qwen2.5-coder-1.5b-instruct-q4_k_m"


def node(name: str, models: tuple[str, ...], **kw) -> NodeInfo:
    return NodeInfo(node_id=NodeId(f"{name}-0123456789abcdef"), name=name, address="192.168.100.200:50551",
                    models=tuple(ModelOffer(model_id=m, loaded=i == 0) for i, m in enumerate(models)),
                    ram_total_bytes=16 * 1024**3, ram_free_bytes=9 * 1024**3, cpu_cores=8, tokens_per_second=21,
                    joules_per_token=0.12, source="zeroconf", **kw)


@pytest.mark.parametrize("width", [80, 60])
def test_nodes_fit_the_terminal_without_splitting_model_names_or_losing_the_battery(width: int) -> None:
    nodes = [node("den-pc", (LONG, "smollm2-135m-instruct-q4_1")),
             node("laptop", ("smollm2-135m-instruct-q4_1",), battery=Battery(present=True, percent=64, on_battery=True))]
    console, buf = terminal(width)
    print_grid(nodes_grid(nodes), console)
    text = buf.getvalue()
    assert all(len(line) <= width for line in text.splitlines()), text
    assert LONG in text and "smollm2-135m-instruct-q4_1" in text  # whole, on one line
    assert "battery 64% on battery" in text and "192.168.100.200:50551" in text and "den-pc" in text


def test_nodes_in_a_pipe_are_tsv_with_every_column() -> None:
    console, buf = terminal(80)
    console = Console(file=buf, force_terminal=False, width=80)
    print_grid(nodes_grid([node("den-pc", (LONG,))]), console)
    header, row = buf.getvalue().splitlines()
    cells = dict(zip(header.split("\t"), row.split("\t")))
    assert cells["id"] == "den-pc-0123456789abcdef" and cells["source"] == "zeroconf"
    assert cells["models (* loaded)"] == LONG + "*" and cells["battery"] == "-" and cells["tok/s"] == "21"


def test_a_grid_too_wide_for_the_terminal_becomes_records() -> None:
    grid = Grid([Column("id", no_wrap=True), Column("where", no_wrap=True)])
    grid.add("x" * 50, "y" * 50)
    console, buf = terminal(80)
    print_grid(grid, console)
    assert buf.getvalue().splitlines()[:2] == ["id     " + "x" * 50, "where  " + "y" * 50]


def test_node_join_with_no_servable_model_says_so_once(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["node", "join", "--model", "nope", "--no-announce", "--no-bench", "--port", "0",
                                   "--host", "127.0.0.1", "--data-dir", str(tmp_path)])
    assert res.exit_code == 1
    lines = [line for line in res.stderr.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: unknown model id 'nope'"), res.stderr
    assert "covey models list" in lines[0]


def test_a_withdrawal_is_said_only_where_an_answer_was_shown(capsys) -> None:
    withdrawn = Notice(kind="replaced", text="the answer above is withdrawn: its check failed")
    # into a pipe nothing was written before the answer that stands: there is nothing to withdraw
    out, err = stream(capsys, Token(text="Wrong."), withdrawn, result(text="Right."))
    assert out == "Right.\n" and "replaced" not in err
    out, err = stream(capsys, Token(text="Wrong."), withdrawn, result(text="Right."), quiet=True)
    assert out == "Right.\n" and err == ""


def test_in_a_terminal_a_shown_answer_is_withdrawn_and_quiet_says_so_briefly(capsys, monkeypatch) -> None:
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    withdrawn = Notice(kind="replaced", text="the answer above is withdrawn: its check failed")
    out, err = stream(capsys, Token(text="Wrong."), withdrawn, Token(text="Right.", attempt=1), result(text="Right."))
    assert out == "Wrong.\nRight.\n" and "✗ replaced: the answer above is withdrawn: its check failed" in err
    out, err = stream(capsys, Token(text="Wrong."), withdrawn, Token(text="Right.", attempt=1), result(text="Right."),
                      quiet=True)
    assert "✗ replaced: the answer above does not stand" in err and "its check failed" not in err


def test_models_list_is_a_table_at_80_columns_with_paths_said_once(monkeypatch, tmp_path) -> None:
    """Not one eight-line record per model: params and paths leave the terminal table (TSV keeps them)."""
    import covey.cli_output as cli_output
    from covey.cli import models_list

    console, buf = terminal(80)
    monkeypatch.setattr(cli_output, "out", console)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "gemma-3-270m-q4_k_m.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    models_list(json_out=False, data_dir=tmp_path, config=None)
    lines = buf.getvalue().splitlines()
    assert lines[0].split() == ["id", "quant", "RAM", "MB", "where"] and all(len(line) <= 80 for line in lines)
    assert any(line.startswith(LONG) and line.rstrip().endswith("not here: pull") for line in lines)
