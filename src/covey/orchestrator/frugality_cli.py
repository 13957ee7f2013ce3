"""`covey eval frugality` and `covey tune` (mounted from covey.cli), and the quality-vs-joules plot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from covey.cli_run import Discover

if TYPE_CHECKING:  # numpy comes with them: loaded when the command runs, not on every `covey ...`
    from covey.orchestrator.frugality_metrics import FrugalityReport, PolicyPoint


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}%"


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def current_thresholds(agents) -> dict[str, tuple[float, float]]:
    return {a.name: (a.accept.min_mean_logprob, a.accept.min_token_logprob) for a in agents}


def print_report(rep: FrugalityReport) -> None:
    from covey.cli_output import Column, Grid, print_grid, say

    grid = Grid([Column("policy", no_wrap=True), Column("kind"), Column("quality", justify="right"),
                 Column("right", justify="right"), Column("J/answer (range)", justify="right"),
                 Column("strong calls", justify="right"), Column("PGR", justify="right"),
                 Column("tokens in/out", justify="right"), Column("latency s", justify="right"),
                 Column("Pareto", justify="center")],
                title=f"frugality of run {rep.run_id} ({rep.tasks} tasks; weak {rep.weak}, strong {rep.strong})")
    for p in rep.policies:
        measured = p.kind == "measured"
        grid.add(p.policy, p.kind, f"{p.quality:.3f}", f"{p.right:.3g}/{p.answers}",
                 f"{p.joules:.3g} ({p.joules_low:.3g}-{p.joules_high:.3g})", f"{100 * p.strong_calls:.0f}%",
                 _num(p.pgr), f"{p.tokens_in:.0f}/{p.tokens_out:.0f}" if measured else "-",
                 f"{p.latency_s:.1f}" if measured else "-", "yes" if p.pareto else "")
    print_grid(grid)
    c, r = rep.cascade, rep.random_router
    if abs(rep.quality_gap) * rep.tasks < 1:
        say(f"note: {rep.strong} and {rep.weak} differ by {rep.quality_gap:+.3f} in quality, less than one "
                  "task's worth: PGR, APGR and CPT divide by that gap and mean little on this run", markup_ok=False)
    say(f"covey: {rep.quality_share:.0%} of always-strongest's quality at {rep.joules_share:.0%} of its joules; "
              f"PGR {_num(rep.covey_pgr)}", markup_ok=False)
    for m in (c, r):
        say(f"{m.name}: APGR {_num(m.apgr_calls, '.3f')} in calls, {_num(m.apgr_joules, '.3f')} in joules; "
                  f"CPT(50%) {_pct(m.cpt50_calls)} calls / {_pct(m.cpt50_joules)} joules; "
                  f"CPT(80%) {_pct(m.cpt80_calls)} calls / {_pct(m.cpt80_joules)} joules", markup_ok=False)
    if rep.savings is not None:
        s = rep.savings
        verb = "saved" if s.joules_saved > 0 else "more than always-strongest: nothing saved"
        say(f"at >= 95% of always-strongest's quality ({s.point}, {s.quality_share:.0%}): "
                  f"{s.joules:.3g} J per answer, {abs(s.joules_saved):.3g} J ({abs(s.share_saved):.0%}) {verb}", markup_ok=False)
    else:
        say("no cascade point reaches 95% of always-strongest's quality: no savings to claim at that quality", markup_ok=False)
    say(f"the replay at the thresholds in use ends on the measured cascade's model for "
              f"{rep.replay_agreement:.0%} of tasks; energy figures are estimates unless the method says measured", markup_ok=False)
    if rep.outcome_table:
        say(f"outcome table: {rep.outcome_table} (run {rep.run_id}); RouteLLM CSV: {rep.routellm_csv}", markup_ok=False)


def plot(rep: FrugalityReport, path: Path, *, tuned: PolicyPoint | None = None) -> Path:
    """Quality against joules per answer: a point per policy with its energy range, the Pareto front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [p for p in rep.policies]
    if tuned is not None:
        pts.append(tuned)
    colours = {"measured": "#1982c4", "replayed": "#6a4c93", "oracle": "#999999", "random": "#e07a1f"}
    fig, ax = plt.subplots(figsize=(8.0, 5.2))
    try:
        for p in pts:
            is_covey = p.policy == "covey"
            ax.errorbar([p.joules], [p.quality], xerr=[[p.joules - p.joules_low], [p.joules_high - p.joules]],
                        fmt="*" if is_covey else ("D" if p.kind == "oracle" else "o"),
                        ms=14 if is_covey else 7, color="#bc4749" if is_covey else colours.get(p.kind, "#333333"),
                        ecolor="#777777", capsize=3, linewidth=1, zorder=3)
        front = sorted([p for p in pts if p.pareto], key=lambda p: p.joules)
        if len(front) > 1:
            ax.plot([p.joules for p in front], [p.quality for p in front], "--", color="#4c956c", linewidth=1.2,
                    label="Pareto front (achievable policies)", zorder=2)
        curve = sorted(rep.cascade.curve, key=lambda c: c.joules)
        if curve:
            ax.plot([c.joules for c in curve], [c.quality for c in curve], ":", color="#6a4c93", linewidth=1,
                    label="covey cascade, thresholds swept (replayed)", zorder=1)
        # Labels stacked in a column at the right of each point, nudged apart so none overlap.
        placed: list[float] = []
        span = max((p.quality for p in pts), default=1.0) - min((p.quality for p in pts), default=0.0) or 1.0
        for p in sorted(pts, key=lambda p: p.quality):
            y = p.quality
            while any(abs(y - q) < 0.045 * span for q in placed):
                y += 0.045 * span
            placed.append(y)
            label = ("covey (operating point)" if p.policy == "covey" else p.policy) + f"  {p.joules:.3g} J, q {p.quality:.2f}"
            ax.annotate(label, (p.joules, p.quality), xytext=(p.joules_high, y), textcoords="data", fontsize=7,
                        ha="left", va="center", arrowprops={"arrowstyle": "-", "color": "#bbbbbb", "lw": 0.6},
                        fontweight="bold" if p.policy == "covey" else "normal")
        ax.set_xscale("log")
        # Ticks at 1, 2 and 5 of each decade written as plain numbers: matplotlib's own minor labels of a
        # range within one decade ("3x10^0", "4x10^0") run into each other.
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("joules per answer (log scale; bars: the figures' documented range)")
        ax.set_ylabel("quality (mean score)")
        ax.set_title(f"quality against energy, {rep.tasks} tasks (run {rep.run_id})")
        ax.text(0.01, 0.98, "ESTIMATED energy unless measured by a sensor", transform=ax.transAxes, ha="left",
                va="top", fontsize=8, color="#bc4749", fontweight="bold")
        ax.margins(x=0.35, y=0.15)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=7, frameon=False)
        from covey.energy.report import save_figure

        return save_figure(fig, path)
    finally:
        plt.close(fig)


