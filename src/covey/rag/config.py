"""Retrieval settings; meant to hang off the settings root as `Settings.rag`."""

from __future__ import annotations

from pydantic import BaseModel, Field

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"

RELEVANCE_THRESHOLD = 0.30
"""Cosine similarity a passage needs to ground an answer (MiniLM; calibrated on the pydoc topics test)."""


class RagSettings(BaseModel):
    embedder: str = Field(
        DEFAULT_EMBEDDER,
        description="sentence-transformers model: the packaged all-MiniLM-L6-v2 (offline) or any model name/path",
    )
    chunk_tokens: int = Field(200, ge=16, description="chunk size in embedder tokens (capped by the model window)")
    overlap_tokens: int = Field(32, ge=0, description="tokens repeated from the previous chunk of a section")
    batch_size: int = Field(32, ge=1, description="texts per embedding batch")
    approximate_above: int = Field(
        20_000, ge=1, description="above this many chunks the collection switches from exact search to HNSW"
    )
    relevance_threshold: float = Field(
        RELEVANCE_THRESHOLD, ge=-1.0, le=1.0, description="cosine similarity a passage needs to be used"
    )
    top_k: int = Field(5, ge=1, description="passages fetched per question")
    max_file_mb: float = Field(32.0, gt=0, description="larger files are skipped with a note")
    commit_every: int = Field(
        2000, ge=1, description="chunks per atomic commit during an ingest (what a crash can lose at most)"
    )
    lock_timeout_s: float = Field(600.0, ge=0, description="how long a writer waits for another writer")
