"""Translation requests: which text into which language, the prompt a small model follows, and the language check.

`read_request` reads "Translate 'He has two cars.' into French", "How do you say "X" in Spanish?",
"Translate into German: X" or "Translate 'X' from Spanish to English" as the text, the target language
and (when the prompt names it) the source language. It reads English instructions naming one of
`LANGUAGES`; anything else is None, and the agent then gets the user's prompt as it is.

`request_for` puts a read request to the model in the form small models follow: the sentence alone
after two example pairs in the same two languages, greedy, stopped at the end of the line. A base model
(the bundled Gemma 3 270M has no chat template) gets them as a completion ("English: ...\\nFrench:"), a
chat model as turns under a terse instruction. Asked with the user's whole request, Gemma echoed it or
translated into the wrong language; SmolLM2 explained instead of translating.

`language_check` is the `translation` checker: the answer must read as the target language and not as
the source (py3langid, a naive Bayes byte n-gram model shipped in its wheel, scored over `LANGUAGES`
only), and must not be the text left untranslated.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import TYPE_CHECKING, Any, NamedTuple

from covey.types import Message, Sampling

if TYPE_CHECKING:
    from covey.agents.checkers import CheckResult


class Language(NamedTuple):
    code: str  # ISO 639-1, as py3langid names it
    name: str
    aliases: tuple[str, ...]
    examples: tuple[str, str]  # EXAMPLES_EN in this language, for the few-shot pairs


EXAMPLES_EN = ("I would like a cup of coffee.", "The weather is nice today.")
"""The two example sentences every few-shot prompt translates (written for covey, in each language below)."""

LANGUAGES: dict[str, Language] = {lang.code: lang for lang in (
    Language("en", "English", ("english",), EXAMPLES_EN),
    Language("fr", "French", ("french", "français", "francais"),
             ("Je voudrais une tasse de café.", "Il fait beau aujourd'hui.")),
    Language("es", "Spanish", ("spanish", "español", "espanol", "castilian"),
             ("Quisiera una taza de café.", "Hoy hace buen tiempo.")),
    Language("de", "German", ("german", "deutsch"),
             ("Ich hätte gern eine Tasse Kaffee.", "Heute ist schönes Wetter.")),
    Language("it", "Italian", ("italian", "italiano"),
             ("Vorrei una tazza di caffè.", "Oggi fa bel tempo.")),
    Language("pt", "Portuguese", ("portuguese", "português", "portugues"),
             ("Eu gostaria de uma xícara de café.", "O tempo está bom hoje.")),
    Language("nl", "Dutch", ("dutch", "nederlands"),
             ("Ik wil graag een kopje koffie.", "Het is mooi weer vandaag.")),
    Language("sv", "Swedish", ("swedish", "svenska"),
             ("Jag skulle vilja ha en kopp kaffe.", "Det är fint väder idag.")),
    Language("tr", "Turkish", ("turkish", "türkçe"),
             ("Bir fincan kahve istiyorum.", "Bugün hava çok güzel.")),
    Language("ru", "Russian", ("russian", "русский"),
             ("Я хотел бы чашку кофе.", "Сегодня хорошая погода.")),
    Language("ar", "Arabic", ("arabic",),
             ("أريد فنجان قهوة.", "الطقس جميل اليوم.")),
    Language("zh", "Chinese", ("chinese", "mandarin", "中文"),
             ("我想要一杯咖啡。", "今天天气很好。")),
    Language("ja", "Japanese", ("japanese", "日本語"),
             ("コーヒーを一杯ください。", "今日はいい天気です。")),
    Language("ko", "Korean", ("korean", "한국어"),
             ("커피 한 잔 주세요.", "오늘 날씨가 좋아요.")),
)}
"""The languages covey reads in a request and tells apart in an answer."""

_BY_ALIAS = {alias: lang.code for lang in LANGUAGES.values() for alias in lang.aliases}
_NAMES = "|".join(sorted(map(re.escape, _BY_ALIAS), key=len, reverse=True))
_QUOTED = re.compile(r"\"([^\"]+)\"|“([^”]+)”|«\s*([^»]+?)\s*»|(?:^|(?<=\s))'(.+?)'(?=[\s.,;:?!)]|$)", re.S)
_SOURCE = re.compile(rf"\bfrom\s+({_NAMES})\b|\b(?:this|the|my|following)\s+({_NAMES})\s+(?:sentence|text|phrase|"
                     r"words?|line|saying)\b", re.I)
_TARGET = re.compile(rf"\b(?:in|into|to)\s+({_NAMES})\b|^\s*({_NAMES})\b(?=[\s:]*(?:for|please|:))|"
                     rf"\bthe\s+({_NAMES})\s+(?:word\s+|phrase\s+)?for\b|\b({_NAMES})\s+(?:translation|version|"
                     r"equivalent)\b", re.I)
_CUE = re.compile(rf"translat|\bsay\b|\bmean\b|^\s*(?:{_NAMES})\b|\b(?:in|into|to)\s+(?:{_NAMES})\b|"
                  rf"\bthe\s+(?:{_NAMES})\s+(?:word\s+|phrase\s+)?for\b", re.I)
_PHRASED = (  # unquoted text inside a question: "How would you say good morning in German?"
    re.compile(rf"^\s*(?:in\s+(?:{_NAMES})\s*,\s*)?how\s+(?:do|would|can|should)\s+(?:you|i|we|one)\s+say\s+"
               rf"(?P<text>.+?)(?:\s+in\s+(?:{_NAMES}))?\s*[?.!]*\s*$", re.I),
    re.compile(rf"^\s*what(?:'s|\s+is)\s+(?P<text>.+?)\s+in\s+(?:{_NAMES})\s*[?.!]*\s*$", re.I),
    re.compile(rf"^\s*what\s+does\s+(?P<text>.+?)\s+mean(?:\s+in\s+(?:{_NAMES}))?\s*[?.!]*\s*$", re.I),
)
_MEAN = re.compile(r"\bmean\b", re.I)  # "What does 'gracias' mean?" asks for English
_LEAD = re.compile(r"^\s*(?:please\s+|can you\s+|could you\s+)?translate\s+(?:this|the following)?\s*(?:sentence|"
                   r"text|phrase)?\s*", re.I)
_TRAIL = re.compile(rf"\s*(?:from\s+(?:{_NAMES})\s+)?(?:in|into|to)\s+(?:{_NAMES})\s*(?:please)?\s*[.?!]*\s*$", re.I)

MIN_TARGET_SHARE = 0.5
"""How much of the probability the answer's language must give the target against the source (the two
alone compared). Short sentences are ambiguous between close languages ("Tengo una bicicleta." scores
0.61 Spanish, 0.38 Italian), so only the source beating the target fails the check."""


OTHER_LANGUAGE = 0.25
"""An answer whose target-language probability is below this share of the likeliest language's reads as
that language and fails, though the source scores lower still ("Tiene dos coches." for French: 0.81
Spanish, 0.006 French). The 40 references of bench/data/translate_dev.jsonl score at least 0.58."""


CLEAR_LEAD = 1.25
"""A text whose likeliest language is below one half is taken to be in the likeliest other than the
target when that one scores this many times the next ("Tu es mon ange.": French 0.48, German 0.32)."""


class TranslationRequest(NamedTuple):
    text: str
    target: str  # a LANGUAGES code
    source: str | None  # named in the prompt, else identified from the text; None when neither says


def read_request(prompt: str) -> TranslationRequest | None:
    """The text, target and source of a one-line translation request, or None when it is not one covey reads."""
    if not _CUE.search(prompt):
        return None
    text, instruction = _split(prompt)
    if not text or "\n" in text.strip():
        return None
    source_hit = _SOURCE.search(instruction)
    named_source = _BY_ALIAS[next(g for g in source_hit.groups() if g).lower()] if source_hit else None
    scrubbed = instruction[:source_hit.start()] + instruction[source_hit.end():] if source_hit else instruction
    target_hit = _TARGET.search(scrubbed)
    if target_hit is not None:
        target = _BY_ALIAS[next(g for g in target_hit.groups() if g).lower()]
    elif _MEAN.search(scrubbed):
        target = "en"
    else:
        return None
    source = named_source or _text_language(text, target)
    return TranslationRequest(text=text.strip(), target=target, source=source if source != target else None)


def _text_language(text: str, target: str) -> str | None:
    """The language the text is in: the most likely one, else (unsure) the most likely other than the target."""
    scores = language_scores(text)
    if not scores:
        return None
    best = max(scores, key=scores.__getitem__)
    if scores[best] >= 0.5:
        return best
    others = sorted((p, code) for code, p in scores.items() if code != target)
    (second, _), (first, runner) = others[-2], others[-1]
    return runner if first >= CLEAR_LEAD * second else None


def _split(prompt: str) -> tuple[str, str]:
    """(text to translate, the instruction around it)."""
    quoted = _QUOTED.search(prompt)
    if quoted:
        text = next(g for g in quoted.groups() if g)
        return text, prompt[:quoted.start()] + " " + prompt[quoted.end():]
    head, sep, tail = prompt.partition(":")
    if sep and tail.strip() and len(head) < 80:
        return tail.strip(), head + sep
    lines = [line for line in prompt.splitlines() if line.strip()]
    if len(lines) == 2 and _TARGET.search(lines[0]):  # "Translate to French" on one line, the text on the next
        return lines[1].strip(), lines[0]
    for pattern in _PHRASED:
        if m := pattern.match(prompt):
            return m.group("text"), prompt[:m.start("text")] + " " + prompt[m.end("text"):]
    trail = _TRAIL.search(prompt)
    lead = _LEAD.match(prompt)
    if trail and lead and lead.end() < trail.start():
        return prompt[lead.end():trail.start()], prompt[:lead.end()] + prompt[trail.start():]
    return "", prompt


def request_for(req: TranslationRequest, *, chat: bool) -> tuple[tuple[Message, ...], str | None]:
    """(messages, raw prompt) for the model: few-shot turns for a chat model, a completion for a base model."""
    src = LANGUAGES[req.source] if req.source else None
    tgt = LANGUAGES[req.target]
    shots = list(zip(src.examples if src else EXAMPLES_EN, tgt.examples, strict=True))
    if src is None and req.target == "en":  # unknown source into English: show French -> English pairs
        shots = list(zip(LANGUAGES["fr"].examples, EXAMPLES_EN, strict=True))
    src_label = src.name if src else "Text"
    if not chat:
        lines = [f"{src_label}: {a}\n{tgt.name}: {b}\n" for a, b in shots]
        return (), "\n".join(lines) + f"\n{src_label}: {req.text}\n{tgt.name}:"
    system = f"Translate the user's {src.name + ' ' if src else ''}text into {tgt.name}. Reply with the translation only."
    msgs = [Message(role="system", content=system)]
    for a, b in shots:
        msgs += [Message(role="user", content=a), Message(role="assistant", content=b)]
    return (*msgs, Message(role="user", content=req.text)), None


def sampling_for(base: Sampling) -> Sampling:
    """Greedy, stopped at the end of the line: a sentence's translation is one line."""
    return base.model_copy(update={"temperature": 0.0, "stop": tuple(dict.fromkeys((*base.stop, "\n")))})


