"""Packing structural blocks into chunks of a token budget, with overlap, keeping heading trails.

A chunk never spans two sections: a heading closes the current chunk. Inside a section,
paragraphs and code blocks are packed whole while they fit; a block larger than the budget is
split between lines (code) or sentences and words (prose), never mid-word. Consecutive chunks of
one section share up to `overlap` tokens so an answer split across a boundary is still found.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from covey.rag.extract import Block
from covey.rag.types import Chunk, Position

CountTokens = Callable[[str], int]
_SENTENCE = re.compile(r"(?<=[.!?;:])\s+")


@dataclass(frozen=True)
class _Piece:
    text: str
    line_start: int
    line_end: int
    page: int | None
    tokens: int
    joiner: str = "\n\n"


class Chunker:
    """Splits blocks into `Chunk`s of at most `size` tokens (as counted by `count_tokens`)."""

    def __init__(self, count_tokens: CountTokens, *, size: int = 200, overlap: int = 32) -> None:
        if size < 8:
            raise ValueError("chunk size must be at least 8 tokens")
        self._count = count_tokens
        self.size = size
        self.overlap = min(overlap, size // 2)

    def chunks(self, blocks: list[Block]) -> list[Chunk]:
        out: list[Chunk] = []
        trail: list[tuple[int, str]] = []
        section: list[Block] = []
        for block in blocks:
            if block.kind == "heading":
                out.extend(self._section(section, trail))
                section = []
                trail = [(lvl, t) for lvl, t in trail if lvl < block.level] + [(block.level, block.text)]
            else:
                section.append(block)
        out.extend(self._section(section, trail))
        return out

    def _section(self, blocks: list[Block], trail: list[tuple[int, str]]) -> list[Chunk]:
        titles = tuple(t for _, t in trail)
        pieces: list[_Piece] = []
        for block in blocks:
            pieces.extend(self._pieces(block))
        chunks: list[Chunk] = []
        current: list[_Piece] = []
        carried = 0  # pieces at the head of `current` that repeat the previous chunk's tail
        used = 0
        for piece in pieces:
            if current and piece.page != current[-1].page:
                # A new PDF page starts a new chunk, so every chunk cites exactly one page.
                if len(current) > carried:
                    chunks.append(self._emit(current, titles))
                current, used, carried = [], 0, 0
            if current and used + piece.tokens > self.size:
                chunks.append(self._emit(current, titles))
                current = self._tail(current)
                used = sum(p.tokens for p in current)
                if used + piece.tokens > self.size:
                    current, used = [], 0
                carried = len(current)
            current.append(piece)
            used += piece.tokens
        if len(current) > carried:
            chunks.append(self._emit(current, titles))
        return chunks

    def _emit(self, pieces: list[_Piece], titles: tuple[str, ...]) -> Chunk:
        text = pieces[0].text
        for p in pieces[1:]:
            text += p.joiner + p.text
        return Chunk(
            text=text,
            position=Position(
                line_start=pieces[0].line_start,
                line_end=max(p.line_end for p in pieces),
                page=pieces[0].page,
            ),
            heading_trail=titles,
            tokens=sum(p.tokens for p in pieces),
        )

    def _tail(self, pieces: list[_Piece]) -> list[_Piece]:
        """The trailing pieces (or the last words of the last piece) that fit in the overlap."""
        if self.overlap <= 0:
            return []
        tail: list[_Piece] = []
        used = 0
        for piece in reversed(pieces):
            if used + piece.tokens > self.overlap:
                if not tail:
                    words = piece.text.split()
                    keep = max(1, self.overlap // 2)
                    text = " ".join(words[-keep:])
                    tokens = self._count(text)
                    while tokens > self.overlap and keep > 1:
                        keep //= 2
                        text = " ".join(words[-keep:])
                        tokens = self._count(text)
                    if tokens <= self.overlap:
                        tail.append(_Piece(text, piece.line_end, piece.line_end, piece.page, tokens, piece.joiner))
                break
            tail.append(piece)
            used += piece.tokens
        return list(reversed(tail))

    def _pieces(self, block: Block) -> list[_Piece]:
        tokens = self._count(block.text)
        if tokens <= self.size:
            return [_Piece(block.text, block.line_start, block.line_end, block.page, tokens)]
        lines = block.text.split("\n")
        if len(lines) > 1:
            out: list[_Piece] = []
            for offset, line in enumerate(lines):
                if not line.strip():
                    continue
                no = block.line_start + offset
                sub = Block(line, block.kind, no, no, page=block.page)
                for piece in self._pieces(sub):
                    out.append(_Piece(piece.text, piece.line_start, piece.line_end, piece.page, piece.tokens, "\n"))
            return out
        return self._split_line(block)

    def _split_line(self, block: Block) -> list[_Piece]:
        """One long line: by sentences, then by words, each piece within the budget."""
        units = _SENTENCE.split(block.text)
        if len(units) == 1:
            units = block.text.split(" ")
        out: list[_Piece] = []
        buf: list[str] = []
        for unit in units:
            candidate = " ".join(buf + [unit])
            if buf and self._count(candidate) > self.size:
                out.append(self._line_piece(" ".join(buf), block))
                buf = [unit]
            else:
                buf.append(unit)
        if buf:
            out.append(self._line_piece(" ".join(buf), block))
        final: list[_Piece] = []
        for piece in out:
            if piece.tokens > self.size and " " not in piece.text:
                final.extend(self._hard_split(piece, block))
            elif piece.tokens > self.size:
                final.extend(self._split_line(Block(piece.text, block.kind, block.line_start, block.line_end,
                                                    page=block.page)))
            else:
                final.append(piece)
        return final

    def _hard_split(self, piece: _Piece, block: Block) -> list[_Piece]:
        """A single unbroken word longer than the budget (a hash, base64...): cut by characters."""
        step = max(8, len(piece.text) * self.size // max(piece.tokens, 1) // 2)
        return [self._line_piece(piece.text[i : i + step], block) for i in range(0, len(piece.text), step)]

    def _line_piece(self, text: str, block: Block) -> _Piece:
        return _Piece(text, block.line_start, block.line_end, block.page, self._count(text), " ")
