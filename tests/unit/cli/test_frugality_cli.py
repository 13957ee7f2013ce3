"""`covey eval frugality` and `covey tune` on the command line: clear one-line errors, the JSON document, agents.toml."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from covey.agents.roster import default_roster
from covey.cli import app
from covey.orchestrator.frugality import Outcome
from covey.orchestrator.outcomes import FILENAME, OutcomeStore


def one_error(res) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    return lines[0]


def test_missing_file_and_bad_line_are_one_line_errors(tmp_path: Path) -> None:
    line = one_error(CliRunner().invoke(app, ["eval", "frugality", str(tmp_path / "nope.jsonl"), "--no-discover"]))
    assert "cannot read" in line and "nope.jsonl" in line
    f = tmp_path / "t.jsonl"
    f.write_text('{"prompt": "2+2?", "answer": 4}\n{"prompt": "oops"\n')
    line = one_error(CliRunner().invoke(app, ["eval", "frugality", str(f), "--no-discover"]))
    assert "t.jsonl:2" in line


def test_no_node_can_run_a_model(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COVEY_ORCHESTRATOR__EMBEDDED", "never")
    f = tmp_path / "t.jsonl"
    f.write_text('{"prompt": "two plus two", "answer": 4}\n')
    line = one_error(CliRunner().invoke(app, ["eval", "frugality", str(f), "--no-discover"]))
    assert "no node can run any model" in line and "covey node join" in line


def test_tune_errors_without_a_table_or_with_both_goals(covey_env: Path) -> None:
    line = one_error(CliRunner().invoke(app, ["tune", "--target-quality", "0.5"]))
    assert "no outcome table yet" in line and "covey eval frugality" in line
    line = one_error(CliRunner().invoke(app, ["tune", "--target-quality", "0.5", "--energy-budget", "3"]))
    assert "exactly one" in line
    line = one_error(CliRunner().invoke(app, ["tune"]))
    assert "exactly one" in line


def outcome_rows() -> list[Outcome]:
    """Weak (1 J) right on tasks 0 and 1 only; strong (4 J) right on all (test_frugality_tune.py's table)."""
    rows = []
    for i, (right, mean, low) in enumerate([(True, -0.5, -2.0), (True, -0.5, -2.0), (False, -0.8, -3.0),
                                            (False, -0.3, -8.0)]):
        for model, ok, j, m, t in (("weak", right, 1.0, mean, low), ("strong", True, 4.0, -0.1, -1.0)):
            rows.append(Outcome(run_id="r1", task=i, prompt=f"q{i}", kind="numeric", route="math",
                                agent="mathematician", policy=f"always:{model}", model=model,
                                ladder=("weak", "strong"), models_called=(model,), score=float(ok), right=ok,
                                answer="x", joules=j, joules_low=j, joules_high=j, mean_logprob=m, min_logprob=t,
                                check_ok=True))
    return rows


def test_tune_writes_agents_toml_and_dry_run_does_not(covey_env: Path) -> None:
    from test_json_docs import check

    rows = outcome_rows()
    covey_env.mkdir(parents=True, exist_ok=True)
    store = OutcomeStore(covey_env / FILENAME)
    store.add(rows)
    store.close()
    agents = covey_env / "agents.toml"
    agents.write_text("# mine\n")
    # The shipped thresholds (-0.6, -6) already reach full quality here at 3 J: nothing to change.
    res = CliRunner().invoke(app, ["tune", "--target-quality", "100%"])
    assert res.exit_code == 0 and "nothing to change" in " ".join(res.stderr.split()) and agents.read_text() == "# mine\n"
    res = CliRunner().invoke(app, ["tune", "--energy-budget", "1", "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    doc = check("covey tune --json", res.stdout)
    assert doc["written"] is False and doc["after"]["joules"] == 1.0 and doc["before"]["quality"] == 1.0
    assert agents.read_text() == "# mine\n"
    res = CliRunner().invoke(app, ["tune", "--energy-budget", "1"])
    assert res.exit_code == 0, res.output
    assert "written to" in " ".join(res.stderr.split()) and agents.read_text().startswith("# mine\n")
    tuned = default_roster(agents).get("mathematician").accept
    assert (tuned.min_mean_logprob, tuned.min_token_logprob) == (-2.0, -9.0)


def test_the_frugality_report_matches_its_documented_schema() -> None:
    import json

    from test_json_docs import check

    from covey.cli_json import dump
    from covey.orchestrator.frugality_metrics import report

    rep = report(outcome_rows(), {"mathematician": (-0.6, -6.0)}, file="t.jsonl")
    doc = check("covey eval frugality --json", json.dumps(dump(rep)))
    assert {p["policy"] for p in doc["policies"]} == {"covey (replayed)", "always:weak", "always:strong", "oracle",
                                                      "random"}
    assert doc["cascade"]["curve"] and doc["savings"]["joules_saved"] > 0


def test_from_run_reports_a_stored_run_without_models_and_needs_a_table(covey_env: Path, tmp_path: Path) -> None:
    from test_json_docs import check

    line = one_error(CliRunner().invoke(app, ["eval", "frugality", "--from-run", "last"]))
    assert "no outcome table yet" in line
    line = one_error(CliRunner().invoke(app, ["eval", "frugality", "--no-discover"]))
    assert "give a JSONL file of tasks" in line
    covey_env.mkdir(parents=True, exist_ok=True)
    store = OutcomeStore(covey_env / FILENAME)
    store.add(outcome_rows())
    store.close()
    res = CliRunner().invoke(app, ["eval", "frugality", "--from-run", "last", "--json", "--plot",
                                   str(tmp_path / "q.png")])
    assert res.exit_code == 0, res.output
    doc = check("covey eval frugality --json", res.stdout)
    assert doc["run_id"] == "r1" and doc["quality_gap"] == 0.5 and (tmp_path / "q.png").stat().st_size > 0
    line = one_error(CliRunner().invoke(app, ["eval", "frugality", "--from-run", "nope"]))
    assert "no run 'nope'" in line


def test_tune_drops_a_dominated_rung_from_the_ladder_in_agents_toml(covey_env: Path) -> None:
    """SmolLM2 sure of itself, wrong and dearer than Gemma on every task: tune writes Gemma first, the
    rungs the run did not measure kept after it; --keep-ladders leaves the ladder alone."""
    from test_json_docs import check

    from covey.agents.specialists import GEMMA, SMOL, SPECIALISTS

    rows = []
    for i in range(3):
        for model, ok, j, m in ((SMOL, False, 6.0, -0.1), (GEMMA, True, 4.0, -0.2)):
            rows.append(Outcome(run_id="r1", task=i, prompt=f"q{i}", kind="numeric", route="math",
                                agent="mathematician", policy=f"always:{model}", model=model, ladder=(SMOL, GEMMA),
                                models_called=(model,), score=float(ok), right=ok, answer="x", joules=j,
                                joules_low=j, joules_high=j, mean_logprob=m, min_logprob=-1.0, check_ok=True))
    covey_env.mkdir(parents=True, exist_ok=True)
    store = OutcomeStore(covey_env / FILENAME)
    store.add(rows)
    store.close()
    agents = covey_env / "agents.toml"
    res = CliRunner().invoke(app, ["tune", "--target-quality", "100%", "--keep-ladders", "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    (kept,) = check("covey tune --json", res.stdout)["agents"]
    assert kept["ladder"] == kept["before_ladder"] == [SMOL, GEMMA] and res.stdout.count("dominated_by") == 2
    res = CliRunner().invoke(app, ["tune", "--target-quality", "100%", "--dry-run"])  # 3 tasks: too few for a ladder
    assert res.exit_code == 0, res.output
    assert f"{SMOL} > {GEMMA} -> {GEMMA}" not in res.stdout and f"\t{SMOL} > {GEMMA}\t" in res.stdout
    res = CliRunner().invoke(app, ["tune", "--target-quality", "100%", "--min-ladder-tasks", "3"])
    assert res.exit_code == 0, res.output
    assert f"{SMOL} > {GEMMA} -> {GEMMA}" in res.stdout and "(dominated)" in res.stdout
    shipped = next(a for a in SPECIALISTS if a.name == "mathematician").ladder
    assert default_roster(agents).get("mathematician").ladder == tuple(m for m in shipped if m != SMOL)
    assert "quality 1.000 (3/3 right), 4 J per answer" in " ".join(res.stderr.split())  # after: Gemma alone
