"""`Store`: one named collection of embedded document chunks, on disk under ROOT/<collection>/.

Layout: meta.sqlite (sources, chunks, vectors, state), index-<generation>.faiss, write.lock.

Writers take an exclusive `fcntl` lock, so two processes adding at once run one after the other.
A commit writes the next index file completely (temporary file, fsync, rename), then bumps the
generation in the same SQLite transaction that changes the rows. A crash before that commit leaves
the previous generation (rows and file) in force; the orphaned file is deleted by the next writer.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from covey.errors import (
    BadRequest, ConfigError, EmbedderMismatch, QueryTooLong, SourceNotFound, StoreBusy, StoreCorrupt,
)
from covey.rag.chunker import Chunker
from covey.rag.config import RagSettings
from covey.embedding import Embedder
from covey.rag.extract import Unreadable, kind_of, read_blocks
from covey.rag.files import discover
from covey.rag.index import VectorIndex
from covey.rag.meta import Metadata
from covey.rag.types import (
    Chunk,
    IndexKind,
    IngestProgress,
    IngestReport,
    Passage,
    Skipped,
    SourceInfo,
    SourceKind,
    StoreStats,
)

logger = logging.getLogger(__name__)

_COLLECTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_INDEX_FILE = re.compile(r"^index-(\d+)\.faiss(\.tmp)?$")
ProgressCallback = Callable[[IngestProgress], None]
_T = TypeVar("_T")


@dataclass
class _Prepared:
    info: SourceInfo
    chunks: list[Chunk]
    vectors: np.ndarray
    replaces: bool


def _sql_errors(method: Callable[..., _T]) -> Callable[..., _T]:
    """SQLite's own failures on a damaged meta.sqlite become StoreCorrupt (StoreBusy when it is locked)."""
    @functools.wraps(method)
    def guarded(self: Store, *args: Any, **kwargs: Any) -> _T:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreBusy(f"collection {self.collection!r} at {self.path} is busy ({exc})") from exc
            raise StoreCorrupt(f"{self.path / 'meta.sqlite'} cannot be used ({exc})") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreCorrupt(f"{self.path / 'meta.sqlite'} is damaged ({exc})") from exc
    return guarded


