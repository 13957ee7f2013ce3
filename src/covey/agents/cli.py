"""`covey agents`: the agents in use, the routes each serves, its ladder, and which rungs a node can run now."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Optional

import typer


def agents(
    peer: Optional[list[str]] = typer.Option(None, "--peer", help="node address to use without discovery (repeatable)"),
    discover: Optional[bool] = typer.Option(None, "--discover/--no-discover",
                                            help="browse the LAN with zeroconf (default: on)"),
    wait: float = typer.Option(2.0, help="seconds to listen for nodes"),
    interface: Optional[str] = typer.Option(None, help="interface or IP to browse on"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR", show_envvar=False,
                                            help="all covey state lives here"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML config file (default DATA_DIR/config.toml)"),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, show_default=False, help="more log output"),
) -> None:
    """List agents (shipped and DATA_DIR/agents.toml), their routes and ladders, and where each rung runs now."""
    from covey.agents.roster import default_roster
    from covey import cli_run
    from covey.cli_output import Column, Grid, print_grid, print_json, say
    from covey.errors import CoveyError
    from covey.models.catalog import Catalog
    from covey.orchestrator.placement import PlacementPolicy

    run = cli_run.Run(verbose, data_dir=data_dir, config_file=config, orchestrator={
        "static_peers": peer or None, "discover": discover, "discovery_interface": interface, "embedded": "never"})
    settings = run.settings
    catalog = Catalog(models_dir=settings.data_dir / "models")
    try:
        roster = default_roster(settings.agents_file, catalog=catalog)
        nodes, _refused = asyncio.run(cli_run.directory_snapshot(settings, wait))
    except CoveyError as exc:
        run.fail(exc, 2)
    policy = PlacementPolicy(min_battery_percent=settings.orchestrator.min_battery_percent)
    rows = agent_rows(roster, nodes, catalog, policy)
    run.handler.flush_held()
    if json_out:
        from covey.cli_json import AgentsOutput, dump

        print_json(dump(AgentsOutput.model_validate(
            {"agents_file": str(settings.agents_file), "nodes": [n.name for n in nodes], "agents": rows})))
        return
    grid = Grid([Column("agent", no_wrap=True), Column("routes", no_wrap=True), Column("ladder", no_wrap=True),
                 Column("nodes now")], title="covey agents")
    for row in rows:
        routes = "\n".join(r if r in row["serves"] else f"({r})" for r in row["routes"])
        ladder = "\n".join(f"{i + 1}. {r['model']}" for i, r in enumerate(row["ladder"]))
        where = "\n".join(", ".join(r["nodes"]) or "-" for r in row["ladder"])
        grid.add(row["name"], routes, ladder, where)
    print_grid(grid)
    if not nodes:
        o = settings.orchestrator
        served = ", ".join(dict.fromkeys([o.embedded_model, *o.embedded_extra_models]))
        say("no nodes found, so no rung runs now: start one with `covey node join`, or pass --peer HOST:PORT "
                  f"(`covey ask` also starts an in-process node serving {served}, those installed, when it finds none)", markup_ok=False)
    if any(r not in row["serves"] for row in rows for r in row["routes"]):
        say("(route) in parentheses: another agent, defined later, serves that route", markup_ok=False)


def agent_rows(roster, nodes, catalog, policy) -> list[dict]:
    """Each agent as data: its routes, the routes it serves (the last definition wins), and per rung the
    nodes that could run that model now (placement's own test, `why_not`)."""
    from covey.errors import CoveyError
    from covey.orchestrator.placement import why_not

    rows = []
    for agent in roster:
        rungs = []
        for model in agent.ladder:
            try:
                spec = catalog.get(model)
            except CoveyError:
                spec = None
            rungs.append({"model": model, "nodes": [n.name for n in nodes if why_not(n, spec, model, policy) is None]})
        served = [r for r in agent.routes if roster.for_route(r) is agent]
        rows.append({"name": agent.name, "description": agent.description, "routes": list(agent.routes),
                     "serves": served, "ladder": rungs, "checker": agent.checker, "grounded": agent.grounded})
    return rows
