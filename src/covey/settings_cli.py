"""`covey config show` (the merged settings and where each value came from) and `covey config keys`."""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import typer
from pydantic import BaseModel

app = typer.Typer(help="Settings: what is in effect and every key you can set.", no_args_is_help=True,
                  rich_markup_mode=None)


@app.callback()
def config() -> None:
    """Settings: what is in effect and every key you can set."""


def setting_keys(model: type[BaseModel] | None = None, prefix: str = "") -> Iterator[dict[str, Any]]:
    """Every settings key with its type, default and description, from the pydantic fields."""
    from covey.settings import Settings
    from covey.settings_sources import env_name, submodel

    model = model or Settings
    for name, field in model.model_fields.items():
        key = prefix + name
        sub = submodel(field.annotation)
        if sub is not None:
            yield from setting_keys(sub, key + ".")
            continue
        default = field.get_default(call_default_factory=True, validated_data={})
        yield {"key": key, "type": _type_name(field.annotation), "default": _plain(default),
               "description": field.description or "", "env": env_name(key)}


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(annotation)).replace("'", '"')
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(annotation))
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{args}]" if name not in ("UnionType", "Union") else args.replace(", ", " | ")
    return getattr(annotation, "__name__", str(annotation)).replace("NoneType", "None")


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _toml_value(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False) if value is not None else "(unset)"


@app.command("show")
def show(
    json_out: bool = typer.Option(False, "--json", help="print one JSON document"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", envvar="COVEY_DATA_DIR", show_envvar=False,
                                            help="all covey state lives here"),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML config file (default DATA_DIR/config.toml)"),
) -> None:
    """The settings in effect, each with where it came from: default, file, env or flag."""
    from covey.cli_output import Column, Grid, err, print_error, print_grid, print_json
    from covey.errors import CoveyError
    from covey.settings import Settings
    from covey.settings_sources import flatten

    try:
        settings, origins, path = Settings.load_explained(data_dir=data_dir, config_file=config)
    except CoveyError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
    values = dict(flatten(settings.model_dump(mode="json")))
    if json_out:
        from covey.cli_json import ConfigShowOutput, dump

        print_json(dump(ConfigShowOutput.model_validate({
            "config_file": str(path) if path else None,
            "settings": {k: {"value": v, "source": origins.get(k, "default")} for k, v in values.items()}})))
        return
    grid = Grid([Column("key", no_wrap=True), Column("value"), Column("source", no_wrap=True)])
    for key, value in values.items():
        grid.add(key, _toml_value(value), origins.get(key, "default"))
    print_grid(grid)
    err.print(f"config file: {path or 'none (' + str(settings.data_dir / 'config.toml') + ' does not exist)'}",
              markup=False)


@app.command("keys")
def keys(json_out: bool = typer.Option(False, "--json", help="print one JSON document")) -> None:
    """Every key you can set (config.toml, COVEY_* variables), with its description and default."""
    from covey.cli_output import Column, Grid, print_grid, print_json

    rows = list(setting_keys())
    if json_out:
        from covey.cli_json import ConfigKeysOutput, dump

        print_json(dump(ConfigKeysOutput.model_validate({"keys": rows})))
        return
    grid = Grid([Column("key", no_wrap=True), Column("default"), Column("description"),
                 Column("type", terminal=False), Column("env", terminal=False)])
    for r in rows:
        grid.add(r["key"], _toml_value(r["default"]), r["description"], r["type"], r["env"])
    print_grid(grid)


def render_keys_doc() -> str:
    """docs/config.md: every key as a Markdown table (regenerate with `python -m covey.settings_cli`)."""
    lines = ["# covey settings", "",
             "Settings come from flags, then `COVEY_*` environment variables (nested with `__`, e.g.",
             "`COVEY_NODE__PORT=50551`), then `DATA_DIR/config.toml` (or `--config FILE`, or",
             "`COVEY_CONFIG_FILE`), then these defaults. A key is written in the file under its section:",
             "`node.port` is `port = 50551` under `[node]`. Unknown keys and sections are errors that name",
             "the closest valid key. `covey config show` prints the settings in effect and where each value",
             "came from; `covey config keys` prints this list. Agents live in `DATA_DIR/agents.toml`",
             "([agents.md](agents.md)).", "",
             "```toml", "# DATA_DIR/config.toml", 'log_level = "INFO"', "[node]", "port = 50551",
             "max_model_ram_mb = 512", "[orchestrator]", 'static_peers = ["10.0.0.5:50551"]', "```", "",
             "| key | default | environment variable | description |", "|---|---|---|---|"]
    for r in setting_keys():
        default = "`" + _toml_value(r["default"]).replace("|", "\\|") + "`"
        if r["key"] in ("data_dir", "agents_file"):
            default = "`~/.local/share/covey`" if r["key"] == "data_dir" else "`DATA_DIR/agents.toml`"
        lines.append(f"| `{r['key']}` | {default} | `{r['env']}` | {r['description'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_keys_doc(), end="")
