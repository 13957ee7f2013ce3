"""Property-based fuzz of config.toml: random text, and random valid TOML over the real setting keys, either
loads or is one ConfigError; never another exception."""

from __future__ import annotations

import json
import math
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from covey.errors import ConfigError
from covey.settings import Settings
from covey.settings_sources import flatten

FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
KEYS = sorted(k for k, _ in flatten(Settings().model_dump()))  # every dotted setting, e.g. node.port


def load(config: Path, content: bytes) -> None:
    config.write_bytes(content)
    try:
        Settings.load(config_file=config)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc).strip(), str(exc)


@FUZZ
@given(content=st.one_of(st.binary(max_size=120), st.text(max_size=120).map(lambda t: t.encode("utf-8", "replace"))))
@example(content=b"node = [\n")
@example(content=b'[node]\nname = "\xff"\n')
@example(content=b"[node]\nport = 99999999999999999999999\n")
@example(content=b"[[agents]]\nname = 1\n")
@example(content=b'data_dir = ""\n')
def test_random_text_loads_or_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    load(tmp_path / "config.toml", content)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(settings_dict: dict[str, object]) -> str:
    """`key = value` lines under [section] headers, from dotted keys."""
    sections: dict[str, list[str]] = {}
    for dotted, value in settings_dict.items():
        section, _, leaf = dotted.rpartition(".")
        sections.setdefault(section, []).append(f"{json.dumps(leaf)} = {toml_value(value)}")
    out = sections.pop("", [])
    for section, lines in sections.items():
        out += ["[" + ".".join(json.dumps(part) for part in section.split(".")) + "]", *lines]
    return "\n".join(out) + "\n"


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
scalar = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(), text,
                   st.sampled_from(["", "auto", "never", "127.0.0.1", "0.0.0.0", "[bold]x[/", "/dev/null", "~"]))
value = st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                     st.dictionaries(text, inner, max_size=3)), max_leaves=6)
key = st.one_of(st.sampled_from(KEYS), st.sampled_from(KEYS).map(lambda k: k + "x"), text)


@FUZZ
@given(doc=st.dictionaries(key, value, max_size=5))
def test_random_valid_toml_over_real_keys_loads_or_is_a_config_error(tmp_path: Path, doc: dict) -> None:
    load(tmp_path / "config.toml", toml_document(doc).encode())
