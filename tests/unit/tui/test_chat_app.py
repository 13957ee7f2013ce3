"""`covey chat` driven with Textual's Pilot and a scripted orchestrator: typing, streaming, nodes, cancel, commands."""

from __future__ import annotations

import json

import pytest
from chat_fakes import ROUTES, ScriptedOrchestrator, WordEmbedder, node, settle
from textual.widgets import Markdown, Static

from covey.energy.carbon import CarbonIntensity
from covey.history.store import HistoryStore
from covey.orchestrator.results import Notice
from covey.settings import ChatSettings
from covey.tui.app import ChatApp
from covey.tui.documents import Documents
from covey.tui.widgets import ChatInput, NodesPanel, Turn

CARBON = CarbonIntensity(g_per_kwh=400.0, source="test")


def make_app(orch, tmp_path, **kw) -> ChatApp:
    kw.setdefault("session_id", "s1")
    return ChatApp(orch, data_dir=tmp_path / "data", carbon=CARBON, **kw)


def text_of(widget) -> str:
    if isinstance(widget, Markdown):
        return widget.source
    if isinstance(widget, Static):
        return str(widget.content)
    return ""


def conversation(app) -> str:
    conv = app.query_one("#conversation")
    return "\n".join(t for w in conv.query("*") if (t := text_of(w)))


async def send(pilot, text: str) -> None:
    await pilot.press(*text)
    await pilot.press("enter")


async def ask(pilot, app, text: str) -> Turn:
    last = lambda: (list(app.query(Turn)) or [None])[-1]  # noqa: E731
    before = last()
    await send(pilot, text)
    await settle(pilot, app, lambda: last() is not before and app.answering is None)
    await pilot.pause()
    return list(app.query(Turn))[-1]


