"""Text that crosses covey's edges must be valid Unicode: lone surrogates are found here and named.

Python turns bytes that are not UTF-8 into lone surrogates in command-line arguments and file names
(`surrogateescape`: byte 0xff becomes U+DCFF), and JSON may spell one out (`"\\udcff"`). Tokenizers,
SQLite and protobuf all refuse such strings, each with its own exception, so they are caught first.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def first_surrogate(text: str) -> int | None:
    """Index of the first lone surrogate in `text`, or None when it is valid Unicode."""
    m = _SURROGATE.search(text)
    return m.start() if m else None


def describe_surrogate(text: str) -> str:
    """Where `text` stops being valid UTF-8, for an error message ("" when it is valid)."""
    at = first_surrogate(text)
    if at is None:
        return ""
    code = ord(text[at])
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, kept by surrogateescape
        return f"the byte 0x{code - 0xDC00:02x} at character {at + 1} is not UTF-8"
    return f"character {at + 1} is a lone surrogate (U+{code:04X}), which UTF-8 cannot carry"


def scrubbed(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, for code that must not fail on it."""
    return _SURROGATE.sub("\ufffd", text) if first_surrogate(text) is not None else text


def printable_path(path: object) -> str:
    """A file name fit to print and store: undecodable bytes shown as \\xNN (the name itself is untouched)."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") \
        if first_surrogate(str(path)) is not None else str(path)


def trimmed_answer(text: str) -> str:
    """An answer without the blank lines and spaces a model put before it or the whitespace after it.

    A first line's indentation is kept when the lines after it are indented too (code shown bare)."""
    text = balanced_fences(re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip())
    lines = text.split("\n")
    if len(lines) > 1 and all(line[:1] in (" ", "\t") for line in lines[1:] if line.strip()):
        return text
    return text.lstrip(" \t")


_FENCE_LINE = re.compile(r"^[ \t]*```", re.M)
_CODE_START = re.compile(r"^(?:def |class |import |from [\w.]+ import |@\w|print\(|if __name__|[A-Za-z_]\w*\s*=[^=])", re.M)


def balanced_fences(text: str) -> str:
    """`text` with its code fences paired: a small model often writes code bare and then closes a block it
    never opened ("def f(): ...\\n```"), or stops before closing one. A lone closing fence after bare Python
    gets its opening ```python before the code's first line; a block left open is closed at the end."""
    fences = list(_FENCE_LINE.finditer(text))
    if len(fences) % 2 == 0:
        return text
    first = fences[0]
    bare_close = text[first.end():].split("\n", 1)[0].strip() == ""
    head = text[:first.start()]
    start = _CODE_START.search(head) if bare_close else None
    if start is not None:
        return f"{head[:start.start()]}```python\n{text[start.start():]}"
    if bare_close and len(fences) == 1:  # a stray closing fence after prose: nothing to close
        line_end = text.find("\n", first.end())
        return (head + (text[line_end + 1:] if line_end != -1 else "")).rstrip()
    return text.rstrip() + "\n```"


_TASK_START = re.compile(
    r"^(?:please\s+)?(?:write|compose|draft|create|generate|translate|summari[sz]e|explain|describe|list|name|give|"
    r"tell\s+me|say|define|calculate|compute|solve|convert|implement|what\s+is|what\s+are|what's|who\s+is|who\s+was|"
    r"who\s+wrote|where\s+is|when\s+did|when\s+was|how\s+many|how\s+much|how\s+do|how\s+does|why\s+is|why\s+do)\b",
    re.I)
_REFERS_BACK = re.compile(
    r"\b(?:it|its|it's|this|these|those|them|they|their|again|above|previous|earlier|same|instead|another|"
    r"also|too|more|else|that(?=\s+(?:into|in|to|for|again)\b|\s*[?.!]*$)|that\s+(?:one|number|result|answer|code|"
    r"poem|text|function|list)|the\s+(?:answer|result|code|poem|story|text|function|list|sentence|translation|"
    r"last\s+one)|your|you\s+(?:said|wrote|gave))\b", re.I)
_ASKS_ABOUT_USER = re.compile(r"^(?:what|who|where|when|how|why|which)\b.*\b(?:my|mine|me|i|we|our|us)\b", re.I)
"""'What is my cat called?' asks what the conversation said; 'Say hello to my grandmother' only describes."""
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|“[^”]*”|‘[^’]*’")


def stands_alone(prompt: str) -> bool:
    """Whether a request is complete without the conversation before it: it opens as a task ("Write a short
    poem about an old laptop", "What is the capital of France?") and points back at nothing ("make it
    shorter", "and in German?", "explain the code", "write another", "what is my cat called?"). Small models
    copy earlier turns' language and content into such answers (a poem quoting the sum asked two turns
    before, a greeting in the French of the translation before it), so they go without them."""
    text = prompt.strip()
    unquoted = _QUOTED.sub(" ", text)  # "Translate 'good morning, my friends'": the quoted words are material
    return (bool(_TASK_START.match(text)) and _REFERS_BACK.search(unquoted) is None
            and _ASKS_ABOUT_USER.search(unquoted) is None and len(text.split()) >= 3)
