"""Routing corrections a user makes (`/route` in `covey chat`, `covey route fix`).

A correction is kept as a labelled example in DATA_DIR/routes/corrections.jsonl, one of the files
the router trains on (see covey.router.classifier), so the next fit learns from it. Appending is
the whole write: a correction is never lost to a half-written rewrite. Corrections carry their own
source ("correction"), so with `[router] balance_sources` one correction weighs as much within its
route as a whole public dataset does: a single fix is enough to move that prompt.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from covey.errors import BadRequest
from covey.router.classifier import RouteExample, read_examples

FILE_NAME = "corrections.jsonl"
SOURCE = "correction"
LAST = "last"
"""What a user types for "the prompt I asked last" (`covey route fix last writing`)."""
_TURN_ID = re.compile(r"^[0-9a-f]{6,32}$")


def corrections_path(data_dir: Path) -> Path:
    return Path(data_dir) / "routes" / FILE_NAME


def record_correction(data_dir: Path, prompt: str, route: str) -> RouteExample:
    """Append `prompt` labelled `route`; returns the example kept. Raises pydantic's ValidationError
    for an empty prompt or a malformed route name (the caller says which routes exist)."""
    example = RouteExample(prompt=prompt, route=route, source=SOURCE)
    path = corrections_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"prompt": example.prompt, "route": example.route, "source": SOURCE},
                      ensure_ascii=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    return example


def read_corrections(data_dir: Path) -> tuple[RouteExample, ...]:
    path = corrections_path(data_dir)
    return read_examples(path) if path.exists() else ()


def closest_route(name: str, routes: Sequence[str]) -> str | None:
    """The known route most like `name` (a typo, a plural, another case), or None."""
    lowered = name.strip().lower()
    if lowered in routes:
        return lowered
    for route in routes:  # "summary" -> summarize, "maths" -> math, "translation" -> translate
        if len(lowered) >= 4 and (route.startswith(lowered[:4]) or lowered.startswith(route)):
            return route
    found = difflib.get_close_matches(lowered, list(routes), n=1, cutoff=0.6)
    return found[0] if found else None


def check_route(name: str, routes: Sequence[str]) -> str:
    """`name` if it is a known route; otherwise a BadRequest naming the closest route and all of them."""
    if name.strip().lower() in routes:
        return name.strip().lower()
    near = closest_route(name, routes)
    listed = ", ".join(sorted(routes))
    hint = (f"did you mean {near!r}? " if near else "") + f"the routes are: {listed}"
    raise BadRequest(f"{name!r} is not a route the router knows", hint=hint)


def resolve_prompt(words: Sequence[str], data_dir: Path) -> str:
    """The prompt a correction is about: the words given, or, for none or `last`, the last prompt
    asked (DATA_DIR/history.db); a history turn id (or a prefix of at least 6 hex digits) picks that turn."""
    text = " ".join(words).strip()
    if text and text.lower() != LAST and not _TURN_ID.match(text):
        return text
    from covey.history.store import FILENAME, HistoryStore

    path = Path(data_dir) / FILENAME
    if not path.exists():
        if text and text.lower() != LAST:
            return text
        raise BadRequest(f"there is no last prompt: nothing has been asked yet ({path} does not exist)",
                         hint='name the prompt: covey route fix "PROMPT" ROUTE')
    store = HistoryStore(path)
    try:
        turns = store.search(limit=None) if text and text.lower() != LAST else store.search(limit=50)
    finally:
        store.close()
    with_text = [t for t in turns if t.prompt]
    if text and text.lower() != LAST:
        picked = [t for t in with_text if t.turn_id.startswith(text)]
        if len(picked) == 1:
            return picked[0].prompt or ""
        if len(picked) > 1:
            raise BadRequest(f"{text!r} starts {len(picked)} turn ids in the history",
                             hint="give more digits of the id (`covey logs --json` lists them)")
        return text  # hex-looking words that are no turn id are the prompt itself
    if not with_text:
        why = "the history keeps no text ([history] keep_text = false)" if turns else "the history is empty"
        raise BadRequest(f"there is no last prompt to correct: {why}", hint='name the prompt: covey route fix '
                         '"PROMPT" ROUTE')
    return with_text[0].prompt or ""
