"""Settings.load precedence: flags > COVEY_* environment > TOML config file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from covey.errors import ConfigError
from covey.settings import Settings

TOML = """
log_level = "ERROR"
[node]
port = 1111
name = "from-toml"
queue_limit = 7
n_ctx = 512
[orchestrator]
static_peers = ["10.0.0.2:50551"]
"""


@pytest.fixture
def data_dir(covey_env: Path) -> Path:
    covey_env.mkdir(parents=True, exist_ok=True)
    (covey_env / "config.toml").write_text(TOML)
    return covey_env


def test_defaults_when_nothing_is_given(covey_env: Path, monkeypatch) -> None:
    monkeypatch.delenv("COVEY_NODE__ANNOUNCE")
    s = Settings.load()
    assert s.data_dir == covey_env
    assert s.node.port == 50551 and s.node.queue_limit == 4 and s.node.announce is True
    assert s.node.models == ["smollm2-135m-instruct-q4_1"] and s.node.max_model_ram_mb is None


def test_config_file_in_the_data_dir_beats_defaults(data_dir: Path) -> None:
    s = Settings.load()
    assert s.node.port == 1111 and s.node.name == "from-toml" and s.node.queue_limit == 7
    assert s.log_level == "ERROR" and s.orchestrator.static_peers == ["10.0.0.2:50551"]
    assert s.node.heartbeat_s == 5.0  # untouched fields keep their defaults


def test_env_beats_config_file_field_by_field(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("COVEY_NODE__PORT", "2222")
    monkeypatch.setenv("COVEY_LOG_LEVEL", "DEBUG")
    s = Settings.load()
    assert s.node.port == 2222 and s.log_level == "DEBUG"
    assert s.node.name == "from-toml" and s.node.queue_limit == 7  # the file's other [node] fields survive


def test_flags_beat_env_and_file_and_none_means_not_given(data_dir: Path, monkeypatch) -> None:
    monkeypatch.setenv("COVEY_NODE__PORT", "2222")
    monkeypatch.setenv("COVEY_NODE__NAME", "from-env")
    s = Settings.load(node={"port": 3333, "name": None, "queue_limit": None, "max_model_ram_mb": 300},
                      log_level=None)
    assert s.node.port == 3333 and s.node.max_model_ram_mb == 300  # flags
    assert s.node.name == "from-env"  # env, the flag was not given
    assert s.node.queue_limit == 7 and s.node.n_ctx == 512 and s.log_level == "ERROR"  # file
    assert s.node.self_benchmark is True  # default


def test_explicit_config_file_flag_and_env(tmp_path: Path, covey_env: Path, monkeypatch) -> None:
    other = tmp_path / "other.toml"
    other.write_text("[node]\nport = 4444\n")
    assert Settings.load(config_file=other).node.port == 4444
    monkeypatch.setenv("COVEY_CONFIG_FILE", str(other))
    assert Settings.load().node.port == 4444


def test_data_dir_flag_finds_its_config_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.toml").write_text("[node]\nqueue_limit = 9\n")
    s = Settings.load(data_dir=elsewhere)
    assert s.data_dir == elsewhere and s.node.queue_limit == 9


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.load(config_file=tmp_path / "nope.toml")
    assert "nope.toml does not exist" in str(exc.value) and "check the flag" in str(exc.value)


def test_out_of_range_values_are_refused_naming_the_field(monkeypatch) -> None:
    from covey.errors import ConfigError

    monkeypatch.setenv("COVEY_NODE__PORT", "70000")
    with pytest.raises(ConfigError) as exc:
        Settings.load()
    assert "node.port" in str(exc.value) and "65535" in str(exc.value)


def test_every_node_setting_has_a_description() -> None:
    from covey.settings import NodeSettings

    assert all(f.description for f in NodeSettings.model_fields.values())
