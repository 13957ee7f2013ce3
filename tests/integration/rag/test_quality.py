"""Retrieval quality on a real corpus that ships offline: CPython's pydoc topics, real MiniLM, real FAISS."""

from __future__ import annotations

from pathlib import Path

from rag_real import QUESTIONS

from covey.rag import RELEVANCE_THRESHOLD, Store, evaluate, load_cases

OFF_TOPIC = [
    "What is a good recipe for chocolate cake?",
    "Who won the football world cup in 1998?",
    "How tall is Mount Everest?",
    "What is the capital of France?",
    "Best time of year to plant tulip bulbs",
    "How do I change a flat bicycle tyre?",
]


def test_recall_and_mrr_on_pydoc_topics(pydoc_store: Store) -> None:
    report = evaluate(pydoc_store, load_cases(QUESTIONS))
    misses = [(r.query, [Path(s).name for s in r.ranked_sources[:3]]) for r in report.results
              if r.first_hit_rank != 1]
    print(f"recall={report.recall} mrr={report.mrr:.3f} misses={misses}")
    assert report.cases == 40
    assert report.recall[10] >= 0.9, misses
    assert report.recall[5] >= 0.85, misses
    assert report.mrr >= 0.7, misses


def test_threshold_separates_on_topic_from_off_topic(pydoc_store: Store) -> None:
    on_topic = [pydoc_store.search(c.query, k=1)[0].score for c in load_cases(QUESTIONS)]
    off_topic = [pydoc_store.search(q, k=1)[0].score for q in OFF_TOPIC]
    print(f"on-topic min={min(on_topic):.3f} off-topic max={max(off_topic):.3f}")
    assert max(off_topic) < RELEVANCE_THRESHOLD
    assert sum(s >= RELEVANCE_THRESHOLD for s in on_topic) >= 0.95 * len(on_topic)


def test_passages_carry_positions_and_survive_reopen(pydoc_store: Store, pydoc_data_dir: Path) -> None:
    hit = pydoc_store.search("try except finally clause", k=1)[0]
    assert hit.source.endswith(("try.txt", "compound.txt")) and hit.position.line_end >= hit.position.line_start >= 1
    lines = Path(hit.source).read_text().splitlines()[hit.position.line_start - 1 : hit.position.line_end]
    assert hit.text.split()[0] in " ".join(lines)
    stats = pydoc_store.stats()
    assert stats.index_kind == "exact" and stats.sources == 79 and stats.embedder == "all-MiniLM-L6-v2"
