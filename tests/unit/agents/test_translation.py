import pytest

from covey.agents import CHECKERS, AgentSpec, run_check
from covey.agents.checkers import CheckResult
from covey.agents.translation import (
    EXAMPLES_EN, TranslationRequest, language_check, max_tokens_for, read_request, request_for, sampling_for,
)
from covey.types import Sampling


@pytest.mark.parametrize(("prompt", "text", "target", "source"), [
    ("Translate 'He has two cars.' into French.", "He has two cars.", "fr", "en"),
    ('How do you say "This car is fast." in Spanish?', "This car is fast.", "es", "en"),
    ("Translate into German: Everybody respected Tom.", "Everybody respected Tom.", "de", "en"),
    ("Translate 'Nunca lo encontrarás.' from Spanish to English.", "Nunca lo encontrarás.", "en", "es"),
    ("Translate this German sentence to English: Alleine lernen ist schwer.", "Alleine lernen ist schwer.", "en", "de"),
    ("Translate I won't be here tomorrow to Italian", "I won't be here tomorrow", "it", "en"),
    ("French for: Happiness is more important than wealth.", "Happiness is more important than wealth.", "fr", "en"),
    ('What does "Tu es mon ange." mean in English?', "Tu es mon ange.", "en", "fr"),  # source told by the text
    ("How would you say good morning in German?", "good morning", "de", "en"),
    ("In French, how do you say I love you?", "I love you", "fr", "en"),
    ('What is "thank you" in Spanish?', "thank you", "es", "en"),
    ("What's the Italian for 'thank you very much'?", "thank you very much", "it", "en"),
    ("Spanish: where is the library?", "where is the library?", "es", "en"),
    ("What does gracias mean?", "gracias", "en", "es"),  # meaning asked: into English
    ("Translate into Japanese: Good night, everyone.", "Good night, everyone.", "ja", "en"),
    ("Give me the Spanish translation of 'I am hungry'.", "I am hungry", "es", "en"),
    ("Translate to German\nThe train is late.", "The train is late.", "de", "en"),
    ("Translate the following English text to French: Note: the shop is closed.", "Note: the shop is closed.",
     "fr", "en"),
])
def test_requests_are_read_as_text_target_and_source(prompt, text, target, source) -> None:
    assert read_request(prompt) == TranslationRequest(text=text, target=target, source=source)


@pytest.mark.parametrize("prompt", [
    "What is the capital of France?",  # no translation asked
    "Translate this for me: hello",  # no target language
    "Translate into French:\nfirst line\nsecond line",  # more than one line: the prompt goes as it is
    "Translate 'bonjour' into Klingon.",  # a language covey does not know
])
def test_what_is_not_a_one_line_translation_request_is_not_read(prompt) -> None:
    assert read_request(prompt) is None


def test_a_language_named_inside_the_text_is_not_taken_for_the_target() -> None:
    req = read_request('Translate "I learned to speak in German at school." into Spanish.')
    assert req is not None and req.target == "es" and req.text == "I learned to speak in German at school."


def test_a_base_model_gets_a_completion_of_example_pairs_ending_at_the_target_label() -> None:
    messages, prompt = request_for(TranslationRequest("He has two cars.", "fr", "en"), chat=False)
    assert messages == ()
    assert prompt is not None and prompt.endswith("\nEnglish: He has two cars.\nFrench:")
    assert f"English: {EXAMPLES_EN[0]}\nFrench: Je voudrais une tasse de café.\n" in prompt
    assert "Translate" not in prompt  # nothing for a base model to echo


