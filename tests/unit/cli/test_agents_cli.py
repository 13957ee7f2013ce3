"""docs/agents.md's example loads as written; `covey agents` lists agents, routes, ladders and where rungs run."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from covey.agents.roster import default_roster, load_agents
from covey.cli import app

REPO = Path(__file__).resolve().parents[3]


def documented_example() -> str:
    text = (REPO / "docs" / "agents.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_the_documented_example_loads_and_takes_over_its_route(tmp_path: Path) -> None:
    path = tmp_path / "agents.toml"
    path.write_text(documented_example())
    (sql,) = load_agents(path)
    assert sql.name == "sql" and sql.routes == ("code",) and sql.checker == "nonempty"
    assert sql.sampling.temperature == 0.1 and sql.accept.min_mean_logprob == -0.8 and sql.max_tokens == 400
    assert default_roster(path).for_route("code").name == "sql"


def test_covey_agents_lists_routes_ladders_and_says_no_node_runs_them(covey_env: Path) -> None:
    covey_env.mkdir(parents=True, exist_ok=True)
    (covey_env / "agents.toml").write_text(documented_example())
    from test_json_docs import check

    res = CliRunner().invoke(app, ["agents", "--no-discover", "--json"])
    assert res.exit_code == 0, res.output
    doc = check("covey agents --json", res.stdout)
    by_name = {a["name"]: a for a in doc["agents"]}
    assert by_name["sql"]["serves"] == ["code"] and by_name["coder"]["serves"] == []  # sql took the route over
    assert [r["model"] for r in by_name["sql"]["ladder"]] == ["smollm2-135m-instruct-q4_1",
                                                               "qwen2.5-coder-1.5b-instruct-q4_k_m"]
    assert all(r["nodes"] == [] for a in doc["agents"] for r in a["ladder"])

    table = CliRunner().invoke(app, ["agents", "--no-discover"])
    assert table.exit_code == 0
    assert "no nodes found" in table.stderr
    assert "in-process node serving smollm2-135m-instruct-q4_1, gemma3-270m-q4_k_m" in " ".join(table.stderr.split())
    lines = table.stdout.splitlines()
    assert lines[0].split("\t") == ["agent", "routes", "ladder", "nodes now"]
    assert any(line.startswith("sql\tcode\t1. smollm2-135m-instruct-q4_1 2. qwen2.5-coder") for line in lines)


def test_a_bad_agents_file_is_one_error_line_naming_file_and_field(covey_env: Path) -> None:
    covey_env.mkdir(parents=True, exist_ok=True)
    (covey_env / "agents.toml").write_text('[[agents]]\nname = "x"\nroutes = ["chat"]\nsystem_prompt = "hi"\n'
                                           'ladder = ["no-such-model"]\n')
    res = CliRunner().invoke(app, ["agents", "--no-discover"])
    assert res.exit_code == 2
    (line,) = [line for line in res.stderr.splitlines() if line]
    assert "agents.toml: agents[0] ('x'): field 'ladder'" in line and "covey models list" in line


def test_rungs_list_the_nodes_that_can_run_them_now() -> None:
    from covey.agents.cli import agent_rows
    from covey.models.catalog import Catalog
    from covey.orchestrator.placement import PlacementPolicy
    from covey.types import Battery, ModelOffer, NodeId, NodeInfo

    smol, qwen = "smollm2-135m-instruct-q4_1", "qwen2.5-0.5b-instruct-q4_k_m"
    den = NodeInfo(node_id=NodeId("d"), name="den-pc", models=(ModelOffer(model_id=smol), ModelOffer(model_id=qwen)))
    busy = NodeInfo(node_id=NodeId("b"), name="busy", models=(ModelOffer(model_id=smol, queue_depth=4, queue_limit=4),))
    low = NodeInfo(node_id=NodeId("l"), name="phone", models=(ModelOffer(model_id=smol),),
                   battery=Battery(present=True, on_battery=True, percent=10))
    rows = {r["name"]: r for r in agent_rows(default_roster(), [den, busy, low], Catalog(), PlacementPolicy())}
    ladder = {r["model"]: r["nodes"] for r in rows["companion"]["ladder"]}
    assert ladder[smol] == ["den-pc"] and ladder[qwen] == ["den-pc"]  # busy and a low battery do not count
    assert ladder["llama3.2-3b-instruct-q4_k_m"] == []
