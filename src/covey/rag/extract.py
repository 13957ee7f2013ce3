"""Reading source files into structural blocks: headings, paragraphs and code, with line or page positions.

Each reader returns `Block`s; `chunker.py` packs them into chunks. A file that cannot be read
raises `Unreadable` with a reason the ingest report shows next to the path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

from covey.rag.types import SourceKind

BlockKind = Literal["heading", "para", "code"]

MARKDOWN_EXT = {".md", ".markdown", ".mdown", ".mkd"}
HTML_EXT = {".html", ".htm", ".xhtml"}
CODE_EXT = {
    ".py", ".pyi", ".js", ".mjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".kts", ".c", ".h", ".cc", ".cpp",
    ".hpp", ".cs", ".go", ".rs", ".rb", ".php", ".swift", ".scala", ".sh", ".bash", ".zsh", ".sql", ".r",
    ".lua", ".pl", ".hs", ".ml", ".ex", ".exs", ".erl", ".clj", ".dart", ".m", ".proto", ".toml", ".yaml",
    ".yml", ".json", ".ini", ".cfg", ".xml", ".css", ".scss", ".vue", ".svelte", ".zig", ".nim", ".jl",
}
_SNIFF_BYTES = 8192


class Unreadable(Exception):
    """A file covey skips; str() is the reason shown to the user."""


@dataclass(frozen=True)
class Block:
    text: str
    kind: BlockKind
    line_start: int
    line_end: int
    level: int = 0
    page: int | None = None


def kind_of(path: Path) -> SourceKind:
    ext = path.suffix.lower()
    if ext in MARKDOWN_EXT:
        return "markdown"
    if ext in HTML_EXT:
        return "html"
    if ext == ".pdf":
        return "pdf"
    if ext in CODE_EXT:
        return "code"
    return "text"


def decode(data: bytes, path: Path) -> str:
    """Bytes to text: UTF-8 (with or without BOM) or BOM-marked UTF-16; anything else is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise Unreadable(f"invalid UTF-16 at byte {exc.start}") from exc
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise Unreadable("binary file (contains NUL bytes); covey reads text, Markdown, HTML, PDF and source code")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unreadable(
            f"not valid UTF-8 (bad byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            f"convert it first, e.g. `iconv -f latin1 -t utf-8 {path.name}`"
        ) from exc


def read_blocks(path: Path, data: bytes, kind: SourceKind) -> list[Block]:
    if kind == "pdf":
        return pdf_blocks(path, data)
    text = decode(data, path)
    if kind == "markdown":
        return markdown_blocks(text)
    if kind == "html":
        return html_blocks(text)
    if kind == "code":
        return code_blocks(text)
    return text_blocks(text, underlined_headings=True)


_UNDERLINE = re.compile(r"^([=\-*~^\"#+`:.'_])\1{2,}\s*$")


def text_blocks(text: str, page: int | None = None, *, underlined_headings: bool = False) -> list[Block]:
    """Paragraphs separated by blank lines; with `underlined_headings`, reStructuredText-style titles
    (a line underlined with ===, ***, --- ...) become headings, levels in order of first appearance."""
    blocks: list[Block] = []
    buf: list[str] = []
    start = 1
    levels: dict[str, int] = {}
    lines = text.splitlines()
    for no, line in enumerate(lines, 1):
        if underlined_headings and len(buf) == 1 and _is_underline(line, buf[0]):
            level = levels.setdefault(line.strip()[0], len(levels) + 1)
            blocks.append(Block(buf[0].strip(), "heading", start, no, level=level))
            buf = []
            continue
        if underlined_headings and _UNDERLINE.match(line) and not buf and no < len(lines):
            continue  # an overline: the title and its underline follow
        if line.strip():
            if not buf:
                start = no
            buf.append(line.rstrip())
        elif buf:
            blocks.append(Block("\n".join(buf), "para", start, no - 1, page=page))
            buf = []
    if buf:
        blocks.append(Block("\n".join(buf), "para", start, start + len(buf) - 1, page=page))
    return blocks


def _is_underline(line: str, title: str) -> bool:
    return bool(_UNDERLINE.match(line)) and bool(title.strip()) and len(line.strip()) >= min(len(title.strip()), 3) \
        and not _UNDERLINE.match(title)


