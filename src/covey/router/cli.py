"""`covey eval route FILE.jsonl` scores the router on labelled prompts; `covey route fix` corrects it.

The lead mounts `eval_route` on the eval Typer app. `make_eval_route(...)` builds the same command
with another router factory (tests) or an extra report such as escalation rates: a callable
receiving the labelled examples and the decisions and returning {label: value} rows to print.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from covey.cli_output import Column, Grid, print_grid, say
from covey.cli_output import out as stdout
from covey.cli_run import NeverDiscovers
from covey.errors import CoveyError
from covey.router.classifier import (
    CLOSE_MARGIN,
    EmbeddingRouter,
    Router,
    RouteDecision,
    RouteExample,
    load_default_router,
    read_examples,
)
from covey.router.evaluation import RouteReport, head_picks, score_abstention, score_routes
from covey.settings import Settings

logger = logging.getLogger(__name__)

RouterFactory = Callable[[Settings], Router]
ExtraReport = Callable[[Sequence[RouteExample], Sequence[RouteDecision]], Mapping[str, object]]


def _default_factory(settings: Settings) -> Router:
    return load_default_router(settings.data_dir, settings.router)


def classify_all(router: Router, prompts: Sequence[str]) -> list[RouteDecision]:
    """Decisions for independent prompts; batched when the router can batch."""
    many = getattr(router, "classify_many", None)
    if callable(many):
        return list(many(prompts))
    return [router.classify(p) for p in prompts]


def make_eval_route(router_factory: RouterFactory = _default_factory, extra: ExtraReport | None = None,
                    console: Console | None = None) -> Callable[..., None]:
    """The `eval route` command bound to a router factory and an optional extra report."""

    def eval_route(
        file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                    help='JSONL file of {"prompt": ..., "route": ...} lines'),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR",
                                                help="all covey state lives here"),
        config: Optional[Path] = typer.Option(None, "--config", help="TOML config file"),
        head: Optional[str] = typer.Option(None, "--head", help="router head: logistic, mlp or centroid"),
        show_errors: int = typer.Option(10, "--show-errors", help="print up to N misrouted prompts"),
        json_out: bool = typer.Option(False, "--json", help="print one JSON document (docs/json.md)"),
        no_discover: bool = NeverDiscovers,
    ) -> None:
        """Score the router on labelled prompts: accuracy, macro-F1, precision/recall, confusions."""
        out = console
        try:
            settings = Settings.load(data_dir=data_dir, config_file=config,
                                     router={"head": head} if head else None)
            rows = read_examples(file)
            if not rows:
                raise CoveyError(f"{file} has no labelled prompts", hint='add {"prompt": ..., "route": ...} lines')
            router = router_factory(settings)
            start = time.perf_counter()
            decisions = classify_all(router, [r.prompt for r in rows])
            elapsed = time.perf_counter() - start
        except CoveyError as exc:
            from covey.cli_output import print_error

            print_error(exc)
            raise typer.Exit(1) from None
        report = score_routes([r.route for r in rows], [d.route for d in decisions],
                              fallbacks=sum(d.fallback for d in decisions))
        misses = [(r, d) for r, d in zip(rows, decisions) if r.route != d.route]
        if json_out:
            from covey.cli_json import Misrouted, RouteEvalOutput, dump
            from covey.cli_output import print_json

            extras = dict(extra(rows, decisions)) if extra is not None else {}
            print_json(dump(RouteEvalOutput(
                file=str(file), report=report, per_task_ms=1000 * elapsed / len(rows), extra=extras,
                encoder=str(getattr(router, "encoder", "")),
                misrouted=tuple(Misrouted(prompt=r.prompt, expected=r.route, got=d.route, confidence=d.confidence,
                                          fallback=d.fallback) for r, d in misses))))
            return
        encoder = getattr(router, "encoder", "")
        if encoder:  # what the ms/task below were spent on
            say(f"router encoder: {encoder}", markup_ok=False)
        print_report(out, report, title=str(file), per_task_ms=1000 * elapsed / len(rows))
        print_abstention(out, rows, decisions)
        print_sources(out, rows, decisions)
        if show_errors and misses:
            prompts: dict[int, str] = {}  # the terminal table shows each prompt's start; the TSV all of it
            grid = Grid([Column("expected", no_wrap=True), Column("got", no_wrap=True),
                         Column("conf", justify="right"), Column("prompt", short=prompts)],
                        title=f"misrouted ({len(misses)}, first {min(show_errors, len(misses))})")
            for n, (r, d) in enumerate(misses[:show_errors]):
                shown = " ".join(r.prompt.split())
                grid.add(r.route, d.route + (" (fallback)" if d.fallback else ""), f"{d.confidence:.2f}", shown)
                prompts[n] = shown[:80]
            _print(grid, out)
        if extra is not None:
            grid = Grid([Column("measure"), Column("value", justify="right")], title="extra")
            for k, v in extra(rows, decisions).items():
                grid.add(str(k), f"{v:.3f}" if isinstance(v, float) else str(v))
            _print(grid, out)

    return eval_route


def _print(grid: Grid, out: Console | None) -> None:
    """One of the command's tables: a blank line above it (TSV blocks in a pipe stay apart)."""
    console = out or stdout
    console.print()
    print_grid(grid, console)


