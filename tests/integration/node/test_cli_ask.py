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