def eval_frugality(
    file: Optional[Path] = typer.Argument(None, help="JSONL tasks, the format of `covey eval answers`"),
    from_run: Optional[str] = typer.Option(None, "--from-run",
                                           help="report on a stored run (its id, or 'last') instead: no model runs"),
    limit: int = typer.Option(30, help="answer at most this many tasks (each runs every model)"),
    max_tokens: Optional[int] = typer.Option(None, "--max-tokens", min=1,
                                             help="cap each answer below its agent's own limit"),
    model: Optional[list[str]] = typer.Option(None, "--model", "-m",
                                              help="always-model baselines to run (default: every runnable rung)"),
    plot_path: Optional[Path] = typer.Option(None, "--plot", help="write the quality-vs-joules PNG here"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document (docs/json.md)"),
    tolerance: float = typer.Option(1e-6, help="relative tolerance for numeric answers"),
    peer: Optional[list[str]] = typer.Option(None, "--peer", help="node address host:port (repeatable)"),
    discover: Optional[bool] = Discover,
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR", help="covey state"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML config file"),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="more log output"),
) -> None:
    """Quality against joules: covey's cascade and every model alone on labelled tasks, RouteLLM's metrics."""
    from covey.cli_run import Run
    from covey.cli_output import print_json, say
    from covey.errors import CoveyError
    from covey.orchestrator.answer_eval import read_tasks

    run = Run(verbose, hold=False, data_dir=data_dir, config_file=config,
               orchestrator={"static_peers": peer or None, "discover": discover})
    if from_run is not None:
        _report_stored(run, from_run, json_out, plot_path)
        return
    try:
        if file is None:
            from covey.errors import BadRequest

            raise BadRequest("give a JSONL file of tasks", hint="or --from-run RUN to report on a stored run")
        tasks = read_tasks(file)[:limit]
    except CoveyError as exc:
        run.fail(exc)

    async def main() -> None:
        from covey.orchestrator.frugality import run_frugality_eval
        from covey.orchestrator.frugality_metrics import report
        from covey.orchestrator.outcomes import FILENAME, OutcomeStore, export_routellm
        from covey.wiring import build

        settings = run.settings
        store = OutcomeStore(settings.data_dir / FILENAME)
        orch = await build(settings)
        try:
            def keep(o) -> None:  # each row as it comes: a run cut short keeps what it answered
                store.add([o])
                if not json_out:
                    mark = "right" if o.right else "wrong"
                    say(f"{o.task + 1}/{len(tasks)} {o.policy}: {mark} {o.joules:.2f} J · {o.model} · "
                              f"{' '.join(o.answer.split())[:60]!r}", markup_ok=False)

            rows = await run_frugality_eval(orch, tasks, models=model or None, max_tokens=max_tokens,
                                            tolerance=tolerance, on_row=keep)
            thresholds = current_thresholds(orch.deps.agents)
        finally:
            await orch.close()
            store.close()
        csv_path = export_routellm(rows, settings.data_dir / "frugality" / f"{rows[0].run_id}.routellm.csv")
        rep = report(rows, thresholds, file=str(file), outcome_table=str(settings.data_dir / FILENAME),
                     routellm_csv=str(csv_path))
        if json_out:
            from covey.cli_json import dump

            print_json(dump(rep))
        else:
            print_report(rep)
        if plot_path is not None:
            out = plot(rep, plot_path)
            say(f"plot written to {out}", markup_ok=False)

    run(main())


