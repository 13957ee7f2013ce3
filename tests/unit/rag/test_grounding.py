from __future__ import annotations

import pytest

from covey.errors import PromptTooLong
from covey.rag import NOTHING_FOUND, Passage, Position, ground, render_answer
from covey.rag.grounding import cited_numbers


def words(text: str) -> int:
    return len(text.split())


def passage(text: str, score: float, source: str = "/docs/a.md", lines: tuple[int, int] = (1, 2),
            page: int | None = None) -> Passage:
    return Passage(text=text, score=score, source=source, heading_trail=("Guide",), chunk_id=1,
                   position=Position(line_start=lines[0], line_end=lines[1], page=page))


def test_nothing_relevant_gives_the_fixed_reply() -> None:
    result = ground("why?", [passage("noise", 0.1)], budget_tokens=500, count_tokens=words, threshold=0.3)
    assert not result.found and result.reply == NOTHING_FOUND and result.messages == ()
    assert "found nothing in your documents" in NOTHING_FOUND


def test_passages_numbered_best_first_with_citations() -> None:
    ps = [passage("second best text", 0.5, "/d/b.md", (3, 9)), passage("best text", 0.8, "/d/a.md", (1, 2)),
          passage("scan text", 0.6, "/d/s.pdf", (1, 4), page=7), passage("weak", 0.2)]
    result = ground("what is best?", ps, budget_tokens=500, count_tokens=words, threshold=0.3)
    assert result.found
    assert [c.label for c in result.citations] == ["/d/a.md:1-2", "/d/s.pdf p.7", "/d/b.md:3-9"]
    user = result.messages[1].content
    assert user.index("[1] (/d/a.md:1-2 — Guide)\nbest text") < user.index("[2] (/d/s.pdf p.7")
    assert "weak" not in user and user.endswith("Question: what is best?")
    assert result.messages[0].role == "system" and "[1]" in result.messages[0].content
    assert result.sources_text() == "[1] /d/a.md:1-2\n[2] /d/s.pdf p.7\n[3] /d/b.md:3-9"


def test_budget_keeps_what_fits_and_truncates_a_lone_long_passage() -> None:
    long = passage(" ".join(f"w{i}" for i in range(400)), 0.9)
    short = passage("short fact here", 0.5, "/d/short.md")
    result = ground("q?", [long, short], budget_tokens=120, count_tokens=words, threshold=0.3)
    assert result.prompt_tokens <= 120
    assert [c.source for c in result.citations] == ["/docs/a.md"]  # truncated best, short no longer fits
    assert result.messages[1].content.count("w1") > 5 and "…" in result.messages[1].content
    roomy = ground("q?", [passage("a b c", 0.9), short], budget_tokens=200, count_tokens=words, threshold=0.3)
    assert len(roomy.citations) == 2


def test_question_over_budget_is_an_error() -> None:
    with pytest.raises(PromptTooLong, match="budget is 20"):
        ground("word " * 50, [passage("x", 0.9)], budget_tokens=20, count_tokens=words)


def test_cited_numbers_and_render() -> None:
    result = ground("q?", [passage("a", 0.9), passage("b", 0.8, "/d/b.md")], budget_tokens=300,
                    count_tokens=words, threshold=0.3)
    assert cited_numbers("See [2] and [1], not [7]. Again [2].", result.citations) == [2, 1]
    text = render_answer("It is a [1].", result.citations)
    assert text == "It is a [1].\n\nSources:\n[1] /docs/a.md:1-2\n[2] /d/b.md:1-2"
