"""Fixtures for the store's logic tests: the hashing embedder and a store in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from rag_fakes import HashingEmbedder

from covey.rag import RagSettings, Store


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture
def store(tmp_path: Path, embedder: HashingEmbedder) -> Store:
    s = Store(tmp_path / "rag", embedder=embedder, settings=RagSettings(chunk_tokens=60, overlap_tokens=10))
    yield s
    s.close()