def max_tokens_for(req: TranslationRequest, cap: int) -> int:
    """Enough tokens for the sentence's translation and no more (a looping answer stops early)."""
    return max(1, min(cap, 16 + len(req.text)))


def language_check(prompt: str, answer: str) -> CheckResult:
    """The answer is not the request echoed, is in the target language and not the source, and is not the text as given."""
    from covey.agents.checkers import CheckResult, nonempty

    basic = nonempty(prompt, answer)
    if not basic.ok:
        return basic
    req = read_request(prompt)
    if req is None:
        return CheckResult(ok=True, reason="not a translation request covey can read; language not checked")
    target = LANGUAGES[req.target].name
    untranslated = bool(_words(answer)) and _words(answer) <= _words(req.text)
    if untranslated and req.source is not None:
        return CheckResult(ok=False, reason=f"the answer is the text left in {LANGUAGES[req.source].name}, "
                                            f"not translated into {target}")
    if untranslated and _text_language(req.text, req.target) is None:  # the text's language unknown, not the target's
        return CheckResult(ok=False, reason=f"the answer is the text left as it was, not translated into {target}")
    scores = language_scores(_own_words(answer, req.text))
    if not scores:
        return CheckResult(ok=True, reason="no words of its own to tell the language by")
    best = max(scores, key=scores.__getitem__)
    read_as = LANGUAGES[best if best != req.target else (req.source or best)].name
    if req.source is not None:
        src, tgt = scores[req.source], scores[req.target]
        if tgt / (src + tgt or 1.0) < MIN_TARGET_SHARE:
            return CheckResult(ok=False, reason=f"the answer reads as {read_as}, not {target}")
    if scores[req.target] < OTHER_LANGUAGE * scores[best]:
        return CheckResult(ok=False, reason=f"the answer reads as {read_as}, not {target}")
    return CheckResult(ok=True, reason=f"reads as {target}")


