"""A collection whose files are damaged: a garbled FAISS index is caught by its checksum and rebuilt, a
garbled meta.sqlite is one StoreCorrupt, a bad file name costs only that file, and commits come often."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

from covey.errors import StoreCorrupt
from covey.rag import RagSettings, Store

from rag_fakes import HashingEmbedder


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    topics = ["tomatoes need sun", "the oven bakes bread", "oil the bicycle chain", "aphids eat roses",
              "knead the dough", "whales sing songs", "rockets need fuel", "owls hunt at night"]
    for i, topic in enumerate(topics):
        (root / f"doc{i}.txt").write_text(f"{topic}. " * 20)
    return root


def index_file(tmp_path: Path) -> Path:
    (path,) = (tmp_path / "rag" / "default").glob("index-*.faiss")
    return path


def state(tmp_path: Path) -> dict[str, str]:
    with sqlite3.connect(tmp_path / "rag" / "default" / "meta.sqlite") as conn:
        return dict(conn.execute("SELECT key, value FROM state"))


def test_a_garbled_index_fails_its_checksum_and_is_rebuilt_with_a_warning(tmp_path: Path, docs: Path,
                                                                          caplog) -> None:
    with Store(tmp_path / "rag", embedder=HashingEmbedder()) as s:
        s.add([docs])
        expected = s.search("bicycle chain oil", k=3)
    path = index_file(tmp_path)
    good = path.read_bytes()
    assert len(state(tmp_path)["index_sha256"]) == 64
    garbled = bytearray(good)
    for i in range(len(garbled) // 2, len(garbled) - 64, 7):  # vector data: the file still loads
        garbled[i] ^= 0x5A
    path.write_bytes(bytes(garbled))
    with caplog.at_level(logging.WARNING, logger="covey.rag.store"):
        with Store(tmp_path / "rag", embedder=HashingEmbedder()) as s:
            found = s.search("bicycle chain oil", k=3)
    assert found == expected and found[0].source.endswith("doc2.txt") and found[0].score <= 1.0 + 1e-5
    assert any("sha256 does not match" in r.getMessage() and "rebuilt it" in r.getMessage() for r in caplog.records)
    assert path.read_bytes() == good  # the file was written again from SQLite's vectors
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="covey.rag.store"):
        with Store(tmp_path / "rag", embedder=HashingEmbedder()) as s:
            assert s.search("bicycle chain oil", k=3) == expected
    assert caplog.records == []


def test_a_garbled_index_seen_by_a_writer_is_replaced_by_its_commit(tmp_path: Path, docs: Path) -> None:
    with Store(tmp_path / "rag", embedder=HashingEmbedder()) as s:
        s.add([docs])
        path = index_file(tmp_path)
        path.write_bytes(path.read_bytes()[:-40] + bytes(40))
        (docs / "new.txt").write_text("penguins swim in cold water. " * 10)
        report = s.add([docs])
        assert report.added == (str(docs / "new.txt"),)
        assert s.search("penguins cold water", k=1)[0].source.endswith("new.txt")
    with Store(tmp_path / "rag", embedder=HashingEmbedder()) as s:
        assert s.stats().chunks == 9 and s.search("owls at night", k=1)[0].source.endswith("doc7.txt")


@pytest.mark.parametrize("how", ["header", "pages"])
def test_a_garbled_metadata_database_is_one_store_corrupt_error(tmp_path: Path, docs: Path, how: str) -> None:
    with Store(tmp_path / "rag", embedder=HashingEmbedder()) as s:
        s.add([docs])
    meta = tmp_path / "rag" / "default" / "meta.sqlite"
    raw = bytearray(meta.read_bytes())
    start = 0 if how == "header" else 4096
    for i in range(start, len(raw), 50):
        raw[i] ^= 0xFF
    meta.write_bytes(bytes(raw))
    for extra in meta.parent.glob("meta.sqlite-*"):
        extra.unlink()
    with pytest.raises(StoreCorrupt) as exc:
        with Store(tmp_path / "rag", embedder=HashingEmbedder()) as s:
            s.search("tomatoes", k=2)
            s.stats()
            s.add([docs])
    assert str(meta) in str(exc.value) and "`covey rag add`" in str(exc.value)


def test_a_file_name_that_is_not_utf8_is_skipped_by_name_and_the_batch_kept(tmp_path: Path, docs: Path) -> None:
    bad = Path(os.fsdecode(str(docs).encode() + b"/caf\xe9.txt"))  # a Latin-1 name
    bad.write_text("coffee in the morning. " * 10)
    with Store(tmp_path / "rag", embedder=HashingEmbedder()) as s:
        report = s.add([docs, bad])
        assert len(report.added) == 8 and str(bad) not in report.added
        assert [(k.path, "0xe9" in k.reason and "rename it" in k.reason) for k in report.skipped] == [
            (f"{docs}/caf\\xe9.txt", True)]
        assert len(s.sources()) == 8
        report = s.add([docs])  # every time, the same: nothing else lost
        assert len(report.unchanged) == 8 and len(report.skipped) == 1


def test_ingest_commits_every_few_seconds_whatever_the_chunk_count(tmp_path: Path, docs: Path) -> None:
    now = [1000.0]
    generations = []

    def seen(_event) -> None:  # each file "takes" 6 s: over commit_every_s, so each next file commits
        generations.append(int(state(tmp_path)["generation"]))
        now[0] += 6.0

    settings = RagSettings(commit_every=10**6, commit_every_s=5.0)
    with Store(tmp_path / "rag", embedder=HashingEmbedder(), settings=settings, clock=lambda: now[0]) as s:
        report = s.add([docs], progress=seen)
    assert generations == list(range(8)) and len(report.added) == 8
    assert int(state(tmp_path)["generation"]) == 7
    (docs / "more.txt").write_text("more text. " * 5)
    (docs / "doc0.txt").write_text("changed text. " * 5)
    generations.clear()
    with Store(tmp_path / "rag", embedder=HashingEmbedder(), settings=settings, clock=lambda: 0.0) as s:
        s.add([docs], progress=seen)  # no time passes: one commit at the end, as before
    assert set(generations) == {7} and int(state(tmp_path)["generation"]) == 8
