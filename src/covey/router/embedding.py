"""The router's encoders: which MiniLM runs for `[router] backend`, and the torch one.

"auto" (the default) is onnxruntime int8 (covey.minilm_onnx) when onnxruntime and onnx are
installed, else numpy (covey.minilm, no torch, the one retrieval uses too). An onnx backend that
cannot run (missing, or the graph fails to build or load) falls back to numpy, with one log line
per process saying why. "torch" is sentence-transformers, imported on first use only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from covey.embedding import MINILM, Embedder, minilm, minilm_dir
from covey.rag.embedder import SentenceTransformerEmbedder

logger = logging.getLogger(__name__)


def router_encoder(backend: str, *, threads: int | None, data_dir: Path, int8: bool = True,
                   folder: Path | None = None) -> Embedder:
    """The loaded MiniLM the router embeds with for `backend` (see module docstring); loaded now, since
    its name (which fitted head fits it) depends on the backend that actually runs."""
    if backend == "torch":
        return PackagedMiniLM(folder, int8=int8, threads=threads)
    if backend == "numpy":
        return minilm(threads=threads, folder=folder)
    if backend not in ("auto", "onnx-int8", "onnx"):
        from covey.errors import ConfigError

        raise ConfigError(f"unknown router backend {backend!r}",
                          hint='use "auto", "onnx-int8", "onnx", "numpy" or "torch"')
    from covey.minilm_onnx import CACHE_SUBDIR, OnnxMiniLM, OnnxUnavailable, say_once

    encoder = OnnxMiniLM(Path(data_dir) / "cache" / CACHE_SUBDIR, folder, int8=backend != "onnx", threads=threads)
    try:
        encoder.load()
    except OnnxUnavailable as exc:
        level = logging.INFO if backend == "auto" else logging.WARNING
        say_once(level, f"router: {exc.message}; routing with MiniLM in numpy instead (backend {backend!r})")
        return minilm(threads=threads, folder=folder)
    return encoder


def describe_encoder(embedder: Embedder) -> str:
    """What ran, for people: the backend and threads when the embedder says, else its name."""
    describe = getattr(embedder, "describe", None)
    if callable(describe):
        return str(describe())
    backend = getattr(embedder, "backend", None)
    return f"{backend} ({embedder.name})" if backend else embedder.name


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
    def backend(self) -> str:
        return "torch-int8" if self._int8 and self._quantized else "torch"

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
