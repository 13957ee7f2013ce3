"""`covey chat` as a command: its options, and one clear line when there is no terminal."""

from __future__ import annotations

from typer.testing import CliRunner

from covey.cli import app


def test_chat_help_lists_the_options_ask_has() -> None:
    done = CliRunner().invoke(app, ["chat", "--help"])
    assert done.exit_code == 0
    for option in ("--no-discover", "--peer HOST:PORT", "--session ID", "--agent NAME", "--embedded"):
        assert option in done.output


def test_chat_without_a_terminal_says_so_in_one_line() -> None:
    done = CliRunner().invoke(app, ["chat", "--no-discover"], input="")
    assert done.exit_code == 2
    assert "error: covey chat needs a terminal" in done.output and "Traceback" not in done.output
