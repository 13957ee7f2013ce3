"""`/rag add PATH` and `/rag search TEXT`: the user's document store (covey.rag), from the chat.

The same collection the orchestrator grounds answers in (DATA_DIR/rag/default), so a file added here
grounds the next question. The embedder is loaded once, on first use, and kept for later commands.
"""

from __future__ import annotations

import threading
from pathlib import Path

from covey.rag.config import RagSettings
from covey.embedding import Embedder


class Documents:
    """Adds files to and searches one collection; each method returns Markdown for the conversation."""

    def __init__(self, data_dir: Path, settings: RagSettings | None = None, *, collection: str = "default",
                 embedder: Embedder | None = None, cwd: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.settings = settings or RagSettings()
        self.collection = collection
        self.cwd = cwd
        self._embedder = embedder
        self._lock = threading.Lock()

    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                from covey.rag.embedder import from_settings

                self._embedder = from_settings(self.settings)
            return self._embedder

    def _store(self, *, create: bool):
        from covey.rag.store import Store

        return Store.in_data_dir(self.data_dir, self.collection, settings=self.settings, embedder=self.embedder(),
                                 create=create)

    def add(self, path: str) -> str:
        """Ingest a file or folder; raises CoveyError (or FileNotFoundError) with what to do."""
        target = Path(path).expanduser()
        if not target.is_absolute() and self.cwd is not None:
            target = self.cwd / target
        if not target.exists():
            raise FileNotFoundError(f"{target} does not exist: give a file or folder to add")
        with self._store(create=True) as store:
            report = store.add([target])
        lines = [f"- added `{p}`" for p in report.added[:20]] + [f"- updated `{p}`" for p in report.updated[:20]]
        lines += [f"- skipped `{s.path}`: {s.reason}" for s in report.skipped[:20]]
        lines.append(f"\n{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
                     f"{len(report.skipped)} skipped; {report.chunks_added} chunks in {report.seconds:.1f} s "
                     f"(collection `{self.collection}`). Grounded agents use them from the next question.")
        return "\n".join(lines)

    def search(self, text: str, k: int = 5) -> str:
        from covey.rag.store import Store

        if self.collection not in Store.collections(self.data_dir / "rag"):
            return f"No documents yet (collection `{self.collection}`): add some with `/rag add PATH`."
        with self._store(create=False) as store:
            passages = store.search(text, k)
        if not passages:
            return f"Nothing found for “{text}” in collection `{self.collection}`."
        out = []
        for i, p in enumerate(passages, 1):
            snippet = " ".join(p.text.split())
            snippet = snippet[:240] + ("…" if len(snippet) > 240 else "")
            out.append(f"{i}. **{p.score:.3f}** `{p.label}`  \n   {snippet}")
        return "\n".join(out)
