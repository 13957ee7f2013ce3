import json

import numpy as np
import pytest

from covey.errors import BadRequest, ConfigError
from covey.router.classifier import (
    BUILTIN_ROUTES,
    EmbeddingRouter,
    RouteDecision,
    RouteExample,
    Router,
    builtin_examples,
    collect_examples,
    load_default_router,
    read_examples,
)
from covey.settings import RouterSettings
from covey.types import Message

LONG = "The meeting moved to Thursday because the room was booked by the finance team. " * 5


def fit(embedder, examples, **kw):
    return EmbeddingRouter.fit(embedder, examples, min_confidence=kw.pop("min_confidence", 0.0), **kw)


def test_shipped_examples_cover_every_route_generously():
    counts = {}
    for ex in builtin_examples():
        counts[ex.route] = counts.get(ex.route, 0) + 1
    assert set(counts) == set(BUILTIN_ROUTES)
    assert min(counts.values()) >= 90, counts


def test_heldout_prompts_are_not_in_the_shipped_examples(tmp_path):
    from pathlib import Path

    heldout = read_examples(Path(__file__).parents[2] / "data" / "router_heldout.jsonl")
    shipped = {ex.prompt.strip().lower() for ex in builtin_examples()}
    assert len(heldout) >= 140
    assert not [h.prompt for h in heldout if h.prompt.strip().lower() in shipped]


def test_classify_picks_the_route_and_names_the_runner_up(embedder, toy_examples):
    router = fit(embedder, toy_examples)
    assert isinstance(router, Router)
    d = router.classify("compute 12 times 4")
    assert isinstance(d, RouteDecision)
    assert d.route == "math" and not d.fallback
    assert d.runner_up in {"chat", "translate", "summarize"}
    assert 0 <= d.runner_up_confidence <= d.confidence <= 1
    assert d.margin == pytest.approx(d.confidence - d.runner_up_confidence, abs=1e-6)
    assert f"margin {d.margin:.2f}" in d.reason


def test_unsure_router_falls_back_to_chat_and_says_so(embedder, toy_examples):
    router = fit(embedder, toy_examples, min_confidence=0.99)
    d = router.classify("compute 12 times 4")
    assert d.route == "chat" and d.fallback
    assert d.runner_up == "math"
    assert "falling back to chat" in d.reason
    # the margin is the head's own: its pick (math, now the runner-up) over its second best
    assert 0 < d.margin <= d.runner_up_confidence


def test_chat_itself_is_never_a_fallback(embedder, toy_examples):
    router = fit(embedder, toy_examples, min_confidence=0.99)
    d = router.classify("hello friend how are you")
    assert d.route == "chat" and not d.fallback


def test_only_the_instruction_is_embedded_not_the_pasted_text(embedder, toy_examples):
    router = fit(embedder, toy_examples)
    embedder.seen.clear()
    d = router.classify(f"Summarize this text:\n\n{LONG}")
    assert embedder.seen == ["Summarize this text:"]
    assert d.route == "summarize"


def test_short_follow_up_is_read_with_the_previous_user_turn(embedder, toy_examples):
    router = fit(embedder, toy_examples)
    history = [Message(role="user", content="translate cat into french"), Message(role="assistant", content="chat")]
    embedder.seen.clear()
    d = router.classify("and dog?", history)
    assert embedder.seen == ["and dog?", "translate cat into french"]
    assert d.route == "translate"
    assert "follow-up" in d.reason


def test_a_follow_up_reuses_the_previous_turn_it_just_routed(embedder, toy_examples):
    router = fit(embedder, toy_examples)
    first = router.classify("translate cat into french")
    embedder.seen.clear()
    d = router.classify("and dog?", ["translate cat into french"])
    assert embedder.seen == ["and dog?"]  # the previous turn's probabilities were remembered, not re-embedded
    assert d.route == first.route == "translate" and "follow-up" in d.reason
    again = router.classify("translate cat into french")
    assert embedder.seen == ["and dog?"] and again == first


def test_self_contained_message_ignores_history(embedder, toy_examples):
    router = fit(embedder, toy_examples)
    embedder.seen.clear()
    d = router.classify("please compute 17 times 3 for my homework sheet tonight thanks", ["translate cat into french"])
    assert embedder.seen == ["please compute 17 times 3 for my homework sheet tonight thanks"]
    assert d.route == "math"


def test_empty_task_is_a_bad_request(embedder, toy_examples):
    router = fit(embedder, toy_examples)
    with pytest.raises(BadRequest, match="empty"):
        router.classify("   ")


def test_classify_many_matches_classify(embedder, toy_examples):
    router = fit(embedder, toy_examples)
    texts = ["compute 5 times 5", "translate cat into german", "hello friend"]
    assert [d.route for d in router.classify_many(texts)] == [router.classify(t).route for t in texts]


def _heads(folder):
    return [p for p in folder.glob("*.npz") if not p.name.startswith("vectors-")]