class Store:
    """A collection of document chunks with a FAISS index beside SQLite metadata.

    `root` holds the collections (covey uses DATA_DIR/rag); the embedder defaults to the one
    `settings.embedder` names (covey.rag.embedder.open_embedder: the packaged all-MiniLM-L6-v2 in
    numpy) and is only loaded when something is embedded.
    """

    def __init__(
        self,
        root: Path,
        collection: str = "default",
        *,
        embedder: Embedder | None = None,
        settings: RagSettings | None = None,
        clock: Callable[[], float] = time.time,
        create: bool = True,
    ) -> None:
        """`create=False` refuses a collection that does not exist yet (read-only commands use it)."""
        if not _COLLECTION.match(collection):
            raise ConfigError(
                f"collection name {collection!r} is not allowed",
                hint="use letters, digits, '-', '_' or '.', up to 64 characters",
            )
        self.settings = settings or RagSettings()
        self.collection = collection
        self.path = Path(root).expanduser() / collection
        if not create and not (self.path / "meta.sqlite").exists():
            known = ", ".join(self.collections(self.path.parent)) or "none yet"
            raise SourceNotFound(
                f"collection {collection!r} does not exist in {self.path.parent} (collections: {known})",
                hint=f"add files first with `covey rag add PATH --collection {collection}`",
            )
        self.path.mkdir(parents=True, exist_ok=True)
        if embedder is None:
            from covey.rag.embedder import from_settings

            embedder = from_settings(self.settings)
        self.embedder: Embedder = embedder
        self._clock = clock
        self._meta = Metadata(self.path / "meta.sqlite")
        self._index: VectorIndex | None = None
        self._index_gen = -1
        self._lock = threading.RLock()
        self._chunker_cache: Chunker | None = None

    @classmethod
    def in_data_dir(cls, data_dir: Path, collection: str = "default", **kwargs: object) -> Store:
        """The store covey's CLI and graph use: DATA_DIR/rag/<collection>."""
        return cls(Path(data_dir) / "rag", collection, **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def collections(root: Path) -> list[str]:
        root = Path(root)
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if (p / "meta.sqlite").exists())

    def close(self) -> None:
        with self._lock:
            self._meta.close()
            self._index = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # reading ----------------------------------------------------------------------------------

    @_sql_errors
    def sources(self) -> list[SourceInfo]:
        with self._lock:
            return self._meta.sources()

    @_sql_errors
    def stats(self) -> StoreStats:
        with self._lock:
            state = self._meta.state()
            index = self._current_index()
            dim = int(state["dim"]) if "dim" in state else None
            return StoreStats(
                collection=self.collection,
                path=str(self.path),
                sources=len(self._meta.hashes()),
                chunks=self._meta.count_chunks(),
                index_kind=index.kind if index else "exact",
                index_detail=index.detail if index else "IndexFlatIP (empty)",
                approximate_above=self.settings.approximate_above,
                dead_vectors=int(state.get("dead", 0)),
                embedder=state.get("embedder"),
                dim=dim,
                generation=int(state["generation"]),
                disk_bytes=sum(p.stat().st_size for p in self.path.iterdir() if p.is_file()),
            )

    @_sql_errors
    def search(self, query: str, k: int = 5, *, min_score: float | None = None) -> list[Passage]:
        """The `k` chunks most similar to `query`, best first, optionally only those scoring >= min_score."""
        query = query.strip()
        if not query:
            raise BadRequest("the search query is empty")
        if k < 1:
            raise BadRequest(f"k must be at least 1, got {k}")
        with self._lock:
            state = self._meta.state()
            if "embedder" not in state:
                return []
            self._check_embedder(state)
            window = self.embedder.max_tokens
            tokens = self.embedder.count_tokens(query)
            if tokens > window:
                raise QueryTooLong(f"the query is {tokens} tokens; {self.embedder.name} reads at most {window}")
            index = self._current_index()
            if index is None or index.ntotal == 0:
                return []
            vector = self.embedder.embed([query])
            dead = int(state.get("dead", 0))
            fetch = k if dead == 0 else min(index.ntotal, k + dead, 4 * k + 64)
            scores, ids = index.search(vector, fetch)
            rows = self._meta.chunks_by_id(ids[0])
        passages: list[Passage] = []
        for score, chunk_id in zip(scores[0], ids[0], strict=True):
            row = rows.get(int(chunk_id))
            if row is None or (min_score is not None and score < min_score):
                continue
            source, text, position, trail = row
            passages.append(Passage(text=text, score=float(score), source=source, position=position,
                                    heading_trail=trail, chunk_id=int(chunk_id)))
            if len(passages) == k:
                break
        return passages

    # writing ----------------------------------------------------------------------------------

    @_sql_errors
    def add(
        self,
        paths: Iterable[str | Path],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Ingests files and folders; unchanged files are left alone, changed ones replace their chunks.

        Bad files are skipped with a reason and the rest of the batch still goes in. Work is committed
        every `settings.commit_every` chunks or `settings.commit_every_s` seconds, whichever comes
        first, so an interrupted ingest keeps what it finished and a rerun carries on from there.
        """
        started = self._clock()
        files, skipped = discover(paths, include, exclude)
        added: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        totals = {"added": 0, "removed": 0}
        with self._lock, self._writer():
            state = self._meta.state()
            if files:
                self._check_embedder(state)
            known = self._meta.hashes()
            batch: list[_Prepared] = []
            pending = 0
            last_commit, commit_cost = self._clock(), 0.0
            for done, path in enumerate(files, 1):
                outcome, count = "skipped", 0
                try:
                    prepared = self._prepare(path, known)
                except Unreadable as exc:
                    skipped.append(Skipped(path=str(path), reason=str(exc)))
                else:
                    if prepared is None:
                        outcome = "unchanged"
                        unchanged.append(str(path))
                    else:
                        outcome, count = ("updated" if prepared.replaces else "added"), len(prepared.chunks)
                        (updated if prepared.replaces else added).append(str(path))
                        batch.append(prepared)
                        pending += count
                waited = self._clock() - last_commit
                if batch and (pending >= self.settings.commit_every
                              or waited >= max(self.settings.commit_every_s, 4 * commit_cost)):
                    began = self._clock()
                    self._commit_batch(batch, [], totals)
                    batch, pending = [], 0
                    last_commit = self._clock()
                    commit_cost = last_commit - began
                if progress is not None:
                    progress(IngestProgress(done=done, total=len(files), path=str(path), outcome=outcome,
                                            chunks=count))
            if batch:
                self._commit_batch(batch, [], totals)
        return IngestReport(
            added=tuple(added), updated=tuple(updated), unchanged=tuple(unchanged), skipped=tuple(skipped),
            chunks_added=totals["added"], chunks_removed=totals["removed"], seconds=self._clock() - started,
        )

    @_sql_errors
    def add_chunks(self, source: str, chunks: Sequence[Chunk], vectors: np.ndarray, *, kind: SourceKind = "text",
                   sha256: str = "") -> int:
        """Stores chunks already embedded with this store's model (importers, benchmarks); replaces `source`.

        `vectors` must be L2-normalized float32 rows, one per chunk. Returns the chunks stored.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(chunks) or not chunks:
            raise BadRequest(f"need one vector per chunk: {len(chunks)} chunks, vectors of shape {vectors.shape}")
        with self._lock, self._writer():
            state = self._meta.state()
            self._check_embedder(state)
            if "dim" in state and int(state["dim"]) != vectors.shape[1]:
                raise BadRequest(f"vectors have {vectors.shape[1]} dims; the collection holds {state['dim']}")
            info = SourceInfo(path=source, kind=kind, sha256=sha256 or f"imported-{self._clock()}",
                              bytes=sum(len(c.text) for c in chunks), chunks=len(chunks), added_at=self._clock())
            totals = {"added": 0, "removed": 0}
            prepared = _Prepared(info=info, chunks=list(chunks), vectors=vectors, replaces=False)
            self._commit_batch([prepared], [], totals)
            return totals["added"]

    @_sql_errors
    def remove(self, path: str | Path) -> int:
        """Removes a source (or every source under a folder); returns how many chunks went."""
        target = str(Path(path).expanduser().absolute())
        with self._lock, self._writer():
            victims = self._meta.sources_under(target)
            if not victims:
                raise SourceNotFound(f"{target} is not in collection {self.collection!r}")
            totals = {"added": 0, "removed": 0}
            self._commit_batch([], victims, totals)
            return totals["removed"]

    def _chunker(self) -> Chunker:
        if self._chunker_cache is None:
            self._chunker_cache = Chunker(
                self.embedder.count_tokens,
                size=min(self.settings.chunk_tokens, self.embedder.max_tokens - 16),
                overlap=self.settings.overlap_tokens,
            )
        return self._chunker_cache

    def _prepare(self, path: Path, known: dict[str, str]) -> _Prepared | None:
        try:
            size = path.stat().st_size
            limit = self.settings.max_file_mb * 1024 * 1024
            if size > limit:
                raise Unreadable(
                    f"{size / 1024 / 1024:.1f} MB is over the {self.settings.max_file_mb:g} MB limit "
                    "(raise rag.max_file_mb to index it)"
                )
            if size == 0:
                raise Unreadable("empty file")
            data = path.read_bytes()
        except OSError as exc:
            raise Unreadable(f"cannot read: {exc.strerror or exc}") from exc
        digest = hashlib.sha256(data).hexdigest()
        key = str(path)
        if known.get(key) == digest:
            return None
        kind = kind_of(path)
        chunks = self._chunker().chunks(read_blocks(path, data, kind))
        if not chunks:
            raise Unreadable("no text to index (only whitespace or markup)")
        vectors = self.embedder.embed([c.embedding_text() for c in chunks])
        info = SourceInfo(path=key, kind=kind, sha256=digest, bytes=len(data), chunks=len(chunks),
                          added_at=self._clock())
        return _Prepared(info=info, chunks=chunks, vectors=vectors, replaces=key in known)

    def _commit_batch(self, batch: list[_Prepared], removals: list[str], totals: dict[str, int]) -> None:
        """Applies one batch to SQLite and the index as a single new generation."""
        index = self._writable_index()
        new_file: Path | None = None
        meta = self._meta
        meta.begin()
        try:
            state = meta.state()
            dead = int(state.get("dead", 0))
            gone: list[int] = []
            for path in removals + [p.info.path for p in batch]:
                gone.extend(meta.delete_source(path))
            new_ids: list[int] = []
            for prepared in batch:
                new_ids.extend(meta.insert_source(prepared.info, prepared.chunks, prepared.vectors))
            dim = int(state.get("dim", 0)) or (batch[0].vectors.shape[1] if batch else index.dim if index else 0)
            if index is None and dim:
                index = VectorIndex.empty("exact", dim)
            if index is not None:
                if gone and not index.remove(np.asarray(gone, dtype=np.int64)):
                    dead += len(gone)
                if batch:
                    index.add(np.concatenate([p.vectors for p in batch]), np.asarray(new_ids, dtype=np.int64))
                live = meta.count_chunks()
                kind = self._kind_for(live, index.kind)
                if kind != index.kind or (index.kind == "hnsw" and dead > 0.1 * max(index.ntotal, 1)):
                    logger.info("rebuilding the %s index as %s over %d chunks", index.kind, kind, live)
                    index = self._rebuild(kind, dim)
                    dead = 0
            generation = int(state["generation"]) + 1
            digest = ""
            if index is not None:
                new_file = self._index_path(generation)
                digest = index.write(new_file)
            values: dict[str, object] = {"generation": generation, "vectors": index.ntotal if index else 0,
                                         "dead": dead, "index_sha256": digest}
            if batch:
                values.update(embedder=self.embedder.name, dim=dim)
            meta.set_state(**values)
            meta.commit()
        except BaseException:
            meta.rollback()
            self._index, self._index_gen = None, -1
            if new_file is not None:
                new_file.unlink(missing_ok=True)
            raise
        totals["added"] += len(new_ids)
        totals["removed"] += len(gone)
        self._index, self._index_gen = index, generation
        self._sweep(keep=generation)

    def _kind_for(self, live: int, current: IndexKind) -> IndexKind:
        threshold = self.settings.approximate_above
        if current == "hnsw":
            return "exact" if live < threshold // 2 else "hnsw"  # hysteresis: no flapping at the edge
        return "hnsw" if live > threshold else "exact"

    def _rebuild(self, kind: IndexKind, dim: int) -> VectorIndex:
        index = VectorIndex.empty(kind, dim)
        for ids, vectors in self._meta.vectors(dim):
            index.add(vectors, ids)
        return index

    # index files ------------------------------------------------------------------------------

    def _index_path(self, generation: int) -> Path:
        return self.path / f"index-{generation:08d}.faiss"

    def _current_index(self) -> VectorIndex | None:
        """The index of the committed generation, reloaded when another process committed since."""
        state = self._meta.state()
        generation = int(state["generation"])
        if generation == self._index_gen:
            return self._index
        index: VectorIndex | None = None
        if "dim" in state:
            for _attempt in range(3):
                path = self._index_path(generation)
                try:
                    index = VectorIndex.load(path, state.get("index_sha256") or None)
                    if index.ntotal != int(state["vectors"]):
                        raise ValueError(f"holds {index.ntotal} vectors, the database expects {state['vectors']}")
                    break
                except (RuntimeError, ValueError, OSError) as exc:
                    index = None
                    fresh = self._meta.state()
                    if int(fresh["generation"]) != generation:  # a writer replaced it meanwhile: read the new one
                        state, generation = fresh, int(fresh["generation"])
                        continue
                    # Missing or damaged (e.g. deleted by hand): the vectors in SQLite rebuild it.
                    logger.warning("index file %s is unusable (%s); rebuilt it from the vectors in %s", path,
                                   exc, self._meta.path.name)
                    break
            if index is None:
                self._meta.begin_read()  # one snapshot: rows and generation read together
                try:
                    state = self._meta.state()
                    generation = int(state["generation"])
                    live = self._meta.count_chunks()
                    kind: IndexKind = "hnsw" if live > self.settings.approximate_above else "exact"
                    index = self._rebuild(kind, int(state["dim"]))
                finally:
                    self._meta.rollback()
                self._repair(index, generation)
        self._index, self._index_gen = index, generation
        return index

    def _repair(self, index: VectorIndex, generation: int) -> None:
        """Writes a rebuilt index over the unusable file, if no writer holds the collection right now
        (a writer in this process holds it: its commit writes a new generation anyway)."""
        fd = os.open(self.path / "write.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            try:
                if self._meta.generation() != generation:
                    return
                digest = index.write(self._index_path(generation))
                self._meta.begin()
                if self._meta.generation() == generation:
                    self._meta.set_state(index_sha256=digest)
                    self._meta.commit()
                else:
                    self._meta.rollback()
            except (OSError, sqlite3.Error) as exc:  # a read-only folder: the index stays rebuilt in memory
                self._meta.rollback()
                logger.debug("could not rewrite the index of %s: %s", self.path, exc)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _writable_index(self) -> VectorIndex | None:
        self._index_gen = -1  # re-read under the writer lock: another process may have committed
        return self._current_index()

    def _sweep(self, keep: int) -> None:
        """Deletes index files of older generations and temporary files of interrupted writers."""
        for path in self.path.iterdir():
            match = _INDEX_FILE.match(path.name)
            if match and (match.group(2) or int(match.group(1)) != keep):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass

    @contextmanager
    def _writer(self) -> Iterator[None]:
        lock_path = self.path / "write.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.settings.lock_timeout_s
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreBusy(f"collection {self.collection!r} at {self.path} is locked by another writer") from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _check_embedder(self, state: dict[str, str]) -> None:
        built_with = state.get("embedder")
        if built_with is not None and built_with != self.embedder.name:
            raise EmbedderMismatch(
                f"collection {self.collection!r} was built with {built_with!r} ({state.get('dim')} dims); "
                f"this store was opened with {self.embedder.name!r}"
            )
