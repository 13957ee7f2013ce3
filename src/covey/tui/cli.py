"""`covey chat` (mounted by covey.cli): build the orchestrator as `covey ask` does, then run the app."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer


def chat(
    peer: Optional[list[str]] = typer.Option(None, "--peer", help="node address to use without discovery (repeatable)"),
    discover: Optional[bool] = typer.Option(None, "--discover/--no-discover",
                                            help="browse the LAN with zeroconf (default: on)"),
    embedded: Optional[str] = typer.Option(None, help="in-process node: auto, always or never"),
    session: Optional[str] = typer.Option(None, help="session id to continue a conversation (`covey logs --sessions`)"),
    agent: Optional[str] = typer.Option(None, help="answer with this agent instead of routing (`covey agents`)"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR", show_envvar=False,
                                            help="all covey state lives here (COVEY_DATA_DIR, default "
                                            "~/.local/share/covey)"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML config file (default DATA_DIR/config.toml)"),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, show_default=False,
                                help="more log output, printed when the chat ends (-v info, -vv debug)"),
) -> None:
    """Chat in the terminal: streamed answers with their energy, live nodes, slash commands (/help)."""
    from covey.cli_run import Run
    from covey.cli_output import waiting
    from covey.errors import BadRequest

    run = Run(verbose, data_dir=data_dir, config_file=config, orchestrator={
        "static_peers": peer or None, "discover": discover, "embedded": embedded})
    run.handler.hold_verbose = True  # the screen is Textual's: every record prints when the chat ends
    if not (sys.stdin.isatty() and sys.stderr.isatty()):  # Textual draws on stderr
        run.fail(BadRequest("covey chat needs a terminal (stdin or stderr is not one)",
                            hint='run it in a terminal, or use `covey ask "..."` in scripts and pipes'), 2)

    async def main() -> None:
        from covey.wiring import build

        with waiting(enabled=True) as status:
            status.update("starting: nodes, router and models…")
            orch = await build(run.settings)
        try:
            if agent is not None and agent not in orch.agent_names():
                from covey.tui.commands import closest

                close = closest(agent, orch.agent_names())
                raise BadRequest(f"no agent {agent!r}" + (f" (did you mean {close!r}?)" if close else ""),
                                 hint=f"pick one of {', '.join(orch.agent_names())} (`covey agents`)")
            app = chat_app(run.settings, orch, session_id=session, agent=agent)
            await app.run_async()
        finally:
            await orch.close()
        if app.return_code:  # Textual printed what went wrong when it gave the terminal back
            raise typer.Exit(app.return_code)

    run(main())


def chat_app(settings, orchestrator, *, session_id: str | None = None, agent: str | None = None):
    """The app for a real orchestrator: carbon and PUE from the energy settings, the RAG store of DATA_DIR."""
    from covey.energy.carbon import resolve_carbon
    from covey.tui.app import ChatApp
    from covey.tui.documents import Documents

    return ChatApp(orchestrator, settings=settings.chat, data_dir=settings.data_dir, carbon=resolve_carbon(settings),
                   pue=settings.energy.pue, session_id=session_id, agent=agent,
                   documents=Documents(settings.data_dir, settings.rag, cwd=Path.cwd()))
