"""`covey route fix`: a correction is kept, validated against the known routes, and refits the router."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from covey.errors import BadRequest
from covey.history.store import FILENAME, HistoryStore, Turn
from covey.router.classifier import EmbeddingRouter
from covey.router.cli import make_route_fix
from covey.router.corrections import check_route, closest_route, corrections_path, read_corrections, resolve_prompt

ROUTES = ("chat", "math", "summarize", "translate")


class Factory:
    """Builds the router the way covey does (toy examples + the data dir's corrections, cached heads)."""

    def __init__(self, embedder, toy_examples) -> None:
        self.embedder, self.examples, self.built = embedder, toy_examples, 0

    def __call__(self, settings) -> EmbeddingRouter:
        self.built += 1
        return EmbeddingRouter.fit(self.embedder, [*self.examples, *read_corrections(settings.data_dir)],
                                   cache_dir=settings.data_dir / "cache" / "router")


def app(factory) -> typer.Typer:
    a = typer.Typer()
    a.command("fix")(make_route_fix(factory))
    a.command("other")(lambda: None)  # a group, like `covey route`
    return a


def run(factory, *args):
    return CliRunner().invoke(app(factory), ["fix", *args], terminal_width=200)


def remember(data_dir, *prompts: str) -> list[Turn]:
    store = HistoryStore(data_dir / FILENAME)
    turns = [Turn(session="s1", prompt=p, answer="...", route="chat") for p in prompts]
    for t in turns:
        store.add(t)
    store.close()
    return turns


def test_fix_keeps_the_example_refits_and_shows_the_new_route(embedder, toy_examples, covey_env):
    factory = Factory(embedder, toy_examples)
    prompt = "what is the capital of peru"
    result = run(factory, prompt, "translate")
    assert result.exit_code == 0, result.output
    assert [(e.prompt, e.route, e.source) for e in read_corrections(covey_env)] == [
        (prompt, "translate", "correction")]
    assert "now translate" in " ".join(result.output.split())
    # The refit was cached: the next ask loads that head and embeds only its own prompt.
    embedder.seen.clear()
    router = factory(type("S", (), {"data_dir": covey_env})())
    assert embedder.seen == []
    assert router.classify(prompt).route == "translate"


def test_without_a_prompt_the_last_prompt_asked_is_corrected(embedder, toy_examples, covey_env):
    remember(covey_env, "first question", "compute the mean of these numbers please")
    result = run(Factory(embedder, toy_examples), "math")
    assert result.exit_code == 0, result.output
    assert [e.prompt for e in read_corrections(covey_env)] == ["compute the mean of these numbers please"]
    rows = [json.loads(line) for line in corrections_path(covey_env).read_text().splitlines()]
    assert rows == [{"prompt": "compute the mean of these numbers please", "route": "math", "source": "correction"}]


def test_last_and_a_turn_id_prefix_name_history_turns(covey_env):
    first, last = remember(covey_env, "the older one", "the newest one")
    assert resolve_prompt(["last"], covey_env) == "the newest one"
    assert resolve_prompt([], covey_env) == "the newest one"
    assert resolve_prompt([first.turn_id[:10]], covey_env) == "the older one"
    assert resolve_prompt(["fold", "these", "notes"], covey_env) == "fold these notes"


def test_an_unknown_route_is_refused_with_the_closest_one_and_nothing_is_kept(embedder, toy_examples, covey_env):
    result = run(Factory(embedder, toy_examples), "sum up this memo", "summary")
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "'summary' is not a route" in out and "did you mean 'summarize'" in out
    assert "chat, math, summarize, translate" in out
    assert "Traceback" not in result.output
    assert read_corrections(covey_env) == ()


def test_no_history_is_a_clear_error(embedder, toy_examples, covey_env):
    result = run(Factory(embedder, toy_examples), "math")
    assert result.exit_code == 1
    assert "there is no last prompt" in " ".join(result.output.split())
    assert not corrections_path(covey_env).exists()


def test_closest_route_reads_typos_plurals_and_case():
    assert closest_route("summary", ROUTES) == "summarize"
    assert closest_route("maths", ROUTES) == "math"
    assert closest_route("Translation", ROUTES) == "translate"
    assert closest_route("caht", ROUTES) == "chat"
    assert closest_route("astrology", ROUTES) is None
    assert check_route("MATH", ROUTES) == "math"
    with pytest.raises(BadRequest, match="'poetry' is not a route"):
        check_route("poetry", ROUTES)
