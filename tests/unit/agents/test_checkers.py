import pytest

from covey.agents.checkers import CHECKERS, json_parses, nonempty, number_consistent, python_parses, run_check


def test_python_blocks_that_parse_pass():
    answer = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nThat's it."
    assert python_parses("", answer).ok


def test_a_python_block_with_a_syntax_error_fails_and_says_where():
    answer = "```python\ndef add(a, b)\n    return a + b\n```"
    result = python_parses("", answer)
    assert not result.ok
    assert "code block 1 does not parse" in result.reason and "line 1" in result.reason


def test_other_languages_and_prose_are_not_judged():
    assert python_parses("", "```js\nconst x = ;\n```").ok
    assert python_parses("", "A closure captures variables from its scope.").reason == "no Python code to check"


def test_bare_python_without_fences_is_checked():
    assert not python_parses("", "def f(:\n    pass").ok
    assert python_parses("", "import os\nprint(os.getcwd())").ok


def test_right_arithmetic_with_a_final_number_passes():
    answer = "17 × 23 = 391 and 1,200 + 300 = 1,500, so (3 + 4) * 2 = 14.\nAnswer: 14"
    result = number_consistent("", answer)
    assert result.ok and result.reason == "final number 14"


def test_rounded_results_are_accepted_within_their_decimals():
    assert number_consistent("", "22/7 = 3.14").ok
    assert not number_consistent("", "22/7 = 3.24").ok


def test_wrong_arithmetic_fails_naming_the_equation():
    result = number_consistent("", "12 * 4 = 46, so the answer is 46.")
    assert not result.ok
    assert "'12 * 4 = 46' is wrong (48)" == result.reason


def test_division_by_zero_claims_fail():
    assert not number_consistent("", "5 / 0 = 3").ok


def test_an_answer_without_a_number_fails():
    assert not number_consistent("What is 2+2?", "I am not sure.").ok


def test_dates_and_unbalanced_text_are_not_mistaken_for_equations():
    assert number_consistent("", "On 2024-01-02 = the day, we paid 3").ok
    assert number_consistent("", "so 3 + 4) * 2 = 15 is what the book says").ok


def test_json_checker():
    assert json_parses("", '{"a": [1, 2]}').ok
    assert json_parses("", 'Sure:\n```json\n{"a": 1}\n```').ok
    assert not json_parses("", "{'a': 1}").ok


def test_an_answer_that_echoes_the_request_fails_and_one_quoting_pasted_text_passes():
    ask = "Translate 'Where is the train station?' into French"
    echoed = nonempty(ask, " Translate 'Where is the train station?' into English")
    assert not echoed.ok and "repeats the request" in echoed.reason
    assert not nonempty("Translate 'thank you' into Spanish", "translate 'Thank you' into spanish.").ok
    assert nonempty(ask, "Où est la gare ?").ok
    assert nonempty("Translate 'Paris' into French", "Paris").ok
    text = "Summarize in one sentence: " + " ".join(f"Sentence {i} says the revenue grew by {i} percent." for i in range(8))
    assert nonempty(text, "Sentence 3 says the revenue grew by 3 percent.").ok
    assert nonempty("x" * 3000, "x" * 3000).ok  # too long to compare: passed, not judged
    # the request restated with a word or two swapped (Gemma 270M in `make demo`) is no answer either
    poem = "Write a short poem about an old laptop that still works."
    assert not nonempty(poem, "Write a poem about a dog that still works.").ok
    assert not nonempty("Say hello to my grandmother.", "Say hello to grandma.").ok
    assert nonempty(poem, "Write a poem? Here: the old laptop hums, and still it works.").ok
    assert nonempty(poem, "Old laptop, still awake at night, humming through the work.").ok
    # a question restated and then answered is an answer
    assert nonempty("What is the capital of France?", "What is the capital of France? Paris.").ok


def test_nonempty_checker():
    assert not nonempty("", "  \n ").ok
    assert not nonempty("", "ok\nok\nok\nok\n").ok
    assert nonempty("", "Hello!").ok


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_every_named_checker_runs(name):
    assert run_check(name, "prompt", "42").reason


def test_an_answer_reciting_the_agents_instructions_is_caught_and_an_answer_sharing_words_is_not() -> None:
    from covey.agents.checkers import echoes_instructions

    system = ("You are a warm, concise assistant. Answer in a friendly tone, stay in character when asked "
              "to role-play and keep advice practical.")
    # Gemma 3 270M's reply to "Say hello to my grandmother in one friendly sentence." (plain format)
    assert echoes_instructions(system, "You are a polite, friendly person. Answer in an amiable tone when "
                                       "asked to role-play and keep advice practical.")
    assert echoes_instructions(system, "Hello. I am a warm, concise assistant, friendly tone, in character.")
    assert not echoes_instructions(system, "Hello Grandma! I hope you are having a warm and lovely day.")
    assert not echoes_instructions(system, "")
    # a one-line prompt shares its few words with ordinary answers by chance
    assert not echoes_instructions("You are helpful.", "You are helpful, thank you")


def test_a_request_for_code_answered_without_code_or_with_itself_fails():
    ask = "Write a Python function that returns the factorial of n."
    assert not python_parses(ask, ask).ok and "repeats the request" in python_parses(ask, ask).reason
    bare = python_parses(ask, "The factorial of n is the product of 1 to n.")
    assert not bare.ok and bare.reason == "the request asks for code and the answer has none"
    assert python_parses(ask, "```python\ndef factorial(n):\n    return 1 if n < 2 else n * factorial(n - 1)\n```").ok
    assert python_parses(ask, "def factorial(n):\n    return 1 if n < 2 else n * factorial(n - 1)").ok
    assert python_parses("What does a Python decorator do?", "It wraps a function in another one.").ok
    assert not python_parses(ask, "  ").ok


def test_a_prose_answer_with_wrong_arithmetic_fails_and_right_arithmetic_passes():
    made_up = nonempty("What pressure should my boiler be at?", "So, 2025 x 37.6 = 7480 cubic centimeters.")
    assert not made_up.ok and made_up.reason == "'2025 x 37.6 = 7480' is wrong (76140)"
    assert nonempty("How many came?", "In 2024, 3 + 4 = 7 people came.").ok
    # 'x' between numbers after a space was skipped by the maths check too
    assert not number_consistent("", "Well, 12 x 3 = 38.").ok
