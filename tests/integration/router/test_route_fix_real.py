"""`covey route fix` with the real router: the shipped vectors make the refit embed one prompt."""

from __future__ import annotations

from typer.testing import CliRunner

from covey.cli import app
from covey.history.store import FILENAME, HistoryStore, Turn
from covey.router.classifier import load_default_router
from covey.router.corrections import read_corrections

PROMPT = "Give me a catchy product description for a bamboo toothbrush"


def test_fixing_the_last_prompt_refits_and_the_next_router_routes_it_there(covey_env):
    store = HistoryStore(covey_env / FILENAME)
    store.add(Turn(session="s", prompt=PROMPT, answer="...", route="knowledge"))
    store.close()
    result = CliRunner().invoke(app, ["route", "fix", "writing"], terminal_width=200)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "now writing" in out, out
    assert [(e.prompt, e.route) for e in read_corrections(covey_env)] == [(PROMPT, "writing")]
    heads = [p for p in (covey_env / "cache" / "router").glob("*.npz") if not p.name.startswith("vectors-")]
    assert len(heads) == 1  # the refit head is cached: the next ask loads it instead of fitting
    assert load_default_router(covey_env).classify(PROMPT).route == "writing"


def test_a_misspelt_route_gets_the_closest_one(covey_env):
    result = CliRunner().invoke(app, ["route", "fix", "hello there", "chatt"], terminal_width=200)
    assert result.exit_code == 1
    assert "did you mean 'chat'" in " ".join(result.output.split())
    assert read_corrections(covey_env) == ()