def print_report(out: Console | None, report: RouteReport, *, title: str = "", per_task_ms: float | None = None) -> None:
    """Summary line (stderr), per-route precision/recall/F1 and the confusion matrix (stdout; TSV in a pipe)."""
    timing = f", {per_task_ms:.1f} ms/task" if per_task_ms is not None else ""
    say(f"[bold]{escape(title)}[/bold]: {report.total} prompts, accuracy [bold]{report.accuracy:.3f}[/bold], "
        f"macro-F1 [bold]{report.macro_f1:.3f}[/bold], fallbacks {report.fallbacks}{timing}")
    per = Grid([Column("route", no_wrap=True), *(Column(c, justify="right") for c in ("precision", "recall", "F1",
                                                                                       "support"))], title="per route")
    for sc in report.scores:
        per.add(sc.route, f"{sc.precision:.2f}", f"{sc.recall:.2f}", f"{sc.f1:.2f}", sc.support)
    print_grid(per, out or stdout)
    # The terminal's headers are the routes' first five letters, so the matrix fits 80 columns; TSV: whole names.
    conf = Grid([Column("expected", no_wrap=True),
                 *(Column(r, justify="right", header_short=r[:5]) for r in report.routes)],
                title="confusion (rows: expected, columns: routed to)")
    for r, row in zip(report.routes, report.confusion):
        conf.add(r, *[str(n) if n else "." for n in row])
    _print(conf, out)


def print_abstention(out: Console | None, rows: Sequence[RouteExample], decisions: Sequence[RouteDecision]) -> None:
    """How often the router said "unsure" and how well that matched its own mistakes (stderr)."""
    picks, abstained = head_picks(decisions)
    ab = score_abstention([r.route for r in rows], picks, abstained)
    say(f"abstained (fell back) on {ab.abstained} of {len(rows)}; the head's own pick was wrong on {ab.wrong}: "
        f"abstention precision {_share(ab.precision, ab.abstained)} (abstentions that caught a mistake), "
        f"recall {_share(ab.recall, ab.wrong)} (mistakes caught)")
    close = [d.margin < CLOSE_MARGIN for d in decisions]
    cc = score_abstention([r.route for r in rows], picks, close)
    say(f"close calls (margin under {CLOSE_MARGIN:.2f}) on {cc.abstained} of {len(rows)}: precision "
        f"{_share(cc.precision, cc.abstained)} (close calls whose pick was wrong), recall {_share(cc.recall, cc.wrong)} "
        "(mistakes flagged as close)")


def _share(value: float, out_of: int) -> str:
    """A precision or recall, or 'n/a' when nothing was counted (0 abstentions have no precision)."""
    return f"{value:.2f}" if out_of else "n/a"


def print_sources(out: Console | None, rows: Sequence[RouteExample], decisions: Sequence[RouteDecision]) -> None:
    """Accuracy and macro-F1 per "source" of the labelled prompts, when they name more than one."""
    sources = sorted({r.source for r in rows})
    if len(sources) < 2:
        return
    grid = Grid([Column("source", no_wrap=True), *(Column(c, justify="right") for c in ("prompts", "accuracy",
                                                                                         "macro-F1", "fallbacks"))],
                title="per source")
    for source in sources:
        pairs = [(r, d) for r, d in zip(rows, decisions) if r.source == source]
        rep = score_routes([r.route for r, _ in pairs], [d.route for _, d in pairs])
        grid.add(source or "(none)", len(pairs), f"{rep.accuracy:.3f}", f"{rep.macro_f1:.3f}",
                 sum(d.fallback for _, d in pairs))
    _print(grid, out)


eval_route = make_eval_route()


def _refit_factory(settings: Settings) -> EmbeddingRouter:
    return load_default_router(settings.data_dir, settings.router)


def make_route_fix(router_factory: Callable[[Settings], EmbeddingRouter] = _refit_factory, console: Console | None = None,
                   ) -> Callable[..., None]:
    """The `route fix` command bound to a router factory (tests pass one over a small embedder)."""

    def route_fix(
        words: list[str] = typer.Argument(..., metavar="[PROMPT|last|TURN_ID] ROUTE",
                                          help="the route the prompt should have gone to, after the prompt "
                                          "(default: the last prompt asked; or a turn id from `covey logs --json`)"),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR",
                                                help="all covey state lives here"),
        config: Optional[Path] = typer.Option(None, "--config", help="TOML config file"),
    ) -> None:
        """Correct a routing: keep PROMPT as an example of ROUTE, refit the router now, show the new routing."""
        from covey.router.corrections import check_route, corrections_path, record_correction, resolve_prompt

        out = console or Console(highlight=False)
        try:
            settings = Settings.load(data_dir=data_dir, config_file=config)
            *prompt_words, route = words
            before = router_factory(settings)
            route = check_route(route, before.routes)
            prompt = resolve_prompt(prompt_words, settings.data_dir)
            was = before.classify(prompt)
            record_correction(settings.data_dir, prompt, route)
            start = time.perf_counter()
            after = router_factory(settings)  # the examples changed: this fits and caches the new head
            refit = time.perf_counter() - start
            now = after.classify(prompt)
        except CoveyError as exc:
            from covey.cli_output import print_error

            print_error(exc)
            raise typer.Exit(1) from None
        shown = " ".join(prompt.split())
        shown = shown if len(shown) <= 70 else shown[:67] + "..."
        out.print(f"kept {shown!r} as an example of [bold]{route}[/bold] in {corrections_path(settings.data_dir)}")
        out.print(f"router refitted in {refit:.1f} s (cached; the next ask loads it): was {was.route} "
                  f"{was.confidence:.2f}, now [bold]{now.route}[/bold] {now.confidence:.2f} (runner-up "
                  f"{now.runner_up} {now.runner_up_confidence:.2f})")
        if now.route != route:
            out.print(f"it still routes to {now.route}: add a few more prompts like it to "
                      f"{corrections_path(settings.data_dir)} (or DATA_DIR/routes/*.jsonl)")

    return route_fix


route_fix = make_route_fix()
