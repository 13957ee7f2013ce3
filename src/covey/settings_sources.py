"""Where settings come from, checked strictly: the TOML file, COVEY_* variables and flags.

`Settings.load` calls these before pydantic builds anything, so a typo (`prot`, `[orchestrater]`,
`COVEY_NODE__PROT`) is an error naming the key, where it was written and the closest valid key, and
a damaged file is one line with its path, line and column instead of a traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from covey.errors import ConfigError

Origin = Literal["default", "file", "env", "flag"]
ENV_PREFIX = "COVEY_"
TEST_HOOK_PREFIX = "COVEY_TEST_"
"""Variables that steer test hooks (e.g. COVEY_TEST_CANARY_CRASH), not settings."""
ENV_DELIMITER = "__"

# The flag that sets a field where it is not simply --field-name (used in hints).
FLAG_NAMES = {
    "config_file": "--config",
    "node.models": "--model",
    "node.self_benchmark": "--bench/--no-bench",
    "node.announce": "--announce/--no-announce",
    "orchestrator.static_peers": "--peer",
    "orchestrator.discover": "--discover/--no-discover",
    "orchestrator.discovery_interface": "--interface",
}


def flag_name(key: str) -> str:
    return FLAG_NAMES.get(key) or "--" + key.rsplit(".", 1)[-1].replace("_", "-")


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper().replace(".", ENV_DELIMITER)


def read_toml(path: Path) -> dict[str, Any]:
    """The parsed file; a missing, unreadable, non-UTF-8 or malformed file is one ConfigError line."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}",
                          hint="check the file's permissions, or point --config at another file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _position(raw, exc.start)
        raise ConfigError(f"{path}:{line}:{col}: config file is not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                          hint="save the file as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        at: tuple[int | None, int | None] = (getattr(exc, "lineno", None), getattr(exc, "colno", None))
        if m and at[0] is None:
            at = int(m.group(1)), int(m.group(2))
        reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", getattr(exc, "msg", msg))
        where = f"{path}:{at[0]}:{at[1]}" if at[0] else str(path)
        raise ConfigError(f"{where}: invalid TOML: {reason}",
                          hint="fix the TOML at that position (https://toml.io explains the syntax)") from None


def _position(raw: bytes, offset: int) -> tuple[int, int]:
    before = raw[:offset]
    return before.count(b"\n") + 1, offset - (before.rfind(b"\n") + 1) + 1


def submodel(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel a field holds (also through `X | None`), or None for plain values and dicts."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _shown(key: str) -> str:
    """A key as it can be printed on one line (newlines, tabs and control characters escaped)."""
    return key if key.isprintable() else key.encode("unicode_escape").decode("ascii")


def _unknown(key: str, valid: list[str], where: str, prefix: str, hint: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    key, prefix = _shown(key), _shown(prefix)
    if close:
        return ConfigError(f"{where}: unknown key '{prefix}{key}' (did you mean '{prefix}{close[0]}'?)",
                           hint=hint + " (`covey config keys` lists every key)")
    return ConfigError(f"{where}: unknown key '{prefix}{key}'",
                       hint=hint + f" (valid here: {', '.join(valid)}; `covey config keys` lists every key)")


def check_keys(data: Mapping[str, Any], model: type[BaseModel], *, where: str, prefix: str = "",
               allow: frozenset[str] = frozenset()) -> None:
    """Refuse keys and [sections] of a TOML table that are not settings fields (`allow` names exceptions)."""
    fields = model.model_fields
    for key, value in data.items():
        if key in allow:
            continue
        if key not in fields:
            kind = "section" if isinstance(value, dict) else "key"
            err = _unknown(key, list(fields), where, prefix, hint=f"fix or remove that {kind} in {where}")
            raise err
        sub = submodel(fields[key].annotation)
        if sub is not None and isinstance(value, dict):
            check_keys(value, sub, where=where, prefix=f"{prefix}{key}.")


def env_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """COVEY_* variables as {dotted.key: raw value}, refusing any that names no setting."""
    from covey.settings import Settings

    environ = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX) or name.upper().startswith(TEST_HOOK_PREFIX):
            continue
        parts = name[len(ENV_PREFIX):].lower().split(ENV_DELIMITER)
        model: type[BaseModel] | None = Settings
        done: list[str] = []
        for i, part in enumerate(parts):
            if model is None:  # a plain field cannot have sub-keys
                raise ConfigError(f"environment variable {name}: '{'.'.join(done)}' has no sub-keys",
                                  hint=f"unset {name} or use {env_name('.'.join(done))}")
            fields = model.model_fields
            if part not in fields:
                valid = list(fields)
                close = difflib.get_close_matches(part, valid, n=1, cutoff=0.6)
                better = env_name(".".join([*done, close[0], *parts[i + 1:]])) if close else None
                raise ConfigError(
                    f"environment variable {name} names no setting ('{'.'.join([*done, part])}' is unknown"
                    + (f"; did you mean {better}?)" if better else ")"),
                    hint=f"unset or rename {name} (`covey config keys` lists every key)")
            done.append(part)
            model = submodel(fields[part].annotation)
        out[".".join(done)] = environ[name]
    return out


def flatten(data: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Leaf keys of nested settings dicts as dotted names (dict-valued settings stay whole)."""
    from covey.settings import Settings

    yield from _flatten(data, Settings, prefix)


def _flatten(data: Mapping[str, Any], model: type[BaseModel] | None, prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        sub = submodel(model.model_fields[key].annotation) if model and key in model.model_fields else None
        if sub is not None and isinstance(value, Mapping):
            yield from _flatten(value, sub, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def origin_of(key: str, *, flags: set[str], env: set[str], file: set[str]) -> Origin:
    """Where a dotted key's value came from, by the precedence flag > env > file > default."""
    def has(keys: set[str]) -> bool:
        return any(key == k or key.startswith(k + ".") for k in keys)

    if has(flags):
        return "flag"
    if has(env):
        return "env"
    if has(file):
        return "file"
    return "default"


def describe_source(key: str, origin: Origin, config_path: Path | None) -> str:
    """Which flag, variable or file gave a key its value, for error hints."""
    if origin == "flag":
        return f"the {flag_name(key)} flag"
    if origin == "env":
        return f"the variable {env_name(key)}"
    if origin == "file":
        section, _, leaf = key.rpartition(".")
        return f"'{leaf}'" + (f" under [{section}]" if section else "") + f" in {config_path}"
    return f"the default of {key} (report this: defaults should be valid)"
