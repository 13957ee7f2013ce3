"""The router heads shipped in the package: fresh against the shipped examples, and used without fitting.

When test_shipped_heads_are_fresh fails, run `make router-heads` (scripts/ship_router_heads.py) and
commit src/covey/data/router_heads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from covey.router.classifier import EmbeddingRouter, RouteExample, head_file_name, head_key, shipped_heads_dir
from covey.router import shipped as shipped_module
from covey.minilm_onnx import INT8_NAME
from covey.router.shipped import SHIPPED_EMBEDDERS, SHIPPED_VECTORS, expected, regenerate, stale
from covey.router.vectors import vectors_file
from covey.settings import RouterSettings


@pytest.fixture
def make_embedder(embedder):
    """Fresh recording embedders of the conftest's kind (imported through its fixture, not by module name)."""
    return type(embedder)


def test_shipped_heads_are_fresh() -> None:
    problems = stale(shipped_heads_dir())
    assert not problems, f"shipped router heads are stale ({'; '.join(problems)}): run `make router-heads`"


def test_a_head_is_shipped_for_the_default_settings() -> None:
    default = RouterSettings()
    assert default.backend == "auto" and default.head in {kind for kind, _ in expected().values()}
    assert INT8_NAME in SHIPPED_EMBEDDERS and INT8_NAME in SHIPPED_VECTORS  # auto with onnxruntime: onnx-int8
    assert "all-MiniLM-L6-v2" in SHIPPED_EMBEDDERS  # auto's numpy fallback, onnx fp32, sentence-transformers' fp32
    assert "all-MiniLM-L6-v2" in SHIPPED_VECTORS


def _ship(folder: Path, examples: list[RouteExample], make):
    fitter = make()
    written = regenerate(folder, {fitter.name: lambda: fitter}, examples=examples, log=lambda _m: None)
    assert [p.name for p in written] == [head_file_name(head_key(fitter.name, "logistic", examples))]
    assert fitter.seen  # fitting embedded the examples, here, once
    return fitter


def test_router_loads_the_shipped_head_without_embedding_the_examples(tmp_path, toy_examples, make_embedder) -> None:
    shipped, cache = tmp_path / "shipped", tmp_path / "cache"
    _ship(shipped, toy_examples, make_embedder)
    user = make_embedder()
    router = EmbeddingRouter.fit(user, toy_examples, cache_dir=cache, shipped_dir=shipped)
    assert user.seen == []  # nothing fitted on the user's machine
    assert not cache.exists()  # and nothing cached: the package already has it
    assert router.classify("compute 8 times 7").route == "math"


def test_own_examples_refit_once_and_cache_in_the_data_dir(tmp_path, toy_examples, make_embedder) -> None:
    shipped, cache = tmp_path / "shipped", tmp_path / "cache"
    _ship(shipped, toy_examples, make_embedder)
    mine = toy_examples + [RouteExample(prompt=f"how long to roast chicken number {i}", route="cooking")
                           for i in range(5)]
    first = make_embedder()
    router = EmbeddingRouter.fit(first, mine, cache_dir=cache, shipped_dir=shipped)
    assert first.seen and "cooking" in router.routes
    assert sorted(p.name for p in cache.iterdir()) == sorted([head_file_name(head_key(first.name, "logistic", mine)),
                                                              vectors_file(cache, first.name).name])
    again = make_embedder()
    EmbeddingRouter.fit(again, mine, cache_dir=cache, shipped_dir=shipped)
    assert again.seen == []


def test_shipped_vectors_make_a_refit_embed_only_the_new_prompts(tmp_path, toy_examples, make_embedder,
                                                               monkeypatch) -> None:
    fitter = make_embedder()
    monkeypatch.setattr(shipped_module, "SHIPPED_VECTORS", (fitter.name,))
    shipped, cache = tmp_path / "shipped", tmp_path / "cache"
    regenerate(shipped, {fitter.name: lambda: fitter}, examples=toy_examples, log=lambda _m: None)
    assert vectors_file(shipped, fitter.name).exists()
    assert stale(shipped, [fitter.name], examples=toy_examples) == []
    fixed = [*toy_examples, RouteExample(prompt="fold these notes into three lines", route="summarize")]
    user = make_embedder()
    router = EmbeddingRouter.fit(user, fixed, cache_dir=cache, shipped_dir=shipped)
    assert user.seen == ["fold these notes into three lines"]
    assert router.classify("compute 8 times 7").route == "math"
    edited = toy_examples[:-1]
    assert any("vectors of other examples" in p for p in stale(shipped, [fitter.name], examples=edited))


def test_stale_names_changed_examples_and_left_over_files(tmp_path, toy_examples, make_embedder) -> None:
    shipped = tmp_path / "shipped"
    fitter = _ship(shipped, toy_examples, make_embedder)
    assert stale(shipped, [fitter.name], examples=toy_examples) == []
    edited = toy_examples[:-1] + [RouteExample(prompt="summarize this memo", route="summarize")]
    problems = stale(shipped, [fitter.name], examples=edited)
    assert any(p.startswith("missing ") for p in problems) and any(p.startswith("left-over ") for p in problems)
    regenerate(shipped, {fitter.name: make_embedder}, examples=edited, log=lambda _m: None)
    assert stale(shipped, [fitter.name], examples=edited) == []
    assert len(list(shipped.glob("*.npz"))) == 1


def test_a_head_fitted_on_other_examples_is_not_used(tmp_path, toy_examples, make_embedder) -> None:
    shipped = tmp_path / "shipped"
    fitter = _ship(shipped, toy_examples, make_embedder)
    (only,) = shipped.glob("*.npz")
    fewer = toy_examples[1:]
    only.rename(shipped / head_file_name(head_key(fitter.name, "logistic", fewer)))  # right name, wrong key
    user = make_embedder()
    EmbeddingRouter.fit(user, fewer, shipped_dir=shipped)
    assert user.seen  # refitted instead of trusting the file name