def test_a_chat_model_gets_example_turns_and_the_sentence_alone() -> None:
    messages, prompt = request_for(TranslationRequest("Aber er hatte Glück.", "en", "de"), chat=True)
    assert prompt is None
    assert [m.role for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "German text into English" in messages[0].content
    assert messages[1].content == "Ich hätte gern eine Tasse Kaffee." and messages[2].content == EXAMPLES_EN[0]
    assert messages[-1].content == "Aber er hatte Glück."


def test_an_unknown_source_into_english_is_shown_with_french_examples() -> None:
    _, prompt = request_for(TranslationRequest("Xyz abc.", "en", None), chat=False)
    assert prompt is not None and "Text: Je voudrais une tasse de café.\nEnglish: " in prompt
    assert prompt.endswith("Text: Xyz abc.\nEnglish:")


def test_generation_is_greedy_one_line_and_short() -> None:
    s = sampling_for(Sampling(temperature=0.7, stop=("</s>",)))
    assert s.temperature == 0.0 and s.stop == ("</s>", "\n")
    assert max_tokens_for(TranslationRequest("x" * 20, "fr", "en"), 512) == 36
    assert max_tokens_for(TranslationRequest("x" * 900, "fr", "en"), 512) == 512


@pytest.mark.parametrize(("prompt", "answer"), [
    ("Translate 'He has two cars.' into French.", "Il a deux voitures."),
    ("Translate 'Nunca lo encontrarás.' from Spanish to English.", "You'll never find it."),
    ("Translate into German: Everybody respected Tom.", "Alle achteten Tom."),
    ("Translate into English: Albert Einstein wurde in Deutschland geboren.", "Albert Einstein was born in Germany."),
    ("Translate into Spanish: I have a bicycle.", "Tengo una bicicleta."),  # scored close to Italian, still Spanish
])
def test_a_translation_in_the_target_language_passes(prompt, answer) -> None:
    result = language_check(prompt, answer)
    assert result.ok, result.reason


def test_the_text_left_untranslated_fails() -> None:
    result = language_check("Translate 'He has two cars.' into French.", "He has two cars")
    assert not result.ok and result.reason == "the answer is the text left in English, not translated into French"


def test_an_answer_in_another_language_fails_naming_it() -> None:
    prompt = 'What does "Tu es mon ange." mean in English?'
    assert language_check(prompt, "Eres mi ángel.").reason == "the answer reads as Spanish, not English"
    result = language_check("Translate 'There is a pond in the middle of the park.' into French.",
                            "There is a small lake in the centre of the garden.")
    assert not result.ok and result.reason == "the answer reads as English, not French"


def test_other_scripts_are_told_apart_too() -> None:
    assert language_check("Translate into Japanese: Good night, everyone.", "みなさん、おやすみなさい。").ok
    result = language_check("Translate into Russian: I love books.", "I like reading books.")
    assert not result.ok and result.reason == "the answer reads as English, not Russian"


def test_the_request_echoed_fails_as_nonempty_does() -> None:
    prompt = "Translate 'Where is the train station?' into French."
    result = language_check(prompt, "Translate 'Where is the train station?' into English.")
    assert not result.ok and "repeats the request" in result.reason


def test_an_answer_to_a_request_it_cannot_read_is_not_judged_by_language() -> None:
    result = language_check("Say something nice in any language you like", "Hola, ¿qué tal?")
    assert result.ok and "language not checked" in result.reason


def test_the_checker_is_registered_and_the_translator_uses_it() -> None:
    from covey.agents.specialists import SPECIALISTS

    assert not run_check("translation", "Translate 'He has two cars.' into French.", "He has two cars").ok
    translator = next(s for s in SPECIALISTS if s.name == "translator")
    assert translator.checker == "translation" and translator.prompt_format == "translation"
    assert "translation" in CHECKERS


def test_an_unknown_prompt_format_is_refused() -> None:
    with pytest.raises(ValueError, match="prompt_format"):
        AgentSpec(name="x", routes=("chat",), system_prompt="s", ladder=("m.gguf",), prompt_format="poem")


def test_on_the_dev_set_every_reference_passes_and_every_text_left_untranslated_fails() -> None:
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "bench" / "data" / "translate_dev.jsonl"
    tasks = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(tasks) == 40
    for task in tasks:
        req = read_request(task["prompt"])
        assert req is not None, task["prompt"]
        assert language_check(task["prompt"], task["reference"]).ok, task
        assert not language_check(task["prompt"], req.text).ok, task


def test_a_prose_answer_in_another_language_than_the_request_fails_nonempty():
    from covey.agents.checkers import nonempty

    hello = "Say hello to my grandmother in one friendly sentence."
    assert nonempty(hello, "Bonjour, mon grand-mère.") == CheckResult(
        ok=False, reason="the answer is in French, the request in English")
    assert nonempty(hello, "Hello grandma, I hope you are well today!").ok
    assert nonempty("Wie spät ist es jetzt in Berlin?", "Il est dix heures maintenant à Berlin.").reason == (
        "the answer is in French, the request in German")
    # English to a request in another language passes; a request naming a language is its own business.
    assert nonempty("Wie spät ist es jetzt in Berlin?", "It is ten o'clock there now.").ok
    assert nonempty("Write one sentence about the sea in Spanish.", "El mar es muy grande y azul.").ok
    assert nonempty("Translate 'good morning' into French.", "Bonjour à tous mes amis.").ok
    # Too short to tell, or code.
    assert nonempty("Write a short poem about Paris.", "Paris, mon amour").ok
    assert nonempty("Write a Python function that adds two numbers.", "def add(a, b):\n    return a + b").ok
