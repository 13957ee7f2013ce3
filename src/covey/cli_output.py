"""How the command line prints: the answer on stdout; notices, summaries, logs and errors on stderr, once each.

Tables fit the terminal (cells wrap, ids are never cut) and become plain TSV when stdout is not a
terminal; `--json` prints one JSON document instead. What is said beside the result (notices, notes,
summaries, progress, warnings) goes to stderr through `say`, wrapped to the terminal's width (80 off
a terminal) with a hanging indent; error lines stay one line each. Library code only logs; this
module decides what reaches the user.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from covey.discovery.directory import RefusedNode
from covey.types import NodeInfo

if TYPE_CHECKING:
    from covey.orchestrator.results import AnswerResult

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
console = Console(highlight=False)  # stdout, for commands whose output is the result itself (demo, node)

# Environment read by dependencies at import time: no progress bars and no chatter unless -v.
QUIET_DEPENDENCIES = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
NOISY_LOGGERS = ("sentence_transformers", "transformers", "huggingface_hub", "filelock", "urllib3", "httpx",
                 "faiss", "torch", "asyncio")


def quiet_dependencies(environ: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Silence dependency progress bars before they are imported (they read the environment once)."""
    for name, value in QUIET_DEPENDENCIES.items():
        environ.setdefault(name, value)
    try:  # already imported (a test, a library user): switch its bars off directly
        if "transformers" in sys.modules:
            sys.modules["transformers"].utils.logging.disable_progress_bar()
    except Exception:  # pragma: no cover - best effort on unknown versions
        pass


