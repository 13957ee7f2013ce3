import json
from collections.abc import Sequence

import typer
from typer.testing import CliRunner

from covey.router.classifier import RouteDecision
from covey.router.cli import make_eval_route
from covey.types import Message


class ScriptedRouter:
    """Routes by a fixed table of prompt -> route and records what it was asked."""

    def __init__(self, table: dict[str, str], close: frozenset[str] = frozenset()) -> None:
        self.table = table
        self.close = close  # prompts decided by a small margin
        self.seen: list[str] = []

    def classify(self, text: str, history: Sequence[Message | str] = ()) -> RouteDecision:
        self.seen.append(text)
        route = self.table.get(text, "chat")
        runner_up = 0.85 if text in self.close else 0.05
        return RouteDecision(route=route, confidence=0.9, runner_up="chat", runner_up_confidence=runner_up,
                             margin=0.9 - runner_up, fallback=text not in self.table, reason="scripted")


def mount(router, extra=None):
    app = typer.Typer()
    app.command("route")(make_eval_route(lambda settings: router, extra))
    app.command("other")(lambda: None)  # a group, like `covey eval`
    return app


def write(tmp_path, rows):
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


ROWS = [
    {"prompt": "2+2?", "route": "math"},
    {"prompt": "hello", "route": "chat"},
    {"prompt": "write a poem", "route": "writing"},
    {"prompt": "what is DNA", "route": "knowledge"},
]


def test_eval_route_prints_accuracy_f1_per_route_and_confusions(tmp_path):
    router = ScriptedRouter({"2+2?": "math", "hello": "chat", "write a poem": "writing", "what is DNA": "chat"})
    result = CliRunner().invoke(mount(router), ["route", str(write(tmp_path, ROWS)), "--data-dir", str(tmp_path)],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    assert router.seen == [r["prompt"] for r in ROWS]
    flat = " ".join(result.stderr.split())  # the summary lines: stderr
    assert "accuracy 0.750" in flat and "macro-F1 0.667" in flat
    # the tables: stdout, TSV in a pipe (header rows; blocks apart)
    per_route, confusion, misrouted = (block.splitlines() for block in result.stdout.split("\n\n"))
    assert per_route[0].split("\t") == ["route", "precision", "recall", "F1", "support"]
    assert confusion[0].split("\t") == ["expected", "chat", "knowledge", "math", "writing"]
    assert confusion[2].split("\t") == ["knowledge", "1", ".", ".", "."]  # what is DNA went to chat
    assert misrouted == ["expected\tgot\tconf\tprompt", "knowledge\tchat\t0.90\twhat is DNA"]


def test_eval_route_runs_the_extra_report_hook(tmp_path):
    router = ScriptedRouter({"2+2?": "math"})
    seen = {}

    def escalation(rows, decisions):
        seen["n"] = (len(rows), len(decisions))
        return {"escalation rate": 0.25}

    result = CliRunner().invoke(mount(router, escalation), ["route", str(write(tmp_path, ROWS))], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert seen["n"] == (4, 4)
    assert "escalation rate" in result.output and "0.250" in result.output


def test_eval_route_reports_a_bad_file_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    result = CliRunner().invoke(mount(ScriptedRouter({})), ["route", str(bad)])
    assert result.exit_code == 1
    assert "bad.jsonl:1 is not valid JSON" in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_eval_route_says_a_missing_file_is_missing_as_a_usage_error(tmp_path):
    result = CliRunner().invoke(mount(ScriptedRouter({})), ["route", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2 and "nope.jsonl" in result.output and "does not exist" in result.output
    assert "setting" not in result.output  # not the config error's hint: the file is an argument


def test_eval_route_refuses_an_empty_file(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = CliRunner().invoke(mount(ScriptedRouter({})), ["route", str(empty)])
    assert result.exit_code == 1
    assert "no labelled prompts" in result.output


def test_eval_route_reports_each_source_and_abstention(tmp_path):
    rows = [dict(r, source="bench-a") for r in ROWS[:2]] + [dict(r, source="bench-b") for r in ROWS[2:]]
    # "what is DNA" is not in the table: the scripted router falls back to chat (runner-up chat), a mistake it abstained on
    router = ScriptedRouter({"2+2?": "math", "hello": "chat", "write a poem": "code"},
                            close=frozenset({"write a poem", "hello"}))
    result = CliRunner().invoke(mount(router), ["route", str(write(tmp_path, rows))], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "source\tprompts\taccuracy\tmacro-F1\tfallbacks" in out.splitlines()
    a_line = next(line for line in out.splitlines() if "bench-a" in line)
    b_line = next(line for line in out.splitlines() if "bench-b" in line)
    assert a_line.split("\t")[2] == "1.000" and b_line.split("\t")[2] == "0.000"
    flat = " ".join(result.stderr.split())
    assert "abstained (fell back) on 1 of 4" in flat
    assert "wrong on 2" in flat and "abstention precision 1.00" in flat and "recall 0.50" in flat
    # two close calls, one of them the poem sent to code: precision 0.50, and one of the two mistakes flagged
    assert "close calls (margin under 0.10) on 2 of 4: precision 0.50" in flat and "recall 0.50 (mistakes flagged" in flat


def test_eval_route_without_sources_prints_no_source_table(tmp_path):
    router = ScriptedRouter({"2+2?": "math"})
    result = CliRunner().invoke(mount(router), ["route", str(write(tmp_path, ROWS))], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert not any(line.startswith("source\t") for line in result.stdout.splitlines())
    assert result.stdout.startswith("route\tprecision")


def test_eval_route_says_which_encoder_ran(tmp_path, toy_examples, embedder):
    from covey.router.classifier import EmbeddingRouter

    router = EmbeddingRouter.fit(embedder, toy_examples)
    path = write(tmp_path, [{"prompt": "compute 8 times 7", "route": "math"}, {"prompt": "hello", "route": "chat"}])
    text = CliRunner().invoke(mount(router), ["route", str(path), "--data-dir", str(tmp_path)], terminal_width=200)
    assert text.exit_code == 0, text.output
    assert text.stderr.startswith("router encoder: hashing-64\n")  # no backend to name: the embedder's name
    as_json = CliRunner().invoke(mount(router), ["route", str(path), "--data-dir", str(tmp_path), "--json"])
    assert json.loads(as_json.output)["encoder"] == "hashing-64"
    scripted = CliRunner().invoke(mount(ScriptedRouter({})), ["route", str(path), "--data-dir", str(tmp_path), "--json"])
    assert json.loads(scripted.output)["encoder"] == ""  # a router without an encoder says nothing
