"""Retrieval's default embedder is the numpy MiniLM: sentence-transformers' vectors, the router's weights, no torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from covey.minilm import NumpyMiniLM
from covey.rag import RagSettings, SentenceTransformerEmbedder, Store, open_embedder
from covey.settings import Settings

TEXTS = [
    "How do I catch and handle an exception?",
    "The office wifi network is called Heron. The wifi password is tulip-4471.",
    "Résumé: déjà vu, naïve café — 東京で会いましょう; Привет!",
    "def square(x):\n    return x ** 2  # the square of x",
    " ".join(["A long passage about the history of the sea and the ships that crossed it."] * 30),  # > 256 tokens
]


@pytest.fixture(scope="module")
def torch_minilm() -> SentenceTransformerEmbedder:
    """The sentence-transformers MiniLM, as covey's retrieval ran it before (and still runs other models)."""
    return SentenceTransformerEmbedder(threads=1)


def test_the_packaged_model_runs_with_numpy_and_gives_sentence_transformers_vectors(
        torch_minilm: SentenceTransformerEmbedder) -> None:
    ours = open_embedder(threads=1)
    assert isinstance(ours, NumpyMiniLM)
    assert ours.name == torch_minilm.name == "all-MiniLM-L6-v2"  # what collections record
    assert (ours.dim, ours.max_tokens) == (torch_minilm.dim, torch_minilm.max_tokens) == (384, 254)
    assert [ours.count_tokens(t) for t in TEXTS] == [torch_minilm.count_tokens(t) for t in TEXTS]
    assert ours.count_tokens(TEXTS[-1]) > 256  # the long text is truncated when embedded, by both
    mine, theirs = ours.embed(TEXTS), torch_minilm.embed(TEXTS)
    assert mine.shape == theirs.shape == (len(TEXTS), 384) and mine.dtype == np.float32
    assert np.abs(mine - theirs).max() < 1e-4
    assert np.allclose(np.linalg.norm(mine, axis=1), 1.0, atol=1e-5)
    assert ours.embed([]).shape == (0, 384)


def test_other_model_names_still_load_with_sentence_transformers(tmp_path: Path) -> None:
    assert isinstance(open_embedder("sentence-transformers/all-MiniLM-L6-v2"), NumpyMiniLM)  # an alias
    other = open_embedder(str(tmp_path / "my-model"), threads=2, batch_size=8)
    assert isinstance(other, SentenceTransformerEmbedder) and other.name == str(tmp_path / "my-model")


def test_a_collection_built_with_sentence_transformers_opens_and_grows_with_the_numpy_embedder(
        tmp_path: Path, torch_minilm: SentenceTransformerEmbedder) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "office.md").write_text("# Office\n\nThe office wifi network is called Heron.\n"
                                    "The wifi password is tulip-4471.\n")
    (docs / "garden.md").write_text("# Garden\n\nWater the tomatoes every evening in July.\n")
    question = "What is the wifi password?"
    with Store(tmp_path / "rag", "old", embedder=torch_minilm) as old:  # an index written before this change
        old.add([docs])
        before = old.search(question, k=2)
    with Store(tmp_path / "rag", "old", settings=RagSettings()) as reopened:  # today's default embedder
        assert isinstance(reopened.embedder, NumpyMiniLM)
        after = reopened.search(question, k=2)
        assert [p.chunk_id for p in after] == [p.chunk_id for p in before]
        assert max(abs(a.score - b.score) for a, b in zip(after, before)) < 1e-4
        (docs / "trains.md").write_text("# Trains\n\nThe night train to Vienna leaves at 22:10.\n")
        report = reopened.add([docs])  # no EmbedderMismatch: the name and dimension are the same
        assert [Path(p).name for p in report.added] == ["trains.md"]
        assert reopened.stats().embedder == "all-MiniLM-L6-v2" and reopened.stats().dim == 384
        assert reopened.search("When does the train to Vienna leave?", k=1)[0].source.endswith("trains.md")


def test_the_router_and_retrieval_share_one_copy_of_the_weights(tmp_path: Path) -> None:
    from covey.orchestrator.retrieval import StoreGrounding
    from covey.rag.embedder import from_settings
    from covey.tui.documents import Documents
    from covey.wiring import _load_router

    # With backend numpy (auto's fallback); the default onnx-int8 router runs its own 23 MB int8 session instead.
    settings = Settings(data_dir=tmp_path, router={"torch_threads": 1, "backend": "numpy"}, rag={"embed_threads": 2})
    (tmp_path / "notes.txt").write_text("Remember to water the ferns on Sunday.\n")
    Documents(tmp_path, settings.rag).add(str(tmp_path / "notes.txt"))
    router = _load_router(settings)  # what wiring.build loads for `covey ask` and `covey serve`
    store = StoreGrounding.from_settings(settings)._open()
    assert store is not None
    served = from_settings(settings.rag)  # covey serve's /v1/embeddings
    chat = Documents(tmp_path, settings.rag).embedder()  # the chat's /rag
    assert isinstance(router.embedder, NumpyMiniLM) and isinstance(store.embedder, NumpyMiniLM)
    weights = router.embedder.weights
    assert store.embedder.weights is weights and served.weights is weights and chat.weights is weights  # type: ignore[attr-defined]
    assert store.search("When do the ferns get water?", k=1)[0].source.endswith("notes.txt")
    assert router.embedder._threads == 1 and store.embedder._threads == 2  # each keeps its own thread cap


ASK_WITH_A_COLLECTION = """
import asyncio, sys
from pathlib import Path
from covey.orchestrator.retrieval import StoreGrounding
from covey.settings import Settings
from covey.wiring import _load_router
settings = Settings(data_dir=Path(sys.argv[1]))
router = _load_router(settings)
grounding = StoreGrounding.from_settings(settings)
route = router.classify("When do the ferns get water?").route
prompt, sources = asyncio.run(grounding.ground("When do the ferns get water?", budget_tokens=500))
print(route, prompt.found, Path(sources[0].path).name, "torch" in sys.modules)
"""


def test_routing_and_grounding_a_question_never_import_torch(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("Remember to water the ferns on Sunday.\n")
    with Store.in_data_dir(tmp_path, settings=RagSettings()) as store:
        store.add([tmp_path / "notes.txt"])
    done = subprocess.run([sys.executable, "-c", ASK_WITH_A_COLLECTION, str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    route, found, source, torch_imported = done.stdout.split()
    assert (found, source, torch_imported) == ("True", "notes.txt", "False")
    assert route  # whichever route: the point is what got imported to get there
