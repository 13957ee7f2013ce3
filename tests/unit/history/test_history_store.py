"""The conversation store on real SQLite files: migrations, recent turns, search, text-free mode."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from covey.errors import HistoryError
from covey.history.store import MIGRATIONS, HistoryStore, Turn
from covey.orchestrator.results import AnswerResult, Attempt
from covey.types import Energy, EnergyComponent, EnergyMethod


def result(text: str, session: str = "s", *, route: str = "chat", node: str = "den", joules: float = 2.0,
           escalated: bool = False) -> AnswerResult:
    energy = Energy.of([EnergyComponent(name="cpu", joules=joules, method=EnergyMethod.MEASURED, uncertainty=0.1)])
    attempts = [Attempt(node_id="id", node_name=node, address="a:1", model_id="m1", outcome="escalated", text="x")] \
        if escalated else []
    attempts.append(Attempt(node_id="id", node_name=node, address="a:1", model_id="m2", outcome="answered", text=text))
    return AnswerResult(session_id=session, text=text, route=route, route_confidence=0.9, agent="chatter",
                        node=node, model="m2", attempts=tuple(attempts), prompt_tokens=57, completion_tokens=9,
                        seconds=1.5, energy=energy)


def test_migrations_run_once_and_are_recorded(tmp_path):
    path = tmp_path / "history.db"
    store = HistoryStore(path)
    assert store.migrate() == []  # already applied by the constructor
    store.close()
    names = [r[0] for r in sqlite3.connect(path).execute("SELECT name FROM _migrations")]
    assert names == [name for name, _ in MIGRATIONS] and names[0] == "m001_turns"
    HistoryStore(path).close()  # reopening applies nothing and keeps the data
    assert [r[0] for r in sqlite3.connect(path).execute("SELECT name FROM _migrations")] == names


def test_turn_keeps_every_field_of_the_answer(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    turn = store.append("my cat is Miso", result("Nice name!", escalated=True, joules=3.0))
    [back] = store.search()
    assert back == turn
    assert (back.session, back.prompt, back.answer, back.route, back.agent, back.node, back.model) == \
        ("s", "my cat is Miso", "Nice name!", "chat", "chatter", "den", "m2")
    assert (back.prompt_tokens, back.completion_tokens, back.attempts, back.escalated) == (57, 9, 2, True)
    assert back.joules == pytest.approx(3.0) and back.method == "measured" and back.uncertainty == pytest.approx(0.1)
    assert back.time.tzinfo is not None


def test_recent_returns_the_sessions_last_turns_oldest_first_across_reopen(tmp_path):
    path = tmp_path / "h.db"
    store = HistoryStore(path)
    for i in range(4):
        store.append(f"q{i}", result(f"a{i}", session="cat"))
    store.append("other", result("elsewhere", session="dog"))
    store.close()
    again = HistoryStore(path)  # a second process sees the first one's turns
    msgs = again.recent("cat", 2)
    assert [(m.role, m.content) for m in msgs] == [("user", "q2"), ("assistant", "a2"), ("user", "q3"),
                                                   ("assistant", "a3")]
    assert again.recent("cat", 0) == [] and again.recent("nobody", 6) == []


def test_search_matches_prompt_answer_route_node_and_filters_by_session(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    store.add(Turn(time=t0, session="a", prompt="write a haiku", answer="leaves fall", route="writing", node="den"))
    store.add(Turn(time=t0 + timedelta(seconds=1), session="b", prompt="2+2", answer="4", route="math",
                   node="old-laptop"))
    store.add(Turn(time=t0 + timedelta(seconds=2), session="a", prompt="100% sure?", answer="yes", route="chat"))
    assert [t.prompt for t in store.search(query="haiku")] == ["write a haiku"]
    assert [t.prompt for t in store.search(query="LEAVES")] == ["write a haiku"]  # case-insensitive, in answers
    assert [t.prompt for t in store.search(query="math")] == ["2+2"]
    assert [t.prompt for t in store.search(query="laptop")] == ["2+2"]
    assert [t.prompt for t in store.search(query="%")] == ["100% sure?"]  # LIKE wildcards are literal
    assert [t.prompt for t in store.search(session="a", limit=None)] == ["100% sure?", "write a haiku"]
    assert [t.prompt for t in store.search(limit=1)] == ["100% sure?"]
    assert [(s, n) for s, n, _ in store.sessions()] == [("a", 2), ("b", 1)]


def test_keep_text_off_stores_energy_figures_only(tmp_path):
    path = tmp_path / "h.db"
    store = HistoryStore(path, keep_text=False)
    assert store.keeps_text is False
    turn = store.append("my secret", result("secret answer", joules=4.0))
    assert turn.prompt is None and turn.answer is None
    store.add(Turn(session="s", prompt="also secret", answer="x"))  # even a hand-made turn loses its text
    raw = sqlite3.connect(path).execute("SELECT prompt, answer, joules FROM turns ORDER BY ts").fetchall()
    assert raw[0] == (None, None, pytest.approx(4.0)) and raw[1][:2] == (None, None)
    assert b"secret" not in path.read_bytes()
    assert store.recent("s", 6) == []
    assert store.search(query="secret") == []


def test_damaged_file_raises_history_error_with_hint(tmp_path):
    path = tmp_path / "h.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryError) as info:
        HistoryStore(path)
    assert "history.db" in info.value.hint and str(path) in str(info.value)


def test_duplicate_turn_is_refused(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    t = Turn(session="s", prompt="p", answer="a")
    store.add(t)
    with pytest.raises(HistoryError):
        store.add(t)
    assert store.count() == 1


def test_logs_print_each_turns_line_whole_and_no_token_counts_for_a_tool_answer():
    import io

    from rich.console import Console

    from covey.history.cli import render

    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=False, highlight=False)
    render(console, Turn(session="s", prompt="What is 2+2?\n", answer="2+2 = 4.", route="math", agent="mathematician",
                         node="orchestrator", model="tool:calculator", joules=0.61, uncertainty=0.5, seconds=0.2))
    render(console, Turn(session="s", prompt="hi", answer="Hello!", route="chat", agent="companion", node="den-pc",
                         model="smollm2-135m-instruct-q4_1", prompt_tokens=12, completion_tokens=3, joules=1.5))
    lines = buf.getvalue().splitlines()
    summaries = [line for line in lines if line.startswith("route ")]
    assert len(summaries) == 2 and all(line == line.rstrip() for line in lines)  # one line each, however long
    assert " in / " not in summaries[0] and "0.61 J (0.30-0.92)" in summaries[0]
    assert "12 in / 3 out" in summaries[1]
    assert "> What is 2+2?" in lines and lines[lines.index("> What is 2+2?") + 1] == "2+2 = 4."
