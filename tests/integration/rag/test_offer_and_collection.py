"""The graph's grounding on real parts (MiniLM, FAISS, SQLite): which questions are offered passages at the
offer threshold, and which collection answers (`covey ask --collection`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from covey.errors import BadRequest
from covey.orchestrator.retrieval import StoreGrounding
from covey.rag import RagSettings, Store
from covey.settings import Settings

OFFER = RagSettings().offer_threshold


async def test_a_python_question_is_offered_the_reference_and_a_poem_is_not(pydoc_data_dir: Path) -> None:
    grounding = StoreGrounding.from_settings(Settings(data_dir=pydoc_data_dir))
    assert grounding.offer_threshold == OFFER and grounding.collection == "default" and not grounding.strict
    offered, sources = await grounding.ground("What does the `yield` keyword do in Python?", budget_tokens=1100,
                                              threshold=OFFER, system="You write code.")
    assert offered.found and sources and any("yield" in s.path for s in sources)
    assert offered.messages[0].content == "You write code."
    for prompt in ("Write a haiku about rain on a tin roof", "Give me a pep talk before my exam.",
                   "Translate 'good morning' into Spanish"):
        unrelated, none = await grounding.ground(prompt, budget_tokens=1100, threshold=OFFER)
        assert not unrelated.found and none == (), prompt


async def test_the_collection_asked_for_is_the_one_searched(tmp_path: Path, minilm: object) -> None:
    garden = tmp_path / "garden-notes"
    garden.mkdir()
    (garden / "tomatoes.md").write_text("# Tomatoes\n\nWater the tomatoes every evening in July.\n")
    with Store.in_data_dir(tmp_path, "garden", embedder=minilm, settings=RagSettings()) as store:  # type: ignore[arg-type]
        store.add([garden])
    settings = Settings(data_dir=tmp_path, rag={"collection": "garden"})
    grounded, sources = await StoreGrounding.from_settings(settings).ground("When do I water the tomatoes?",
                                                                            budget_tokens=1100)
    assert grounded.found and sources[0].path.endswith("tomatoes.md")
    # The default collection was never made: no documents, not an error.
    assert await StoreGrounding.from_settings(Settings(data_dir=tmp_path)).ground("tomatoes?", budget_tokens=900) \
        == (None, ())
    with pytest.raises(BadRequest) as err:
        await StoreGrounding.from_settings(Settings(data_dir=tmp_path, rag={"collection": "recipes"})).ground(
            "cake?", budget_tokens=900)
    assert "no document collection 'recipes'" in str(err.value) and "garden" in str(err.value)
    assert "--collection recipes" in err.value.hint
