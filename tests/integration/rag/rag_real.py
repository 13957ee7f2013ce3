"""Helpers for the retrieval integration tests: the question set and an on-disk consistency check."""

from __future__ import annotations

import sqlite3
from pathlib import Path

QUESTIONS = Path(__file__).with_name("pydoc_questions.jsonl")


def assert_consistent(collection_dir: Path) -> dict[str, int]:
    """Checks a collection on disk: the committed generation's index file matches the rows exactly."""
    import faiss

    db = sqlite3.connect(collection_dir / "meta.sqlite")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        state = dict(db.execute("SELECT key, value FROM state"))
        chunk_ids = {r[0] for r in db.execute("SELECT id FROM chunks")}
        per_source = dict(db.execute("SELECT source, count(*) FROM chunks GROUP BY source"))
        declared = dict(db.execute("SELECT path, chunks FROM sources"))
    finally:
        db.close()
    assert per_source == {p: n for p, n in declared.items() if n}, "sources.chunks disagrees with the chunk rows"
    generation = int(state["generation"])
    if "dim" in state:
        index = faiss.read_index(str(collection_dir / f"index-{generation:08d}.faiss"))
        ids = set(faiss.vector_to_array(index.id_map).tolist())
        assert index.ntotal == int(state["vectors"])
        assert chunk_ids <= ids, "chunks without a vector in the committed index"
        assert len(ids - chunk_ids) == int(state["dead"]), "vectors of unknown chunks beyond the dead count"
    else:
        assert not chunk_ids
    return {"generation": generation, "chunks": len(chunk_ids), "sources": len(declared)}
