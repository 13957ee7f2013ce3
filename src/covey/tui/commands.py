"""The chat's slash commands: the table `/help` prints, parsing, and the closest name for a typo."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    needs_arg: bool = False


COMMANDS: tuple[Command, ...] = (
    Command("agent", "/agent NAME|auto", "answer with this agent from now on (auto: let the router pick)", True),
    Command("route", "/route ROUTE", "the last question should have gone to ROUTE: kept as an example for the router",
            True),
    Command("why", "/why", "explain the last routing and placement"),
    Command("nodes", "/nodes", "the live nodes in full (also the side panel)"),
    Command("rag", "/rag add PATH | /rag search TEXT", "add files to your documents, or search them", True),
    Command("energy", "/energy", "this session's energy and carbon next to published cloud figures"),
    Command("new", "/new [SESSION]", "start a new conversation (or continue SESSION)"),
    Command("sessions", "/sessions", "past conversations kept in the history"),
    Command("help", "/help", "commands and keys"),
)
BY_NAME = {c.name: c for c in COMMANDS}


class CommandError(ValueError):
    """A slash command the chat cannot run as typed; str() says what to type instead."""


@dataclass(frozen=True)
class Invocation:
    command: Command
    arg: str


def is_command(text: str) -> bool:
    """A line starting with '/' (but not '//', which sends a literal slash)."""
    stripped = text.lstrip()
    return stripped.startswith("/") and not stripped.startswith("//")


def parse(text: str) -> Invocation:
    """'/agent coder' -> (agent, 'coder'); an unknown name suggests the closest known one."""
    body = text.strip()[1:]
    name, _, arg = body.partition(" ")
    name = name.strip().lower()
    arg = arg.strip()
    if not name:
        raise CommandError("type a command after '/': " + ", ".join(f"/{c.name}" for c in COMMANDS))
    command = BY_NAME.get(name)
    if command is None:
        close = closest(name, [c.name for c in COMMANDS])
        hint = f"did you mean /{close}? " if close else ""
        raise CommandError(f"unknown command /{name}: {hint}(/help lists them)")
    if command.needs_arg and not arg:
        raise CommandError(f"/{name} needs an argument: {command.usage}")
    return Invocation(command, arg)


def closest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """The choice nearest to `word` (a prefix counts first), or None when nothing is close."""
    prefixed = [c for c in choices if c.startswith(word)]
    if len(prefixed) == 1:
        return prefixed[0]
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return found[0] if found else None


def help_text(keys: dict[str, str]) -> str:
    """`/help`: every command and every key (Markdown)."""
    lines = ["**Commands**", ""]
    lines += [f"- `{c.usage}`: {c.help}" for c in COMMANDS]
    lines += ["", "A line starting with `//` is sent as a question beginning with `/`.", "", "**Keys**", ""]
    lines += [f"- `{key}`: {KEY_HELP[action]}" for action, key in keys.items()]
    lines += ["", "Up and Down on the first or last line of the input recall earlier questions. "
              "Keys are set in `[chat] keys` (`covey config keys`)."]
    return "\n".join(lines)


KEY_HELP = {
    "send": "send the question (or run the command)",
    "newline": "a new line in the question",
    "cancel": "stop the answer being written (frees the node)",
    "nodes": "show or hide the panel of live nodes",
    "help": "this help",
    "scroll_up": "scroll the conversation up",
    "scroll_down": "scroll the conversation down",
    "quit": "leave the chat",
}
