"""Real parts for retrieval tests: the packaged MiniLM (loaded once) and the pydoc topics corpus
ingested once into a real FAISS + SQLite collection."""

from __future__ import annotations

from pathlib import Path

import pytest

from covey.rag import Embedder, RagSettings, Store, open_embedder


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    embedder = open_embedder(threads=1)  # as covey runs it: numpy MiniLM, rag.embed_threads
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
                   minilm: Embedder) -> Path:
    """A data dir whose default collection holds the pydoc corpus, embedded with the real MiniLM."""
    data_dir = tmp_path_factory.mktemp("pydoc-data")
    with Store.in_data_dir(data_dir, embedder=minilm, settings=RagSettings()) as store:
        report = store.add([pydoc_corpus])
    assert len(report.added) == 79 and not report.skipped
    return data_dir


@pytest.fixture
def pydoc_store(pydoc_data_dir: Path, minilm: Embedder) -> Store:
    store = Store.in_data_dir(pydoc_data_dir, embedder=minilm)
    yield store
    store.close()
