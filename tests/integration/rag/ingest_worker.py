"""A separate process that ingests into a store, printing one line per file; tests kill it or race two.

usage: ingest_worker.py ROOT COLLECTION EMBEDDER COMMIT_EVERY PATH...
EMBEDDER is "minilm" (the packaged model) or "hashing" (deterministic, fast: exercises commits).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "rag"))

from covey.rag import IngestProgress, RagSettings, Store, open_embedder  # noqa: E402


def main() -> None:
    root, collection, which, commit_every, *paths = sys.argv[1:]
    if which == "minilm":
        embedder = open_embedder()  # what covey runs: the packaged MiniLM in numpy
    else:
        from rag_fakes import HashingEmbedder

        embedder = HashingEmbedder()
    settings = RagSettings(commit_every=int(commit_every), chunk_tokens=64, overlap_tokens=8, lock_timeout_s=120)

    pace = float(os.environ.get("INGEST_WORKER_PACE_S", "0"))

    def show(event: IngestProgress) -> None:
        print(f"progress {event.done} {event.total} {event.outcome}", flush=True)
        if pace:
            time.sleep(pace)  # keeps a fast (hashing) ingest running long enough to be killed mid-way

    with Store(Path(root), collection, embedder=embedder, settings=settings) as store:
        print("ready", flush=True)
        report = store.add(paths, progress=show)
    print(f"done added={len(report.added)} updated={len(report.updated)} unchanged={len(report.unchanged)} "
          f"skipped={len(report.skipped)}", flush=True)


if __name__ == "__main__":
    main()
