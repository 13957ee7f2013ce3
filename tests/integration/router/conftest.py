"""The real router as covey ships it: all-MiniLM-L6-v2 on the default backend (onnxruntime int8), the
shipped examples and their shipped head."""

from __future__ import annotations

from pathlib import Path

import pytest

from covey.embedding import Embedder
from covey.router.classifier import EmbeddingRouter, load_default_router
from covey.router.embedding import router_encoder
from covey.settings import RouterSettings


@pytest.fixture(scope="session")
def minilm(tmp_path_factory) -> Embedder:
    settings = RouterSettings()
    embedder = router_encoder(settings.backend, threads=settings.torch_threads,
                              data_dir=tmp_path_factory.mktemp("encoder-data"), int8=settings.int8)
    embedder.embed(["warm up"])  # load now: fail loudly here if the model is missing
    return embedder


@pytest.fixture(scope="session")
def router_data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("router-data")


@pytest.fixture(scope="session")
def real_router(minilm, router_data_dir) -> EmbeddingRouter:
    return load_default_router(router_data_dir, embedder=minilm)
