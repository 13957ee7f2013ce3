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


def test_every_command_accepts_no_discover() -> None:
    """Scripts pass --no-discover to every covey command: the ones that never browse take it as it is."""
    root = typer.main.get_command(app)
    wanted = dict(_commands(root))
    assert {("eval", "route"), ("eval", "answers"), ("demo",), ("models", "list"), ("logs",), ("rag", "add"),
            ("config", "show"), ("tune",)} <= set(wanted)
    for path, cmd in wanted.items():
        opts = {opt for param in cmd.params for opt in (*param.opts, *param.secondary_opts)}
        assert "--no-discover" in opts, path


def test_a_command_that_never_browses_runs_with_no_discover(tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["config", "keys", "--no-discover"], env={"COVEY_DATA_DIR": str(tmp_path)})
    assert done.exit_code == 0 and "orchestrator.discover" in done.output


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


# -- `covey eval answers`: results on stdout, progress on stderr -----------------------------------------

TOOL_TASKS = [{"prompt": "What is 17 times 23?", "answer": 391}, {"prompt": "What is 120 divided by 8?", "answer": 15}]


def _tasks(tmp_path: Path) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in TOOL_TASKS))
    return path


def test_eval_answers_in_a_pipe_writes_tsv_on_stdout_and_its_progress_on_stderr(tmp_path: Path) -> None:
    # a real process and a real pipe (in the whole suite CliRunner's capture once missed the progress lines)
    import os
    import subprocess
    import sys

    env = {**os.environ, "COVEY_DATA_DIR": str(tmp_path / "data"), "COVEY_ORCHESTRATOR__DISCOVER": "false"}
    res = subprocess.run([sys.executable, "-m", "covey", "eval", "answers", str(_tasks(tmp_path)), "--no-discover"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    header, *rows = res.stdout.splitlines()
    assert header.split("\t") == ["kind", "route", "n", "right", "acc", "mean score", "J/ans", "J/right", "wrong shown"]
    assert [r.split("\t")[:4] for r in rows] == [["numeric", "math", "2", "2"], ["all", "all", "2", "2"]]
    assert "┃" not in res.stdout and "─" not in res.stdout
    assert "1/2 right" in res.stderr and "2/2 right" in res.stderr and "acc = right / n" in res.stderr


def test_eval_answers_json_is_the_whole_of_stdout(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["eval", "answers", str(_tasks(tmp_path)), "--no-discover", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [a["right"] for a in doc["answers"]] == [True, True] and doc["groups"][-1]["accuracy"] == 1.0
    assert "1/2" not in res.stderr


# -- a tool's answer says which tool answered, not "0 in / 0 out · 0 tok/s" --------------------------------

def _tool_result(**kw):
    from covey.orchestrator.results import AnswerResult
    from covey.types import Energy

    base = dict(session_id="s", text="17 times 23 = 391.", route="math", route_confidence=0.84,
                agent="mathematician", node="orchestrator", model="tool:calculator", attempts=(),
                energy=Energy(joules=0.62))
    return AnswerResult(**{**base, **kw})


def test_a_tool_answer_summary_names_the_tool_and_keeps_the_joules(capsys) -> None:
    import asyncio

    from covey.cli_output import print_stream

    async def events():
        yield _tool_result(notes=("computed exactly with sympy (17*23); no model was run",))

    asyncio.run(print_stream(events()))
    out, err = capsys.readouterr()
    assert out == "17 times 23 = 391.\n"
    assert err.splitlines()[-1] == "answered by the calculator tool · 0.62 J (estimated) · route math"
    assert "tok/s" not in err and " in / " not in err


def test_a_model_answer_summary_keeps_its_token_figures() -> None:
    from covey.orchestrator.results import Attempt

    attempt = Attempt(node_id="n1", node_name="den-pc", address="127.0.0.1:1", model_id="gemma3-270m-q4_k_m",
                      outcome="answered", completion_tokens=3, tokens_per_second=12.0)
    line = _tool_result(model="gemma3-270m-q4_k_m", node="den-pc", attempts=(attempt,), prompt_tokens=9,
                        completion_tokens=3).summary_line()
    assert line.startswith("den-pc · gemma3-270m-q4_k_m · 9 in / 3 out · 12 tok/s · 0.62 J (estimated)")


def test_the_chat_line_under_a_tool_answer_names_the_tool() -> None:
    from covey.energy.carbon import CarbonIntensity
    from covey.tui.summary import answer_line

    line = answer_line(_tool_result(), CarbonIntensity(g_per_kwh=400.0, source="test"))
    assert line.splitlines()[0] == "math → mathematician · answered by the calculator tool (no model ran)"
    assert "tok/s" not in line and " in / " not in line and "J" in line.splitlines()[1]


# -- tables in a pipe: TSV, one value a column -------------------------------------------------------------

def _node():
    from covey.types import ModelOffer, NodeId, NodeInfo

    return NodeInfo(node_id=NodeId("c0f907ef-0123456789abcdef"), name="den-pc", address="127.0.0.1:50551",
                    models=(ModelOffer(model_id="smollm2-135m-instruct-q4_1", loaded=True),
                            ModelOffer(model_id="gemma3-270m-q4_k_m", loaded=False)),
                    ram_total_bytes=16 * 1024**3, ram_free_bytes=9 * 1024**3, cpu_cores=8, tokens_per_second=21,
                    joules_per_token=0.12, source="static")


def test_the_node_table_in_a_pipe_keeps_name_id_address_and_source_apart() -> None:
    import io

    from rich.console import Console

    from covey.cli_output import nodes_grid, print_grid

    buf = io.StringIO()
    print_grid(nodes_grid([_node()]), Console(file=buf, force_terminal=False, width=80))
    header, row = buf.getvalue().splitlines()
    cells = dict(zip(header.split("\t"), row.split("\t"), strict=True))
    assert cells["node"] == "den-pc" and cells["id"] == "c0f907ef-0123456789abcdef"
    assert cells["address"] == "127.0.0.1:50551" and cells["source"] == "static"
    assert cells["models (* loaded)"] == "smollm2-135m-instruct-q4_1*, gemma3-270m-q4_k_m"
    assert "capacity" not in cells and cells["ram_free_gib"] == "9.0" and cells["tok/s"] == "21"
    term = io.StringIO()  # the terminal table still shows the short id under the name
    print_grid(nodes_grid([_node()]), Console(file=term, force_terminal=True, width=80, color_system=None))
    lines = term.getvalue().splitlines()
    name_line = next(i for i, line in enumerate(lines) if line.startswith("den-pc"))
    assert lines[name_line + 1].startswith("c0f907ef") and "static" in lines[name_line + 1]


# -- what covey writes to stderr wraps to the width, with a hanging indent ----------------------------------

LONG_NOTICE = ("gemma3-270m-q4_k_m needs 423 MB, 'old-laptop' allows 200 MB: delegated to 'den-pc', which serves "
               "it with 16 GiB free and answers at 40 tok/s")


def test_notices_and_the_summary_wrap_at_80_columns_off_a_terminal_with_a_hanging_indent(capsys, monkeypatch) -> None:
    import asyncio

    from covey.cli_output import print_stream
    from covey.orchestrator.results import Notice, Token

    monkeypatch.delenv("COLUMNS", raising=False)
    path = "/home/someone/" + "very-long-directory-name/" * 4 + "notes.md"

    async def events():
        yield Notice(kind="delegate", text=LONG_NOTICE)
        yield Token(text="Bonjour.")
        yield _tool_result(text="Bonjour.", notes=(f"nothing relevant found in {path} for this question",))

    asyncio.run(print_stream(events()))
    out, err = capsys.readouterr()
    assert out == "Bonjour.\n"
    lines = err.splitlines()
    assert lines[0].startswith("— gemma3-270m-q4_k_m needs 423 MB") and len(lines[0]) <= 80
    assert lines[1].startswith("  ") and not lines[1].startswith("   ") and lines[1].endswith(" —")
    assert " ".join(line.strip() for line in lines[:2]) == f"— {LONG_NOTICE} —"  # nothing lost at the break
    assert path in err  # a word longer than the line stays whole, to copy
    assert all(len(line) <= 80 for line in lines if path not in line), err


def test_stderr_lines_follow_the_terminal_width(capsys, monkeypatch) -> None:
    from covey.cli_output import say

    monkeypatch.setenv("COLUMNS", "50")
    say(LONG_NOTICE, markup_ok=False)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and all(len(line) <= 50 for line in lines)
    assert all(line.startswith("  ") for line in lines[1:])


def test_a_warning_wraps_like_a_notice(capsys, monkeypatch) -> None:
    import logging

    from covey.cli_output import setup_logging

    monkeypatch.delenv("COLUMNS", raising=False)
    setup_logging("WARNING", 0)
    logging.getLogger("covey.test").warning("static peer 10.0.0.9:50551 does not answer: %s", LONG_NOTICE)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("warning: static peer 10.0.0.9:50551 does not answer")
    assert len(lines) == 3 and all(len(line) <= 80 for line in lines) and all(ln.startswith("  ") for ln in lines[1:])


BOX = set("┃━│─┏┓┗┛┡┩╇╋┳┻")


def test_the_other_tables_are_tsv_in_a_pipe_too() -> None:
    runner = CliRunner()
    created = runner.invoke(app, ["serve", "keys", "create", "kitchen-tablet"])
    assert created.exit_code == 0, created.output
    for argv, header in ((["tools", "ls"], ["tool", "arguments", "what it does"]),
                         (["serve", "keys", "list"], ["id", "name", "created", "revoked"]),
                         (["models", "list"], ["id", "family", "params", "quant", "file MB", "RAM MB", "where"])):
        res = runner.invoke(app, argv)
        assert res.exit_code == 0, (argv, res.output)
        lines = res.stdout.splitlines()
        assert lines[0].split("\t") == header, argv
        assert len(lines) > 1 and all(len(line.split("\t")) == len(header) for line in lines), argv
        assert not BOX & set(res.stdout), argv
    assert any(line.split("\t")[1] == "kitchen-tablet" for line in runner.invoke(app, ["serve", "keys", "list"])
               .stdout.splitlines())


def test_ask_agent_skips_the_router_and_an_unknown_one_is_named(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "COVEY_DATA_DIR": str(tmp_path), "COVEY_ORCHESTRATOR__DISCOVER": "false"}
    args = [sys.executable, "-m", "covey", "ask", "--no-discover", "--json"]
    done = subprocess.run([*args, "--agent", "mathematician", "What is 17 times 23?"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["agent"] == "mathematician" and out["text"] == "17 times 23 = 391."
    bad = subprocess.run([*args, "--agent", "nobody", "hi"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "no agent named 'nobody'" in bad.stderr and "`covey agents`" in bad.stderr


def test_ask_exits_3_when_no_answer_passed_its_checks_and_the_ledger_says_so(tmp_path: Path) -> None:
    """A script can tell "I could not get this right" from an answer; the ledger keeps its joules apart."""
    import os
    import subprocess
    import sys

    from covey.energy import report as rep
    from covey.energy.ledger import Ledger

    env = {**os.environ, "COVEY_DATA_DIR": str(tmp_path), "COVEY_ORCHESTRATOR__DISCOVER": "false",
           "COVEY_ORCHESTRATOR__RANKER_FLOOR": "0.99", "COVEY_ORCHESTRATOR__RANKER_CONFIDENCE": "1.0"}
    args = [sys.executable, "-m", "covey", "ask", "--no-discover"]
    word = "Tom has 3 boxes of 12 apples and eats 5. How many apples are left?"
    done = subprocess.run([*args, word], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert done.stdout.startswith("I could not get this right.") and "(3 * 12) - 5" in done.stdout
    as_json = subprocess.run([*args, "--json", word], env=env, capture_output=True, text=True, timeout=120)
    assert as_json.returncode == 3 and json.loads(as_json.stdout)["unanswered"] is True
    answered = subprocess.run([*args, "What is 17 times 23?"], env=env, capture_output=True, text=True, timeout=120)
    assert answered.returncode == 0 and "391" in answered.stdout
    total = rep.totals(Ledger(tmp_path / "ledger.db"))
    assert total.answers == 3 and total.unanswered == 2


def test_help_lists_each_command_with_its_whole_first_sentence_at_80_columns() -> None:
    for args in ([], ["eval"], ["rag"]):
        out = CliRunner().invoke(app, [*args, "--help"], terminal_width=80).output
        listing = out.split("Commands:")[1]
        assert "..." not in listing and all(len(line) <= 80 for line in listing.splitlines()), listing
    assert "streamed,\n" in CliRunner().invoke(app, ["--help"], terminal_width=80).output  # wrapped, not cut
