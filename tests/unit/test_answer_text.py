"""covey.text's answer shaping: leading blank lines dropped, code fences paired."""

from __future__ import annotations

import pytest

from covey.text import balanced_fences, stands_alone, trimmed_answer

BARE_THEN_CLOSED = 'def reverse_string(s):\n    return s[::-1]\n\nprint(reverse_string("Hello"))  # Output: olleH\n```'


def test_bare_code_closed_by_a_fence_it_never_opened_gets_its_opening_fence() -> None:
    # SmolLM2's reply in `make demo`: the screen showed a lone ``` after the code
    assert balanced_fences(BARE_THEN_CLOSED) == "```python\n" + BARE_THEN_CLOSED
    assert balanced_fences("Here it is:\nimport os\nprint(1)\n```\nDone.") == (
        "Here it is:\n```python\nimport os\nprint(1)\n```\nDone.")


def test_an_open_block_is_closed_a_stray_fence_after_prose_dropped_and_paired_text_unchanged() -> None:
    assert balanced_fences("Here:\n```python\nx = 1\n") == "Here:\n```python\nx = 1\n```"
    assert balanced_fences("Some prose.\n```\nMore prose.") == "Some prose.\nMore prose."
    paired = "Use it:\n```python\nx = 1\n```\nand inline ``` stays."
    assert balanced_fences(paired) == paired


def test_the_result_text_is_trimmed_and_paired() -> None:
    assert trimmed_answer("\n\n  Hello.  \n") == "Hello."
    assert trimmed_answer("\n" + BARE_THEN_CLOSED + "\n") == "```python\n" + BARE_THEN_CLOSED
    assert trimmed_answer("    x = 1\n    y = 2") == "    x = 1\n    y = 2"  # bare indented code keeps its indent


def test_code_without_its_opening_fence_is_still_found_and_checked() -> None:
    from covey.agents.checkers import python_parses
    from covey.orchestrator.tool_steps import extract_code

    assert extract_code(BARE_THEN_CLOSED) == BARE_THEN_CLOSED.removesuffix("```")
    assert not python_parses("", "def f(:\n    pass\n```").ok


@pytest.mark.parametrize("prompt", [
    "Write a short poem about an old laptop that still works.", "What is the capital of France?",
    "Translate 'good morning, my friends' into French.", "Write a Python function that reverses a string.",
    "Explain what a CPU does in one sentence.", "Please summarize the plot of Hamlet",
    "Say hello to my grandmother in one friendly sentence.", "Write a poem for my cat Miso",
])
def test_requests_that_stand_alone(prompt):
    assert stands_alone(prompt)


@pytest.mark.parametrize("prompt", [
    "Make it shorter.", "And in German?", "Explain the code", "Write another one", "What is my cat called?",
    "What about Spain?", "Translate that into Spanish", "Why is it so slow?", "What is that number plus one?",
    "Where did I park?", "Now in French", "Thanks!", "Write more", "Who?",
])
def test_requests_that_point_back_at_the_conversation(prompt):
    assert not stands_alone(prompt)
