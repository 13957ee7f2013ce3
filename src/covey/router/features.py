"""Split a prompt into the user's instruction and the material they pasted, and read cheap cues.

Why: embedding a whole prompt lets a long pasted text drown the one line that says what to do
with it ("Summarize this:" followed by 400 words of news reads like news). The router embeds
only the instruction and describes the material with a handful of transparent numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

SHORT_PROMPT = 240
"""Prompts up to this many characters are all instruction: there is nothing to split off."""

MAX_INSTRUCTION = 300
"""Characters of instruction that are embedded (head and tail kept); bounds routing cost."""

_FENCE = re.compile(r"```[^\n]*\n?(.*?)(?:```|\Z)", re.S)
_TRIPLE_QUOTE = re.compile(r'("""|\'\'\')(.*?)(?:\1|\Z)', re.S)
_QUOTED_LINE = re.compile(r"^\s*>.*$", re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CODE_TOKENS = re.compile(
    r"[{};]|==|=>|->|::|\b(?:def|return|class|import|function|const|let|var|void|int|public|"
    r"SELECT|FROM|WHERE|printf|console|fn|elif|println|#include)\b"
)
_MATH_EXPR = re.compile(
    r"\d\s*[-+*/×÷^=%<>]\s*\(?\s*[\d.]|[a-z]\s*\^\s*\d|\d[a-z]\b|\b[xyz]\s*[-+=<>]|"
    r"\(\s*\d|\d\s*/\s*\d|\bsqrt\b|√|∫|\bsin\b|\bcos\b|\blog\b"
)
_LANGUAGES = (
    "english|french|spanish|german|italian|portuguese|dutch|japanese|chinese|mandarin|cantonese|"
    "korean|russian|arabic|hindi|polish|swedish|norwegian|danish|finnish|greek|turkish|hebrew|thai|"
    "vietnamese|indonesian|czech|hungarian|romanian|ukrainian|swahili|tagalog|latin|irish|gaelic|"
    "catalan|persian|bengali|urdu|malay|"
    "anglais|français|francais|espagnol|allemand|italien|inglés|ingles|francés|alemán|englisch|"
    "französisch|spanisch|deutsch|italienisch|inglese|francese|inglês|engels|frans|duits"
)
_LANGUAGE_NAME = re.compile(rf"\b(?:{_LANGUAGES})\b", re.I)
_FOREIGN_WORDS = frozenset(
    # Frequent short words of French, Spanish, German, Italian, Portuguese and Dutch that are
    # not English words: a cheap sign that (part of) the prompt is in another language.
    "le la les des une est et je tu nous vous ils avec pour dans sur pas très mais ce cette qui "
    "el los las del por con para es y una muy pero que como está estoy mi su yo tu "
    "der die das und ist ich nicht ein eine mit für auf den dem sie wir ihr bitte sehr "
    "il di che è sono per una con non gli della questo molto "
    "o os um uma não com eu você muito são "
    "het een en ik niet van zijn met voor wij ook".split()
)
_WORD = re.compile(r"[^\W\d_]+", re.U)
_CODE_LINE = re.compile(
    # A definition or statement line of code pasted without a fence (a Python def, a C/Java/JS signature).
    r"^\s*(?:(?:async\s+)?def\s+\w+\s*\(.*\)\s*(?:->\s*[^:]+)?:|class\s+\w+.*:|"
    r"(?:public|private|static|function|func|fn|void|int|const|let|var)\b[^\n]*[({=])\s*$",
    re.M,
)

_SUMMARY_ASKED = re.compile(
    # The instruction itself asks for a shorter version: with pasted material this, not the material, means summarize.
    r"\b(?:summar\w*|tl\s?;?\s?dr|gist|condens\w*|recap\w*|synops\w*|shorten\w*|highlights|boil\w* (?:it|this) down|"
    r"(?:key|main|important) (?:points|ideas|takeaways|parts)|in (?:a|one|two|three|a few) (?:sentences?|lines?|words|bullets?)|"
    r"in a nutshell|short version|shorter version)(?!\w)",
    re.I,
)
_WRITING_ASKED = re.compile(
    # The instruction asks for a piece of writing (a post, an email, a description, a recipe, a contract, ...).
    r"\b(?:write|draft|compose|create|craft|pen|prepare|come up with|give me|make)\b[^.?!\n]{0,40}?\b(?:post|e-?mail|letter|"
    r"note|message|description|recipe|story|poem|haiku|limerick|song|lyrics|essay|article|blog|tweet|caption|slogan|"
    r"tagline|ad|advert\w*|announcement|speech|toast|script|resume|cv|bio|biography|review|proposal|contract|agreement|"
    r"clause|policy|invitation|card|newsletter|press release|headline|pitch|cover letter|obituary|eulogy|dialog(?:ue)?)s?\b",
    re.I,
)



@dataclass(frozen=True)
class PromptParts:
    """A prompt cut into what the user asks (instruction) and what they pasted (material)."""

    instruction: str
    material: str = ""
    fenced_code: bool = False


def split_prompt(text: str) -> PromptParts:
    """Separate the instruction from pasted material: code fences, quoted blocks, long paragraphs."""
    text = text.strip()
    material: list[str] = []
    fenced = False

    def take(match: re.Match[str]) -> str:
        material.append(match.group(match.lastindex or 0))
        return " "

    rest, n_fences = _FENCE.subn(take, text)
    fenced = n_fences > 0
    rest = _TRIPLE_QUOTE.sub(take, rest)
    rest = _QUOTED_LINE.sub(take, rest).strip()

    if len(rest) > SHORT_PROMPT and not _is_one_question(rest):
        instruction, pasted = _split_long(rest)
        material.append(pasted)
    else:
        instruction = rest
    if not instruction.strip():
        # Nothing but material: the material itself is the best description of the task.
        instruction = text
    return PromptParts(_clip(" ".join(instruction.split())), "\n".join(m for m in material if m.strip()), fenced)


def _is_one_question(text: str) -> bool:
    """A single paragraph that ends in a question (a word problem, a long question) is all instruction:
    nothing in it was pasted, so it must not read as material to summarize."""
    return "\n" not in text.strip() and text.rstrip().endswith("?") and ":" not in text[:200]


def _split_long(text: str) -> tuple[str, str]:
    """Instruction and material of a long block without fences or quotes."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(paragraphs) > 1:
        head, tail = paragraphs[0], paragraphs[-1]
        picked = [p for p in (head, tail) if len(p) <= 200]
        if picked:
            body = [p for p in paragraphs if p not in picked]
            return " ".join(picked), "\n\n".join(body)
    lines = text.splitlines()
    if len(lines) > 1 and len(lines[0]) <= 200:
        return lines[0], "\n".join(lines[1:])
    colon = text.find(":", 0, 200)
    if colon > 0 and len(text) - colon > 2 * colon:
        return text[: colon + 1], text[colon + 1 :]
    sentences = _SENTENCE_END.split(text)
    if len(sentences) > 2:
        return f"{sentences[0]} {sentences[-1]}", " ".join(sentences[1:-1])
    return text, ""


def _clip(text: str) -> str:
    if len(text) <= MAX_INSTRUCTION:
        return text
    return f"{text[:200]} … {text[-(MAX_INSTRUCTION - 203):]}"


FEATURE_NAMES: tuple[str, ...] = (
    "pasted_material",
    "pasted_length",
    "code_block",
    "code_density",
    "math_expressions",
    "digit_share",
    "language_named",
    "foreign_words",
    "non_latin_script",
    "summary_asked",
    "writing_asked",
)
"""Cheap cues appended to the instruction embedding, each scaled to [0, 1]."""


def prompt_features(text: str, parts: PromptParts | None = None) -> np.ndarray:
    """The FEATURE_NAMES cues of one prompt as a float32 vector."""
    parts = parts or split_prompt(text)
    material = parts.material
    words = _WORD.findall(text.lower())
    n_words = max(1, len(words))
    letters = [c for c in text if c.isalpha()]
    non_latin = sum(1 for c in letters if ord(c) > 0x24F)
    code_hits = len(_CODE_TOKENS.findall(text))
    math_hits = len(_MATH_EXPR.findall(parts.instruction))
    digits = sum(c.isdigit() for c in parts.instruction)
    foreign = sum(1 for w in words if w in _FOREIGN_WORDS)
    values = (
        1.0 if len(material) >= 80 else 0.0,
        min(1.0, math.log1p(len(material)) / math.log1p(3000)),
        1.0 if parts.fenced_code or code_hits >= 4 or _CODE_LINE.search(text) else 0.0,
        min(1.0, 8.0 * code_hits / n_words),
        min(1.0, math_hits / 2.0),
        min(1.0, 6.0 * digits / max(1, len(parts.instruction))),
        1.0 if _LANGUAGE_NAME.search(parts.instruction) else 0.0,
        min(1.0, 4.0 * foreign / n_words),
        min(1.0, 2.0 * non_latin / max(1, len(letters))),
        1.0 if _SUMMARY_ASKED.search(parts.instruction) else 0.0,
        1.0 if _WRITING_ASKED.search(parts.instruction) else 0.0,
    )
    return np.asarray(values, dtype=np.float32)