def test_fitted_head_is_cached_by_example_hash(embedder, toy_examples, tmp_path):
    fit(embedder, toy_examples, cache_dir=tmp_path)
    assert len(_heads(tmp_path)) == 1
    embedder.seen.clear()
    again = fit(embedder, toy_examples, cache_dir=tmp_path)
    assert embedder.seen == []
    assert again.classify("compute 3 times 3").route == "math"
    changed = toy_examples + [RouteExample(prompt="what is 8 divided by 2", route="math")]
    embedder.seen.clear()
    refit = fit(embedder, changed, cache_dir=tmp_path)
    assert embedder.seen == ["what is 8 divided by 2"]  # the other vectors were kept from the first fit
    assert len(_heads(tmp_path)) == 2
    assert refit.classify("compute 3 times 3").route == "math"


def test_cached_vectors_fit_the_same_head_as_fresh_ones(embedder, toy_examples, tmp_path):
    fresh = fit(embedder, toy_examples)
    fit(embedder, toy_examples, cache_dir=tmp_path)
    (head,) = _heads(tmp_path)
    head.unlink()  # the vectors stay: this fit embeds nothing and reads them back as float16
    embedder.seen.clear()
    cached = fit(embedder, toy_examples, cache_dir=tmp_path)
    assert embedder.seen == []
    texts = ["compute 3 times 3", "translate dog into french", "summarize the notes", "hey there"]
    assert np.abs(cached.probabilities(texts) - fresh.probabilities(texts)).max() < 1e-2


def test_a_corrupt_cache_is_refitted(embedder, toy_examples, tmp_path):
    fit(embedder, toy_examples, cache_dir=tmp_path)
    path = next(tmp_path.glob("*.npz"))
    path.write_bytes(b"not a zip")
    router = fit(embedder, toy_examples, cache_dir=tmp_path)
    assert router.classify("compute 3 times 3").route == "math"


@pytest.mark.parametrize("keep", [0, 10, 0.5, -22])
def test_a_truncated_cache_is_refitted_with_a_warning_and_rewritten(embedder, toy_examples, tmp_path, caplog, keep):
    fit(embedder, toy_examples, cache_dir=tmp_path)
    path = next(p for p in tmp_path.glob("*.npz") if not p.name.startswith("vectors-"))  # the head
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep) if isinstance(keep, float) else keep])
    for vectors in tmp_path.glob("vectors-*.npz"):  # the embeddings cache, truncated alike
        vectors.write_bytes(vectors.read_bytes()[:max(0, int(len(vectors.read_bytes()) * 0.5))])
    with caplog.at_level("WARNING", logger="covey.router"):
        router = fit(embedder, toy_examples, cache_dir=tmp_path)
    assert router.classify("compute 3 times 3").route == "math"
    assert any("damaged router head" in r.getMessage() for r in caplog.records)
    assert path.read_bytes() != raw[:10] and len(path.read_bytes()) > 100  # fitted again and saved whole
    embedder.seen.clear()
    fit(embedder, toy_examples, cache_dir=tmp_path)
    assert embedder.seen == []


def test_text_that_is_not_valid_unicode_is_routed_not_a_type_error(embedder, toy_examples):
    router = fit(embedder, toy_examples)
    decision = router.classify("\udcff\udcfe compute 3 times 3")
    assert decision.route in router.routes
    assert len(router.classify_many(["\ud800", "hello friend"])) == 2


def test_calibrated_threshold_is_within_bounds(embedder, toy_examples):
    router = EmbeddingRouter.fit(embedder, toy_examples)
    assert 0.0 <= router.threshold <= 0.6
    coin_flip = EmbeddingRouter.fit(embedder, toy_examples, fallback_calibration="coin-flip")
    assert 0.2 <= coin_flip.threshold <= 0.6
    with pytest.raises(ConfigError, match="fallback calibration"):
        EmbeddingRouter.fit(embedder, toy_examples, fallback_calibration="never")


def test_centroid_head_also_routes(embedder, toy_examples):
    router = fit(embedder, toy_examples, head="centroid")
    assert router.classify("translate house into spanish").route == "translate"


def test_thin_route_is_refused_with_a_clear_error(embedder, toy_examples):
    few = toy_examples + [RouteExample(prompt="roast a chicken", route="cooking")]
    with pytest.raises(ConfigError, match="cooking have fewer than 5 examples"):
        fit(embedder, few)


def test_fallback_route_must_exist(embedder, toy_examples):
    no_chat = [e for e in toy_examples if e.route != "chat"]
    with pytest.raises(ConfigError, match="fallback route 'chat'"):
        fit(embedder, no_chat)


