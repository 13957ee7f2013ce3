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
    text = re.sub(r"\A(?:[ \t]*\n)+", "", text).rstrip()
    lines = text.split("\n")
    if len(lines) > 1 and all(line[:1] in (" ", "\t") for line in lines[1:] if line.strip()):
        return text
    return text.lstrip(" \t")
