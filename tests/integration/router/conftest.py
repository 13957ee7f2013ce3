"""The real router as covey ships it: int8 all-MiniLM-L6-v2, the shipped examples, fitted once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from covey.router.classifier import EmbeddingRouter, load_default_router
from covey.router.embedding import PackagedMiniLM
from covey.settings import RouterSettings


@pytest.fixture(scope="session")
def minilm() -> PackagedMiniLM:
    embedder = PackagedMiniLM(int8=RouterSettings().int8)
    embedder.embed(["warm up"])  # load now: fail loudly here if the model is missing
    return embedder


@pytest.fixture(scope="session")
def router_data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("router-data")


@pytest.fixture(scope="session")
def real_router(minilm, router_data_dir) -> EmbeddingRouter:
    return load_default_router(router_data_dir, embedder=minilm)
