"""`covey rag ...` commands and `covey eval rag`: parse, build a Store, call it, print with rich."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from covey.settings import RagSettings

from covey.cli_output import Column, Grid, print_grid
from covey.cli_run import NeverDiscovers
from covey.errors import CoveyError
from covey.rag.store import Store
from covey.rag.types import IngestProgress

app = typer.Typer(help="Ground answers in your documents: add files, search them, inspect collections.",
                  no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
logger = logging.getLogger(__name__)

CollectionOpt = Annotated[str, typer.Option("--collection", "-c", help="named collection")]
DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="covey state folder (default COVEY_DATA_DIR or ~/.local/share/covey)")
]
EmbedderOpt = Annotated[
    str | None, typer.Option("--embedder", help="embedding model: the packaged all-MiniLM-L6-v2 (default, run with "
                                               "numpy) or a sentence-transformers name/path")
]


def _rag_settings(data_dir: Path | None, embedder: str | None = None) -> tuple[Path, RagSettings]:
    from covey.settings import Settings

    settings = Settings.load(data_dir=data_dir)
    rag = settings.rag
    if embedder:
        rag = rag.model_copy(update={"embedder": embedder})
    return settings.data_dir, rag


@contextmanager
def _store(collection: str, data_dir: Path | None, embedder: str | None = None, *,
           create: bool = False) -> Iterator[Store]:
    try:
        root, rag = _rag_settings(data_dir, embedder)
        with Store.in_data_dir(root, collection, settings=rag, create=create) as store:
            yield store
    except CoveyError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    except OSError as exc:  # e.g. a path argument longer than the file system allows (ENAMETOOLONG)
        where = f" ({str(exc.filename)[:60]}...)" if exc.filename else ""
        err.print(f"[red]error:[/red] {escape(exc.strerror or str(exc))}{escape(where)}: check the path and try again")
        raise typer.Exit(1) from exc


@app.command("add")
def add(
    paths: Annotated[list[Path], typer.Argument(help="files and folders (folders are walked recursively)")],
    collection: CollectionOpt = "default",
    include: Annotated[list[str] | None, typer.Option("--include", "-i", help="glob files must match, e.g. '*.md'")] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", "-x", help="glob of files to leave out")] = None,
    data_dir: DataDirOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Ingest files: text, Markdown, HTML, PDF and source code. Unchanged files are skipped."""
    with _store(collection, data_dir, embedder, create=True) as store:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("indexing", total=None)

            def on_progress(event: IngestProgress) -> None:
                bar.update(task, total=event.total, completed=event.done,
                           description=f"indexing {escape(Path(event.path).name)[:40]}")

            report = store.add(paths, include=include or (), exclude=exclude or (), progress=on_progress)
    if len(report.added) + len(report.updated) <= 30:  # a big ingest gets the summary line only
        for path in report.added:
            console.print(f"[green]added[/green]    {escape(path)}")
        for path in report.updated:
            console.print(f"[yellow]updated[/yellow]  {escape(path)}")
    for item in report.skipped:
        console.print(f"[red]skipped[/red]  {escape(item.path)}: {escape(item.reason)}")
    console.print(
        f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
        f"{len(report.skipped)} skipped; {report.chunks_added} chunk{'' if report.chunks_added == 1 else 's'} in "
        f"{report.seconds:.1f} s "
        f"(collection {collection!r})"
    )
    if report.skipped and not (report.added or report.updated or report.unchanged):
        raise typer.Exit(1)


@app.command("rm")
def rm(
    path: Annotated[Path, typer.Argument(help="a source file, or a folder to remove every source under it")],
    collection: CollectionOpt = "default",
    data_dir: DataDirOpt = None,
) -> None:
    """Remove a source (its chunks leave the index)."""
    with _store(collection, data_dir) as store:
        removed = store.remove(path)
    console.print(f"removed {escape(str(path))} ({removed} chunks)")


