"""`covey serve keys ...`, the LAN-bind refusal, and `covey logs`, through the real Typer app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from covey.cli import app
from covey.history.store import HistoryStore, Turn

runner = CliRunner()


def flat(text: str) -> str:
    """rich wraps long lines at the terminal width: compare with whitespace collapsed."""
    return " ".join(text.split())


def test_keys_create_list_revoke(covey_env):
    made = runner.invoke(app, ["serve", "keys", "create", "laptop"])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("sk-covey-")
    listed = runner.invoke(app, ["serve", "keys", "list"])
    assert "laptop" in listed.stdout and secret not in listed.stdout
    assert secret not in (covey_env / "api_keys.json").read_text()
    gone = runner.invoke(app, ["serve", "keys", "revoke", "laptop"])
    assert gone.exit_code == 0 and "revoked" in gone.stdout
    again = runner.invoke(app, ["serve", "keys", "revoke", "laptop"])
    assert again.exit_code == 1 and "no active key" in flat(again.output)


def test_serve_on_the_lan_without_keys_refuses_before_loading_anything(covey_env):
    r = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "0", "--no-discover", "--embedded", "never"])
    assert r.exit_code == 1 and "needs API keys" in flat(r.output) and "covey serve keys create" in flat(r.output)


def test_logs_lists_searches_and_prints_json(covey_env):
    store = HistoryStore(covey_env / "history.db")
    store.add(Turn(session="pets", prompt="my cat is Miso", answer="Nice!", route="chat", node="den", joules=1.5,
                   uncertainty=0.2))
    store.add(Turn(session="work", prompt="2+2", answer="4", route="math", node="old-laptop", joules=0.5))
    store.add(Turn(session="quiet", route="chat", node="den", joules=0.7))  # text not kept
    store.close()
    out = flat(runner.invoke(app, ["logs"]).stdout)
    assert out.index("my cat is Miso") < out.index("2+2") < out.index("text not kept")
    assert "1.50 J (1.20-1.80)" in out
    found = runner.invoke(app, ["logs", "-q", "laptop"]).stdout
    assert "2+2" in found and "Miso" not in found
    turns = json.loads(runner.invoke(app, ["logs", "--json", "-n", "2"]).stdout)
    assert [t["session"] for t in turns] == ["work", "quiet"]
    assert json.loads(runner.invoke(app, ["logs", "--json", "--session", "pets"]).stdout)[0]["answer"] == "Nice!"
    assert "pets" in runner.invoke(app, ["logs", "--sessions"]).stdout


def test_logs_before_any_conversation(covey_env):
    r = runner.invoke(app, ["logs"])
    assert r.exit_code == 0 and "No conversations recorded yet" in flat(r.stdout)
    assert runner.invoke(app, ["logs", "--json"]).stdout.strip() == "[]"
