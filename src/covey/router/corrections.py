"""Routing corrections a user makes (`/route` in `covey chat`, `covey route fix`).

A correction is kept as a labelled example in DATA_DIR/routes/corrections.jsonl, one of the files
the router trains on (see covey.router.classifier), so the next fit learns from it. Appending is
the whole write: a correction is never lost to a half-written rewrite.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from covey.router.classifier import RouteExample, read_examples

FILE_NAME = "corrections.jsonl"
SOURCE = "correction"


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
