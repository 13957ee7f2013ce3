"""Grounding for the graph's retrieve step: search the user's document store, build a cited prompt."""

from __future__ import annotations

import asyncio
from pathlib import Path

from covey.estimates import estimate_tokens
from covey.orchestrator.results import Source
from covey.settings import Settings

class StoreGrounding:
    """Searches one collection of `covey.rag.Store` and frames the passages with `covey.rag.grounding`."""

    def __init__(self, data_dir: Path, collection: str = "default", k: int = 5, threshold: float | None = None,
                 rag_settings=None) -> None:
        self.data_dir = data_dir
        self.collection = collection
        self.k = k
        self.threshold = threshold
        self.rag_settings = rag_settings
        self._store = None

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreGrounding:
        rag = settings.rag
        return cls(settings.data_dir, k=rag.top_k, threshold=rag.relevance_threshold, rag_settings=rag)

    def _open(self):
        """The collection, or None while the user has added no documents."""
        if self._store is None:
            from covey.rag.store import Store

            if self.collection not in Store.collections(self.data_dir / "rag"):
                return None
            self._store = Store.in_data_dir(self.data_dir, self.collection, settings=self.rag_settings, create=False)
        return self._store

    def _ground(self, query: str, budget_tokens: int):
        from covey.rag import grounding

        from covey.errors import QueryTooLong

        store = self._open()
        if store is None:
            return None, ()
        try:
            passages = store.search(query, k=self.k)
        except QueryTooLong:
            # A long question still gets searched by its beginning (the model sees all of it).
            passages = store.search(query[:1000], k=self.k)
        threshold = grounding.RELEVANCE_THRESHOLD if self.threshold is None else self.threshold
        gp = grounding.ground(query, passages, budget_tokens=budget_tokens, count_tokens=estimate_tokens,
                              threshold=threshold)
        sources = tuple(Source(n=c.number, path=c.source, position=str(c.position), score=round(c.score, 3))
                        for c in gp.citations)
        return gp, sources

    async def ground(self, query: str, *, budget_tokens: int):
        return await asyncio.to_thread(self._ground, query, budget_tokens)
