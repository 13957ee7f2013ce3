"""`covey serve` and `covey serve keys create|list|revoke` (mounted by covey.cli)."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape

from covey.errors import CoveyError
from covey.settings import Settings

app = typer.Typer(help="The OpenAI-compatible HTTP API.", invoke_without_command=True)
keys_app = typer.Typer(help="API keys for `covey serve` (stored hashed in DATA_DIR/api_keys.json).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")

console = Console(highlight=False)
err = Console(stderr=True)

DataDir = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR", help="all covey state lives here")


def _load(**given) -> Settings:
    try:
        return Settings.load(**given)
    except CoveyError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None


@app.callback()
def serve(
    ctx: typer.Context,
    host: Optional[str] = typer.Option(None, help="address to bind (default 127.0.0.1; others need API keys)"),
    port: Optional[int] = typer.Option(None, help="HTTP port (default 8088; 0 picks a free one)"),
    peer: Optional[list[str]] = typer.Option(None, "--peer", help="node address host:port (repeatable)"),
    discover: Optional[bool] = typer.Option(None, "--discover/--no-discover", help="browse the LAN (zeroconf)"),
    embedded: Optional[str] = typer.Option(None, help="in-process node: auto, always or never"),
    data_dir: Optional[Path] = DataDir,
    config: Optional[Path] = typer.Option(None, "--config", help="TOML config file (default DATA_DIR/config.toml)"),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="more log output (-v info, -vv debug)"),
) -> None:
    """Serve covey as an OpenAI-compatible API: /v1/chat/completions, /v1/models, /v1/embeddings, /metrics."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _load(data_dir=data_dir, config_file=config, serve={"host": host, "port": port},
                     orchestrator={"static_peers": peer or None, "discover": discover, "embedded": embedded})
    level = {0: settings.log_level, 1: "INFO"}.get(verbose, "DEBUG")
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    async def main() -> None:
        from covey.api.server import api_keys, serve as run
        from covey.wiring import build

        keys = api_keys(settings)  # refuse a LAN bind without keys before loading anything
        orch = await build(settings)
        try:
            def ready(url: str) -> None:
                auth = "API key required" if keys is not None else "no API key needed on loopback"
                console.print(f"serving {url}", soft_wrap=True, markup=False)
                console.print(f"{auth}; models: covey-auto, " + ", ".join(
                    ["covey-agent/" + a for a in orch.agent_names()] + orch.served_models()), markup=False)
                console.print("ready")  # a line scripts and tests can wait for
                sys.stdout.flush()

            await run(settings, orch, on_ready=ready, keys=keys)
        finally:
            await orch.close()

    try:
        asyncio.run(main())
    except CoveyError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _keys(data_dir: Optional[Path]):
    from covey.api.keys import FILENAME, ApiKeys

    return ApiKeys(_load(data_dir=data_dir).data_dir / FILENAME)


@keys_app.command("create")
def keys_create(name: str = typer.Argument(..., help="what the key is for, e.g. 'laptop'"),
                data_dir: Optional[Path] = DataDir) -> None:
    """Create a key; it is shown once (only its hash is kept)."""
    try:
        key, secret = _keys(data_dir).create(name)
    except CoveyError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    err.print(f"created key {key.key_id} '{key.name}'; copy it now, it is not shown again:", markup=False)
    typer.echo(secret)


@keys_app.command("list")
def keys_list(data_dir: Optional[Path] = DataDir) -> None:
    """List keys (ids and names, never the secrets)."""
    try:
        keys = _keys(data_dir).list()
    except CoveyError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    if not keys:
        console.print("no API keys yet: `covey serve keys create NAME`")
        return
    from covey.cli_output import Column, Grid, print_grid

    grid = Grid([Column("id", no_wrap=True), Column("name"), Column("created", no_wrap=True),
                 Column("revoked", no_wrap=True)])
    for k in keys:
        grid.add(k.key_id, k.name, f"{k.created:%Y-%m-%d %H:%M}", f"{k.revoked:%Y-%m-%d %H:%M}" if k.revoked else "")
    print_grid(grid)  # TSV in a pipe


@keys_app.command("revoke")
def keys_revoke(key: str = typer.Argument(..., help="key id or name"), data_dir: Optional[Path] = DataDir) -> None:
    """Revoke a key: a running server refuses it from the next request."""
    try:
        done = _keys(data_dir).revoke(key)
    except CoveyError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from None
    console.print(f"revoked {done.key_id} '{done.name}'", markup=False)
