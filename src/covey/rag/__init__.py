"""Retrieval over the user's documents: chunking, embedding, a FAISS store, grounded prompts.

Importing this package is light: faiss (and torch, sentence-transformers for a model other than the
packaged MiniLM) load on first use.
"""

from covey.rag.config import RELEVANCE_THRESHOLD, RagSettings
from covey.embedding import Embedder
from covey.rag.embedder import SentenceTransformerEmbedder, open_embedder
from covey.rag.evaluation import EvalReport, evaluate, load_cases
from covey.rag.grounding import NOTHING_FOUND, Citation, GroundedPrompt, format_sources, ground, render_answer
from covey.rag.store import Store
from covey.rag.types import IngestProgress, IngestReport, Passage, Position, SourceInfo, StoreStats

__all__ = [
    "NOTHING_FOUND",
    "RELEVANCE_THRESHOLD",
    "Citation",
    "Embedder",
    "EvalReport",
    "GroundedPrompt",
    "IngestProgress",
    "IngestReport",
    "Passage",
    "Position",
    "RagSettings",
    "SentenceTransformerEmbedder",
    "SourceInfo",
    "Store",
    "StoreStats",
    "evaluate",
    "format_sources",
    "ground",
    "load_cases",
    "open_embedder",
    "render_answer",
]
