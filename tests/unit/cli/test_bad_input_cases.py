"""Issue 14's bad inputs at the command line: each is one clear error line or correct behaviour, never a traceback."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from covey.cli import app, nodes_grid, print_stream
from covey.cli_output import print_grid, render_nodes_table
from covey.errors import ConfigError
from covey.orchestrator.results import AnswerResult, Attempt, Notice, Token
from covey.settings import Settings, default_data_dir
from covey.types import ModelOffer, NodeId, NodeInfo

MARKUP = "[bold red]den[/"  # an unclosed tag: rich raises MarkupError when it is read as markup
CLOSING = "[/bold]pc"  # a closing tag with nothing open: the other MarkupError


def one_error_line(result, *needles: str) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_a_prompt_that_is_not_utf8_is_one_error_naming_the_byte() -> None:
    # What Python makes of `covey ask $'\xff\xfe hi'`: surrogateescape turns each byte into U+DCxx.
    prompt = os.fsdecode(b"\xff\xfe hi")
    result = CliRunner().invoke(app, ["ask", "--no-discover", prompt])
    assert result.exit_code == 2
    one_error_line(result, "not UTF-8", "byte 0xff at character 1", "LANG")


def test_a_data_dir_that_is_a_file_is_one_error_for_every_command(tmp_path: Path, monkeypatch) -> None:
    file = tmp_path / "oops"
    file.write_text("not a folder")
    monkeypatch.setenv("COVEY_DATA_DIR", str(file))
    for argv in (["ask", "--no-discover", "hi"], ["nodes", "--no-discover"], ["config", "show"],
                 ["rag", "add", str(file)]):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code in (1, 2), (argv, result.output)
        one_error_line(result, f"the data dir {file} is a file, not a folder", "COVEY_DATA_DIR")
    assert file.read_text() == "not a folder"


def test_a_tasks_file_that_is_not_tasks_is_one_error_for_eval_answers(tmp_path: Path) -> None:
    bad = tmp_path / "tasks.jsonl"
    bad.write_text('{"prompt": "x"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", "answers", "--no-discover", str(bad)])
    assert result.exit_code == 2
    one_error_line(result, f"{bad}:1: not a task")


def test_an_empty_covey_data_dir_means_the_default_not_the_current_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COVEY_DATA_DIR", "")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path / "..")
    cwd = Path.cwd()
    before = set(os.listdir(cwd))
    assert Settings.load().data_dir == default_data_dir() == tmp_path / "xdg" / "covey"
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert str(tmp_path / "xdg" / "covey" / "config.toml") in result.output
    assert set(os.listdir(cwd)) == before


@pytest.mark.parametrize(("content", "needles"), [
    (b"node = [\n", ["invalid TOML"]),
    (b"[node]\nport = = 3\n", ["config.toml:2:", "invalid TOML"]),
    (b'[node]\nname = "\xff"\n', ["config.toml:2:9", "not UTF-8", "0xff"]),
    (b"\x00\x01\x02", ["invalid TOML"]),
])
def test_a_broken_config_file_is_one_error_with_its_position(covey_env: Path, content: bytes, needles) -> None:
    covey_env.mkdir(parents=True, exist_ok=True)
    (covey_env / "config.toml").write_bytes(content)
    with pytest.raises(ConfigError):
        Settings.load()
    for argv in (["nodes", "--no-discover"], ["rag", "ls"]):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code in (1, 2)
        one_error_line(result, *needles)


def node(name: str) -> NodeInfo:
    return NodeInfo(node_id=NodeId("abcdef0123456789"), name=name, address="127.0.0.1:50551",
                    models=(ModelOffer(model_id="[red]m[/", loaded=True),))


@pytest.mark.parametrize("name", [MARKUP, CLOSING])
def test_rich_markup_in_a_node_name_is_printed_as_text(name: str) -> None:
    for width in (160, 40):  # the table, and the one-block-per-row form of a narrow terminal
        buf = io.StringIO()
        print_grid(nodes_grid([node(name)]), Console(file=buf, force_terminal=True, width=width, color_system=None))
        assert name in buf.getvalue() and "[red]m[/" in buf.getvalue()
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(render_nodes_table([node(name)]))
    assert name in buf.getvalue()


def test_rich_markup_in_a_node_name_does_not_break_ask_after_the_answer(capsys) -> None:
    attempt = Attempt(node_id="n1", node_name=CLOSING, address="127.0.0.1:1", model_id="m", outcome="answered",
                      completion_tokens=2)
    result = AnswerResult(session_id="s", text="Hi!", route="chat", route_confidence=0.9, agent="chat",
                          node=MARKUP, model="m", attempts=(attempt,), prompt_tokens=3, completion_tokens=2,
                          notes=(f"delegated to '{CLOSING}'",))

    async def events():
        yield Notice(kind="failover", text=f"'{MARKUP}' went away; continuing on '{CLOSING}'")
        yield Token(text="Hi!")
        yield result

    asyncio.run(print_stream(events()))
    out, err = capsys.readouterr()
    assert out == "Hi!\n"
    assert f"'{MARKUP}' went away" in err and MARKUP in err.splitlines()[-1]



def test_rich_markup_in_a_node_name_does_not_break_node_join_ready_line(capsys) -> None:
    from covey.cli import print_ready

    class Service:
        refused = [f"model '{CLOSING}' is not in the catalog"]
        energy = None

        def info(self) -> NodeInfo:
            return node(CLOSING)

        def ready_notes(self) -> list[str]:
            return [f"another covey node {MARKUP} runs here"]

    print_ready(Service(), "127.0.0.1:50551", None)
    out = capsys.readouterr().out
    assert f"node {CLOSING} (abcdef0123456789) serving on 127.0.0.1:50551: [red]m[/ (0 tok/s)" in out
    assert f"not serving: model '{CLOSING}'" in out and MARKUP in out and out.rstrip().endswith("ready")
