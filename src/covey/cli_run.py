"""How a command runs, shared by `covey.cli` and every sub-CLI: settings, logging, errors, the asyncio run.

A covey error prints as one clear line and exits non-zero (never a traceback); Ctrl-C exits 130; an
answer that is "I could not get this right" exits UNANSWERED_EXIT (3).
Sub-CLIs import this module, never `covey.cli` (which mounts them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, NoReturn

import typer

from covey.cli_output import err, print_error, setup_logging
from covey.errors import CoveyError
from covey.settings import Settings

UNANSWERED_EXIT = 3
"""`covey ask`'s exit code when no answer passed its checks (1 and 2 are errors, 130 Ctrl-C)."""

# The discovery flag of every command that may browse the LAN, and of those that never do: scripts pass
# --no-discover to every covey command, so each accepts it.
Discover = typer.Option(None, "--discover/--no-discover", help="browse the LAN with zeroconf (default: on)")
NeverDiscovers = typer.Option(False, "--no-discover", help="this command never browses the LAN (accepted as elsewhere)")


class Run:
    """One command's settings, logging and error handling: errors print one line and exit non-zero."""

    def __init__(self, verbose: int = 0, *, quiet: bool = False, hold: bool = True, **given: Any) -> None:
        self.handler = setup_logging("WARNING", verbose, quiet=quiet, hold=False)
        try:
            self.settings = Settings.load(**given)
        except CoveyError as exc:
            print_error(exc)
            raise typer.Exit(2) from None
        self.handler = setup_logging(self.settings.log_level, verbose, quiet=quiet, hold=hold)

    def __call__(self, coro: Coroutine[Any, Any, object]) -> None:
        try:
            asyncio.run(coro)
        except CoveyError as exc:
            self.handler.drop_held()
            print_error(exc)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            self.handler.flush_held()
            err.print("interrupted")
            raise typer.Exit(130) from None
        except BaseException:  # a bug: show what was logged before the traceback
            self.handler.flush_held()
            raise
        self.handler.flush_held()

    def fail(self, exc: CoveyError, code: int = 1) -> NoReturn:
        self.handler.drop_held()
        print_error(exc)
        raise typer.Exit(code) from None


def _reported_by_cli(record: logging.LogRecord) -> bool:
    """The node's refused models are printed by `node join` itself (and its error, when none is left)."""
    return not (record.name == "covey.device_node.service" and str(record.msg).startswith("not serving"))


def load_settings(verbose: int = 0, **given: Any) -> Settings:
    """Settings for a long-running command (logs print as they come)."""
    command = Run(verbose, hold=False, **given)
    if not verbose:
        command.handler.addFilter(_reported_by_cli)
    return command.settings


def run(coro: Coroutine[Any, Any, object]) -> None:
    """Run a coroutine; covey errors print as one clear line and exit 1 (never a traceback)."""
    try:
        asyncio.run(coro)
    except CoveyError as exc:
        print_error(exc)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None


async def directory_snapshot(settings: Settings, wait: float):
    """Nodes and refused nodes after listening `wait` seconds (when discovery is on)."""
    from covey.wiring import node_pool

    pool = await node_pool(settings)
    try:
        await pool.start()
        if settings.orchestrator.discover:
            await asyncio.sleep(wait)
        return list(pool.directory.nodes()), list(pool.directory.refused())
    finally:
        await pool.close()
