"""Write agents' acceptance thresholds (and ladders) into the user's agents.toml, keeping everything else in it.

`covey tune` calls `set_acceptance`. The file is edited with tomlkit, so the user's other agents,
fields, comments and layout stay as they were: an agent that already has an ``[[agents]]`` table gets
its ``accept`` sub-table (and ``ladder``, when one is given) updated (the last table of that name, the
one in effect); any other agent gets a new table holding only ``name``, ``accept`` and perhaps
``ladder``, which covey.agents.roster reads as a change to the shipped agent of that name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from covey.errors import ConfigError

Thresholds = Mapping[str, tuple[float, float]]
"""agent -> (min_mean_logprob, min_token_logprob)."""
Ladders = Mapping[str, Sequence[str]]
"""agent -> its ladder, smallest rung first."""


def merged_text(current: str, thresholds: Thresholds, *, ladders: Ladders | None = None,
                path: Path | str = "agents.toml") -> str:
    """The file's text with each agent's `accept` (and `ladder`, for the agents `ladders` names) set,
    the rest untouched."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(current)
    except TOMLKitError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}", hint="fix the file, then run `covey tune` again") from exc
    agents = doc.get("agents")
    if agents is None:
        agents = tomlkit.aot()
        doc.append("agents", agents)
    elif not isinstance(agents, list) or not all(isinstance(a, dict) for a in agents):
        raise ConfigError(f"{path}: 'agents' must be an array of tables", hint="write each agent under [[agents]]")
    ladders = ladders or {}

    def table_of(name: str):
        tables = [t for t in agents if t.get("name") == name]
        if tables:
            return tables[-1]
        table = tomlkit.table()
        table["name"] = name
        agents.append(table)
        return table

    for name, ladder in ladders.items():
        table_of(name)["ladder"] = list(ladder)
    for name, (mean, token) in thresholds.items():
        table = table_of(name)
        accept = table.get("accept")
        if accept is None:
            accept = tomlkit.table()
            table["accept"] = accept
        accept["min_mean_logprob"] = float(mean)
        accept["min_token_logprob"] = float(token)
    return tomlkit.dumps(doc)


def set_acceptance(path: Path, thresholds: Thresholds, *, ladders: Ladders | None = None,
                   validate: Callable[[Path], object] | None = None) -> str:
    """Merge the thresholds (and ladders) into `path` (made if missing), atomically; returns the new text.

    `validate` (e.g. covey.agents.roster.load_agents) reads the new file before it replaces the old one:
    if it raises, the old file stays."""
    path = Path(path)
    try:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    text = merged_text(current, thresholds, ladders=ladders, path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if validate is not None:
            validate(Path(tmp))
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc
    finally:
        Path(tmp).unlink(missing_ok=True)
    return text
