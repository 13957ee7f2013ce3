"""Frozen data of the retrieval store: chunks, passages, ingest reports, stats."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from covey.types import Frozen

SourceKind = Literal["text", "markdown", "html", "pdf", "code"]


class Position(Frozen):
    """Where a chunk sits in its source: a line range, and the page for PDFs (1-based)."""

    line_start: int = Field(ge=1)
    line_end: int = Field(ge=1)
    page: int | None = Field(None, ge=1)

    def __str__(self) -> str:
        lines = f"{self.line_start}" if self.line_start == self.line_end else f"{self.line_start}-{self.line_end}"
        if self.page is not None:
            return f"p.{self.page}"
        return lines


class Chunk(Frozen):
    """One piece of a source, ready to embed."""

    text: str
    position: Position
    heading_trail: tuple[str, ...] = ()
    tokens: int = 0

    def embedding_text(self) -> str:
        """What the embedder sees: the heading trail gives a short passage its topic."""
        if not self.heading_trail:
            return self.text
        return " > ".join(self.heading_trail) + "\n" + self.text


class Passage(Frozen):
    """A search hit: the chunk's text, its cosine similarity to the query, and where it came from."""

    text: str
    score: float
    source: str = Field(description="absolute path of the source file")
    position: Position
    heading_trail: tuple[str, ...] = ()
    chunk_id: int

    @property
    def label(self) -> str:
        """`path:12-30` or `path p.3`, used in source lists."""
        if self.position.page is not None:
            return f"{self.source} p.{self.position.page}"
        return f"{self.source}:{self.position}"


class Skipped(Frozen):
    path: str
    reason: str


class IngestReport(Frozen):
    added: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.skipped


class IngestProgress(Frozen):
    """Reported once per file, after the file was handled."""

    done: int
    total: int
    path: str
    outcome: Literal["added", "updated", "unchanged", "skipped"]
    chunks: int = 0


class SourceInfo(Frozen):
    path: str
    kind: SourceKind
    sha256: str
    bytes: int
    chunks: int
    added_at: float = Field(description="unix time of the last (re)ingest")


IndexKind = Literal["exact", "hnsw"]


class StoreStats(Frozen):
    collection: str
    path: str
    sources: int
    chunks: int
    index_kind: IndexKind
    index_detail: str = Field(description="the FAISS index behind the kind, e.g. IndexFlatIP")
    approximate_above: int = Field(description="chunk count above which the HNSW index is used")
    dead_vectors: int = Field(0, description="vectors of removed chunks still in an HNSW graph")
    embedder: str | None
    dim: int | None
    generation: int
    disk_bytes: int
