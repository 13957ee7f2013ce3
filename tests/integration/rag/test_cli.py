"""`covey rag` commands through typer's CliRunner, with the real MiniLM and real files."""

from __future__ import annotations

import re
from pathlib import Path

from rag_real import QUESTIONS
from typer.testing import CliRunner

from covey.rag.cli import app, eval_rag

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_add_ls_search_stats_rm(tmp_path: Path, covey_env: Path, minilm: object) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "bees.md").write_text("# Bees\n\nHoney bees make honey from nectar and live in hives.\n")
    (docs / "trains.md").write_text("# Trains\n\nThe night train to Vienna leaves at 22:10 from platform 4.\n")
    (docs / "notes.txt").write_text("Remember to water the ferns on Sunday.\n")
    (docs / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")

    code, out = run("add", str(docs), str(tmp_path / "missing.md"), "-c", "home")
    assert code == 0, out
    assert out.count("added") >= 3 and "image.png: binary file" in out and "missing.md: does not exist" in out
    assert "3 added, 0 updated, 0 unchanged, 2 skipped" in out
    assert (covey_env / "rag" / "home" / "meta.sqlite").exists()  # COVEY_DATA_DIR respected

    code, out = run("add", str(docs), "-c", "home", "--include", "*.md")
    assert "0 added, 0 updated, 2 unchanged" in out

    code, out = run("ls", "-c", "home")
    assert code == 0 and "bees.md" in out and "trains.md" in out and "markdown" in out

    code, out = run("search", "when does the train to Vienna leave?", "-c", "home", "-k", "2")
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("[1]") and re.search(r"trains\.md:3", first) and "Trains" in first

    code, out = run("stats", "-c", "home")
    assert code == 0 and "exact (IndexFlatIP)" in out and "all-MiniLM-L6-v2 (384 dims)" in out and "home" in out

    code, out = run("rm", str(docs / "trains.md"), "-c", "home")
    assert code == 0 and "removed" in out
    code, out = run("ls", "-c", "home")
    assert "trains.md" not in out

    code, out = run("rm", str(docs / "trains.md"), "-c", "home")
    assert code == 1 and "not in collection 'home'" in out

    code, out = run("search", "bees " * 400, "-c", "home")
    assert code == 1 and "reads at most" in out

    code, out = run("add", str(tmp_path / "nothing-here"), "-c", "home")
    assert code == 1 and "does not exist" in out

    code, out = run("search", "bees", "-c", "nope")
    assert code == 1 and "collection 'nope' does not exist" in out and "(collections: home)" in out
    assert not (covey_env / "rag" / "nope").exists()

    code, out = run("ls", "-c", "bad/name")
    assert code == 1 and "not allowed" in out


def test_eval_prints_recall_and_mrr(pydoc_data_dir: Path) -> None:
    import typer

    cli = typer.Typer()
    cli.command()(eval_rag)
    result = runner.invoke(cli, [str(QUESTIONS), "--data-dir", str(pydoc_data_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = dict(line.split("\t") for line in result.stdout.splitlines())  # TSV in a pipe
    assert rows["metric"] == "value" and rows["queries"] == "40"
    for metric in ("recall@1", "recall@5", "recall@10", "MRR"):
        assert 0 <= float(rows[metric]) <= 1
    bad = runner.invoke(cli, [str(QUESTIONS.with_name("nope.jsonl")), "--data-dir", str(pydoc_data_dir)])
    assert bad.exit_code == 1 and "cannot read evaluation file" in bad.output


def test_eval_json_passes_the_documented_schema(pydoc_data_dir: Path) -> None:
    import json

    import jsonschema
    import typer

    repo = Path(__file__).resolve().parents[3]
    doc_md = (repo / "docs" / "json.md").read_text()
    schema = json.loads(re.search(r"^## `covey eval rag --json`\n.*?```json\n(.*?)\n```", doc_md, re.S | re.M).group(1))
    cli = typer.Typer()
    cli.command()(eval_rag)
    result = runner.invoke(cli, [str(QUESTIONS), "--data-dir", str(pydoc_data_dir), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, schema)
    assert doc["collection"] == "default" and doc["report"]["cases"] == 40 and 0 < doc["report"]["mrr"] <= 1
    assert set(doc["report"]["recall"]) == {"1", "5", "10"}
