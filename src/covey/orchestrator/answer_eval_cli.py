"""`covey eval answers` (mounted from covey.cli): the command over covey.orchestrator.answer_eval."""

from __future__ import annotations

import json
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

    from covey.cli_output import console, print_error
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
            def show(i: int, g: Graded) -> None:
                if not json_out:
                    mark = "[green]right[/green]" if g.right else "[red]wrong[/red]"
                    console.print(f"{i + 1}/{len(tasks)} {mark} {g.joules:.2f} J · {g.model} · "
                                  f"{g.shown.strip()[:70]!r}", highlight=False)

            graded = await run_answer_eval(orch, tasks, tolerance=tolerance, on_answer=show)
        finally:
            await orch.close()
        groups = summarize(graded)
        if json_out:
            console.print_json(json.dumps({"file": str(file), "tools": tools, "groups": [
                {**g.model_dump(), "accuracy": g.accuracy, "joules_per_answer": g.joules_per_answer,
                 "joules_per_right": g.joules_per_right} for g in groups],
                "answers": [g.model_dump() for g in graded]}))
            return
        from rich import box
        from rich.table import Table

        # Short headers in a light box so the table fits 80 columns whole (no "accur…").
        t = Table("kind", "route", "n", "right", "acc", "mean\nscore", "J/ans", "J/right", "wrong\nshown",
                  box=box.SIMPLE_HEAD, caption="n answers; acc = right / n; joules estimated, per answer and per "
                  "right answer; wrong shown = answers a check proved wrong that were shown", title=f"answers on {file} ({len(tasks)} tasks, tools {'on' if tools else 'off'})")
        for g in groups:
            jr = f"{g.joules_per_right:.2f}" if g.joules_per_right is not None else "-"
            t.add_row(g.kind, g.route, str(g.answers), str(g.right), f"{g.accuracy:.2f}", f"{g.mean_score:.2f}",
                      f"{g.joules_per_answer:.2f}", jr, str(g.proven_wrong_shown))
        console.print(t)

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
