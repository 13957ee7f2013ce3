"""The report and the plot on real ledger rows; the CLI through typer's runner."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from covey.energy import report as rep
from covey.energy.cli import app, calibrate
from covey.energy.ledger import Ledger
from covey.errors import ConfigError

from .ledger_rows import answer


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.record(answer(1, "chat", [("den-pc", "smollm2", 10.0, 50)], overhead=2.0))
    ledger.record(answer(1, "code", [("den-pc", "smollm2", 20.0, 10), ("laptop", "qwen", 40.0, 90)], overhead=0.0))
    ledger.record(answer(2, "chat", [("laptop", "qwen", 30.0, 100)], overhead=4.0, pue=2.0))
    return ledger


def by_key(rows: list[rep.SummaryRow]) -> dict[str, rep.SummaryRow]:
    return {r.key: r for r in rows}


def test_summary_by_day_and_agent(ledger: Ledger) -> None:
    days = by_key(rep.summarise(ledger, "day"))
    assert days["2026-11-01"].answers == 2 and days["2026-11-01"].joules == pytest.approx(72.0)
    assert days["2026-11-02"].joules == pytest.approx(68.0)  # (30 + 4) x PUE 2
    agents = by_key(rep.summarise(ledger, "agent"))
    assert agents["chat"].j_per_answer == pytest.approx((12.0 + 68.0) / 2)
    assert agents["chat"].j_per_token == pytest.approx(80.0 / 150)


def test_summary_by_node_and_model_includes_orchestrator_overhead(ledger: Ledger) -> None:
    nodes = by_key(rep.summarise(ledger, "node"))
    assert nodes["den-pc"].joules == pytest.approx(30.0) and nodes["den-pc"].answers == 2
    assert nodes["laptop"].joules == pytest.approx(40.0 + 60.0)
    assert nodes[rep.ORCHESTRATOR].joules == pytest.approx(2.0 + 8.0)
    total = rep.totals(ledger)
    assert sum(r.joules for r in nodes.values()) == pytest.approx(total.joules)
    assert sum(r.g_co2e for r in nodes.values()) == pytest.approx(total.g_co2e)
    models = by_key(rep.summarise(ledger, "model"))
    assert models["qwen"].tokens_out == 190


def test_since_filters_and_parses() -> None:
    now = datetime(2026, 11, 2, 0, 0, tzinfo=timezone.utc)
    assert rep.parse_since("1d", now) == datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()
    assert rep.parse_since("2026-11-02") == now.timestamp()
    with pytest.raises(ConfigError, match="--since"):
        rep.parse_since("last tuesday")


def test_since_in_summary(ledger: Ledger) -> None:
    lo = rep.parse_since("2026-11-02")
    assert [r.key for r in rep.summarise(ledger, "day", lo)] == ["2026-11-02"]


def test_bad_group_is_a_clear_error(ledger: Ledger) -> None:
    with pytest.raises(ConfigError, match="--by"):
        rep.summarise(ledger, "colour")  # type: ignore[arg-type]


def test_cloud_comparison_uses_cited_figures() -> None:
    figs = {f.label: f for f in rep.CLOUD_FIGURES}
    assert any(f.wh_per_query == 0.24 and "Google" in f.source for f in figs.values())
    assert all(f.source for f in figs.values())
    gemini, *_ = rep.compare_with_cloud(86.4)  # typed rows now (they carry the boundary and per-correct ratio)
    assert gemini.per_answer == pytest.approx(0.24 * 3600 / 86.4)


def test_plot_writes_a_png(ledger: Ledger, tmp_path: Path) -> None:
    out = rep.plot(rep.summarise(ledger, "agent"), tmp_path / "charts" / "energy.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="nothing to plot"):
        rep.plot([], tmp_path / "empty.png")


def test_cli_report_reads_data_dir_ledger_and_plots(ledger: Ledger, tmp_path: Path) -> None:
    ledger.close()
    result = CliRunner().invoke(app, ["report", "--by", "node", "--data-dir", str(tmp_path),
                                      "--plot", str(tmp_path / "r.png")])
    assert result.exit_code == 0, result.output
    for text in ("den-pc", "laptop", "(orchestrator)", "Gemini", "de Vries", "estimated", "chart written"):
        assert text in result.output
    assert (tmp_path / "r.png").exists()


def test_cli_report_without_ledger_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--data-dir", str(tmp_path / "fresh")])
    assert result.exit_code == 1 and "No answers recorded yet" in result.output


def test_cli_bad_since_exits_non_zero_with_reason(ledger: Ledger, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--since", "soon", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--since" in result.output


def test_calibrate_on_this_machine_says_there_is_no_sensor(tmp_path: Path) -> None:
    """This machine has no power sensor: calibration must refuse, non-zero, with the reason."""
    node = typer.Typer()
    node.command("calibrate")(calibrate)
    node.command("other")(lambda: None)
    result = CliRunner().invoke(node, ["calibrate", "--data-dir", str(tmp_path)])
    assert result.exit_code == 3, result.output
    assert "no power sensor to calibrate against" in result.output
    assert "no RAPL" in result.output


def test_rows_carry_ranges_method_and_overhead(ledger: Ledger) -> None:
    total = rep.totals(ledger)
    assert total.joules_low == pytest.approx(total.joules * 0.6) and total.joules_high == pytest.approx(total.joules * 1.4)
    assert total.estimated and total.per_answer_text() == "46.7 J (28.0-65.3, estimated)"
    assert total.overhead_joules == pytest.approx(2.0 + 8.0)
    nodes = by_key(rep.summarise(ledger, "node"))
    assert nodes["laptop"].overhead_joules == pytest.approx(8.0)  # the overhead of the answers laptop served
    assert nodes["laptop"].joules_high == pytest.approx(100.0 * 1.4)
    assert rep.format_joules(0.5, 0.2, 1.45, False) == "0.50 J (0.20-1.45, measured)"
    assert rep.format_joules(0.05, 0.02, 0.145, True) == "0.050 J (0.020-0.145, estimated)"


def test_joules_per_correct_answer_once_graded(ledger: Ledger) -> None:
    total = rep.totals(ledger)
    assert total.j_per_correct is None and total.per_correct_text() == "n/a (no graded answers)"
    ids = [r["answer_id"] for r in ledger.query("SELECT answer_id FROM answers ORDER BY ts, joules")]
    ledger.grade(ids[0], True)   # chat, 12 J
    ledger.grade(ids[1], False)  # code, 60 J: a wrong answer still cost energy
    total = rep.totals(ledger)
    assert (total.graded, total.correct) == (2, 1) and total.j_per_correct == pytest.approx(72.0)
    assert total.per_correct_text().endswith("1 of 2 graded answers correct")
    gemini, narrow, *_ = rep.compare_with_cloud(total)
    assert gemini.per_correct == pytest.approx(864.0 / 72.0) and narrow.figure.wh_per_query == 0.10
    assert gemini.per_answer_low < gemini.per_answer < gemini.per_answer_high


def test_cloud_figures_state_their_boundary_current_first() -> None:
    assert all(f.boundary for f in rep.CLOUD_FIGURES)
    assert [f.current for f in rep.CLOUD_FIGURES] == sorted((f.current for f in rep.CLOUD_FIGURES), reverse=True)
    google = [f for f in rep.CLOUD_FIGURES if "Google" in f.label]
    assert {f.wh_per_query for f in google} == {0.24, 0.10}


def test_plot_has_no_orchestrator_bar(ledger: Ledger, tmp_path: Path) -> None:
    rows = rep.summarise(ledger, "node")
    assert rep.plot(rows, tmp_path / "n.png").exists()
    with pytest.raises(ConfigError, match="nothing to plot"):
        rep.plot([r for r in rows if r.key == rep.ORCHESTRATOR], tmp_path / "o.png")


def test_cli_report_states_range_boundary_and_per_correct(ledger: Ledger, tmp_path: Path) -> None:
    ledger.close()
    result = CliRunner().invoke(app, ["report", "--data-dir", str(tmp_path)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for text in ("46.7 J (28.0-65.3, estimated)", "Per correct answer: n/a (no graded answers)", "Boundary:",
                 "active accelerators only", "0.1 Wh = 360 J", "superseded"):
        assert text in result.output


def test_cli_report_in_a_pipe_is_tsv_on_stdout_and_its_prose_wraps_on_stderr(ledger: Ledger, tmp_path: Path) -> None:
    ledger.close()
    result = CliRunner().invoke(app, ["report", "--by", "node", "--data-dir", str(tmp_path)], env={"COLUMNS": None})
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split("\t") == ["node", "answers", "J/answer", "J/answer low", "J/answer high", "method", "J/token",
                                  "Wh", "gCO2e"]
    assert {r.split("\t")[0] for r in rows} >= {"den-pc", "laptop", "all"}
    assert all(len(r.split("\t")) == len(header.split("\t")) for r in rows)
    lines = result.stderr.splitlines()
    assert all(len(line) <= 80 for line in lines), result.stderr  # 80 columns off a terminal
    cloud = next(i for i, line in enumerate(lines) if line.startswith("  Gemini"))
    assert lines[cloud + 1].startswith("    ") and not lines[cloud + 1].startswith("     ")  # its indent kept
    boundary = next(i for i, line in enumerate(lines) if line.startswith("Boundary: "))
    assert lines[boundary + 1].startswith("  ") and not lines[boundary + 1].startswith("   ")  # a hanging indent


def test_unanswered_answers_are_counted_with_their_joules(ledger: Ledger, tmp_path: Path) -> None:
    """An "I could not get this right" answer spent its joules: it stays in the sums and is counted apart."""
    ledger.record(answer(2, "math", [("den-pc", "smollm2", 6.0, 30)], overhead=0.0).model_copy(
        update={"unanswered": True}))
    total = rep.totals(ledger)
    assert total.answers == 4 and total.unanswered == 1 and total.joules == pytest.approx(72.0 + 68.0 + 6.0)
    assert by_key(rep.summarise(ledger, "agent"))["math"].unanswered == 1
    models = by_key(rep.summarise(ledger, "model"))
    assert models["smollm2"].unanswered == 1 and models[rep.ORCHESTRATOR].unanswered == 0
    ledger.close()
    result = CliRunner().invoke(app, ["report", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0 and "1 of the 4 answers said 'I could not get this right'" in result.output


def test_a_ledger_from_before_m005_reads_its_answers_as_answered(tmp_path: Path) -> None:
    from covey.energy.ledger import MIGRATIONS
    from covey.migrations import Migrations, connect

    db = connect(tmp_path / "ledger.db")
    Migrations(*MIGRATIONS.migrations[:4]).apply(db)
    with db:
        db.execute("INSERT INTO answers (answer_id, ts, day, joules, device_joules, marginal_joules, method, "
                   "uncertainty, tokens_in, tokens_out, seconds, pue, carbon_g_per_kwh, carbon_source, g_co2e) "
                   "VALUES ('old', 1e9, '2001-09-09', 5, 5, 2, 'estimated', 0.4, 10, 20, 1, 1, 55, 'x', 0.1)")
    db.close()
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.record(answer(1, "chat", [("den-pc", "smollm2", 10.0, 50)]))
    total = rep.totals(ledger)
    assert total.answers == 2 and total.unanswered == 0
