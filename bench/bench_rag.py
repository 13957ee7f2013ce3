"""Retrieval benchmark: ingest throughput, query latency at 1k/10k/100k chunks, exact vs HNSW recall@10.

    .venv/bin/python bench/bench_rag.py [--quick] [--backend numpy|sentence-transformers]
    .venv/bin/python bench/bench_rag.py --compare [--rounds 2] [--threads 1] [--no-ask]

`--compare` puts retrieval's two MiniLM embedders side by side in one run, each in fresh processes:
the numpy one (covey's default, covey.minilm) and sentence-transformers (torch). It prints the
largest difference between their vectors on 200 varied texts (some longer than the 256-token
window), load time, embedding throughput and single-query latency, whether torch was imported,
and whether a real `covey ask --collection` (embedded node, no discovery) imports torch.

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

from covey.rag import Embedder, RagSettings, SentenceTransformerEmbedder, Store, open_embedder  # noqa: E402
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


def bench_ingest(embedder: Embedder, work: Path, topics: int) -> np.ndarray:
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
    def __init__(self, inner: Embedder) -> None:
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


def build_store(root: Path, name: str, embedder: Embedder, vectors: np.ndarray,
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

BACKENDS = ("numpy", "sentence-transformers")


def varied_texts(n: int = 200) -> list[str]:
    """n texts: pydoc slices of 40 to 4000 characters (a fifth beyond the 256-token window), short
    questions, code, other scripts, emoji, whitespace."""
    from pydoc_data.topics import topics

    rng = np.random.default_rng(0)
    names = sorted(topics)
    texts = []
    for i, name in enumerate(names):
        text, length = topics[name], (40, 200, 800, 1500, 4000)[i % 5]
        start = int(rng.integers(0, max(1, len(text) - length)))
        texts.append(text[start:start + length])
    texts += ["What is 17 times 23?", "hi", "   ", "Résumé: déjà vu, naïve café — 東京で会いましょう",
              "😀 emoji 🎉 test", "def f(x):\n    return x**2  # square", "SELECT * FROM t WHERE a = 1;",
              "1 2 3 4 5 6 7 8 9 10", "ÀÉÎÕÜ ñ ß ø æ œ", "Привет, как дела?", "مرحبا بالعالم", "word " * 600]
    while len(texts) < n:
        i = len(texts)
        texts.append(QUESTIONS[i % len(QUESTIONS)] + " " + names[i % len(names)] * (i % 7))
    return texts[:n]


def make_embedder(backend: str, threads: int | None) -> Embedder:
    if backend == "numpy":
        return open_embedder(threads=threads)
    return SentenceTransformerEmbedder(threads=threads)


def measure_one(backend: str, threads: int | None, out: Path) -> None:
    """In a fresh process: load, embed the texts, time single queries; vectors to `out`, figures on stdout."""
    import json

    t0 = time.perf_counter()
    embedder = make_embedder(backend, threads)
    embedder.embed(["warm up"])
    load_s = time.perf_counter() - t0
    texts = varied_texts()
    t0 = time.perf_counter()
    vectors = embedder.embed(texts)
    batch_s = time.perf_counter() - t0
    query_ms = []
    for q in QUESTIONS * 3:
        t0 = time.perf_counter()
        embedder.embed([q])
        query_ms.append((time.perf_counter() - t0) * 1000)
    np.save(out, vectors)
    long = sum(embedder.count_tokens(t) > embedder.max_tokens for t in texts)
    print(json.dumps({"load_s": load_s, "texts_per_s": len(texts) / batch_s, "query_p50_ms": percentile(query_ms, 50),
                      "query_p95_ms": percentile(query_ms, 95), "torch": "torch" in sys.modules,
                      "long_texts": long, "class": type(embedder).__name__}))


ASK = """
import atexit, sys
atexit.register(lambda: print("TORCH-IMPORTED", "torch" in sys.modules, file=sys.stderr))
sys.argv = ["covey", *sys.argv[1:]]
from covey.entry import main
main()
"""


def ask_with_collection(work: Path, backend: str) -> tuple[bool, float, float]:
    """A real `covey ask --collection bench --no-discover` in a fresh process: (torch imported, wall s,
    the model's own seconds from the ledger; the rest is start-up, routing, retrieval)."""
    import sqlite3
    import subprocess

    data_dir = work / f"ask-{backend}"
    embedder = "all-MiniLM-L6-v2" if backend == "numpy" else str(_packaged_folder())
    env = {**os.environ, "COVEY_ORCHESTRATOR__DISCOVER": "false", "COVEY_RAG__EMBEDDER": embedder}
    if not data_dir.exists():
        from pydoc_data.topics import topics

        corpus = work / "ask-corpus"
        corpus.mkdir(exist_ok=True)
        for name in sorted(topics)[:8]:
            (corpus / f"{name}.txt").write_text(topics[name], encoding="utf-8")
        subprocess.run([sys.executable, "-m", "covey", "rag", "add", str(corpus), "--collection", "bench",
                        "--data-dir", str(data_dir)], env=env, check=True, capture_output=True, timeout=900)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", ASK, "ask", "--no-discover", "--data-dir", str(data_dir),
                           "--collection", "bench", "How do I leave a loop early?"],
                          env=env, capture_output=True, text=True, timeout=900, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"covey ask failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
    line = next(ln for ln in done.stderr.splitlines() if ln.startswith("TORCH-IMPORTED"))
    with sqlite3.connect(data_dir / "ledger.db") as db:
        (model_s,) = db.execute("SELECT seconds FROM answers ORDER BY ts DESC LIMIT 1").fetchone()
    return line.split()[1] == "True", wall, float(model_s)


