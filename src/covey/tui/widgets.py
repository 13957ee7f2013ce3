"""The chat's widgets: the input with its history, the panel of live nodes, one turn of the conversation."""

from __future__ import annotations

from collections.abc import Sequence

from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static, TextArea

from covey.types import NodeInfo


class ChatInput(TextArea):
    """A multi-line input: the send key sends, the newline key breaks the line, and Up on the first line
    (Down on the last) walks through the questions asked before."""

    BINDINGS = [
        Binding("enter", "submit", "Send", id="send", priority=True),
        Binding("ctrl+j", "newline", "New line", id="newline", priority=True),
    ]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, **kw) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kw)
        self.asked: list[str] = []
        self._recall: int | None = None  # index into history while walking it; None: the user's own draft
        self._draft = ""

    def action_submit(self) -> None:
        # The app runs priority bindings as soon as the key arrives, while keys typed just before it
        # (a fast typist, tmux send-keys) may still wait in this widget's queue: act after them.
        self.call_later(self._submit)

    def _submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        if not self.asked or self.asked[-1] != text:
            self.asked.append(text)
        self._recall = None
        self._draft = ""
        self.clear()
        self.post_message(self.Submitted(text))

    def action_newline(self) -> None:
        self.call_later(self.insert, "\n")

    def action_cursor_up(self, select: bool = False) -> None:
        if not select and self.cursor_location[0] == 0 and self.asked:
            self._walk(-1)
        else:
            super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        if not select and self.cursor_location[0] == self.document.line_count - 1 and self._recall is not None:
            self._walk(+1)
        else:
            super().action_cursor_down(select)

    def _walk(self, step: int) -> None:
        if self._recall is None:
            if step > 0:
                return
            self._draft = self.text
            index = len(self.asked) - 1
        else:
            index = self._recall + step
        if index < 0:
            return
        if index >= len(self.asked):
            self._recall = None
            self.load_text(self._draft)
        else:
            self._recall = index
            self.load_text(self.asked[index])
        self.move_cursor(self.document.end)


def node_card(n: NodeInfo, *, markup: bool = True) -> str:
    """One node in a few short lines: name, models (* loaded), load, speed, power, battery (Rich markup or plain)."""
    models = "\n  ".join(f"{m.model_id}{'*' if m.loaded else ''}" for m in n.models) or "no models"
    load = sum(m.queue_depth for m in n.models)
    limit = sum(m.queue_limit for m in n.models)
    tps = f"{n.tokens_per_second:.0f} tok/s" if n.tokens_per_second else "? tok/s"
    if n.battery.present:
        battery = f"battery {n.battery.percent:.0f}%{' (on battery)' if n.battery.on_battery else ''}"
    else:
        battery = "mains"
    if n.joules_per_token:
        watts = n.joules_per_token * n.tokens_per_second
        power = f"{n.joules_per_token:.2g} J/tok" + (f" ≈ {watts:.0f} W" if watts else "")
    else:
        power = "power ?"
    if not markup:
        lines = [f"{n.name} ({n.source})", f"  {models}", f"  load {load}/{limit or '?'} · {tps}", f"  {power}",
                 f"  {battery}"] + ([f"  {n.note}"] if n.note else [])
        return "\n".join(lines)
    lines = [f"[b]{_esc(n.name)}[/b] [dim]{n.source}[/dim]", f"  {_esc(models)}",
             f"  load {load}/{limit or '?'} · {tps}", f"  {power}", f"  {battery}"]
    if n.note:
        lines.append(f"  [yellow]{_esc(n.note)}[/yellow]")
    return "\n".join(lines)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class NodesPanel(Vertical):
    """The side panel: every live node, refreshed as nodes join, leave and change."""

    def compose(self):
        yield Static("[b]nodes[/b]", id="nodes-title")
        yield Static("", id="nodes-body")

    def show(self, nodes: Sequence[NodeInfo]) -> None:
        body = "\n\n".join(node_card(n) for n in nodes) if nodes else "[dim]no nodes yet: start one with " \
            "`covey node join`[/dim]"
        title, card = self.query("#nodes-title"), self.query("#nodes-body")
        if not (title and card):  # the app is shutting down and has removed them; a timer still fired
            return
        title.first(Static).update(f"[b]nodes[/b] ({len(nodes)})")
        card.first(Static).update(body)


class Turn(Vertical):
    """One question, its answer streaming as Markdown, notices as they come, and the summary under it."""

    def __init__(self, prompt: str, **kw) -> None:
        super().__init__(classes="turn", **kw)
        self.prompt = prompt

    def compose(self):
        yield Static(f"[b]›[/b] {_esc(self.prompt)}", classes="prompt")


class Note(Static):
    """A line of the chat's own (command output, errors, notices): plain or Markdown."""
