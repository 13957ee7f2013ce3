"""`covey energy ...` commands and `calibrate`, which the main CLI mounts as `covey node calibrate`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from covey.cli_output import Column, Grid, print_error, print_grid, say
from covey.energy import report as rep
from covey.energy.calibrate import CALIBRATION_FILE, calibrate_against, collect, save_calibration
from covey.energy.detect import detect_meter
from covey.energy.estimator import choose_cpu_model, probe_machine
from covey.energy.ledger import Ledger
from covey.errors import CoveyError
from covey.settings import Settings
from covey.types import EnergyMethod

app = typer.Typer(help="Energy: what answers cost, in joules and CO2e.", no_args_is_help=True)


@app.callback()
def energy() -> None:
    """Energy: what answers cost, in joules and CO2e."""


def ledger_path(settings: Settings) -> Path:
    return settings.data_dir / "ledger.db"


@app.command("report")
def report_command(
    by: str = typer.Option("day", "--by", help="group by day, agent, node or model"),
    since: Optional[str] = typer.Option(None, "--since", help="7d, 12h, 30m or a date like 2026-01-31"),
    plot: Optional[Path] = typer.Option(None, "--plot", help="also write a PNG chart to this path"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="covey's data directory"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document (docs/json.md)"),
) -> None:
    """Summarise the energy ledger: J/answer, J/token, Wh and gCO2e, next to cloud models."""
    try:
        settings = Settings.load(data_dir=data_dir)
        path = ledger_path(settings)
        if not path.exists():
            Console(stderr=True, soft_wrap=True).print(
                f"error: No answers recorded yet ({path} does not exist); ask covey something first", markup=False)
            raise typer.Exit(1)
        ledger = Ledger(path)
        lo = rep.parse_since(since)
        rows = rep.summarise(ledger, by, lo)  # type: ignore[arg-type]
        total = rep.totals(ledger, lo)
        share = rep.measured_share(ledger, lo)
        ledger.close()
    except CoveyError as exc:
        Console(stderr=True, soft_wrap=True).print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from exc
    if json_out:
        _print_json_report(by, since, rows, total, share)
        return
    # The table on stdout (TSV in a pipe, with the range's figures in their own columns); the prose that
    # reads it on stderr, wrapped to the terminal with its indent kept.
    grid = Grid([Column(by, no_wrap=True), Column("answers", justify="right"),
                 Column("J/answer\n(range, method)", justify="right", pipe=False),
                 Column("J/answer", terminal=False), Column("J/answer low", terminal=False),
                 Column("J/answer high", terminal=False), Column("method", terminal=False),
                 Column("J/token", justify="right"), Column("Wh", justify="right"), Column("gCO2e", justify="right")],
                title=f"covey energy by {by}" + (f" since {since}" if since else ""))
    for r in rows + [total]:
        grid.add(r.key, r.answers, r.per_answer_text(), f"{r.j_per_answer:.3g}", f"{r.j_per_answer_low:.3g}",
                 f"{r.j_per_answer_high:.3g}", "estimated" if r.estimated else "measured", f"{r.j_per_token:.3f}",
                 f"{r.wh:.4f}", f"{r.g_co2e:.4f}")
    print_grid(grid)
    say(f"{share:.0%} of answers measured by a hardware sensor, the rest estimated "
        "(ranges: each component's documented uncertainty, summed).", markup_ok=False)
    if total.answers:
        say(f"Per answer: {total.per_answer_text()}, of which orchestrator overhead "
            f"{total.overhead_per_answer:.3g} J. Per correct answer: {total.per_correct_text()}.", markup_ok=False)
        if total.unanswered:
            say(f"{total.unanswered} of the {total.answers} answers said 'I could not get this right' (no answer "
                "passed its checks); their joules are counted above.", markup_ok=False)
        say(f"Boundary: {rep.COVEY_BOUNDARY}.", markup_ok=False)
        say("Published per-query figures for large cloud models, current first, each with its boundary:")
        for c in rep.compare_with_cloud(total):
            f = c.figure
            right = f"; per correct answer {c.per_correct:.0f}x" if c.per_correct else ""
            say(escape(f"  {f.label}: {f.wh_per_query:g} Wh = {f.joules:.0f} J per query = "
                       f"{c.per_answer:.0f}x covey's answer ({c.per_answer_low:.0f}-{c.per_answer_high:.0f}x "
                       f"over its range){right}. Counts: {f.boundary} ") + f"[dim]({escape(f.source)})[/dim]")
    if plot is not None:
        try:
            out = rep.plot(rows, plot, title=f"covey J/answer by {by}")
        except CoveyError as exc:
            print_error(exc)
            raise typer.Exit(2) from exc
        say(f"chart written to {out}", markup_ok=False)


def _print_json_report(by: str, since: str | None, rows, total, share: float) -> None:
    from covey.cli_json import CloudComparison, EnergyReportOutput, EnergyRow, dump
    from covey.cli_output import print_json

    def row(r) -> EnergyRow:
        return EnergyRow(key=r.key, answers=r.answers, joules=r.joules, joules_low=r.joules_low,
                         joules_high=r.joules_high, estimated=r.estimated, tokens_out=r.tokens_out,
                         j_per_answer=r.j_per_answer, j_per_token=r.j_per_token, overhead_joules=r.overhead_joules,
                         graded=r.graded, correct=r.correct, j_per_correct=r.j_per_correct, wh=r.wh,
                         g_co2e=r.g_co2e, unanswered=r.unanswered)

    cloud = [CloudComparison(label=c.figure.label, wh_per_query=c.figure.wh_per_query, boundary=c.figure.boundary,
                             current=c.figure.current, ratio=c.per_answer, ratio_low=c.per_answer_low,
                             ratio_high=c.per_answer_high, ratio_per_correct=c.per_correct, source=c.figure.source)
             for c in (rep.compare_with_cloud(total) if total.answers else [])]
    print_json(dump(EnergyReportOutput(by=by, since=since, rows=tuple(row(r) for r in rows), total=row(total),
                                       measured_share=share, cloud=tuple(cloud))))


@app.command("refresh-data")
def refresh_data_command(
    source: Optional[str] = typer.Option(None, "--from", help="a directory with cpu_power.csv and "
                                         "carbon_intensity.csv, or a base URL; default: the upstream URLs"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="covey's data directory"),
) -> None:
    """Refresh the CPU power and carbon-intensity tables into DATA_DIR/energy-data/ (used before the shipped ones)."""
    from covey.energy.refresh import refresh_data

    console = Console()
    settings = Settings.load(data_dir=data_dir)
    try:
        written = refresh_data(settings.data_dir, source)
    except CoveyError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    for t in written:
        console.print(f"{t.name}: {t.rows} rows from {t.origin} -> {t.path}", highlight=False)


def calibrate(
    seconds: float = typer.Option(5.0, "--seconds", min=1.0, help="seconds at each load level"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="covey's data directory"),
) -> None:
    """Fit the power estimate to this machine's real sensor and report its error (MAPE)."""
    console = Console()
    settings = Settings.load(data_dir=data_dir)
    meter = detect_meter(settings)  # power-only sensors need the background sampler while loading
    console.print(f"Energy sources on this machine: {meter.describe()}", highlight=False, markup=False)
    try:
        sensor = next((s for s in meter.sensors if s.method is EnergyMethod.MEASURED and s.scope == "system"), None)
        if sensor is None:
            console.print("[red]Cannot calibrate: this machine has no power sensor to calibrate against.[/red]")
            console.print("Run `covey node calibrate` on a machine with RAPL, a battery on discharge, "
                          "a Raspberry Pi 5 PMIC or an NVIDIA GPU.")
            raise typer.Exit(3)
        current, how = choose_cpu_model(probe_machine(), tdp_override=settings.energy.cpu_tdp_watts,
                                        data_dir=settings.data_dir)
        console.print(f"Calibrating the estimate ({how}) against {sensor.source}: "
                      f"{seconds:g} s at each of 5 load levels...")
        result = calibrate_against(collect(sensor.read_joules, seconds=seconds), current)
    finally:
        meter.close()
    for u, w in result.samples:
        console.print(f"  utilisation {u:5.0%}: {w:6.2f} W measured, {current.watts(u):6.2f} W estimated")
    f = result.fitted
    console.print(f"Estimator error against the sensor: {result.estimator_mape:.1f} % MAPE.")
    console.print(f"Fitted: idle {f.idle_watts:.2f} W, max {f.max_watts:.2f} W, curve u^{f.gamma:g} "
                  f"({result.fitted_mape:.1f} % MAPE).")
    saved = save_calibration(settings.data_dir / CALIBRATION_FILE, result, sensor.source)
    console.print(f"Saved to {saved}: the estimate uses this curve whenever the sensor cannot measure.")