def _packaged_folder() -> Path:
    from covey.embedding import minilm_dir

    return minilm_dir()  # named by its folder: sentence-transformers loads it, the collection says "<folder>"


def use_threads(backend: str, threads: int | None) -> Embedder:
    """The backend's embedder computing with `threads` (None: the library's default): a new numpy handle
    on the same weights, or the one sentence-transformers model with torch's process-wide setting."""
    if backend == "numpy":
        return open_embedder(threads=threads)
    import torch

    global _TORCH_DEFAULT_THREADS, _ST
    if _TORCH_DEFAULT_THREADS is None:
        _TORCH_DEFAULT_THREADS = torch.get_num_threads()
    torch.set_num_threads(threads or _TORCH_DEFAULT_THREADS)
    _ST = _ST or SentenceTransformerEmbedder()
    return _ST


_TORCH_DEFAULT_THREADS: int | None = None
_ST: SentenceTransformerEmbedder | None = None


def compare(args: argparse.Namespace) -> None:
    import json
    import subprocess

    print(f"cores: {os.cpu_count()}; python {sys.version.split()[0]}; threads per embedder: {args.threads}; "
          f"load average {os.getloadavg()[0]:.2f} (other processes share these cores)")
    runs: dict[str, list[dict]] = {b: [] for b in BACKENDS}
    with tempfile.TemporaryDirectory(prefix="covey-bench-embed-") as tmp:
        work = Path(tmp)
        for r in range(args.rounds):
            for backend in BACKENDS if r % 2 == 0 else BACKENDS[::-1]:  # alternate who goes first
                cmd = [sys.executable, __file__, "--measure-one", backend, "--threads", str(args.threads),
                       "--out", str(work / f"{backend}.npy")]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
                if done.returncode != 0:
                    raise SystemExit(f"{backend} failed:\n{done.stderr[-3000:]}")
                runs[backend].append(json.loads(done.stdout.strip().splitlines()[-1]))
        ours, theirs = np.load(work / "numpy.npy"), np.load(work / "sentence-transformers.npy")
        diff = np.abs(ours - theirs)
        cos = (ours * theirs).sum(axis=1)
        print(f"\n{len(ours)} texts ({runs['numpy'][0]['long_texts']} longer than the window, truncated): "
              f"max abs diff {diff.max():.2e}, mean {diff.mean():.2e}, min cosine {cos.min():.7f}")
        print(f"\n{'embedder':<24}{'load s':>8}{'texts/s':>10}{'query p50 ms':>14}{'p95 ms':>9}  torch imported")
        for backend in BACKENDS:
            rows = runs[backend]
            print(f"{backend:<24}{statistics.median(x['load_s'] for x in rows):>8.2f}"
                  f"{statistics.median(x['texts_per_s'] for x in rows):>10.1f}"
                  f"{statistics.median(x['query_p50_ms'] for x in rows):>14.1f}"
                  f"{statistics.median(x['query_p95_ms'] for x in rows):>9.1f}  {rows[0]['torch']}")
        print(f"(medians of {args.rounds} fresh processes each; load = import + weights + first vector)")
        if not args.no_ask:
            print("\ncovey ask --collection (fresh processes, embedded node, no discovery; overhead = wall - model):")
            asks: dict[str, list[tuple[bool, float, float]]] = {b: [] for b in BACKENDS}
            for r in range(args.rounds + 1):  # the first round warms the page cache for both: not counted
                for backend in BACKENDS if r % 2 == 0 else BACKENDS[::-1]:
                    result = ask_with_collection(work, backend)
                    if r:
                        asks[backend].append(result)
            for backend in BACKENDS:
                rows = asks[backend]
                name = "all-MiniLM-L6-v2" if backend == "numpy" else "<packaged folder>"
                print(f"  [rag] embedder = {name} ({backend}): torch imported {rows[0][0]}; overhead "
                      f"{statistics.median(w - m for _, w, m in rows):.2f} s (wall {statistics.median(w for _, w, _ in rows):.1f}"
                      f" s, model {statistics.median(m for _, _, m in rows):.1f} s)")
            print("  (the model's seconds vary with the answer's length and any escalation: compare the overheads)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes at most")
    parser.add_argument("--topics", type=int, default=None, help="pydoc topics to ingest (default 79, quick 12)")
    parser.add_argument("--query-threads", type=int, default=None, help="threads for the query part")
    parser.add_argument("--backend", choices=BACKENDS, default="numpy", help="embedder for the store benchmark")
    parser.add_argument("--compare", action="store_true", help="numpy vs sentence-transformers MiniLM, side by side")
    parser.add_argument("--rounds", type=int, default=2, help="fresh processes per embedder for --compare")
    parser.add_argument("--threads", type=int, default=1, help="threads per embedder for --compare (covey's default)")
    parser.add_argument("--no-ask", action="store_true", help="--compare without the covey ask runs")
    parser.add_argument("--measure-one", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_one:
        measure_one(args.measure_one, args.threads, args.out)
        return
    if args.compare:
        compare(args)
        return
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    topics = args.topics or (12 if args.quick else 79)
    rounds = 3 if args.quick else 5
    rng = np.random.default_rng(0)
    embedder = use_threads(args.backend, None)
    t0 = time.perf_counter()
    embedder.embed(["warm up"])
    print(f"{args.backend} model load: {time.perf_counter() - t0:.1f} s; cores: {os.cpu_count()}; "
          f"python {sys.version.split()[0]}")
    for threads in (None, 1):
        embedder = use_threads(args.backend, threads)
        times = []
        for q in QUESTIONS * 3:
            t0 = time.perf_counter()
            embedder.embed([q])
            times.append((time.perf_counter() - t0) * 1000)
        print(f"query embedding alone, threads={threads or 'default'}: p50 {percentile(times, 50):.1f} ms  "
              f"p95 {percentile(times, 95):.1f} ms")
    print(f"load average now: {os.getloadavg()[0]:.2f} (other processes share these cores)")

    with tempfile.TemporaryDirectory(prefix="covey-bench-rag-") as tmp:
        work = Path(tmp)
        real = bench_ingest(use_threads(args.backend, None), work, topics)
        embedder = use_threads(args.backend, args.query_threads)
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
