"""Instruction embeddings kept by text, so a refit embeds only the prompts it has not seen.

Fitting the router embeds every example (about 1400 with the shipped ones); with MiniLM on one busy
core that is a minute or more, too long for `covey route fix` or for adding a few examples. The
router keeps the vectors it computed in DATA_DIR/cache/router/vectors-<embedder>.npz and reads the
package's vectors of the shipped examples (data/router_vectors/<embedder>.npz, written with the
shipped heads), so a refit after a correction embeds one prompt. Keys are SHA-1 digests of the text
embedded, per embedder name; vectors are stored as float16 (unit vectors lose < 1e-4 per component).
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from covey.embedding import Embedder

logger = logging.getLogger(__name__)


def vectors_file(folder: Path, embedder_name: str) -> Path:
    return Path(folder) / f"vectors-{embedder_name}.npz"


def text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


def read_vectors(path: Path) -> dict[bytes, np.ndarray]:
    """{key: vector} from a file written by `write_vectors`; empty when it is missing or unreadable."""
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            return dict(zip((row.tobytes() for row in z["keys"]), z["vecs"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # truncated too
        logger.warning("ignoring unreadable router vectors %s: %s", path, exc)
        return {}


def write_vectors(path: Path, vectors: dict[bytes, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    keys = sorted(vectors)
    # Keys as rows of 20 bytes: numpy's "S20" strings would drop a digest's trailing zero bytes.
    np.savez_compressed(tmp, keys=np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 20),
                        vecs=np.stack([vectors[k] for k in keys]).astype(np.float16))
    tmp.replace(path)


class CachedEmbedder:
    """An embedder that looks texts up in vector files first and remembers what it had to compute.

    `name` is the inner embedder's, so heads fitted through it are keyed as usual."""

    def __init__(self, inner: Embedder, write_to: Path | None, read_from: Sequence[Path] = ()) -> None:
        self.inner = inner
        self.write_to = write_to
        self.known: dict[bytes, np.ndarray] = {}
        for path in [*read_from, *([write_to] if write_to is not None else [])]:
            self.known.update(read_vectors(path))
        self.computed = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts) if k not in self.known}
        if missing:
            new = np.asarray(self.inner.embed(list(missing.values())), dtype=np.float32)
            self.known.update(zip(missing, new))
            self.computed += len(missing)
            if self.write_to is not None:
                own = read_vectors(self.write_to)
                own.update(zip(missing, new))
                write_vectors(self.write_to, own)
        if not keys:
            return np.asarray(self.inner.embed([]), dtype=np.float32)
        return np.stack([self.known[k] for k in keys]).astype(np.float32)
