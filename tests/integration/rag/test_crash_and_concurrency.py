"""Crash safety and concurrent writers on real FAISS files and real SQLite, in real processes.

A writer is killed with SIGKILL at varied moments of an ingest (during embedding and during
commits); each time the collection must open consistent (the committed index file matches the
rows exactly), and a later ingest must complete it. Two processes adding at once must serialize.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rag_real import assert_consistent

from covey.rag import RagSettings, Store

WORKER = Path(__file__).with_name("ingest_worker.py")


def corpus(folder: Path, files: int, paragraphs: int = 12, tag: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(files)
    vocab = [f"word{i}" for i in range(400)]
    for f in range(files):
        paras = ["\n".join(" ".join(rng.choices(vocab, k=12)) for _ in range(3)) for _ in range(paragraphs)]
        (folder / f"doc{tag}{f:03d}.md").write_text(f"# Document {tag}{f}\n\n" + "\n\n".join(paras) + "\n")
    return folder


def start(root: Path, embedder: str, commit_every: int, *paths: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(root), "default", embedder, str(commit_every), *map(str, paths)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A paced hashing ingest: on an idle machine it would otherwise finish before the kill lands.
        env={**os.environ, "INGEST_WORKER_PACE_S": "0.02" if embedder == "hashing" else "0"},
    )


def kill_after_progress(proc: subprocess.Popen[str], lines: int, extra_s: float) -> int:
    """Waits for `lines` progress lines, sleeps `extra_s`, then SIGKILLs; returns progress seen."""
    seen = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("progress"):
            seen += 1
            if seen >= lines:
                break
        if line.startswith("done"):
            pytest.fail(f"worker finished before it could be killed (after {seen} files)")
    time.sleep(extra_s)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return seen


def test_kill_9_during_ingest_leaves_a_consistent_store(tmp_path: Path) -> None:
    docs = corpus(tmp_path / "docs", files=60)
    root = tmp_path / "rag"
    collection = root / "default"
    rng = random.Random(7)
    generations = []
    for attempt in range(6):
        proc = start(root, "hashing", 3, docs)
        kill_after_progress(proc, lines=rng.randint(1, 8), extra_s=rng.uniform(0.0, 0.15))
        state = assert_consistent(collection)
        generations.append(state["generation"])
        with Store(root, embedder=_hashing(), settings=RagSettings(chunk_tokens=64, overlap_tokens=8)) as store:
            if state["chunks"]:
                assert store.search("word1 word2 word3", k=3)
    assert generations[-1] > 0, "no kill left committed work behind: the commit cadence is wrong"
    proc = start(root, "hashing", 3, docs)
    out, errors = proc.communicate(timeout=300)
    assert proc.returncode == 0, errors
    final = assert_consistent(collection)
    assert final["sources"] == 60
    assert not list(collection.glob("*.tmp")), "temporary files of killed writers were not swept"
    assert len(list(collection.glob("index-*.faiss"))) == 1


def test_kill_9_with_the_real_model(tmp_path: Path) -> None:
    docs = corpus(tmp_path / "docs", files=12, paragraphs=4)
    root = tmp_path / "rag"
    proc = start(root, "minilm", 4, docs)
    kill_after_progress(proc, lines=3, extra_s=0.05)
    partial = assert_consistent(root / "default")
    proc = start(root, "minilm", 4, docs)
    out, errors = proc.communicate(timeout=300)
    assert proc.returncode == 0, errors
    assert f"unchanged={partial['sources']}" in out  # what was committed before the kill is kept
    assert assert_consistent(root / "default")["sources"] == 12


def test_two_processes_adding_at_once_serialize(tmp_path: Path) -> None:
    a = corpus(tmp_path / "a", files=25, tag="a")
    b = corpus(tmp_path / "b", files=25, tag="b")
    shared = corpus(tmp_path / "shared", files=10, tag="s")
    root = tmp_path / "rag"
    first = start(root, "hashing", 5, a, shared)
    second = start(root, "hashing", 5, b, shared)
    out1, err1 = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    assert first.returncode == 0, err1
    assert second.returncode == 0, err2
    state = assert_consistent(root / "default")
    assert state["sources"] == 60
    # Whoever ran second found the shared files already there.
    assert "unchanged=10" in out1 + out2


def _hashing():  # the worker's fake embedder, for reading what it wrote
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "rag"))
    from rag_fakes import HashingEmbedder

    return HashingEmbedder()
