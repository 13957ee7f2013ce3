"""`covey rag add` killed mid-ingest with the default commit interval keeps what it committed, and a rerun
resumes from there: a real CLI process, the packaged MiniLM, real FAISS and SQLite files.

Commits come every rag.commit_every_s seconds (5 by default) as well as every rag.commit_every chunks
(2000), so a corpus far under 2000 chunks is still committed in pieces while it is embedded.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

FILES = 900  # one chunk each: minutes of work on a slow machine, well over 5 s on a fast one


def corpus(folder: Path) -> Path:
    folder.mkdir()
    rng = random.Random(14)
    vocab = [f"word{i}" for i in range(600)]
    for f in range(FILES):
        (folder / f"note{f:04d}.txt").write_text(" ".join(rng.choices(vocab, k=60)) + "\n")
    return folder


def committed(data_dir: Path) -> tuple[int, dict[str, float]]:
    """(generation, {source: added_at}) as a reader sees the collection now."""
    path = data_dir / "rag" / "default" / "meta.sqlite"
    if not path.exists():
        return 0, {}
    try:
        with sqlite3.connect(path, timeout=30) as conn:
            rows = conn.execute("SELECT key, value FROM state WHERE key = 'generation'").fetchall()
            if not rows:
                return 0, {}
            return int(rows[0][1]), dict(conn.execute("SELECT path, added_at FROM sources").fetchall())
    except sqlite3.OperationalError:  # the writer is creating the file right now
        return 0, {}


def add_and_kill(docs: Path, data_dir: Path, after_generation: int) -> tuple[int, dict[str, float]]:
    """Runs `covey rag add DOCS`, SIGKILLs it as soon as it commits past `after_generation`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVEY_RAG__")}  # the default cadence
    env["COVEY_DATA_DIR"] = str(data_dir)
    proc = subprocess.Popen([sys.executable, "-m", "covey", "rag", "add", str(docs)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"`covey rag add` ended (code {proc.returncode}) before it could be killed after a "
                            f"commit: {proc.stdout.read() if proc.stdout else ''}")
            if committed(data_dir)[0] > after_generation:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no commit within 15 minutes: the commit cadence is wrong")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return committed(data_dir)


def test_a_killed_rag_add_keeps_its_commits_and_a_rerun_resumes(tmp_path: Path) -> None:
    docs = corpus(tmp_path / "docs")
    data_dir = tmp_path / "data"
    generation, first = add_and_kill(docs, data_dir, after_generation=0)
    assert 0 < len(first) < FILES, "the first run committed nothing, or everything before the kill"
    again, second = add_and_kill(docs, data_dir, after_generation=generation)
    assert again > generation and len(second) > len(first)
    # What the first run committed was kept and not embedded again (its rows are the same, same times).
    assert {path: second[path] for path in first} == first
    from covey.rag import Store

    with Store(data_dir / "rag", create=False) as store:
        stats = store.stats()
        assert stats.sources == len(second) and stats.chunks >= len(second)
        hit = store.search(docs.joinpath("note0000.txt").read_text(), k=1)
        assert hit and hit[0].source == str(docs / "note0000.txt")