def _report_stored(run, run_id: str, json_out: bool, plot_path: Path | None) -> None:
    """`covey eval frugality --from-run RUN`: the figures of a stored run at the thresholds in use now."""
    from covey.agents.roster import default_roster
    from covey.cli_output import print_json, say
    from covey.errors import BadRequest, CoveyError
    from covey.models.catalog import Catalog
    from covey.orchestrator.frugality_metrics import report
    from covey.orchestrator.outcomes import FILENAME, OutcomeStore

    settings = run.settings
    path = settings.data_dir / FILENAME
    try:
        if not path.exists():
            raise BadRequest(f"no outcome table yet ({path} does not exist)",
                             hint="run `covey eval frugality TASKS.jsonl` first")
        store = OutcomeStore(path)
        try:
            rows = store.load(None if run_id == "last" else run_id)
        finally:
            store.close()
        roster = default_roster(settings.agents_file, catalog=Catalog(models_dir=settings.data_dir / "models"))
        rep = report(rows, current_thresholds(roster), outcome_table=str(path))
    except CoveyError as exc:
        run.fail(exc)
    if json_out:
        from covey.cli_json import dump

        print_json(dump(rep))
    else:
        print_report(rep)
    if plot_path is not None:
        say(f"plot written to {plot(rep, plot_path)}", markup_ok=False)


