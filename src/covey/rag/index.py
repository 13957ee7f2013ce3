"""The FAISS side of the store: exact inner-product search, or an HNSW graph for large collections.

Vectors are L2-normalized, so inner product is cosine similarity. Ids are the chunk ids of the
metadata database. HNSW cannot delete; removed chunks stay in the graph as dead vectors that the
store filters out (their ids no longer exist in SQLite) until the graph is rebuilt.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from covey.rag.types import IndexKind

logger = logging.getLogger(__name__)

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 96


def _faiss() -> Any:
    import faiss

    return faiss


class VectorIndex:
    """A FAISS index mapping chunk ids to vectors, exact or HNSW."""

    def __init__(self, index: Any, kind: IndexKind) -> None:
        self._index = index
        self.kind: IndexKind = kind
        if kind == "hnsw":
            self._inner().hnsw.efSearch = HNSW_EF_SEARCH

    @classmethod
    def empty(cls, kind: IndexKind, dim: int) -> VectorIndex:
        faiss = _faiss()
        if kind == "exact":
            inner = faiss.IndexFlatIP(dim)
        else:
            inner = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return cls(faiss.IndexIDMap2(inner), kind)

    @classmethod
    def build(cls, kind: IndexKind, dim: int, vectors: np.ndarray, ids: np.ndarray) -> VectorIndex:
        index = cls.empty(kind, dim)
        index.add(vectors, ids)
        return index

    @classmethod
    def load(cls, path: Path, sha256: str | None = None) -> VectorIndex:
        """The index in `path`; with `sha256` (recorded when it was written) a damaged file is a ValueError."""
        faiss = _faiss()
        data = Path(path).read_bytes()
        if sha256 and hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("its sha256 does not match the one recorded when it was written (damaged file)")
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        inner = faiss.downcast_index(index.index)
        kind: IndexKind = "hnsw" if isinstance(inner, faiss.IndexHNSW) else "exact"
        return cls(index, kind)

    def _inner(self) -> Any:
        return _faiss().downcast_index(self._index.index)

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def detail(self) -> str:
        inner = self._inner()
        if self.kind == "hnsw":
            return f"IndexHNSWFlat(M={HNSW_M}, efSearch={inner.hnsw.efSearch})"
        return type(inner).__name__

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> bool:
        """Drops vectors from an exact index; returns False for HNSW, which keeps them as dead vectors."""
        if self.kind == "hnsw" or not len(ids):
            return self.kind != "hnsw"
        faiss = _faiss()
        self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))
        return True

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) for one or more query rows; missing slots have id -1."""
        q = np.ascontiguousarray(np.atleast_2d(query), dtype=np.float32)
        k = max(1, min(k, self.ntotal)) if self.ntotal else 1
        return self._index.search(q, k)

    def write(self, path: Path) -> str:
        """Writes the index to `path` atomically (a temporary file, fsync, then rename); returns its sha256."""
        data = _faiss().serialize_index(self._index).tobytes()
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
        return hashlib.sha256(data).hexdigest()


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
