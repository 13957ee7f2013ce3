from covey.router.features import (
    FEATURE_NAMES,
    MAX_INSTRUCTION,
    prompt_features,
    split_prompt,
)

NEWS = ("The council approved a budget that raises spending on buses by twelve percent. " * 6).strip()


def feature(text: str, name: str) -> float:
    return float(prompt_features(text)[FEATURE_NAMES.index(name)])


def test_short_prompt_is_all_instruction():
    parts = split_prompt("Translate 'good night' into Spanish.")
    assert parts.instruction == "Translate 'good night' into Spanish."
    assert parts.material == ""


def test_instruction_before_colon_and_blank_line_is_split_from_pasted_text():
    parts = split_prompt(f"Summarize this article in two sentences:\n\n{NEWS}")
    assert parts.instruction == "Summarize this article in two sentences:"
    assert "council approved" in parts.material


def test_instruction_after_the_pasted_text_is_found():
    parts = split_prompt(f"{NEWS}\n\nTL;DR?")
    assert parts.instruction == "TL;DR?"
    assert parts.material.startswith("The council")


def test_instruction_on_the_same_line_as_material_splits_at_the_colon():
    parts = split_prompt(f"Give me the gist of this: {NEWS}")
    assert parts.instruction == "Give me the gist of this:"


def test_code_fence_becomes_material_and_is_flagged():
    parts = split_prompt("Fix this please:\n```python\ndef f(x):\n    return x[len(x)]\n```")
    assert parts.instruction == "Fix this please:"
    assert "return x[len(x)]" in parts.material
    assert parts.fenced_code


def test_triple_quoted_and_quoted_lines_are_material():
    parts = split_prompt(f'Condense this\n"""\n{NEWS}\n"""')
    assert parts.instruction == "Condense this"
    assert "council" in parts.material
    quoted = split_prompt("What is this saying?\n> line one of the mail\n> line two of the mail")
    assert quoted.instruction == "What is this saying?"
    assert "line two" in quoted.material


def test_only_material_keeps_the_text_as_instruction():
    parts = split_prompt("```\nprint('hi')\n```")
    assert "print" in parts.instruction


def test_long_instruction_is_clipped_for_embedding():
    parts = split_prompt("word " * 300)
    assert len(parts.instruction) <= MAX_INSTRUCTION + 2


def test_cues_read_code_math_and_languages():
    assert feature("Fix:\n```js\nconst x = 1;\n```", "code_block") == 1.0
    assert feature("What is 17 * 23?", "math_expressions") > 0
    assert feature("Solve 3x + 7 = 22", "math_expressions") > 0
    assert feature("Write a poem about rain", "math_expressions") == 0
    assert feature("Translate this into German please", "language_named") == 1.0
    assert feature("Je voudrais une table pour deux avec vue sur la mer", "foreign_words") > 0.5
    assert feature("我明天要去北京出差。", "non_latin_script") == 1.0
    assert feature(f"Summarize:\n\n{NEWS}", "pasted_material") == 1.0
    assert feature("hello there", "pasted_material") == 0.0


def test_cues_are_bounded():
    for text in ["", "x", "1+1=2 " * 200, "```\n{};{};\n```" * 50]:
        v = prompt_features(text)
        assert v.shape == (len(FEATURE_NAMES),)
        assert ((v >= 0) & (v <= 1)).all()


def test_asked_cues_read_the_instruction_not_the_pasted_text():
    assert feature(f"TL;DR this:\n\n{NEWS}", "summary_asked") == 1.0
    assert feature(f"What are the main points of this article?\n\n{NEWS}", "summary_asked") == 1.0
    assert feature("Write a cover letter for a junior designer job", "writing_asked") == 1.0
    assert feature("Give me a catchy slogan for a bike shop", "writing_asked") == 1.0
    # pasted material alone asks for nothing: the text below mentions a summary, the instruction does not
    assert feature(f"Who approved the budget?\n\n{NEWS} The summary of the vote was published.", "summary_asked") == 0.0
    assert feature("Write a function that reverses a list", "writing_asked") == 0.0
    assert feature("Explain how vaccines work", "writing_asked") == 0.0