@app.command("ls")
def ls(collection: CollectionOpt = "default", data_dir: DataDirOpt = None) -> None:
    """List the sources of a collection."""
    with _store(collection, data_dir) as store:
        sources = store.sources()
    if not sources:
        console.print(f"collection {collection!r} is empty; add files with `covey rag add PATH`")
        return
    base = os.path.commonpath([s.path for s in sources]) if len(sources) > 1 else str(Path(sources[0].path).parent)
    relative: dict[int, str] = {}  # the terminal table shows paths under the title's folder; the TSV whole paths
    grid = Grid([Column("source", short=relative), Column("kind"), Column("chunks", justify="right"),
                 Column("size", justify="right"), Column("added", no_wrap=True)],
                title=f"{len(sources)} sources under {base}")
    for i, s in enumerate(sources):
        when = datetime.fromtimestamp(s.added_at).strftime("%Y-%m-%d %H:%M")
        grid.add(s.path, s.kind, s.chunks, _size(s.bytes), when)
        relative[i] = os.path.relpath(s.path, base)
    print_grid(grid)


@app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    k: Annotated[int, typer.Option("-k", min=1, help="passages to show")] = 5,
    collection: CollectionOpt = "default",
    data_dir: DataDirOpt = None,
    embedder: EmbedderOpt = None,
) -> None:
    """Show the passages most similar to a query, with their score and position."""
    with _store(collection, data_dir, embedder) as store:
        try:
            passages = store.search(query, k)
        except CoveyError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from exc
    if not passages:
        console.print(f"nothing found in collection {collection!r}")
        return
    for i, p in enumerate(passages, 1):
        trail = f"  [dim]{escape(' > '.join(p.heading_trail))}[/dim]" if p.heading_trail else ""
        console.print(f"[bold][{i}][/bold] {p.score:.3f}  {escape(p.label)}{trail}")
        snippet = " ".join(p.text.split())
        console.print("    " + escape(snippet[:300] + ("…" if len(snippet) > 300 else "")))


@app.command("stats")
def stats(collection: CollectionOpt = "default", data_dir: DataDirOpt = None) -> None:
    """Sizes, the index in use (exact or HNSW) and the embedding model of a collection."""
    with _store(collection, data_dir) as store:
        s = store.stats()
        others = Store.collections(store.path.parent)
    grid = Grid([Column("stat", no_wrap=True), Column("value")])
    rows = [
        ("collection", s.collection), ("path", s.path), ("sources", str(s.sources)), ("chunks", str(s.chunks)),
        ("index", f"{s.index_kind} ({s.index_detail}); HNSW above {s.approximate_above} chunks"),
        ("dead vectors", str(s.dead_vectors)), ("embedder", f"{s.embedder or '-'} ({s.dim or '-'} dims)"),
        ("generation", str(s.generation)), ("disk", _size(s.disk_bytes)), ("collections", ", ".join(others)),
    ]
    for key, value in rows:
        grid.add(key, value)
    print_grid(grid)


def eval_rag(
    file: Annotated[Path, typer.Argument(help='JSON lines: {"query": ..., "expected_sources": [...]}')],
    collection: CollectionOpt = "default",
    data_dir: DataDirOpt = None,
    embedder: EmbedderOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show each query's ranked sources")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON document (docs/json.md)")] = False,
    no_discover: bool = NeverDiscovers,
) -> None:
    """Retrieval quality of a collection: recall@1/5/10 and MRR over a question set."""
    from covey.rag.evaluation import evaluate, load_cases

    with _store(collection, data_dir, embedder) as store:
        try:
            report = evaluate(store, load_cases(file))
        except CoveyError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from exc
    if json_out:
        from covey.cli_json import RagEvalOutput, dump
        from covey.cli_output import print_json

        print_json(dump(RagEvalOutput(collection=collection, report=report)))
        return
    if verbose:
        for r in report.results:
            rank = r.first_hit_rank or "-"
            top = ", ".join(Path(s).name for s in r.ranked_sources[:3])
            console.print(f"{rank!s:>3}  {escape(r.query)}  [dim]{escape(top)}[/dim]")
    grid = Grid([Column("metric", no_wrap=True), Column("value", justify="right")],
                title=f"{report.cases} queries on collection {collection!r}")
    grid.add("queries", report.cases)  # the title's count, for the TSV too
    for k, value in report.recall.items():
        grid.add(f"recall@{k}", f"{value:.3f}")
    grid.add("MRR", f"{report.mrr:.3f}")
    print_grid(grid)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