class CliLogHandler(logging.Handler):
    """Log records to stderr, each distinct message once.

    While `holding` (a one-shot command before it finishes), records wait: when the command fails
    its error line says what went wrong, so warnings about the same failure are not printed again;
    when it succeeds they are released after the answer.
    """

    def __init__(self, *, verbose: int = 0) -> None:
        super().__init__()
        self.verbose = verbose
        self.held: list[logging.LogRecord] = []
        self.holding = False
        self.hold_verbose = False  # hold with -v too (a full-screen app owns the terminal meanwhile)
        self._seen: set[str] = set()
        fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s" if verbose else "%(levelname_lower)s: %(message)s"
        self.setFormatter(logging.Formatter(fmt, datefmt="%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        record.levelname_lower = record.levelname.lower()
        if self.holding and (not self.verbose or self.hold_verbose):
            self.held.append(record)
            return
        self._write(record)

    def _write(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # pragma: no cover - a bad log call must not break the command
            self.handleError(record)
            return
        if not self.verbose:
            line = line.split("\n", 1)[0]  # tracebacks only with -v
            if line in self._seen:
                return
            self._seen.add(line)
            line = wrap_text(Text(line), err.width).plain  # -v lines stay whole, to grep
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def flush_held(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for record in held:
            self._write(record)

    def drop_held(self) -> int:
        """Forget held records (the command failed and says so itself); returns how many."""
        self.holding = False
        n, self.held = len(self.held), []
        return n


def setup_logging(level: str, verbose: int = 0, *, quiet: bool = False, hold: bool = False) -> CliLogHandler:
    """One handler on the root logger; -v info, -vv debug; dependencies stay at WARNING unless -vv."""
    if verbose == 0:
        quiet_dependencies()
    chosen = {0: level, 1: "INFO"}.get(verbose, "DEBUG")
    numeric = getattr(logging, str(chosen).upper(), logging.WARNING)
    if quiet and verbose == 0:
        numeric = max(numeric, logging.ERROR)
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, CliLogHandler):
            root.removeHandler(h)
    handler = CliLogHandler(verbose=verbose)
    handler.holding = hold
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose >= 2 else max(numeric, logging.WARNING))
    return handler


def wrap_offsets(plain: str, width: int, indent: int = 2) -> list[int]:
    """Where to break `plain` (at spaces) so each line fits `width` columns, lines after the first indented.

    A word longer than a line is not split (ids and paths stay whole to copy): that line runs past.
    """
    offsets: list[int] = []
    start, room = 0, width
    room_after = max(width - indent, 20)
    while len(plain) - start > room:
        cut = plain.rfind(" ", start + 1, start + room + 1)
        if cut <= start:
            cut = plain.find(" ", start + room)
            if cut == -1:
                break
        offsets.append(cut)
        start, room = cut + 1, room_after
    return offsets


def wrap_text(text: Text, width: int, indent: int = 2) -> Text:
    """`text` broken into lines of `width` columns with a hanging indent (styles kept)."""
    if "\n" in text.plain:
        return Text("\n").join(wrap_text(line, width, indent) for line in text.split("\n"))
    lead = len(text.plain) - len(text.plain.lstrip(" "))  # an indented line keeps its indent when it wraps
    offsets = wrap_offsets(text.plain, width, lead + indent)
    if not offsets:
        return text
    pieces = text.divide(offsets)
    out = pieces[0].copy()
    for piece in list(pieces)[1:]:
        out.append("\n" + " " * (lead + indent))
        out.append(piece[1:])  # the space the line broke at
    return out


def say(markup: str, *, console: Console | None = None, indent: int = 2, markup_ok: bool = True) -> None:
    """A line for the user (a notice, a summary, progress): on stderr, wrapped to the terminal's width (80
    when stderr is not a terminal), its continuation lines indented. Pass text that is not Rich markup
    with markup_ok=False."""
    console = console or err
    text = Text.from_markup(markup) if markup_ok else Text(markup)
    text.rstrip()
    console.print(wrap_text(text, console.width, indent), soft_wrap=True, highlight=False)


def error_line(exc: BaseException) -> str:
    """One line: what happened and what to do (CoveyError's str carries its hint)."""
    text = " ".join(str(exc).split())
    return f"error: {text}"


def print_error(exc: BaseException) -> None:
    err.print(escape(error_line(exc)), markup=True, highlight=False)


def print_json(data: Any) -> None:
    """One JSON document on stdout (never wrapped, never coloured)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


@dataclass
class Column:
    header: str
    no_wrap: bool = False  # ids, model names, addresses a user copies: never split
    justify: str = "left"
    terminal: bool = True  # shown in the terminal table
    pipe: bool = True  # in the TSV (False: a terminal cell folding other columns together)
    short: dict[int, str] | None = None  # row -> other text for the terminal table (shorter, or on two lines)
    header_short: str = ""  # a shorter header for the terminal table


@dataclass
class Grid:
    """Rows of plain strings; printed as a table that fits the terminal, or TSV in a pipe."""

    columns: Sequence[Column]
    rows: list[Sequence[str]] = field(default_factory=list)
    title: str = ""
    caption: Sequence[str] = ()

    def add(self, *cells: Any) -> None:
        self.rows.append(["" if c is None else str(c) for c in cells])


def print_grid(grid: Grid, console: Console | None = None) -> None:
    console = console or out
    if not console.is_terminal:
        _print_tsv(grid, console)
    else:
        _print_table(grid, console)
    for line in grid.caption:  # with the table's own console, or on stderr when the table is the command's output
        say(line, console=None if console is out else console, markup_ok=False)


def _tsv_cell(text: str) -> str:
    return " ".join(text.replace("\t", " ").split("\n")).strip()


def _print_tsv(grid: Grid, console: Console) -> None:
    shown = [i for i, c in enumerate(grid.columns) if c.pipe]
    lines = ["\t".join(grid.columns[i].header.replace("\n", " ") for i in shown)]
    lines += ["\t".join(_tsv_cell(row[i]) for i in shown) for row in grid.rows]
    text = "\n".join(lines) + "\n"
    if console is out:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        console.file.write(text)


def _print_table(grid: Grid, console: Console) -> None:
    from rich import box

    shown = [i for i, c in enumerate(grid.columns) if c.terminal]
    table = Table(box=box.SIMPLE_HEAD, title=grid.title or None, title_justify="left", pad_edge=False,
                  padding=(0, 1), collapse_padding=True, show_edge=False, expand=False)
    for i in shown:
        c = grid.columns[i]
        table.add_column(c.header_short or c.header, no_wrap=c.no_wrap, overflow="fold", justify=c.justify)  # type: ignore[arg-type]
    for r, row in enumerate(grid.rows):
        table.add_row(*[escape((grid.columns[i].short or {}).get(r, row[i])) for i in shown])
    if _min_width(grid, shown) > console.width:
        _print_records(grid, console)
        return
    console.print(table)


def _min_width(grid: Grid, shown: Iterable[int]) -> int:
    """Width the table needs when only wrapping columns give way (each of those keeps ~12 cells)."""
    total = 0
    for i in shown:
        c = grid.columns[i]
        cells = [c.header_short or c.header, *((c.short or {}).get(r, row[i]) for r, row in enumerate(grid.rows))]
        longest = max((len(line) for cell in cells for line in cell.split("\n")), default=0)
        total += (longest if c.no_wrap else min(longest, 12)) + 3
    return total


def _print_records(grid: Grid, console: Console) -> None:
    """Too narrow for a table: one block per row, `header  value` lines."""
    if grid.title:
        console.print(escape(grid.title), style="bold")
    labels = [c.header.replace("\n", " ") for c in grid.columns]
    width = max(len(label) for label in labels)
    for row in grid.rows:
        for label, cell in zip(labels, row):
            if not cell:
                continue
            first, *rest = cell.split("\n")
            console.print(f"{label:<{width}}  {escape(first)}")
            for line in rest:
                console.print(f"{'':<{width}}  {escape(line)}")
        console.print()


def render_nodes_table(nodes: Sequence[NodeInfo], refused: Sequence[RefusedNode] = ()) -> Table:
    """The directory as a rich table for ``covey nodes``; refused nodes are listed under it."""
    from rich import box
    from rich.table import Table

    table = Table(title="covey nodes", title_justify="left", caption_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("node")
    table.add_column("address", overflow="fold")
    table.add_column("models (* loaded)", min_width=12, overflow="fold")
    table.add_column("RAM GiB\nfree/all", justify="right")
    table.add_column("cpu", justify="right")
    table.add_column("tok/s", justify="right")
    table.add_column("J/tok", justify="right")
    table.add_column("battery", justify="right")
    for n in nodes:
        models = "\n".join(f"{m.model_id}{'*' if m.loaded else ''}" for m in n.models) or "-"
        cpu = f"{n.cpu_cores or '-'}{' ' + n.accelerator if n.accelerator else ''}"
        table.add_row(
            f"{escape(n.name)}\n[dim]{escape(str(n.node_id)[:8])}[/dim]", f"{escape(n.address or '-')}\n[dim]{n.source}[/dim]",
            escape(models),
            f"{_gib(n.ram_free_bytes)}/{_gib(n.ram_total_bytes)}", cpu,
            f"{n.tokens_per_second:.0f}" if n.tokens_per_second else "-",
            f"{n.joules_per_token:.3g}" if n.joules_per_token else "-", _battery(n),
        )
    lines = [f"{'[yellow]foreign[/yellow]' if r.foreign else '[red]refused[/red]'} {escape(r.key.split('.')[0])} at "
             f"{escape(r.address or '?')}: {escape(r.reason)}" for r in refused]
    if not nodes:
        lines.insert(0, "no nodes found: start one with `covey node join`, or add --peer HOST:PORT")
    if lines:
        table.caption = "\n".join(lines)
    return table


def _gib(n: int) -> str:
    gib = n / 1024**3
    return f"{gib:.0f}" if gib >= 10 else f"{gib:.1f}"


def _battery(n: NodeInfo) -> str:
    if not n.battery.present:
        return "-"
    return f"{n.battery.percent:.0f}%{' bat' if n.battery.on_battery else ' ac'}"


# -- what `covey nodes`, `covey ask` and `covey demo` print -----------------------------------------

def nodes_grid(nodes: Sequence[NodeInfo], refused: Iterable[RefusedNode] = ()) -> Grid:
    """The directory: one row per node; the terminal table folds RAM, speed and battery into one cell."""
    # In the terminal the node's short id sits under its name and the source under the address; the TSV
    # has each in its own column.
    named: dict[int, str] = {}
    located: dict[int, str] = {}
    listed: dict[int, str] = {}  # a model a line in the terminal; a comma-separated list in the TSV
    cols = [Column("node", no_wrap=True, short=named), Column("id", no_wrap=True, terminal=False),
            Column("address", no_wrap=True, short=located), Column("source", terminal=False),
            Column("models (* loaded)", no_wrap=True, short=listed), Column("capacity", pipe=False),
            Column("ram_free_gib", terminal=False), Column("ram_total_gib", terminal=False),
            Column("cpu", terminal=False), Column("tok/s", terminal=False), Column("J/tok", terminal=False),
            Column("battery", terminal=False)]
    grid = Grid(cols, title="covey nodes")
    for row, n in enumerate(nodes):
        models = ", ".join(f"{m.model_id}{'*' if m.loaded else ''}" for m in n.models) or "-"
        listed[row] = models.replace(", ", "\n")
        cpu = f"{n.cpu_cores or '-'} cores{' ' + n.accelerator if n.accelerator else ''}"
        ram = f"{_gib(n.ram_free_bytes)}/{_gib(n.ram_total_bytes)}"
        tps = f"{n.tokens_per_second:.0f}" if n.tokens_per_second else "-"
        jpt = f"{n.joules_per_token:.3g}" if n.joules_per_token else "-"
        battery = _battery_state(n)
        capacity = "\n".join([f"RAM {ram} GiB free", f"{cpu}", f"{tps} tok/s, {jpt} J/tok", f"battery {battery}"]
                             + ([n.note] if n.note else []))
        named[row] = f"{n.name}\n{str(n.node_id)[:8]}"
        located[row] = f"{n.address or '-'}\n{n.source}"
        grid.add(n.name, str(n.node_id), n.address or "-", n.source,
                 models, capacity, _gib(n.ram_free_bytes), _gib(n.ram_total_bytes), cpu, tps, jpt, battery)
    notes = [f"refused {r.key.split('.')[0]} at {r.address or '?'}: {r.reason}" for r in refused]
    if not nodes:
        notes.insert(0, "no nodes found: start one with `covey node join`, or add --peer HOST:PORT")
    grid.caption = notes
    return grid


def _battery_state(n: NodeInfo) -> str:
    if not n.battery.present:
        return "-"
    return f"{n.battery.percent:.0f}% {'on battery' if n.battery.on_battery else 'on AC'}"


class Status:
    """A status line on stderr until the first token (only when stderr is a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self._status = err.status("thinking…", spinner="dots") if enabled and err.is_terminal else None
        if self._status is not None:
            self._status.start()

    def update(self, text: str) -> None:
        if self._status is not None:
            self._status.update(text)

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


class waiting:
    """`with waiting(enabled=...) as status:` shows the status line until the first token."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled

    def __enter__(self) -> Status:
        self.status = Status(self.enabled)
        return self.status

    def __exit__(self, *exc) -> None:
        self.status.stop()


async def print_stream(events, *, json_out: bool = False, quiet: bool = False,
                       status: Status | None = None) -> AnswerResult | None:
    """Tokens to stdout as they come; each notice once on stderr; sources after the answer; the summary on
    stderr. Returns the result (None when the stream ended without one)."""
    from covey.orchestrator.results import AnswerResult, Notice, Token
    from covey.rag.grounding import NOT_FROM_DOCUMENTS

    status = status or Status(False)
    shown: list[Notice] = []
    attempt = 0
    wrote = False
    # Into a pipe or a file only the answer that stands is written, once it is known: an unsure first
    # rung's answer, streamed and then escalated, would otherwise sit above the answer a script reads.
    live = not json_out and sys.stdout.isatty()
    async for ev in events:
        if isinstance(ev, Token):
            status.stop()
            if not live:
                continue
            if ev.attempt != attempt and wrote:
                sys.stdout.write("\n")
                if quiet:  # the escalation notice is not shown: still say the answer above does not stand
                    say("[bold yellow]✗ not kept:[/bold yellow] the answer above was unsure; "
                        "the next rung's answer follows")
            attempt = ev.attempt
            sys.stdout.write(ev.text)
            sys.stdout.flush()
            wrote = True
        elif isinstance(ev, Notice) and ev.kind == "replaced":  # the answer above does not stand
            if json_out or not wrote:
                continue  # nothing was shown to withdraw (into a pipe only the answer that stands is written)
            sys.stdout.write("\n")
            sys.stdout.flush()
            why = "the answer above does not stand" if quiet else escape(ev.text)  # the notes say why, unless -q
            say(f"[bold yellow]✗ replaced:[/bold yellow] {why}; the answer that stands follows")
            wrote = False
        elif isinstance(ev, Notice):
            shown.append(ev)
            if json_out or quiet:
                continue
            status.stop()
            if wrote:
                sys.stdout.write("\n")
                sys.stdout.flush()
                wrote = False
            say(f"[dim]— {escape(ev.text)} —[/dim]")
        elif isinstance(ev, AnswerResult):
            status.stop()
            if json_out:
                from covey.cli_json import AskOutput, dump

                print_json(dump(AskOutput(**ev.model_dump(), notices=tuple(shown))))
                return ev
            if not live and ev.text:
                sys.stdout.write(ev.text)
                wrote = True
            if wrote:
                sys.stdout.write("\n")
            if any(n.startswith(NOT_FROM_DOCUMENTS) for n in ev.notes):
                sys.stdout.write(f"({NOT_FROM_DOCUMENTS})\n")
            for s in ev.sources:
                sys.stdout.write(f"[{s.n}] {s.path} {s.position}".rstrip() + "\n")
            sys.stdout.flush()
            if quiet:
                return ev
            said = {n.text for n in shown}
            for note in ev.notes:
                if note not in said:
                    say(f"[dim]note: {escape(note)}[/dim]")
            say(f"[dim]{escape(ev.summary_line())}[/dim]")
            return ev
    return None
