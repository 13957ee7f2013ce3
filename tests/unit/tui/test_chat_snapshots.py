"""Snapshots of covey chat's main screens (pytest-textual-snapshot; `--snapshot-update` rewrites the SVGs).

An answer at 80x24 (the nodes panel hidden), the nodes panel on a wide terminal, and /help.
"""

from __future__ import annotations

from chat_fakes import GEMMA, SMOL, ScriptedOrchestrator, node, settle

from covey.energy.carbon import CarbonIntensity
from covey.orchestrator.results import Notice
from covey.settings import ChatSettings
from covey.tui.app import ChatApp
from covey.tui.widgets import ChatInput
from covey.types import Battery

ANSWER = ("Reverse it with a slice:\n\n", "```python\nwords = ['a', 'b', 'c']\nprint(words[::-1])\n```\n\n",
          "This makes a **new** list.")


def chat(orch, **kw) -> ChatApp:
    return ChatApp(orch, carbon=CarbonIntensity(g_per_kwh=400.0, source="test"), session_id="snap", **kw)


def with_nodes(orch: ScriptedOrchestrator) -> ScriptedOrchestrator:
    orch.directory.upsert(node("den", models=(SMOL, GEMMA), tps=24.0, jpt=0.25, depth=1))
    orch.directory.upsert(node("old-laptop", tps=8.0, jpt=0.6, battery=Battery(present=True, on_battery=True,
                                                                              percent=41.0)))
    return orch


async def ask(pilot, text: str) -> None:
    app = pilot.app
    app.query_one(ChatInput).cursor_blink = False
    await pilot.press(*text, "enter")
    # the whole answer: its summary shown and its worker done (the snapshot must not catch it mid-way)
    await settle(pilot, app, lambda: app.query(".summary")
                 and not any(w.group == "answer" and not w.is_finished for w in app.workers))
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def test_an_answer_at_80_by_24(snap_compare) -> None:
    notices = {1: Notice(kind="delegate", text="gemma3-270m-q4_k_m needs 343 MB, 'old-laptop' allows 256 MB: "
                         "delegated to 'den'")}
    app = chat(with_nodes(ScriptedOrchestrator(words=ANSWER, notices=notices)))
    assert snap_compare(app, terminal_size=(80, 24), run_before=lambda pilot: ask(pilot, "reverse a list in python"))


def test_the_nodes_panel_on_a_wide_terminal(snap_compare) -> None:
    app = chat(with_nodes(ScriptedOrchestrator(words=("Hello", " there."))))
    assert snap_compare(app, terminal_size=(120, 30), run_before=lambda pilot: ask(pilot, "hi"))


def test_help_with_a_remapped_key(snap_compare) -> None:
    async def show_help(pilot) -> None:
        pilot.app.query_one(ChatInput).cursor_blink = False
        await pilot.press("f1")
        await pilot.pause()

    app = chat(ScriptedOrchestrator(), settings=ChatSettings(keys={"cancel": "ctrl+x"}))
    assert snap_compare(app, terminal_size=(80, 24), run_before=show_help)
