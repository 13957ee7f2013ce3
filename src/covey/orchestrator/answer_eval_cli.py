"""`covey eval answers` (mounted from covey.cli): the command over covey.orchestrator.answer_eval."""

from __future__ import annotations

from pathlib import Path

from covey.orchestrator.answer_eval import Graded, read_tasks, run_answer_eval, summarize


def eval_answers(
    file: Path,
    limit: int = 40,
    tools: bool = True,
    json_out: bool = False,
    tolerance: float = 1e-6,
    peer: list[str] | None = None,
    discover: bool | None = None,
    data_dir: Path | None = None,
    verbose: int = 0,
) -> None:
    """Answer labelled tasks end to end: accuracy per kind and route, joules per answer and per right answer."""
    import typer
    from rich.markup import escape

    from covey.cli_output import Column, Grid, err, print_error, print_grid, print_json
    from covey.cli_run import load_settings, run
    from covey.errors import CoveyError

    settings = load_settings(verbose, data_dir=data_dir, orchestrator={
        "static_peers": peer or None, "discover": discover, "tool_answers": tools, "program_aided": tools,
        "verify_answers": tools})
    try:
        tasks = read_tasks(file)[:limit]
    except CoveyError as exc:  # a missing file or a line that is not a task: one line, not a traceback
        print_error(exc)
        raise typer.Exit(2) from None

    async def main() -> None:
        from covey.wiring import build

        orch = await build(settings)
        try:
            def show(i: int, g: Graded) -> None:  # progress: stderr, so stdout holds the results alone
                if not json_out:
                    mark = "[green]right[/green]" if g.right else "[red]wrong[/red]"
                    err.print(f"{i + 1}/{len(tasks)} {mark} {g.joules:.2f} J · {escape(g.model)} · "
                              f"{escape(repr(g.shown.strip()[:70]))}", highlight=False)

            graded = await run_answer_eval(orch, tasks, tolerance=tolerance, on_answer=show)
        finally:
            await orch.close()
        groups = summarize(graded)
        if json_out:
            print_json({"file": str(file), "tools": tools, "groups": [
                {**g.model_dump(), "accuracy": g.accuracy, "joules_per_answer": g.joules_per_answer,
                 "joules_per_right": g.joules_per_right} for g in groups],
                "answers": [g.model_dump() for g in graded]})
            return
        # Short headers so the terminal table fits 80 columns whole (no "accur…"); TSV in a pipe.
        grid = Grid([Column("kind", no_wrap=True), Column("route", no_wrap=True), Column("n", justify="right"),
                     Column("right", justify="right"), Column("acc", justify="right"),
                     Column("mean\nscore", justify="right"), Column("J/ans", justify="right"),
                     Column("J/right", justify="right"), Column("wrong\nshown", justify="right")],
                    title=f"answers on {file} ({len(tasks)} tasks, tools {'on' if tools else 'off'})",
                    caption=["n answers; acc = right / n; joules estimated, per answer and per right answer; "
                             "wrong shown = answers a check proved wrong that were shown"])
        for g in groups:
            jr = f"{g.joules_per_right:.2f}" if g.joules_per_right is not None else "-"
            grid.add(g.kind, g.route, g.answers, g.right, f"{g.accuracy:.2f}", f"{g.mean_score:.2f}",
                     f"{g.joules_per_answer:.2f}", jr, g.proven_wrong_shown)
        print_grid(grid)

    run(main())


def mount(eval_app) -> None:
    """Add `answers` to the `covey eval` group."""
    import typer

    from covey.cli_run import Discover

    def answers(
        file: Path = typer.Argument(..., help='JSONL: {"prompt","answer"}, {"prompt","tests","entry_point"} or '
                                              '{"prompt","reference"} lines'),
        limit: int = typer.Option(40, help="answer at most this many tasks (each may run a real model)"),
        tools: bool = typer.Option(True, "--tools/--no-tools",
                                   help="tool answers, program-aided maths and verification (off: the old path)"),
        json_out: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
        tolerance: float = typer.Option(1e-6, help="relative tolerance for numeric answers"),
        peer: list[str] | None = typer.Option(None, "--peer", help="node address host:port (repeatable)"),
        discover: bool | None = Discover,
        data_dir: Path | None = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR", help="covey state"),
        verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="more log output"),
    ) -> None:
        """Answer labelled tasks end to end: accuracy per kind and route, joules per answer and per right one."""
        eval_answers(file, limit, tools, json_out, tolerance, peer, discover, data_dir, verbose)

    eval_app.command("answers")(answers)
