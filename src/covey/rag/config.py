"""Retrieval settings (they live on the settings root as `Settings.rag`) and their calibrated constants."""

from __future__ import annotations

from covey.settings import RagSettings

__all__ = ["DEFAULT_EMBEDDER", "RELEVANCE_THRESHOLD", "RagSettings"]

DEFAULT_EMBEDDER: str = RagSettings.model_fields["embedder"].default

RELEVANCE_THRESHOLD: float = RagSettings.model_fields["relevance_threshold"].default
"""Cosine similarity a passage needs to ground an answer. With MiniLM on the pydoc topics test the
40 on-topic questions score at least 0.41 and off-topic questions at most 0.21: 0.30 sits between."""