def tune_command(
    target_quality: Optional[str] = typer.Option(None, "--target-quality",
                                                 help="mean score to reach (0.6), a share of always-strongest's (95%), "
                                                      "or 'same' (the cascade in use's, for fewer joules)"),
    energy_budget: Optional[float] = typer.Option(None, "--energy-budget", min=0.0,
                                                  help="joules per answer allowed; the best quality within it"),
    run_id: Optional[str] = typer.Option(None, "--run", help="the eval run to replay (default: the newest)"),
    keep_ladders: bool = typer.Option(False, "--keep-ladders",
                                      help="choose thresholds only; leave every agent's ladder as it is"),
    min_ladder_tasks: Optional[int] = typer.Option(None, "--min-ladder-tasks", min=1, metavar="N",
                                                   help="change an agent's ladder only from at least this many of "
                                                        "its tasks (default 8); fewer: its thresholds only"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show the choice; do not write agents.toml"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document (docs/json.md)"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR", help="covey state"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML config file"),
) -> None:
    """Choose the cascade's ladders and acceptance thresholds from a stored `covey eval frugality` run (no model runs)."""
    from covey.agents.overrides import set_acceptance
    from covey.agents.roster import default_roster, load_agents
    from covey.cli_run import Run
    from covey.cli_output import Column, Grid, print_grid, print_json, say
    from covey.errors import BadRequest, CoveyError
    from covey.models.catalog import Catalog
    from covey.orchestrator.outcomes import FILENAME, OutcomeStore
    from covey.orchestrator.tune import MIN_LADDER_TASKS, tune

    run = Run(data_dir=data_dir, config_file=config)
    settings = run.settings
    try:
        if (target_quality is None) == (energy_budget is None):
            raise BadRequest("give exactly one of --target-quality and --energy-budget",
                             hint="e.g. `covey tune --target-quality 95%` or `covey tune --energy-budget 20`")
        path = settings.data_dir / FILENAME
        if not path.exists():
            raise BadRequest(f"no outcome table yet ({path} does not exist)",
                             hint="run `covey eval frugality TASKS.jsonl` first: tuning replays its answers")
        store = OutcomeStore(path)
        try:
            rows = store.load(run_id)
        finally:
            store.close()
        catalog = Catalog(models_dir=settings.data_dir / "models")
        roster = default_roster(settings.agents_file, catalog=catalog)
        agents_file = settings.agents_file or settings.data_dir / "agents.toml"
        out = tune(rows, current_thresholds(roster), target=target_quality, energy_budget=energy_budget,
                   agents_file=str(agents_file), ladders={a.name: a.ladder for a in roster},
                   tune_ladders=not keep_ladders,
                   min_ladder_tasks=MIN_LADDER_TASKS if min_ladder_tasks is None else min_ladder_tasks)
        changed = {a.agent: (a.min_mean_logprob, a.min_token_logprob) for a in out.agents if a.changed}
        new_ladders = {a.agent: a.full_ladder for a in out.agents if a.ladder_changed}
        if changed and not dry_run:
            set_acceptance(agents_file, changed, ladders=new_ladders,
                           validate=lambda p: load_agents(p, catalog=catalog))
            out = out.model_copy(update={"written": True})
    except CoveyError as exc:
        run.fail(exc)
    if json_out:
        from covey.cli_json import dump

        print_json(dump(out))
        return
    grid = Grid([Column("agent", no_wrap=True), Column("tasks", justify="right"),
                 Column("each model alone here: quality, J/answer"), Column("ladder (measured rungs)"),
                 Column("min mean logprob", justify="right"), Column("min token logprob", justify="right")],
                title=f"ladders and thresholds from run {out.run_id}")
    for a in out.agents:
        alone = "; ".join(f"{r.model} {r.quality:.2f}, {r.joules:.3g} J" + (" (dominated)" if r.dominated_by else "")
                          for r in a.rungs)
        ladder = " > ".join(a.before_ladder) + ("" if not a.ladder_changed else " -> " + " > ".join(a.ladder))
        grid.add(a.agent, a.tasks, alone, ladder, f"{a.before_min_mean_logprob:g} -> {a.min_mean_logprob:g}",
                 f"{a.before_min_token_logprob:g} -> {a.min_token_logprob:g}")
    print_grid(grid)
    for p in (out.before, out.after, out.strongest):
        say(f"{p.policy}: quality {p.quality:.3f} ({p.right:g}/{p.answers} right), {p.joules:.3g} J per answer "
                  f"({p.joules_low:.3g}-{p.joules_high:.3g}), strongest model on {p.strong_calls:.0%} of tasks", markup_ok=False)
    if not changed:
        say("the thresholds in use already meet the target at the least cost: nothing to change", markup_ok=False)
    elif out.written:
        say(f"written to {out.agents_file} ({', '.join(changed)}); `covey agents` shows them", markup_ok=False)
    else:
        say(f"dry run: {out.agents_file} left as it is", markup_ok=False)
