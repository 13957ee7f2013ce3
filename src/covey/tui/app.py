"""`covey chat`: a Textual app around one orchestrator.

The app is handed its orchestrator (constructor injection), so tests drive it with Textual's Pilot
and a scripted orchestrator. What it uses of one:

- `stream(prompt, session_id=..., agent=...)`: Tokens, Notices, then one AnswerResult;
- `agent_names()`;
- `deps.pool`: `nodes()` (live snapshots) and `directory.subscribe(...)` (joins and departures);
- `deps.router.routes` (else `deps.agents.routes()`), to check a `/route` correction;
- `history.sessions()` for `/sessions` (any ConversationStore that lists sessions).

Esc cancels the asyncio task that consumes the stream and closes the stream: the orchestrator's
graph stops, the pool's in-flight count for the node drops and the node stops generating.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from rich.markup import escape
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Footer, Markdown, Static
from textual.worker import Worker

from covey.energy.carbon import CarbonIntensity
from covey.errors import CoveyError
from covey.orchestrator.results import AnswerResult, Notice, Token
from covey.settings import CHAT_KEYS, ChatSettings
from covey.tui import commands
from covey.tui.commands import CommandError
from covey.tui.documents import Documents
from covey.tui.summary import SessionEnergy, answer_line, explain, why_line
from covey.tui.widgets import ChatInput, NodesPanel, Note, Turn, node_card

logger = logging.getLogger(__name__)


def _new_session() -> str:
    return uuid.uuid4().hex[:12]


class ChatApp(App):
    """Ask, watch the answer stream with its energy, and steer covey with slash commands."""

    TITLE = "covey chat"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    #body { height: 1fr; }
    #main { width: 1fr; }
    #conversation { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    #nodes { width: 32; border-left: vkey $primary-darken-2; padding: 0 1; }
    #nodes-title { color: $accent; }
    #status { height: auto; max-height: 2; padding: 0 1; background: $boost; color: $text-muted; }
    #input { height: auto; max-height: 8; min-height: 3; border: tall $primary-darken-2; }
    #input:focus { border: tall $accent; }
    .turn { height: auto; margin: 0 0 1 0; }
    .prompt { color: $accent; }
    .answer { margin: 0; padding: 0; }
    .answer.superseded { color: $text-disabled; }
    .notice { color: $warning; }
    .summary { color: $text-muted; }
    .error { color: $error; }
    .info { margin: 0 0 1 0; }
    Markdown { margin: 0; padding: 0; }
    """
    BINDINGS = [
        Binding(CHAT_KEYS["cancel"], "cancel", "Cancel", id="cancel", priority=True),
        Binding(CHAT_KEYS["nodes"], "toggle_nodes", "Nodes", id="nodes", priority=True),
        Binding(CHAT_KEYS["help"], "help", "Help", id="help", priority=True),
        Binding(CHAT_KEYS["scroll_up"], "scroll_conversation(-1)", "Scroll", id="scroll_up", priority=True,
                show=False),
        Binding(CHAT_KEYS["scroll_down"], "scroll_conversation(1)", "Scroll", id="scroll_down", priority=True,
                show=False),
        Binding(CHAT_KEYS["quit"], "quit", "Quit", id="quit", priority=True),
    ]

    def __init__(self, orchestrator: Any, *, settings: ChatSettings | None = None, data_dir=None,
                 carbon: CarbonIntensity | None = None, pue: float = 1.0, session_id: str | None = None,
                 agent: str | None = None, documents: Documents | None = None) -> None:
        """`data_dir` is where `/route` keeps corrections; `carbon` and `pue` turn joules into gCO2e."""
        super().__init__()
        self.orchestrator = orchestrator
        self.chat = settings or ChatSettings()
        self.data_dir = data_dir
        self.carbon = carbon or CarbonIntensity(g_per_kwh=0.0, source="not given")
        self.pue = pue
        self.session_id = session_id or _new_session()
        self.agent = agent
        self.documents = documents
        self.energy = SessionEnergy(self.carbon, pue)
        self.last_prompt: str | None = None
        self.last_result: AnswerResult | None = None
        self.last_notices: list[Notice] = []
        self.answering: Worker | None = None
        self._panel: bool | None = {"auto": None, "show": True, "hide": False}[self.chat.nodes_panel]
        self._unsubscribe = None

    # -- layout ------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield VerticalScroll(id="conversation")
                yield Static("", id="status")
                yield ChatInput(id="input", placeholder="Ask covey… (/help for commands)")
            yield NodesPanel(id="nodes")
        yield Footer()

    def on_mount(self) -> None:
        if self.chat.keys:
            self.set_keymap(self.chat.keys)
        conv = self.query_one("#conversation", VerticalScroll)
        conv.anchor()
        # Markdown, like the answers: the parser and its widgets are ready before the first token comes
        conv.mount(Markdown(f"**covey chat** · session **{self.session_id}** · `{self._key('send')}` sends, "
                            f"`{self._key('newline')}` breaks the line, `{self._key('cancel')}` stops an answer, "
                            "`/help` lists commands", classes="info welcome"))
        self._place_panel(self.size.width)
        self.refresh_nodes()
        directory = getattr(self._pool(), "directory", None)
        if directory is not None:
            self._unsubscribe = directory.subscribe(self._on_directory)
        self.set_interval(self.chat.refresh_s, self.refresh_nodes)
        self._show_status()
        self.query_one("#input", ChatInput).focus()
        self.run_worker(self._load_session(), group="session")

    async def _load_session(self) -> None:
        """A session continued from the history: its earlier answers count in the session's total."""
        search = getattr(getattr(self.orchestrator, "history", None), "search", None)
        if search is None:
            return
        session = self.session_id
        try:
            turns = await asyncio.to_thread(search, session=session, limit=None)
        except CoveyError as exc:
            self.say(f"could not read the history of session {session}: {exc}", error=True)
            return
        if not turns or session != self.session_id:
            return
        for turn in turns:
            self.energy.add_turn(turn)
        self.say(f"continuing session {session}: {len(turns)} earlier turn{'s' * (len(turns) != 1)}, "
                 "counted in the total below (`covey logs --session` shows them)")
        self._show_status()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def on_resize(self, event) -> None:
        self._place_panel(event.size.width)

    def _place_panel(self, width: int) -> None:
        shown = self._panel if self._panel is not None else width >= self.chat.wide_columns
        self.query_one("#nodes", NodesPanel).display = shown

    def _key(self, action: str) -> str:
        return self.chat.bindings()[action]

    # -- nodes ----------------------------------------------------------------------------------------------

    def _pool(self):
        deps = getattr(self.orchestrator, "deps", None)
        return getattr(deps, "pool", None)

    def nodes(self) -> tuple:
        pool = self._pool()
        return tuple(pool.nodes()) if pool is not None else ()

    def refresh_nodes(self) -> None:
        panels = self.query(NodesPanel)
        if panels:  # none while the app shuts down and a timer still fires
            panels.first().show(self.nodes())

    def _on_directory(self, event) -> None:
        """A node joined, changed or left: show it now, not at the next poll."""
        if event.kind in ("added", "removed") and event.node is not None:
            verb = "joined" if event.kind == "added" else f"left ({event.reason})" if event.reason else "left"
            self.notify(f"node {event.node.name} {verb}", timeout=3)
        self.call_later(self.refresh_nodes)

    # -- input ----------------------------------------------------------------------------------------------

    @on(ChatInput.Submitted)
    async def _submitted(self, message: ChatInput.Submitted) -> None:
        text = message.text
        if commands.is_command(text):
            await self.run_command(text)
            return
        if text.lstrip().startswith("//"):
            text = text.lstrip()[1:]
        if self.answering is not None:
            self.query_one("#input", ChatInput).load_text(message.text)
            self.say(f"an answer is still being written: wait for it, or press {self._key('cancel')} to stop it",
                     error=True)
            return
        self.ask(text)

    def ask(self, prompt: str) -> Worker:
        """Start answering `prompt` (a worker: `action_cancel` stops it)."""
        self.answering = self.run_worker(self._answer(prompt), name="answer", group="answer", exit_on_error=False)
        return self.answering

    async def _answer(self, prompt: str) -> None:
        conv = self.query_one("#conversation", VerticalScroll)
        turn = Turn(prompt)
        await conv.mount(turn)
        self._trim_conversation()
        answer = Markdown(classes="answer")
        await turn.mount(answer)
        stream = Markdown.get_stream(answer)
        notices: list[Notice] = []
        result: AnswerResult | None = None
        attempt = 0
        self._show_status(f"thinking… ({self._key('cancel')} cancels)")
        events = self.orchestrator.stream(prompt, session_id=self.session_id, agent=self.agent)
        try:
            async for ev in events:
                if isinstance(ev, Token):
                    if ev.attempt != attempt:  # a new attempt starts the answer again
                        answer, stream = await self._restart(turn, answer, stream)
                        attempt = ev.attempt
                    await stream.write(ev.text)
                elif isinstance(ev, Notice):
                    notices.append(ev)
                    await turn.mount(Static(f"— {escape(ev.text)} —", classes="notice"))
                    if ev.kind == "replaced":  # the answer above does not stand; the one that does follows
                        answer, stream = await self._restart(turn, answer, stream)
                    self._show_status(f"{ev.kind}… ({self._key('cancel')} cancels)")
                elif isinstance(ev, AnswerResult):
                    result = ev
        except asyncio.CancelledError:
            await stream.stop()
            if turn.is_attached:  # not when the whole app is closing
                await turn.mount(Static("(cancelled: the answer was stopped and the node's slot freed)",
                                        classes="notice"))
            raise
        except CoveyError as exc:
            await turn.mount(Static(f"error: {escape(str(exc))}", classes="error"))
        except Exception as exc:  # a bug: one line here, the traceback in the log
            logger.exception("answer failed")
            await turn.mount(Static(f"error: {escape(type(exc).__name__)}: {escape(str(exc))}", classes="error"))
        finally:
            await stream.stop()
            await events.aclose()  # a stream left suspended (cancelled between events) stops generating now
            self.answering = None
            self._show_status()
        if result is None:
            return
        if not result.text.strip() and not answer.source:
            await stream.write("*(empty answer)*")
        self.last_prompt, self.last_result, self.last_notices = prompt, result, notices
        self.energy.add(result)
        self._show_status()  # the session total counts this answer before its summary line appears
        summary = answer_line(result, self.carbon, self.pue)
        why = why_line(result, notices)
        await turn.mount(Static(escape(summary + (f"\nwhy: {why}" if why else "")), classes="summary"))
        for s in result.sources:
            await turn.mount(Static(escape(f"[{s.n}] {s.path} {s.position}".rstrip()), classes="summary"))

    async def _restart(self, turn: Turn, answer: Markdown, stream):
        await stream.stop()
        answer.add_class("superseded")
        fresh = Markdown(classes="answer")
        await turn.mount(fresh)
        return fresh, Markdown.get_stream(fresh)

    def _show_status(self, doing: str = "") -> None:
        agent = self.agent or "auto"
        text = f"session {self.session_id} · agent {agent} · " + (doing or self.energy.line())
        for status in self.query("#status").results(Static):  # none while the app shuts down
            status.update(escape(text))

    # -- actions --------------------------------------------------------------------------------------------

    def action_cancel(self) -> None:
        if self.answering is not None:
            self.answering.cancel()

    def action_toggle_nodes(self) -> None:
        panel = self.query_one("#nodes", NodesPanel)
        self._panel = not panel.display
        panel.display = self._panel
        if self._panel:
            self.refresh_nodes()

    def action_help(self) -> None:
        self.say(commands.help_text(self.chat.bindings()), markdown=True)

    def action_scroll_conversation(self, direction: int) -> None:
        conv = self.query_one("#conversation", VerticalScroll)
        if direction < 0:
            conv.scroll_page_up()
        else:
            conv.scroll_page_down()

    def say(self, text: str, *, markdown: bool = False, error: bool = False) -> None:
        """A note of the chat's own in the conversation."""
        conv = self.query_one("#conversation", VerticalScroll)
        if markdown and not error:
            conv.mount(Markdown(text, classes="info"))
        else:
            conv.mount(Note(escape(text), classes="error" if error else "info"))
        self._trim_conversation()

    def _trim_conversation(self) -> None:
        """Keep the last `shown_entries` answers and notes on screen (each one more costs every redraw)."""
        entries = list(self.query_one("#conversation", VerticalScroll).children)
        excess = len(entries) - self.chat.shown_entries
        if excess > 0:
            for old in entries[:excess]:
                old.remove()

    # -- slash commands -------------------------------------------------------------------------------------

    async def run_command(self, text: str) -> None:
        try:
            inv = commands.parse(text)
            handler = getattr(self, f"_cmd_{inv.command.name}")
            await handler(inv.arg)
        except CommandError as exc:
            self.say(str(exc), error=True)
        except CoveyError as exc:
            self.say(f"error: {exc}", error=True)
        except (OSError, ValueError) as exc:
            self.say(f"error: {exc}", error=True)

    async def _cmd_help(self, arg: str) -> None:
        self.action_help()

    async def _cmd_agent(self, arg: str) -> None:
        if arg == "auto":
            self.agent = None
            self.say("agent: auto (the router picks one for each question)")
        else:
            names = list(self.orchestrator.agent_names())
            if arg not in names:
                close = commands.closest(arg, names)
                raise CommandError(f"no agent {arg!r}" + (f": did you mean {close}?" if close else "")
                                   + f" Agents: {', '.join(names)}, or auto")
            self.agent = arg
            self.say(f"agent: {arg} answers from now on (/agent auto to let the router pick)")
        self._show_status()

    def routes(self) -> tuple[str, ...]:
        deps = getattr(self.orchestrator, "deps", None)
        routes = getattr(getattr(deps, "router", None), "routes", None)
        if routes:
            return tuple(routes)
        agents = getattr(deps, "agents", None)
        return tuple(agents.routes()) if agents is not None else ()

    async def _cmd_route(self, arg: str) -> None:
        from covey.router.corrections import corrections_path, record_correction

        if self.last_prompt is None or self.last_result is None:
            raise CommandError("no answer to correct yet: ask something, then /route ROUTE if it went astray")
        routes = self.routes()
        route = arg.strip().lower()
        if route not in routes:
            close = commands.closest(route, routes)
            raise CommandError(f"no route {arg!r}" + (f": did you mean {close}?" if close else "")
                               + f" Routes: {', '.join(routes)}")
        if self.data_dir is None:
            raise CommandError("this chat has no data directory to keep corrections in")
        await asyncio.to_thread(record_correction, self.data_dir, self.last_prompt, route)
        was = self.last_result.route
        self.say(f"kept: the last question goes to route '{route}' (it went to '{was}'), in "
                 f"{corrections_path(self.data_dir)}; the router learns it the next time covey starts")

    async def _cmd_why(self, arg: str) -> None:
        self.say(explain(self.last_result, self.last_notices, self.last_prompt or ""), markdown=True)

    async def _cmd_nodes(self, arg: str) -> None:
        nodes = self.nodes()
        if not nodes:
            self.say("no nodes: start one with `covey node join`, or restart with --peer HOST:PORT")
            return
        self.say("\n\n".join(node_card(n, markup=False) for n in nodes))

    async def _cmd_energy(self, arg: str) -> None:
        self.say(self.energy.report(), markdown=True)

    async def _cmd_new(self, arg: str) -> None:
        if self.answering is not None:
            self.answering.cancel()
        self.session_id = arg.strip() or _new_session()
        self.energy = SessionEnergy(self.carbon, self.pue)
        self.last_prompt, self.last_result, self.last_notices = None, None, []
        conv = self.query_one("#conversation", VerticalScroll)
        await conv.remove_children()
        self.say(f"new conversation: session {self.session_id}")
        self._show_status()
        await self._load_session()

    async def _cmd_sessions(self, arg: str) -> None:
        history = getattr(self.orchestrator, "history", None)
        lister = getattr(history, "sessions", None)
        if lister is None:
            self.say("this chat keeps no conversation history, so there are no sessions to list")
            return
        rows = await asyncio.to_thread(lister)
        if not rows:
            self.say("no conversations kept yet")
            return
        lines = [f"- `{s}`: {n} turn{'s' * (n != 1)}, last {t:%Y-%m-%d %H:%M}" + (" (this one)" if s == self.session_id
                                                                                   else "")
                 for s, n, t in rows[:20]]
        more = f"\n\n…and {len(rows) - 20} more (`covey logs --sessions`)" if len(rows) > 20 else ""
        self.say("**Sessions**, newest first (`/new SESSION` continues one):\n\n" + "\n".join(lines) + more,
                 markdown=True)

    async def _cmd_rag(self, arg: str) -> None:
        verb, _, rest = arg.partition(" ")
        rest = rest.strip()
        if verb not in ("add", "search"):
            close = commands.closest(verb, ["add", "search"])
            raise CommandError(f"/rag {verb}: unknown" + (f", did you mean /rag {close}?" if close else "")
                               + " Use /rag add PATH or /rag search TEXT")
        if not rest:
            raise CommandError(f"/rag {verb} needs {'a PATH' if verb == 'add' else 'some TEXT'}")
        if self.documents is None:
            raise CommandError("this chat has no document store")
        self.say(f"{'adding' if verb == 'add' else 'searching'} {rest}…")
        job = self.documents.add if verb == "add" else self.documents.search
        self.say(await asyncio.to_thread(job, rest), markdown=True)