def code_blocks(text: str) -> list[Block]:
    """Runs of non-blank lines; the chunker packs neighbours together and splits only between lines."""
    return [Block(b.text, "code", b.line_start, b.line_end) for b in text_blocks(text)]


_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_SETEXT = re.compile(r"^(=+|-+)\s*$")


def markdown_blocks(text: str) -> list[Block]:
    """ATX and setext headings, fenced code kept whole, paragraphs between blank lines."""
    lines = text.splitlines()
    blocks: list[Block] = []
    para: list[str] = []
    start = 1
    i = 0

    def flush(end: int) -> None:
        nonlocal para
        if para:
            blocks.append(Block("\n".join(para), "para", start, end))
            para = []

    while i < len(lines):
        line, no = lines[i], i + 1
        fence = _FENCE.match(line)
        if fence:
            flush(no - 1)
            marker = fence.group(1)
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith(marker):
                j += 1
            end = min(j, len(lines) - 1)
            blocks.append(Block("\n".join(lines[i : end + 1]), "code", no, end + 1))
            i = end + 1
            continue
        heading = _ATX.match(line)
        if heading:
            flush(no - 1)
            blocks.append(Block(heading.group(2), "heading", no, no, level=len(heading.group(1))))
        elif para and len(para) == 1 and _SETEXT.match(line) and para[0].strip():
            title = para.pop()
            blocks.append(Block(title.strip(), "heading", no - 1, no, level=1 if line.startswith("=") else 2))
        elif line.strip():
            if not para:
                start = no
            para.append(line.rstrip())
        else:
            flush(no - 1)
        i += 1
    flush(len(lines))
    return blocks


class _HtmlReader(HTMLParser):
    _SKIP = {"script", "style", "noscript", "template", "svg", "head"}
    _BREAK = {"p", "div", "li", "tr", "br", "section", "article", "blockquote", "dd", "dt", "table", "ul", "ol",
              "header", "footer", "nav", "main", "aside", "hr", "figure", "title"}
    _HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self._buf: list[str] = []
        self._start = 1
        self._skip = 0
        self._pre = 0
        self._heading = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._HEADINGS or tag == "pre":
            self._flush()
            if tag == "pre":
                self._pre += 1
            else:
                self._heading = self._HEADINGS[tag]
        elif tag in self._BREAK:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._HEADINGS or tag == "pre" or tag in self._BREAK:
            self._flush()
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            if tag in self._HEADINGS:
                self._heading = 0

    def handle_data(self, data: str) -> None:
        if self._skip or not data:
            return
        if not self._buf:
            self._start = self.getpos()[0]
        self._buf.append(data)

    def _flush(self) -> None:
        raw = "".join(self._buf)
        self._buf = []
        if self._pre:
            text = raw.strip("\n")
        else:
            text = " ".join(raw.split())
        if not text.strip():
            return
        end = max(self._start, self.getpos()[0])
        if self._heading:
            self.blocks.append(Block(text, "heading", self._start, end, level=self._heading))
        else:
            self.blocks.append(Block(text, "code" if self._pre else "para", self._start, end))

    def close(self) -> None:
        super().close()
        self._flush()


def html_blocks(text: str) -> list[Block]:
    reader = _HtmlReader()
    reader.feed(text)
    reader.close()
    return reader.blocks


def pdf_blocks(path: Path, data: bytes) -> list[Block]:
    """Text of each page (pypdf); positions carry the page and the line range within it."""
    import io

    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:
        raise Unreadable("reading PDFs needs pypdf: pip install 'covey[orchestrator]'") from exc
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception as exc:
                raise Unreadable("encrypted PDF; save an unlocked copy and add that") from exc
        pages = [page.extract_text() or "" for page in reader.pages]
    except Unreadable:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise Unreadable(f"damaged or unsupported PDF ({exc})") from exc
    blocks: list[Block] = []
    for number, page_text in enumerate(pages, 1):
        blocks.extend(text_blocks(page_text, page=number))
    if not blocks:
        raise Unreadable(
            f"PDF with no text layer ({len(pages)} page(s), scanned images?); run OCR first, e.g. `ocrmypdf`"
        )
    return blocks