async def test_a_question_streams_as_markdown_with_the_summary_line_under_it(tmp_path) -> None:
    orch = ScriptedOrchestrator(words=("Use ", "`sum`:\n\n", "```python\nprint(1 + 2)\n```\n"))
    app = make_app(orch, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        turn = await ask(pilot, app, "add two numbers")
        answer = turn.query_one(".answer", Markdown)
        assert answer.source == "Use `sum`:\n\n```python\nprint(1 + 2)\n```\n"
        assert answer.query("MarkdownFence"), "the code block is a highlighted fence"
        summary = text_of(turn.query_one(".summary"))
        assert summary.startswith("chat → companion · den · smollm2-135m-instruct-q4_1\n12 in / 4 out · 20 tok/s")
        assert "3.60 J (1.80-5.40, estimated)" in summary and "0.0004 gCO2e" in summary
        status = text_of(app.query_one("#status"))
        assert "session s1" in status and "1 answer, 3.6 J, 0.0004 gCO2e" in status and "0.24 Wh" in status
    assert orch.seen == [{"prompt": "add two numbers", "session_id": "s1", "agent": None}]


async def test_the_summary_says_why_an_answer_was_delegated_and_escalated(tmp_path) -> None:
    notices = {0: Notice(kind="delegate", text="gemma3 needs 343 MB, 'old-laptop' allows 256 MB: delegated to 'den'"),
               1: Notice(kind="escalate", text="smollm2 was unsure; trying gemma3")}
    orch = ScriptedOrchestrator(words=("hmm", "The answer", " is 4."), notices=notices, escalated=True, restart_at=1)
    app = make_app(orch, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        turn = await ask(pilot, app, "what is 2+2")
        answers = list(turn.query(".answer").results(Markdown))
        assert [a.source for a in answers] == ["hmm", "The answer is 4."]
        assert answers[0].has_class("superseded") and not answers[1].has_class("superseded")
        summary = text_of(turn.query_one(".summary"))
        assert "why: delegated: gemma3 needs 343 MB" in summary and "escalated: smollm2 was unsure" in summary
        assert [text_of(w) for w in turn.query(".notice")] == [f"— {n.text} —" for n in notices.values()]


async def test_the_input_takes_several_lines_and_recalls_earlier_questions(tmp_path) -> None:
    orch = ScriptedOrchestrator()
    app = make_app(orch, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a", "ctrl+j", "b")
        box = app.query_one(ChatInput)
        assert box.text == "a\nb"
        await pilot.press("enter")
        await settle(pilot, app, lambda: app.answering is None and orch.finished)
        await ask(pilot, app, "second")
        await pilot.press("d", "r", "a", "f", "t")
        await pilot.press("up")
        assert box.text == "second"
        await pilot.press("up")
        assert box.text == "a\nb"
        await pilot.press("down")  # the cursor is on the last line: the next question
        assert box.text == "second"
        await pilot.press("down")
        assert box.text == "draft"
    assert [s["prompt"] for s in orch.seen] == ["a\nb", "second"]


async def test_the_nodes_panel_follows_nodes_joining_and_leaving(tmp_path) -> None:
    orch = ScriptedOrchestrator()
    orch.directory.upsert(node("den", tps=24.0, jpt=0.25))
    app = make_app(orch, tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        panel = app.query_one(NodesPanel)
        body = lambda: text_of(panel.query_one("#nodes-body"))  # noqa: E731
        assert panel.display and "den" in body() and "24 tok/s" in body() and "≈ 6 W" in body()
        from covey.types import Battery

        orch.directory.upsert(node("old-laptop", tps=8.0, depth=2, battery=Battery(present=True, on_battery=True,
                                                                                      percent=41.0)))
        await settle(pilot, app, lambda: "old-laptop" in body())
        assert "load 2/4" in body() and "battery 41% (on battery)" in body()
        assert "(2)" in text_of(panel.query_one("#nodes-title"))
        orch.directory.remove("id-den", "said goodbye")
        await settle(pilot, app, lambda: "den" not in body().replace("old-laptop", ""))
        assert "(1)" in text_of(panel.query_one("#nodes-title"))


async def test_the_panel_hides_at_80_columns_and_its_key_shows_it(tmp_path) -> None:
    orch = ScriptedOrchestrator()
    orch.directory.upsert(node("den"))
    app = make_app(orch, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(NodesPanel)
        assert not panel.display
        await pilot.press("ctrl+n")
        assert panel.display
        await pilot.press("ctrl+n")
        assert not panel.display


async def test_escape_cancels_the_answer_and_the_orchestrator_stream_is_closed(tmp_path) -> None:
    orch = ScriptedOrchestrator(words=("Once", " upon", " a time"), hold=True)
    app = make_app(orch, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "tell me a story")
        await settle(pilot, app, lambda: orch.first_token.is_set())
        await settle(pilot, app, lambda: "Once" in conversation(app))
        worker = app.answering
        await pilot.press("escape")
        await settle(pilot, app, lambda: app.answering is None)
        assert worker.is_cancelled
        assert orch.cancelled == ["s1"] and orch.finished == []
        assert "(cancelled: the answer was stopped and the node's slot freed)" in conversation(app)
        assert not list(app.query(".summary"))
        orch.release.set()  # the next question runs as usual
        turn = await ask(pilot, app, "again")
        assert turn.query(".summary")


async def test_keys_come_from_the_chat_settings(tmp_path) -> None:
    orch = ScriptedOrchestrator(words=("Once", " upon"), hold=True)
    app = make_app(orch, tmp_path, settings=ChatSettings(keys={"cancel": "ctrl+x", "send": "ctrl+s"}))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("h", "i", "enter")  # enter is an ordinary key now: a new line
        assert app.query_one(ChatInput).text == "hi\n" and not orch.seen
        await pilot.press("ctrl+s")
        await settle(pilot, app, lambda: orch.first_token.is_set())
        await pilot.press("escape")
        await pilot.pause()
        assert app.answering is not None
        await pilot.press("ctrl+x")
        await settle(pilot, app, lambda: app.answering is None)
        assert orch.cancelled == ["s1"]
        footer = " ".join(f"{k} {b.binding.description}" for k, b in app.active_bindings.items())
        assert "ctrl+x Cancel" in footer and "ctrl+s Send" in footer


def test_an_unknown_chat_action_in_the_settings_names_the_closest() -> None:
    with pytest.raises(ValueError, match="no chat action 'cancle' \\(did you mean 'cancel'\\?\\)"):
        ChatSettings(keys={"cancle": "ctrl+x"})


async def test_agent_command_pins_an_agent_and_suggests_the_closest_name(tmp_path) -> None:
    orch = ScriptedOrchestrator()
    app = make_app(orch, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/agent codr")
        await pilot.pause()
        assert "no agent 'codr': did you mean coder?" in conversation(app)
        await send(pilot, "/agent coder")
        await ask(pilot, app, "fix my loop")
        assert "agent coder" in text_of(app.query_one("#status"))
        await send(pilot, "/agent auto")
        await ask(pilot, app, "hello")
    assert [s["agent"] for s in orch.seen] == ["coder", None]


async def test_route_command_keeps_a_correction_and_checks_the_route_name(tmp_path) -> None:
    orch = ScriptedOrchestrator()
    app = make_app(orch, tmp_path)
    corrections = tmp_path / "data" / "routes" / "corrections.jsonl"
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/route code")
        await pilot.pause()
        assert "no answer to correct yet" in conversation(app)
        await ask(pilot, app, "reverse a list in python")
        await send(pilot, "/route cod")
        await pilot.pause()
        assert f"no route 'cod': did you mean code? Routes: {', '.join(ROUTES)}" in conversation(app)
        assert not corrections.exists()
        await send(pilot, "/route code")
        await settle(pilot, app, lambda: corrections.exists())
        await pilot.pause()
        assert "kept: the last question goes to route 'code' (it went to 'chat')" in conversation(app)
    rows = [json.loads(line) for line in corrections.read_text().splitlines()]
    assert rows == [{"prompt": "reverse a list in python", "route": "code", "source": "correction"}]


async def test_why_nodes_energy_and_help(tmp_path) -> None:
    orch = ScriptedOrchestrator(escalated=True)
    orch.directory.upsert(node("den", tps=24.0))
    app = make_app(orch, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/why")
        await pilot.pause()
        assert "Nothing to explain yet" in conversation(app)
        await ask(pilot, app, "what is a prime")
        await send(pilot, "/why")
        await pilot.pause()
        said = conversation(app)
        assert "went to route `chat` (confidence 0.82), answered by agent `companion`" in said
        assert "1. `den` ran `smollm2-135m-instruct-q4_1`: escalated: mean token log-prob -2.10 < -1.40" in said
        assert "2. `den` ran `gemma3-270m-q4_k_m`: answered" in said and "- note one" in said
        await send(pilot, "/nodes")
        await pilot.pause()
        assert "den (static)" in conversation(app) and "24 tok/s" in conversation(app)
        await send(pilot, "/energy")
        await pilot.pause()
        said = conversation(app)
        assert "**This session**: 1 answers, 4 tokens out, 3.60 J (1.80-5.40, estimated)" in said
        assert "Gemini Apps text prompt, median, comprehensive (Google 2025), 0.24 Wh: **240**" in said
        await send(pilot, "/help")
        await pilot.pause()
        said = conversation(app)
        assert "`/rag add PATH | /rag search TEXT`" in said and "`escape`: stop the answer being written" in said


async def test_an_unknown_command_suggests_the_closest_one(tmp_path) -> None:
    app = make_app(ScriptedOrchestrator(), tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/nods")
        await pilot.pause()
        assert "unknown command /nods: did you mean /nodes? (/help lists them)" in conversation(app)
        await send(pilot, "/agent")
        await pilot.pause()
        assert "/agent needs an argument: /agent NAME|auto" in conversation(app)


async def test_a_double_slash_sends_a_question_that_starts_with_a_slash(tmp_path) -> None:
    orch = ScriptedOrchestrator()
    app = make_app(orch, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await ask(pilot, app, "//etc/hosts is what?")
    assert orch.seen[0]["prompt"] == "/etc/hosts is what?"


async def test_new_starts_a_conversation_and_sessions_lists_the_history(tmp_path) -> None:
    store = HistoryStore(tmp_path / "history.db")
    orch = ScriptedOrchestrator(history=store)
    app = make_app(orch, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await ask(pilot, app, "my cat is Miso")
        await send(pilot, "/new pets")
        await settle(pilot, app, lambda: app.session_id == "pets")
        await pilot.pause()
        assert not app.query(Turn) and "new conversation: session pets" in conversation(app)
        assert "no answers yet" in text_of(app.query_one("#status"))
        await ask(pilot, app, "what is my cat called")
        await send(pilot, "/sessions")
        await settle(pilot, app, lambda: "Sessions" in conversation(app))
        said = conversation(app)
        assert "- `pets`: 1 turn, last" in said and "(this one)" in said and "- `s1`: 1 turn" in said
        await send(pilot, "/new s1")  # back to the first conversation: its answer counts again
        await settle(pilot, app, lambda: "continuing session s1: 1 earlier turn" in conversation(app))
        assert "1 answer, 3.6 J" in text_of(app.query_one("#status"))
    store.close()
    assert [s["session_id"] for s in orch.seen] == ["s1", "pets"]


async def test_rag_add_and_search_use_the_document_store(tmp_path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "boiler.md").write_text("# Boiler\n\nThe boiler pressure should read 1.5 bar when cold.\n")
    (notes / "garden.md").write_text("# Garden\n\nTomato plants need water every day.\n")
    docs = Documents(tmp_path / "data", embedder=WordEmbedder(), cwd=tmp_path)
    app = make_app(ScriptedOrchestrator(), tmp_path, documents=docs)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/rag search boiler")
        await settle(pilot, app, lambda: "No documents yet" in conversation(app))
        await send(pilot, "/rag add notes")
        await settle(pilot, app, lambda: "2 added" in conversation(app))
        await send(pilot, "/rag search boiler pressure")
        await settle(pilot, app, lambda: "1. **" in conversation(app))
        said = conversation(app)
        assert said.index("boiler.md") < said.rindex("garden.md") and "1.5 bar" in said
        await send(pilot, "/rag add missing.txt")
        await settle(pilot, app, lambda: "does not exist" in conversation(app))
        await send(pilot, "/rag serch x")
        await pilot.pause()
        assert "did you mean /rag search?" in conversation(app)


async def test_old_entries_leave_the_screen_past_the_setting(tmp_path) -> None:
    orch = ScriptedOrchestrator()
    app = make_app(orch, tmp_path, settings=ChatSettings(shown_entries=3))
    async with app.run_test(size=(80, 24)) as pilot:
        for q in ("one", "two", "three", "four"):
            await ask(pilot, app, q)
        await settle(pilot, app, lambda: len(app.query(Turn)) == 3)  # removal is asynchronous
        assert [t.prompt for t in app.query(Turn)] == ["two", "three", "four"]
        assert "covey chat" not in conversation(app)  # the welcome went first


def test_a_nodes_refresh_after_the_panel_lost_its_children_does_nothing() -> None:
    # at shutdown the app removes the panel's children while a refresh timer can still fire
    from covey.tui.widgets import NodesPanel

    NodesPanel().show([])  # no title or body to update: returns instead of raising NoMatches
