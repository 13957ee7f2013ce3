"""Real parts for retrieval tests: the packaged MiniLM (loaded once), the pydoc topics corpus
ingested once into a real FAISS + SQLite collection, and a consistency checker for stores on disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from covey.rag import RagSettings, SentenceTransformerEmbedder, Store

HERE = Path(__file__).parent
QUESTIONS = HERE / "pydoc_questions.jsonl"


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEmbedder:
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm up"])  # load now, fail loudly if the packaged model is missing
    return embedder


@pytest.fixture(scope="session")
def pydoc_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CPython's pydoc topics (the language reference, 79 topics) as one text file per topic."""
    from pydoc_data.topics import topics

    folder = tmp_path_factory.mktemp("pydoc-topics")
    for name, text in topics.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def pydoc_data_dir(tmp_path_factory: pytest.TempPathFactory, pydoc_corpus: Path,
                   minilm: SentenceTransformerEmbedder) -> Path:
    """A data dir whose default collection holds the pydoc corpus, embedded with the real MiniLM."""
    data_dir = tmp_path_factory.mktemp("pydoc-data")
    with Store.in_data_dir(data_dir, embedder=minilm, settings=RagSettings()) as store:
        report = store.add([pydoc_corpus])
    assert len(report.added) == 79 and not report.skipped
    return data_dir


@pytest.fixture
def pydoc_store(pydoc_data_dir: Path, minilm: SentenceTransformerEmbedder) -> Store:
    store = Store.in_data_dir(pydoc_data_dir, embedder=minilm)
    yield store
    store.close()


def assert_consistent(collection_dir: Path) -> dict[str, int]:
    """Checks a collection on disk: the committed generation's index file matches the rows exactly."""
    import faiss

    db = sqlite3.connect(collection_dir / "meta.sqlite")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        state = dict(db.execute("SELECT key, value FROM state"))
        chunk_ids = {r[0] for r in db.execute("SELECT id FROM chunks")}
        per_source = dict(db.execute("SELECT source, count(*) FROM chunks GROUP BY source"))
        declared = dict(db.execute("SELECT path, chunks FROM sources"))
    finally:
        db.close()
    assert per_source == {p: n for p, n in declared.items() if n}, "sources.chunks disagrees with the chunk rows"
    generation = int(state["generation"])
    if "dim" in state:
        index = faiss.read_index(str(collection_dir / f"index-{generation:08d}.faiss"))
        ids = set(faiss.vector_to_array(index.id_map).tolist())
        assert index.ntotal == int(state["vectors"])
        assert chunk_ids <= ids, "chunks without a vector in the committed index"
        assert len(ids - chunk_ids) == int(state["dead"]), "vectors of unknown chunks beyond the dead count"
    else:
        assert not chunk_ids
    return {"generation": generation, "chunks": len(chunk_ids), "sources": len(declared)}
