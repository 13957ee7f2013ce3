"""Turning retrieved passages into a grounded prompt with numbered sources, within a token budget.

The graph's retrieve step calls `ground()`: when no passage clears the relevance threshold it
gets `found=False` and the fixed `NOTHING_FOUND` reply; in strict mode it answers with that, else
the model answers from its own knowledge and the answer is labelled `NOT_FROM_DOCUMENTS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from pydantic import Field

from covey.errors import PromptTooLong
from covey.rag.config import RELEVANCE_THRESHOLD
from covey.rag.types import Passage, Position
from covey.types import Frozen, Message

CountTokens = Callable[[str], int]

NOTHING_FOUND = (
    "I found nothing in your documents about this, and strict grounding is on, so I will not answer from the "
    "model's own knowledge. Add the relevant files with `covey rag add PATH`, or ask again without --strict."
)

NOT_FROM_DOCUMENTS = "not from your documents"
"""The label of an answer the model gave from its own knowledge after the user's documents held nothing."""

OFFER_SYSTEM = (
    "Numbered passages from the user's documents come with the request. Use them where they help and cite "
    "the ones you use like [1]."
)

SYSTEM_PROMPT = (
    "Answer the question using only the numbered context passages. "
    "Cite the passages you use like [1] or [2]. "
    "If the passages do not contain the answer, say you could not find it in the documents."
)

_MIN_PASSAGE_TOKENS = 24
_CITE = re.compile(r"\[(\d+)\]")


class Citation(Frozen):
    number: int = Field(ge=1)
    source: str
    position: Position
    heading_trail: tuple[str, ...] = ()
    score: float
    label: str = Field(description="path:lines or path p.N")


class GroundedPrompt(Frozen):
    """What to send the model (or the reply to give directly when nothing was found)."""

    found: bool
    messages: tuple[Message, ...] = ()
    citations: tuple[Citation, ...] = ()
    prompt_tokens: int = 0
    reply: str | None = Field(None, description="NOTHING_FOUND when found is False")

    def sources_text(self) -> str:
        return format_sources(self.citations)


def relevant(passages: Sequence[Passage], threshold: float = RELEVANCE_THRESHOLD) -> list[Passage]:
    """Passages scoring at least `threshold`, best first."""
    return sorted((p for p in passages if p.score >= threshold), key=lambda p: p.score, reverse=True)


def ground(
    question: str,
    passages: Sequence[Passage],
    *,
    budget_tokens: int,
    count_tokens: CountTokens,
    threshold: float = RELEVANCE_THRESHOLD,
    system: str = SYSTEM_PROMPT,
) -> GroundedPrompt:
    """Builds chat messages with as many relevant passages as fit in `budget_tokens`.

    `budget_tokens` is what the prompt may use: the model's context minus the tokens kept for
    the answer. `count_tokens` should be the answering model's tokenizer (an estimate is fine,
    with some margin left in the budget). Passages are numbered [1], [2]... in the order given to
    the model, and each number has a citation (path and position) in the result.
    """
    usable = relevant(passages, threshold)
    if not usable:
        return GroundedPrompt(found=False, reply=NOTHING_FOUND)
    frame = _user_message(question, [])
    used = count_tokens(system) + count_tokens(frame) + 16  # chat-template tokens per message
    if used > budget_tokens:
        raise PromptTooLong(f"the question alone needs about {used} tokens; the budget is {budget_tokens}")
    chosen: list[tuple[Passage, str]] = []
    for passage in usable:
        block = _passage_block(len(chosen) + 1, passage, passage.text)
        cost = count_tokens(block) + 2
        if used + cost <= budget_tokens:
            chosen.append((passage, passage.text))
            used += cost
            continue
        room = budget_tokens - used
        if not chosen and room >= _MIN_PASSAGE_TOKENS:
            text = _truncate(passage, room, count_tokens)
            if text:
                chosen.append((passage, text))
                used += count_tokens(_passage_block(1, passage, text)) + 2
        # Later (lower-scoring) passages may be shorter and still fit.
    if not chosen:
        return GroundedPrompt(found=False, reply=NOTHING_FOUND)
    citations = tuple(
        Citation(number=i, source=p.source, position=p.position, heading_trail=p.heading_trail, score=p.score,
                 label=p.label)
        for i, (p, _) in enumerate(chosen, 1)
    )
    blocks = [_passage_block(i, p, text) for i, (p, text) in enumerate(chosen, 1)]
    messages = (Message(role="system", content=system), Message(role="user", content=_user_message(question, blocks)))
    return GroundedPrompt(found=True, messages=messages, citations=citations, prompt_tokens=used)


def format_sources(citations: Sequence[Citation]) -> str:
    """`[1] /path/file.md:12-30` lines, one per citation."""
    return "\n".join(f"[{c.number}] {c.label}" for c in citations)


def cited_numbers(answer: str, citations: Sequence[Citation] = ()) -> list[int]:
    """Citation numbers the answer uses, in order of first use (only valid numbers when citations given)."""
    valid = {c.number for c in citations}
    seen: list[int] = []
    for match in _CITE.finditer(answer):
        n = int(match.group(1))
        if n not in seen and (not valid or n in valid):
            seen.append(n)
    return seen


def render_answer(answer: str, citations: Sequence[Citation]) -> str:
    """The answer followed by its source list, as the CLI prints it."""
    if not citations:
        return answer
    return f"{answer.rstrip()}\n\nSources:\n{format_sources(citations)}"


def _passage_block(number: int, passage: Passage, text: str) -> str:
    where = passage.label
    if passage.heading_trail:
        where += " — " + " > ".join(passage.heading_trail)
    return f"[{number}] ({where})\n{text}"


def _user_message(question: str, blocks: list[str]) -> str:
    context = "\n\n".join(blocks)
    return f"Context:\n{context}\n\nQuestion: {question.strip()}"


def _truncate(passage: Passage, room: int, count_tokens: CountTokens) -> str:
    """The longest word prefix of the passage whose block fits in `room` tokens (binary search)."""
    words = passage.text.split(" ")
    lo, hi, best = 1, len(words), ""
    while lo <= hi:
        mid = (lo + hi) // 2
        text = " ".join(words[:mid]) + " …"
        if count_tokens(_passage_block(1, passage, text)) + 2 <= room:
            best, lo = text, mid + 1
        else:
            hi = mid - 1
    return best
