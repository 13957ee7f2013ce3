"""Config you can trust: unknown keys, malformed files and bad values are one-line errors naming their source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from covey.cli import app
from covey.errors import ConfigError
from covey.settings import Settings

REPO = Path(__file__).resolve().parents[3]


def write_config(data_dir: Path, text: str | bytes) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "config.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def load_error(**given) -> str:
    with pytest.raises(ConfigError) as exc:
        Settings.load(**given)
    return str(exc.value)


def test_a_misspelt_key_names_the_key_the_file_and_the_closest_valid_key(covey_env: Path) -> None:
    path = write_config(covey_env, "[node]\nprot = 1\n")
    msg = load_error()
    assert f"{path}: unknown key 'node.prot' (did you mean 'node.port'?)" in msg
    assert "covey config keys" in msg


def test_a_misspelt_section_is_an_error_too(covey_env: Path) -> None:
    write_config(covey_env, "[orchestrater]\ndiscover = false\n")
    msg = load_error()
    assert "unknown key 'orchestrater' (did you mean 'orchestrator'?)" in msg and "section" in msg


def test_a_key_with_no_close_match_lists_the_valid_keys(covey_env: Path) -> None:
    write_config(covey_env, "[energy]\nzzz = 1\n")
    msg = load_error()
    assert "unknown key 'energy.zzz'" in msg and "valid here: watts_per_core" in msg


def test_dict_valued_settings_keep_free_form_keys(covey_env: Path) -> None:
    write_config(covey_env, '[router.examples]\ncooking = ["how long do I boil an egg"]\n')
    assert Settings.load().router.examples == {"cooking": ["how long do I boil an egg"]}


def test_malformed_toml_is_one_line_with_file_line_and_column(covey_env: Path) -> None:
    path = write_config(covey_env, "[node]\nport = \n")
    msg = load_error()
    assert msg.startswith(f"{path}:2:8: invalid TOML") and "\n" not in msg


def test_a_file_that_is_not_utf8_is_one_line_with_its_position(covey_env: Path) -> None:
    path = write_config(covey_env, b'log_level = "\xff"\n')
    msg = load_error()
    assert msg.startswith(f"{path}:1:14: config file is not UTF-8") and "save the file as UTF-8" in msg


def test_unknown_covey_variables_are_errors_with_a_suggestion(monkeypatch) -> None:
    monkeypatch.setenv("COVEY_NODE__PROT", "1")
    msg = load_error()
    assert "COVEY_NODE__PROT names no setting" in msg and "did you mean COVEY_NODE__PORT?" in msg
    monkeypatch.delenv("COVEY_NODE__PROT")
    monkeypatch.setenv("COVEY_ORCHESTRATER__DISCOVER", "0")
    assert "did you mean COVEY_ORCHESTRATOR__DISCOVER?" in load_error()
    monkeypatch.delenv("COVEY_ORCHESTRATER__DISCOVER")
    monkeypatch.setenv("COVEY_NODE__PORT__X", "1")
    assert "has no sub-keys" in load_error()


@pytest.mark.parametrize("where", ["flag", "env", "file"])
def test_the_hint_names_the_real_source_of_a_bad_value(where: str, covey_env: Path, monkeypatch) -> None:
    given = {}
    if where == "flag":
        given = {"node": {"port": 70000}}
    elif where == "env":
        monkeypatch.setenv("COVEY_NODE__PORT", "70000")
    else:
        path = write_config(covey_env, "[node]\nport = 70000\n")
    msg = load_error(**given)
    assert "node.port" in msg and "65535" in msg
    expected = {"flag": "fix the --port flag", "env": "fix the variable COVEY_NODE__PORT",
                "file": "fix 'port' under [node] in " + (str(path) if where == "file" else "")}[where]
    assert expected in msg


def test_a_missing_config_file_from_the_variable_names_the_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COVEY_CONFIG_FILE", str(tmp_path / "gone.toml"))
    msg = load_error()
    assert "gone.toml does not exist" in msg and "COVEY_CONFIG_FILE" in msg


def test_agents_tables_in_config_toml_are_not_silently_ignored(covey_env: Path) -> None:
    write_config(covey_env, '[[agents]]\nname = "x"\n')
    msg = load_error()
    assert "[[agents]] tables are read from" in msg and "agents.toml" in msg


def test_load_explained_says_where_each_value_came_from(covey_env: Path, monkeypatch) -> None:
    path = write_config(covey_env, "[node]\nqueue_limit = 7\n")
    monkeypatch.setenv("COVEY_NODE__PORT", "2222")
    s, origins, used = Settings.load_explained(node={"name": "den"})
    assert used == path
    assert (s.node.name, s.node.port, s.node.queue_limit) == ("den", 2222, 7)
    assert origins["node.name"] == "flag" and origins["node.port"] == "env"
    assert origins["node.queue_limit"] == "file" and origins["node.n_ctx"] == "default"
    assert origins["data_dir"] == "env"  # COVEY_DATA_DIR from the test fixture


def test_config_show_json_lists_values_and_sources(covey_env: Path) -> None:
    write_config(covey_env, "[node]\nqueue_limit = 7\n")
    from test_json_docs import check

    result = CliRunner().invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    doc = check("covey config show --json", result.stdout)
    assert doc["settings"]["node.queue_limit"] == {"value": 7, "source": "file"}
    assert doc["settings"]["node.port"] == {"value": 50551, "source": "default"}
    assert doc["settings"]["node.announce"]["source"] == "env"
    assert doc["settings"]["data_dir"]["source"] == "env"  # COVEY_DATA_DIR, though typer passes it as --data-dir
    flagged = CliRunner().invoke(app, ["config", "show", "--json", "--data-dir", str(covey_env.parent / "other")])
    assert json.loads(flagged.stdout)["settings"]["data_dir"]["source"] == "flag"


def test_config_show_reports_a_bad_file_in_one_line_and_exits_2(covey_env: Path) -> None:
    write_config(covey_env, "[node]\nprot = 1\n")
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "did you mean 'node.port'" in lines[0]
    assert "Traceback" not in result.output


def test_config_keys_lists_every_field_with_description_and_default() -> None:
    from covey.settings_cli import setting_keys

    from test_json_docs import check

    result = CliRunner().invoke(app, ["config", "keys", "--json"])
    assert result.exit_code == 0, result.output
    check("covey config keys --json", result.stdout)
    rows = {r["key"]: r for r in json.loads(result.stdout)["keys"]}
    assert rows == {r["key"]: r for r in setting_keys()}
    assert rows["node.port"]["default"] == 50551 and rows["node.port"]["env"] == "COVEY_NODE__PORT"
    assert rows["rag.top_k"]["description"] and "orchestrator.static_peers" in rows
    assert all(r["description"] for k, r in rows.items()), [k for k, r in rows.items() if not r["description"]]


def test_docs_config_md_is_generated_from_the_fields() -> None:
    from covey.settings_cli import render_keys_doc

    assert (REPO / "docs" / "config.md").read_text() == render_keys_doc(), \
        "docs/config.md is stale: python -m covey.settings_cli > docs/config.md"


@pytest.mark.parametrize("peer", ["nonsense", "host:", ":50551", "host:port", "host:70000"])
def test_a_peer_that_is_not_host_and_port_is_refused_by_name(covey_env: Path, peer: str) -> None:
    result = CliRunner().invoke(app, ["ask", "--no-discover", "--peer", peer, "hi"])
    assert result.exit_code == 2
    assert f"peer '{peer}' is not host:port" in result.stderr and "--peer" in result.stderr


def test_peers_with_a_host_and_port_are_accepted() -> None:
    from covey.settings import OrchestratorSettings

    assert OrchestratorSettings(static_peers=["10.0.0.2:50551", "[::1]:50551", "den-pc.local:1"]).static_peers[1] == (
        "[::1]:50551")