def test_bad_example_files_name_file_and_line(tmp_path):
    bad = tmp_path / "mine.jsonl"
    bad.write_text('{"prompt": "hi", "route": "chat"}\n{"prompt": "oops"\n')
    with pytest.raises(ConfigError, match=r"mine.jsonl:2 is not valid JSON"):
        read_examples(bad)
    bad.write_text('{"prompt": "hi", "route": "Chat Room"}\n')
    with pytest.raises(ConfigError, match=r"mine.jsonl:1 field 'route'"):
        read_examples(bad)
    bad.write_text('{"text": "hi"}\n')
    with pytest.raises(ConfigError, match=r'mine.jsonl:1 needs string fields "prompt" and "route"'):
        read_examples(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        read_examples(tmp_path / "missing.jsonl")


def test_users_add_routes_in_data_dir_files_and_config(tmp_path, embedder):
    routes = tmp_path / "routes"
    routes.mkdir()
    cooking = ["how long to roast a chicken", "recipe for pancakes", "how to bake bread", "how to boil an egg",
               "recipe for tomato soup", "how long to roast potatoes"]
    (routes / "cooking.jsonl").write_text("\n".join(json.dumps({"prompt": p, "route": "cooking"}) for p in cooking))
    garden = ["when to plant tulips", "how to prune roses", "water my tomato plants", "when to mow the lawn",
              "how to plant garlic", "fertilise the roses"]
    settings = RouterSettings(examples={"garden": garden}, min_confidence=0.0)
    examples = collect_examples(settings, tmp_path)
    assert {"cooking", "garden"} <= {e.route for e in examples}
    router = load_default_router(tmp_path, settings, embedder=embedder)
    assert {"cooking", "garden", *BUILTIN_ROUTES} == set(router.routes)
    assert router.classify("recipe for pancakes").route == "cooking"
    assert list((tmp_path / "cache" / "router").glob("*.npz"))


def test_user_example_moves_a_shipped_prompt(embedder):
    settings = RouterSettings(builtin_examples=False, examples={
        "chat": ["hi", "hello", "hey", "yo", "good day", "tell me a joke"],
        "writing": ["write a poem", "write a story", "write a letter", "write an essay", "write a song",
                    "tell me a joke"],
    })
    examples = collect_examples(settings)
    jokes = [e for e in examples if e.prompt == "tell me a joke"]
    assert [j.route for j in jokes] == ["chat", "writing"]
    router = load_default_router(__import__("pathlib").Path("/nonexistent"), settings, embedder=embedder)
    assert set(router.routes) == {"chat", "writing"}


def test_bad_inline_route_name_names_the_config_key():
    with pytest.raises(ConfigError, match=r"\[router.examples\] Bad Route\[0\]"):
        collect_examples(RouterSettings(builtin_examples=False, examples={"Bad Route": ["x"]}))


def test_probabilities_are_rows_over_routes(embedder, toy_examples):
    router = fit(embedder, toy_examples)
    p = router.probabilities(["hello", "compute 1 plus 1"])
    assert p.shape == (2, len(router.routes))
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)


def test_packaged_fp32_minilm_is_named_without_loading():
    from covey.router.embedding import PackagedMiniLM

    assert PackagedMiniLM().name == "all-MiniLM-L6-v2"


def test_packaged_minilm_constructs_in_every_variant():
    from covey.router.embedding import PackagedMiniLM

    for kw in ({}, {"int8": True}, {"threads": 1, "int8": True}):
        embedder = PackagedMiniLM(**kw)
        assert embedder._model is None  # nothing loaded until first use


def test_shipped_examples_name_their_source_and_gathered_sources_are_present():
    sources = {}
    for ex in builtin_examples():
        sources.setdefault(ex.source, set()).add(ex.route)
    assert sources["covey"] == set(BUILTIN_ROUTES)
    public = set(sources) - {"covey"}
    assert {"dolly", "mt_bench", "flan"} <= public
    assert all(name for name in public)


def test_a_jsonl_source_field_is_read_and_optional(tmp_path):
    path = tmp_path / "ex.jsonl"
    path.write_text('{"prompt": "hi", "route": "chat", "source": "mine"}\n{"prompt": "2+2", "route": "math"}\n')
    a, b = read_examples(path)
    assert (a.source, b.source) == ("mine", "")
    path.write_text('{"prompt": "hi", "route": "chat", "source": 5}\n')
    with pytest.raises(ConfigError, match="source"):
        read_examples(path)


def test_balance_sources_changes_the_cache_key_and_still_routes(embedder, toy_examples, tmp_path):
    tagged = [RouteExample(prompt=e.prompt, route=e.route, source="a" if i % 2 else "b")
              for i, e in enumerate(toy_examples)]
    plain = fit(embedder, tagged, cache_dir=tmp_path, balance_sources=False)
    balanced = fit(embedder, tagged, cache_dir=tmp_path, balance_sources=True)
    assert len(_heads(tmp_path)) == 2
    assert plain.classify("compute 12 times 4").route == balanced.classify("compute 12 times 4").route == "math"


def test_vector_files_keep_every_key_byte(tmp_path):
    from covey.router.vectors import read_vectors, write_vectors

    keys = [b"\x01" * 19 + b"\x00", b"\x00" * 20, bytes(range(20))]  # digests may end in zero bytes
    vecs = {k: np.full(4, i, np.float32) for i, k in enumerate(keys)}
    write_vectors(tmp_path / "v.npz", vecs)
    back = read_vectors(tmp_path / "v.npz")
    assert sorted(back) == sorted(keys)
    assert all(np.array_equal(back[k], vecs[k]) for k in keys)
