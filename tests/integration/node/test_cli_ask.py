"""`covey ask --peer ADDR --embedded never` against a real node on 127.0.0.1: routed, answered over gRPC,
with the summary line naming the node, the model and the (estimated) energy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from .conftest import SMOLLM, NodeThread


@pytest.fixture(scope="module")
def ask_node(tmp_path_factory) -> Iterator[NodeThread]:
    n = NodeThread(tmp_path_factory.mktemp("ask-node"), name="ask-node", n_ctx=2048).start()
    try:
        yield n
    finally:
        n.stop()


def test_cli_ask_through_a_static_peer(ask_node: NodeThread, tmp_path: Path) -> None:
    from covey.cli import app

    result = CliRunner().invoke(app, ["ask", "--peer", ask_node.address, "--embedded", "never", "--no-discover",
                                      "--data-dir", str(tmp_path / "orchestrator"),
                                      "Write a haiku about the sea."])
    out = " ".join(result.output.split())
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "Traceback" not in result.output
    assert "ask-node" in out and SMOLLM in out and "(estimated)" in out and "route " in out
    joules = re.search(r"([0-9.]+) J \(estimated\)", out)
    assert joules and float(joules.group(1)) > 0
    answer = result.output.split("ask-node")[0]
    assert answer.strip(), "no answer text before the summary line"


def test_cli_ask_writes_the_ledger_row_it_promises(ask_node: NodeThread, tmp_path: Path) -> None:
    """One row per answer in DATA_DIR/ledger.db, with the attempt's node, model, tokens and joules."""
    from covey.cli import app
    from covey.energy.ledger import Ledger

    data = tmp_path / "orchestrator"
    result = CliRunner().invoke(app, ["ask", "--peer", ask_node.address, "--embedded", "never", "--no-discover",
                                      "--data-dir", str(data), "What is the capital of France?"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    ledger = Ledger(data / "ledger.db")
    try:
        answers = ledger.query("SELECT * FROM answers")
        attempts = ledger.query("SELECT * FROM attempts")
    finally:
        ledger.close()
    assert len(answers) == 1
    row = answers[0]
    assert row["route"] and row["agent"] and row["joules"] > 0 and row["method"] == "estimated"
    assert row["tokens_out"] > 0 and row["g_co2e"] >= 0
    assert [a["node"] for a in attempts] == ["ask-node"] and attempts[0]["model"] == SMOLLM
    assert attempts[0]["tokens_out"] == row["tokens_out"]


def test_cli_ask_names_a_missing_collection_in_one_line(ask_node: NodeThread, tmp_path: Path) -> None:
    from covey.cli import app

    result = CliRunner().invoke(app, ["ask", "--peer", ask_node.address, "--embedded", "never", "--no-discover",
                                      "--data-dir", str(tmp_path / "orchestrator"), "--collection", "recipes",
                                      "What is the capital of France?"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no document collection 'recipes'" in result.output and "covey rag add" in result.output


def test_cli_ask_labels_an_answer_not_from_the_documents_and_strict_refuses(ask_node: NodeThread,
                                                                         tmp_path: Path) -> None:
    from covey.cli import app
    from covey.rag import NOTHING_FOUND, RagSettings, SentenceTransformerEmbedder, Store

    data = tmp_path / "orchestrator"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "office.md").write_text("# Office\n\nThe office wifi password is tulip-4471.\n")
    with Store.in_data_dir(data, "office", embedder=SentenceTransformerEmbedder(threads=1),
                           settings=RagSettings()) as store:
        store.add([docs])
    base = ["ask", "--peer", ask_node.address, "--embedded", "never", "--no-discover", "--data-dir", str(data),
            "--collection", "office"]
    loose = CliRunner().invoke(app, [*base, "What is the capital of France?"])
    assert loose.exit_code == 0, loose.output + repr(loose.exception)
    assert "(not from your documents)" in loose.output and "nothing relevant found" in loose.output
    strict = CliRunner().invoke(app, [*base, "--strict", "What is the capital of France?"])
    assert strict.exit_code == 0, strict.output + repr(strict.exception)
    assert " ".join(NOTHING_FOUND.split()) in " ".join(strict.output.split())
    grounded = CliRunner().invoke(app, [*base, "--strict", "What is the office wifi password?"])
    assert grounded.exit_code == 0 and f"[1] {docs / 'office.md'}" in grounded.output
