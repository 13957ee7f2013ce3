"""Grounding for the graph's retrieve step: search the user's document store, build a cited prompt."""

from __future__ import annotations

import asyncio
from pathlib import Path

from covey.estimates import estimate_tokens
from covey.orchestrator.results import Source
from covey.settings import Settings

DEFAULT_COLLECTION = "default"


class StoreGrounding:
    """Searches one collection of `covey.rag.Store` and frames the passages with `covey.rag.grounding`.

    `threshold` is what a passage needs to ground a knowledge question; `offer_threshold` (higher) is
    what it needs to be offered to any other route; `strict` refuses a knowledge question the documents
    do not answer instead of letting the model answer it from its own knowledge.
    """

    def __init__(self, data_dir: Path, collection: str = DEFAULT_COLLECTION, k: int = 5,
                 threshold: float | None = None, rag_settings=None, *, offer_threshold: float | None = None,
                 strict: bool = False) -> None:
        self.data_dir = data_dir
        self.collection = collection
        self.k = k
        self.threshold = threshold
        self.offer_threshold = offer_threshold
        self.strict = strict
        self.rag_settings = rag_settings
        self._store = None

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreGrounding:
        rag = settings.rag
        return cls(settings.data_dir, collection=rag.collection, k=rag.top_k, threshold=rag.relevance_threshold,
                   rag_settings=rag, offer_threshold=rag.offer_threshold, strict=rag.strict)

    def _open(self):
        """The collection, or None while the user has added no documents (to the default collection)."""
        if self._store is None:
            from covey.errors import BadRequest
            from covey.rag.store import Store

            known = Store.collections(self.data_dir / "rag")
            if self.collection not in known:
                if self.collection == DEFAULT_COLLECTION:
                    return None
                have = ", ".join(known) if known else "none yet"
                raise BadRequest(f"there is no document collection '{self.collection}' (collections: {have})",
                                 hint=f"add files with `covey rag add PATH --collection {self.collection}`, "
                                      "or pick one of `covey rag collections`")
            self._store = Store.in_data_dir(self.data_dir, self.collection, settings=self.rag_settings, create=False)
        return self._store

    def _ground(self, query: str, budget_tokens: int, threshold: float | None, system: str | None):
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
        threshold = self.threshold if threshold is None else threshold
        kw: dict = {} if threshold is None else {"threshold": threshold}
        if system is not None:
            kw["system"] = system
        gp = grounding.ground(query, passages, budget_tokens=budget_tokens, count_tokens=estimate_tokens, **kw)
        sources = tuple(Source(n=c.number, path=c.source, position=str(c.position), score=round(c.score, 3))
                        for c in gp.citations)
        return gp, sources

    async def ground(self, query: str, *, budget_tokens: int, threshold: float | None = None,
                     system: str | None = None):
        """(None, ()) without documents; else the grounded prompt (found=False when no passage clears `threshold`)."""
        return await asyncio.to_thread(self._ground, query, budget_tokens, threshold, system)
