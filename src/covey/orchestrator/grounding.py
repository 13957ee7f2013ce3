"""Grounding for the graph's retrieve step: search the user's document store, build a cited prompt."""

from __future__ import annotations

import asyncio
from pathlib import Path

from covey.orchestrator.results import Source
from covey.settings import Settings

CHARS_PER_TOKEN = 3.5  # conservative for English with small-model tokenizers; the budget keeps a margin


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 1


class StoreGrounding:
    """Searches one collection of `covey.rag.Store` and frames the passages with `covey.rag.grounding`."""

    def __init__(self, data_dir: Path, collection: str = "default", k: int = 5, threshold: float | None = None) -> None:
        self.data_dir = data_dir
        self.collection = collection
        self.k = k
        self.threshold = threshold
        self._store = None

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreGrounding:
        return cls(settings.data_dir)

    def _open(self):
        if self._store is None:
            from covey.rag.store import Store

            self._store = Store.in_data_dir(self.data_dir, self.collection)
        return self._store

    def _ground(self, query: str, budget_tokens: int):
        from covey.rag import grounding

        passages = self._open().search(query, k=self.k)
        kw = {} if self.threshold is None else {"threshold": self.threshold}
        gp = grounding.ground(query, passages, budget_tokens=budget_tokens, count_tokens=estimate_tokens, **kw)
        sources = tuple(Source(n=c.number, path=c.source, position=c.label.removeprefix(c.source).lstrip(":"),
                               score=round(c.score, 3)) for c in gp.citations)
        return gp, sources

    async def ground(self, query: str, *, budget_tokens: int):
        return await asyncio.to_thread(self._ground, query, budget_tokens)