def language_scores(text: str) -> dict[str, float]:
    """Probability of each of `LANGUAGES` for the text (they sum to 1); empty when the text has no letters."""
    if not any(ch.isalpha() for ch in text):
        return {}
    return dict(_identifier().rank(text))


@functools.cache
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    ident.set_languages(list(LANGUAGES))
    return ident


def _fold(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold()


def _words(text: str) -> set[str]:
    return {_fold(w) for w in re.findall(r"\w+", text)}


def _own_words(answer: str, text: str) -> str:
    """The answer without the words it shares with the text (names such as 'Albert Einstein' tell no language)."""
    shared = _words(text)
    return " ".join(w for w in re.findall(r"\w+(?:['’]\w+)*", answer) if _fold(w) not in shared)


_ENGLISH_FUNCTION_WORDS = frozenset(
    "the a an and or but is are was were be to of in on at for with it this that you your i my we our "
    "they he she his her not do does can will would have has".split())
SURE_LANGUAGE = 0.9
"""py3langid probability above which a prompt's or an answer's language counts as known (both must be)."""


def _mostly_english(text: str) -> bool:
    """Cheap: a text with several English function words is English (py3langid is not loaded for it)."""
    words = re.findall(r"[a-z']+", text.lower())
    hits = sum(w in _ENGLISH_FUNCTION_WORDS for w in words)
    return len(words) >= 4 and hits >= 2 and hits / len(words) >= 0.15


def other_language(prompt: str, answer: str) -> str | None:
    """Why the answer is not in the request's language, when both are clear and no language was asked for.

    Gemma 3 270M (a base model) carries on in the language of the conversation so far: asked "Say hello to
    my grandmother in one friendly sentence." after a French translation, it wrote "Bonjour, mon grand-mère.".
    A request that names a language (a translation, "answer in Spanish") is left alone, and so are texts too
    short or mixed to tell. An English answer to a request in another language passes: the bundled models
    write English best, and an answer the user may read beats none."""
    if _mostly_english(answer):  # an English answer passes whatever the request's language: no need to load py3langid
        return None
    asked = prompt.lower()
    if read_request(prompt) is not None or any(a in asked for lang in LANGUAGES.values() for a in lang.aliases):
        return None
    if len(re.findall(r"\w+", answer)) < 3 or len(re.findall(r"\w+", prompt)) < 4:
        return None
    p, a = language_scores(prompt), language_scores(answer)
    if not p or not a:
        return None
    p_lang, a_lang = max(p, key=p.__getitem__), max(a, key=a.__getitem__)
    if p_lang == a_lang or a_lang == "en" or p[p_lang] < SURE_LANGUAGE or a[a_lang] < SURE_LANGUAGE:
        return None
    return f"the answer is in {LANGUAGES[a_lang].name}, the request in {LANGUAGES[p_lang].name}"
