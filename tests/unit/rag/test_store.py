"""Store logic with the hashing embedder; FAISS and SQLite are real, files live in tmp_path."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from covey.errors import BadRequest, ConfigError, EmbedderMismatch, QueryTooLong, SourceNotFound
from covey.rag import IngestProgress, RagSettings, Store

from rag_fakes import HashingEmbedder, make_pdf


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    write(root / "garden.md", "# Garden\n\nTomatoes need sun and water every morning.\n\n## Pests\n\nAphids eat roses.\n")
    write(root / "kitchen.txt", "The oven heats to 220 degrees for bread.\n\nKnead the dough ten minutes.\n")
    write(root / "src" / "tool.py", "def launch_rocket(fuel):\n    return fuel * 2\n")
    write(root / "notes" / "page.html", "<h1>Bikes</h1><p>Oil the bicycle chain monthly.</p>")
    return root


def test_add_search_and_incremental(store: Store, docs: Path, embedder: HashingEmbedder) -> None:
    seen: list[IngestProgress] = []
    report = store.add([docs], progress=seen.append)
    assert len(report.added) == 4 and not report.skipped
    assert [e.done for e in seen] == [1, 2, 3, 4] and seen[-1].total == 4

    hits = store.search("how often should I oil the bicycle chain", k=2)
    assert hits[0].source == str(docs / "notes" / "page.html")
    assert hits[0].heading_trail == ("Bikes",)
    aphids = store.search("aphids roses", k=1)[0]
    assert aphids.heading_trail == ("Garden", "Pests") and aphids.position.line_start == 7

    embedded = len(embedder.seen)
    again = store.add([docs])
    assert len(again.unchanged) == 4 and again.chunks_added == 0
    assert len(embedder.seen) == embedded  # nothing re-embedded

    write(docs / "kitchen.txt", "Pizza wants a stone at 300 degrees.\n")
    changed = store.add([docs])
    assert changed.updated == (str(docs / "kitchen.txt"),) and len(changed.unchanged) == 3
    texts = [p.text for p in store.search("oven bread pizza stone degrees", k=10)]
    assert any("Pizza" in t for t in texts) and not any("Knead" in t for t in texts)


def test_remove_file_and_folder(store: Store, docs: Path) -> None:
    store.add([docs])
    assert store.remove(docs / "kitchen.txt") >= 1
    assert str(docs / "kitchen.txt") not in {s.path for s in store.sources()}
    store.remove(docs / "notes")
    assert {Path(s.path).name for s in store.sources()} == {"garden.md", "tool.py"}
    assert all(p.source.endswith(("garden.md", "tool.py")) for p in store.search("oil chain bread", k=10))
    with pytest.raises(SourceNotFound, match="not in collection 'default'"):
        store.remove(docs / "kitchen.txt")


def test_bad_files_are_skipped_with_reasons_and_the_rest_ingested(store: Store, tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    write(root / "good.md", "Good text about llamas.\n")
    write(root / "empty.txt", "")
    write(root / "blank.txt", "\n\n   \n")
    write(root / "latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"))
    write(root / "blob.dat", b"\x00\x01\x02binary")
    write(root / "photo.png", b"\x89PNG....")
    write(root / "scan.pdf", make_pdf([None, None]))
    write(root / "paper.pdf", make_pdf([["Quantum llamas graze."], ["Second page about alpacas."]]))
    write(root / "utf16.txt", "hello utf sixteen".encode("utf-16"))
    os.mkfifo(root / "pipe.txt")
    (root / "dangling.md").symlink_to(root / "nowhere.md")
    report = store.add([root, tmp_path / "missing.md"])
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(report.added) == {str(root / n) for n in ("good.md", "paper.pdf", "utf16.txt")}
    assert reasons["missing.md"] == "does not exist"
    assert reasons["empty.txt"] == "empty file"
    assert "no text" in reasons["blank.txt"]
    assert "not valid UTF-8" in reasons["latin1.txt"] and "iconv" in reasons["latin1.txt"]
    assert "binary" in reasons["blob.dat"] and "binary" in reasons["photo.png"]
    assert "no text layer" in reasons["scan.pdf"]
    assert "not a regular file" in reasons["pipe.txt"]
    assert "broken symbolic link" in reasons["dangling.md"]
    alpaca = store.search("alpacas second page", k=1)[0]
    assert alpaca.position.page == 2 and alpaca.label.endswith("paper.pdf p.2")


def test_huge_file_is_skipped(tmp_path: Path, embedder: HashingEmbedder) -> None:
    s = Store(tmp_path / "rag", embedder=embedder, settings=RagSettings(max_file_mb=0.001))
    big = write(tmp_path / "big.txt", "word " * 1000)
    report = s.add([big])
    assert "over the 0.001 MB limit" in report.skipped[0].reason
    s.close()


def test_include_exclude_globs(store: Store, docs: Path) -> None:
    report = store.add([docs], include=["*.md", "*.py"], exclude=["src/**"])
    assert report.added == (str(docs / "garden.md"),)


def test_query_errors(store: Store, docs: Path) -> None:
    assert store.search("anything") == []  # empty collection
    store.add([docs])
    with pytest.raises(QueryTooLong, match="reads at most 128"):
        store.search("word " * 200)
    with pytest.raises(BadRequest, match="empty"):
        store.search("   ")


def test_embedder_mismatch_and_bad_collection(tmp_path: Path, docs: Path) -> None:
    with Store(tmp_path / "rag", embedder=HashingEmbedder()) as s:
        s.add([docs])
    with Store(tmp_path / "rag", embedder=HashingEmbedder(name="other")) as s:
        with pytest.raises(EmbedderMismatch, match="built with 'hashing-test'"):
            s.search("bread")
        assert len(s.sources()) == 4  # listing still works
    with pytest.raises(ConfigError, match="not allowed"):
        Store(tmp_path / "rag", "../escape", embedder=HashingEmbedder())


def test_index_file_lost_is_rebuilt_from_sqlite(tmp_path: Path, docs: Path) -> None:
    with Store(tmp_path / "rag", embedder=HashingEmbedder()) as s:
        s.add([docs])
        expected = s.search("tomatoes sun", k=3)
    for f in (tmp_path / "rag" / "default").glob("index-*.faiss"):
        f.unlink()
    with Store(tmp_path / "rag", embedder=HashingEmbedder()) as s:
        assert s.search("tomatoes sun", k=3) == expected


def test_switches_to_hnsw_above_threshold_and_back(tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    s = Store(tmp_path / "rag", embedder=embedder, settings=RagSettings(approximate_above=30, chunk_tokens=20))
    root = tmp_path / "many"
    for i in range(40):
        write(root / f"f{i:02d}.txt", f"document number{i} talks about topic{i} and item{i}.\n")
    s.add([root])
    stats = s.stats()
    assert stats.index_kind == "hnsw" and stats.chunks == 40 and "HNSW" in stats.index_detail
    assert s.search("topic17 item17", k=1)[0].source.endswith("f17.txt")
    s.remove(root / "f17.txt")
    assert s.stats().dead_vectors == 1
    assert not any(p.source.endswith("f17.txt") for p in s.search("topic17 item17", k=5))
    for i in range(30):
        s.remove(root / f"f{i:02d}.txt") if i != 17 else None
    stats = s.stats()
    assert stats.index_kind == "exact" and stats.chunks == 10 and stats.dead_vectors == 0
    s.close()


def test_two_stores_see_each_others_commits(tmp_path: Path, docs: Path) -> None:
    reader = Store(tmp_path / "rag", embedder=HashingEmbedder())
    writer = Store(tmp_path / "rag", embedder=HashingEmbedder())
    writer.add([docs / "garden.md"])
    assert reader.search("tomatoes", k=1)[0].source.endswith("garden.md")
    writer.add([docs / "kitchen.txt"])
    assert reader.search("oven bread", k=1)[0].source.endswith("kitchen.txt")
    assert len(list((tmp_path / "rag" / "default").glob("index-*.faiss"))) == 1  # old generations swept
    reader.close()
    writer.close()


def test_generation_and_rows_match_after_each_commit(store: Store, docs: Path) -> None:
    store.add([docs])
    db = sqlite3.connect(store.path / "meta.sqlite")
    state = dict(db.execute("SELECT key, value FROM state"))
    assert (store.path / f"index-{int(state['generation']):08d}.faiss").exists()
    assert int(state["vectors"]) == db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    db.close()


def test_add_chunks_imports_pre_embedded_vectors(store: Store, embedder: HashingEmbedder) -> None:
    from covey.rag.types import Chunk, Position

    chunks = [Chunk(text=f"imported fact {i} about zebras", position=Position(line_start=i + 1, line_end=i + 1))
              for i in range(5)]
    assert store.add_chunks("/import/zebras.txt", chunks, embedder.embed([c.text for c in chunks])) == 5
    assert store.search("zebras fact 3", k=1)[0].source == "/import/zebras.txt"
    with pytest.raises(BadRequest, match="one vector per chunk"):
        store.add_chunks("/import/x.txt", chunks, embedder.embed(["one"]))


def test_rest_underlined_titles_become_heading_trails(store: Store, tmp_path: Path) -> None:
    doc = write(tmp_path / "ref.txt", "Statements\n**********\n\nIntro.\n\nThe loop\n========\n\nLoops repeat.\n")
    store.add([doc])
    hit = store.search("loops repeat", k=1)[0]
    assert hit.heading_trail == ("Statements", "The loop") and hit.position.line_start == 9


def test_read_only_open_refuses_a_missing_collection(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFound, match="collection 'typo' does not exist.*covey rag add PATH --collection typo"):
        Store(tmp_path / "rag", "typo", embedder=HashingEmbedder(), create=False)
    assert not (tmp_path / "rag" / "typo").exists()
