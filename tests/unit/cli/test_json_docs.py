"""docs/json.md is generated from covey.cli_json, and each command's real `--json` output passes its documented schema."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import typer
from typer.testing import CliRunner

from covey.cli import app

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "json.md"


def documented_schema(command: str) -> dict:
    """The JSON Schema printed under the `## \\`command\\`` heading of docs/json.md."""
    text = DOC.read_text()
    m = re.search(rf"^## `{re.escape(command)}`\n.*?```json\n(.*?)\n```", text, re.S | re.M)
    assert m, f"docs/json.md documents no {command!r}"
    return json.loads(m.group(1))


def check(command: str, stdout: str) -> dict:
    doc = json.loads(stdout)  # stdout holds the document and nothing else
    jsonschema.validate(doc, documented_schema(command))
    return doc


def test_docs_json_md_is_fresh() -> None:
    from covey.cli_json import render_doc

    assert DOC.read_text() == render_doc(), "docs/json.md is stale: python -m covey.cli_json > docs/json.md"


def test_the_readme_links_the_json_document() -> None:
    assert "docs/json.md" in (REPO / "README.md").read_text()


def test_models_list_json(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["models", "list", "--json", "--data-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    doc = check("covey models list --json", res.stdout)
    smol = next(m for m in doc["models"] if m["id"] == "smollm2-135m-instruct-q4_1")
    assert smol["local_path"].endswith(".gguf") and smol["get"] is None
    qwen = next(m for m in doc["models"] if m["id"] == "qwen2.5-0.5b-instruct-q4_k_m")
    assert qwen["local_path"] is None and qwen["get"] == "covey models pull qwen2.5-0.5b-instruct-q4_k_m"


def test_nodes_json_with_nothing_found() -> None:
    res = CliRunner().invoke(app, ["nodes", "--json", "--no-discover"])
    assert res.exit_code == 0, res.output
    assert check("covey nodes --json", res.stdout) == {"nodes": [], "refused": []}


def test_energy_report_json(tmp_path: Path) -> None:
    from covey.energy.carbon import CarbonIntensity
    from covey.energy.ledger import AnswerRecord, AttemptRecord, Ledger
    from covey.types import Energy, EnergyComponent, EnergyMethod

    def energy(j: float) -> Energy:
        return Energy.of([EnergyComponent(name="cpu", joules=j, marginal_joules=j / 2, method=EnergyMethod.ESTIMATED,
                                          source="test", uncertainty=0.4)])

    ledger = Ledger(tmp_path / "ledger.db")
    ledger.record(AnswerRecord(
        time=datetime(2026, 11, 3, 12, tzinfo=timezone.utc), session="s", route="chat", agent="companion",
        attempts=(AttemptRecord(node="den-pc", model="smollm2", quantization="Q4_1", tokens_in=20, tokens_out=50,
                                seconds=1.5, energy=energy(10.0)),),
        overhead=energy(2.0), carbon=CarbonIntensity(g_per_kwh=55.0, source="test"), pue=1.0))
    ledger.close()
    res = CliRunner().invoke(app, ["energy", "report", "--json", "--by", "node", "--data-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    doc = check("covey energy report --json", res.stdout)
    assert doc["by"] == "node" and doc["total"]["answers"] == 1 and "den-pc" in {r["key"] for r in doc["rows"]}
    assert doc["cloud"] and doc["measured_share"] == 0.0


class ScriptedRouter:
    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.seen: list[str] = []

    def classify(self, text: str, history: Sequence = ()):
        from covey.router.classifier import RouteDecision

        self.seen.append(text)
        return RouteDecision(route=self.table.get(text, "chat"), confidence=0.9, runner_up="chat",
                             runner_up_confidence=0.05, fallback=text not in self.table, reason="scripted")


def test_eval_route_json(tmp_path: Path) -> None:
    from covey.router.cli import make_eval_route

    router = ScriptedRouter({"2+2?": "math", "hello": "chat"})
    cli = typer.Typer()
    cli.command("route")(make_eval_route(lambda settings: router))
    cli.command("other")(lambda: None)
    rows = [{"prompt": "2+2?", "route": "math"}, {"prompt": "hello", "route": "chat"},
            {"prompt": "what is DNA", "route": "knowledge"}]
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    res = CliRunner().invoke(cli, ["route", str(path), "--json", "--data-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    doc = check("covey eval route --json", res.stdout)
    assert doc["report"]["total"] == 3 and doc["misrouted"][0]["prompt"] == "what is DNA"
    assert router.seen == [r["prompt"] for r in rows]


def test_eval_cascade_document_passes_its_schema() -> None:
    from covey.cli_json import CascadeEvalOutput, CascadeRoute, dump
    from covey.orchestrator.cascade_eval import RouteCascade

    stats = [RouteCascade(route="math", answers=4, routed_right=3, escalated=1, joules=8.0, tokens=40)]
    doc = dump(CascadeEvalOutput(file="x.jsonl", prompts=4, escalation_rate=0.25,
                                 routes=tuple(CascadeRoute.of(s) for s in stats)))
    jsonschema.validate(doc, documented_schema("covey eval cascade --json"))
    assert doc["routes"][0]["escalation_rate"] == 0.25
