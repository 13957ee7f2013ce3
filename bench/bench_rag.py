"""Retrieval benchmark: ingest throughput, query latency at 1k/10k/100k chunks, exact vs HNSW recall@10.

    .venv/bin/python bench/bench_rag.py [--quick]

Ingest runs the real pipeline (chunking + MiniLM embedding) on CPython's pydoc topics. The large
stores hold synthetic chunks whose vectors are mixtures of real MiniLM embeddings plus noise (so
their geometry resembles real text, unlike uniform random vectors); every measured query goes
through `Store.search`, including the real MiniLM embedding of the query text.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from covey.rag import RagSettings, SentenceTransformerEmbedder, Store  # noqa: E402
from covey.rag.types import Chunk, Position  # noqa: E402

QUESTIONS = [
    "How do I catch and handle an exception?", "What does the yield expression do?",
    "How do I leave a loop early?", "How do I define a class?", "How do I write an anonymous function?",
    "How do I import a module from a package?", "How do I change a global variable in a function?",
    "How do I format a float with two decimals?", "Which values are false in a boolean context?",
    "How does the with statement work?", "What string methods split or join text?",
    "How do I take a slice of a list with a step?", "What operations do dictionaries support?",
    "How do I write an await expression?", "Order of precedence of operators",
    "How do I customize attribute access?", "How are names resolved in nested scopes?",
    "How do I set a breakpoint in the debugger?", "How do I write complex number literals?",
    "How do I raise an exception with a cause?",
]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_ingest(embedder: SentenceTransformerEmbedder, work: Path, topics: int) -> np.ndarray:
    from pydoc_data.topics import topics as pydoc

    corpus = work / "corpus"
    corpus.mkdir()
    for name in sorted(pydoc)[:topics]:
        (corpus / f"{name}.txt").write_text(pydoc[name], encoding="utf-8")
    timed = _TimedEmbedder(embedder)
    with Store(work / "ingest", embedder=timed) as store:  # type: ignore[arg-type]
        t0 = time.perf_counter()
        report = store.add([corpus])
        total = time.perf_counter() - t0
        t1 = time.perf_counter()
        again = store.add([corpus])
        unchanged_s = time.perf_counter() - t1
        ids, vectors = next(store._meta.vectors(embedder.dim, batch=1_000_000))  # noqa: SLF001 (bench only)
    tokens = sum(len(t) for t in timed.texts) / 4
    print(f"ingest: {len(report.added)} files, {report.chunks_added} chunks in {total:.1f} s "
          f"= {report.chunks_added / total:.1f} chunks/s (~{tokens / total:.0f} tokens/s)")
    print(f"        embedding {timed.seconds:.1f} s = {100 * timed.seconds / total:.0f} % of the ingest "
          f"(the rest: reading, chunking, SQLite, FAISS)")
    print(f"        re-adding {len(again.unchanged)} unchanged files: {unchanged_s * 1000:.0f} ms")
    return vectors


class _TimedEmbedder:
    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner, self.seconds, self.texts = inner, 0.0, []
        self.name, self.dim, self.max_tokens = inner.name, inner.dim, inner.max_tokens

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed(self, texts):  # noqa: ANN001, ANN201
        t0 = time.perf_counter()
        out = self.inner.embed(texts)
        self.seconds += time.perf_counter() - t0
        self.texts.extend(texts)
        return out


def synthetic(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n unit vectors, each a blend of two real embeddings plus noise."""
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    step = 20_000
    for start in range(0, n, step):
        m = min(step, n - start)
        a = base[rng.integers(0, len(base), m)]
        b = base[rng.integers(0, len(base), m)]
        w = rng.uniform(0.5, 1.0, (m, 1)).astype(np.float32)
        v = w * a + (1 - w) * b + rng.normal(0, 0.06, (m, base.shape[1])).astype(np.float32)
        out[start:start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def build_store(root: Path, name: str, embedder: SentenceTransformerEmbedder, vectors: np.ndarray,
                approximate_above: int) -> tuple[Store, float]:
    settings = RagSettings(approximate_above=approximate_above)
    store = Store(root, name, embedder=embedder, settings=settings)
    chunks = [Chunk(text=f"synthetic passage {i} " * 8, position=Position(line_start=i + 1, line_end=i + 1))
              for i in range(len(vectors))]
    t0 = time.perf_counter()
    for start in range(0, len(vectors), 50_000):
        part = slice(start, start + 50_000)
        store.add_chunks(f"/synthetic/part{start // 50_000}.txt", chunks[part], vectors[part])
    return store, time.perf_counter() - t0


def bench_queries(store: Store, queries: list[str], rounds: int) -> tuple[float, float, list[list[int]], str]:
    store.search(queries[0], k=10)  # load the index
    times: list[float] = []
    results: list[list[int]] = []
    for r in range(rounds):
        for q in queries:
            t0 = time.perf_counter()
            hits = store.search(q, k=10)
            times.append((time.perf_counter() - t0) * 1000)
            if r == 0:
                results.append([h.chunk_id for h in hits])
    index = store._current_index()  # noqa: SLF001 (bench only): the FAISS part alone
    vectors = store.embedder.embed(queries)
    faiss_ms = []
    for _ in range(rounds):
        for v in vectors:
            t0 = time.perf_counter()
            index.search(v, 10)
            faiss_ms.append((time.perf_counter() - t0) * 1000)
    faiss = f"FAISS alone p50 {percentile(faiss_ms, 50):.2f} ms p95 {percentile(faiss_ms, 95):.2f} ms"
    return percentile(times, 50), percentile(times, 95), results, faiss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes at most")
    parser.add_argument("--topics", type=int, default=None, help="pydoc topics to ingest (default 79, quick 12)")
    parser.add_argument("--query-threads", type=int, default=None, help="torch threads for the query part")
    args = parser.parse_args()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    topics = args.topics or (12 if args.quick else 79)
    rounds = 3 if args.quick else 5
    rng = np.random.default_rng(0)
    embedder = SentenceTransformerEmbedder()
    t0 = time.perf_counter()
    embedder.embed(["warm up"])
    print(f"model load: {time.perf_counter() - t0:.1f} s; cores: {os.cpu_count()}; python {sys.version.split()[0]}")

    import torch

    default_threads = torch.get_num_threads()
    for threads in (default_threads, 1):
        torch.set_num_threads(threads)
        times = []
        for q in QUESTIONS * 3:
            t0 = time.perf_counter()
            embedder.embed([q])
            times.append((time.perf_counter() - t0) * 1000)
        print(f"query embedding alone, torch threads={threads}: p50 {percentile(times, 50):.1f} ms  "
              f"p95 {percentile(times, 95):.1f} ms")
    torch.set_num_threads(args.query_threads or default_threads)
    print(f"load average now: {os.getloadavg()[0]:.2f} (other processes share these cores)")

    with tempfile.TemporaryDirectory(prefix="covey-bench-rag-") as tmp:
        work = Path(tmp)
        torch.set_num_threads(default_threads)
        real = bench_ingest(embedder, work, topics)
        torch.set_num_threads(args.query_threads or default_threads)
        base = np.concatenate([real, embedder.embed(QUESTIONS)])
        print("\nquery latency through Store.search (query embedding + FAISS + SQLite), k=10:")
        exact_at_largest: list[list[int]] = []
        for n in sizes:
            vectors = synthetic(base, n, rng)
            kinds = [("exact", 10**9)] if n < 50_000 else [("exact", 10**9), ("auto", 20_000)]
            for label, threshold in kinds:
                store, build_s = build_store(work / "stores", f"{label}-{n}", embedder, vectors, threshold)
                stats = store.stats()
                p50, p95, results, faiss = bench_queries(store, QUESTIONS, rounds)
                print(f"  {n:>7} chunks  {stats.index_kind:>5} ({stats.index_detail}): p50 {p50:6.1f} ms  "
                      f"p95 {p95:6.1f} ms   [{faiss}; built in {build_s:.1f} s]")
                if n == sizes[-1] and label == "exact":
                    exact_at_largest = results
                elif n == sizes[-1]:
                    recall = statistics.mean(len(set(a) & set(e)) / max(len(e), 1)
                                             for a, e in zip(results, exact_at_largest))
                    print(f"  recall@10 of HNSW vs exact at {n} chunks: {recall:.3f}")
                store.close()
            if n == sizes[-1] and len(kinds) == 1:
                print(f"  (HNSW is used above 20000 chunks; run without --quick for the {100_000} comparison)")


if __name__ == "__main__":
    main()
