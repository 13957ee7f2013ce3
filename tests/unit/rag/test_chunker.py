from __future__ import annotations

from pathlib import Path

from covey.rag.chunker import Chunker
from covey.rag.extract import html_blocks, markdown_blocks, read_blocks, text_blocks


def words(text: str) -> int:
    return len(text.split())


MD = """# Guide

Intro paragraph about the guide.

## Install

Run the installer.
Then restart.

```python
def main():

    return 1
```

## Use

### Search

Type a query.
"""


def test_markdown_heading_trails_and_line_ranges() -> None:
    chunks = Chunker(words, size=50).chunks(markdown_blocks(MD))
    trails = [c.heading_trail for c in chunks]
    assert trails == [("Guide",), ("Guide", "Install"), ("Guide", "Use", "Search")]
    install = chunks[1]
    assert "```python" in install.text and "return 1" in install.text  # fence kept whole, blank line inside
    assert (install.position.line_start, install.position.line_end) == (7, 14)
    assert chunks[2].position.line_start == 20


def test_chunks_respect_size_and_overlap() -> None:
    text = "\n\n".join(f"para{i} " + " ".join(f"w{i}_{j}" for j in range(9)) for i in range(30))
    chunks = Chunker(words, size=35, overlap=10).chunks(text_blocks(text))
    assert all(c.tokens <= 35 for c in chunks)
    assert len(chunks) > 5
    for before, after in zip(chunks, chunks[1:]):
        assert after.text.split("\n\n")[0] == before.text.split("\n\n")[-1]  # last paragraph repeated
    joined = " ".join(c.text for c in chunks)
    assert all(f"para{i} " in joined for i in range(30))


def test_one_huge_line_is_split_by_sentences_then_words() -> None:
    sentence = " ".join(["word"] * 15) + "."
    text = " ".join([sentence] * 20) + " " + "x" * 5000
    chunks = Chunker(words, size=40, overlap=0).chunks(text_blocks(text))
    assert all(c.tokens <= 40 for c in chunks)
    assert sum(c.text.count("word") for c in chunks) == 300
    assert all(c.position.line_start == 1 for c in chunks)


def test_code_is_split_between_lines_only() -> None:
    code = "\n".join(f"x{i} = compute({i}, 'a b c')" for i in range(100))
    chunks = Chunker(words, size=30, overlap=0).chunks(read_blocks(Path("a.py"), code.encode(), "code"))
    lines = [line for c in chunks for line in c.text.split("\n")]
    assert lines == code.split("\n")
    assert chunks[1].position.line_start == chunks[0].position.line_end + 1


def test_html_headings_paragraphs_and_scripts() -> None:
    html = """<html><head><title>T</title><script>var x = 1;</script></head><body>
<h1>Manual</h1><p>First &amp; foremost.</p>
<h2>Setup</h2><p>Install it.</p><pre>make
make install</pre></body></html>"""
    chunks = Chunker(words, size=50).chunks(html_blocks(html))
    assert [c.heading_trail for c in chunks] == [("Manual",), ("Manual", "Setup")]
    assert "First & foremost." in chunks[0].text
    assert "var x" not in " ".join(c.text for c in chunks)
    assert "make\nmake install" in chunks[1].text


def test_setext_headings() -> None:
    chunks = Chunker(words, size=50).chunks(markdown_blocks("Title\n=====\n\ntext one\n\nSub\n---\ntext two\n"))
    assert [c.heading_trail for c in chunks] == [("Title",), ("Title", "Sub")]
