"""Settings: one pydantic-settings root, built once in the CLI (or by a library user) and passed down.

Precedence, highest first: explicit values (CLI flags), COVEY_* environment variables
(nested with ``__``, e.g. ``COVEY_NODE__PORT``), the TOML config file, defaults.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "covey"


class NodeSettings(BaseModel):
    name: str | None = Field(None, description="display name announced to peers; defaults to the hostname")
    host: str = Field("127.0.0.1", description="address the gRPC server binds; 0.0.0.0 serves the LAN")
    port: int = Field(50551, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    interface: str | None = Field(
        None, description="network interface or IP to announce on (zeroconf); default: the bind address"
    )
    announce: bool = Field(True, description="announce the node with zeroconf (mDNS/DNS-SD)")
    models: list[str] = Field(
        default_factory=lambda: ["smollm2-135m-instruct-q4_1"],
        description="catalog ids or .gguf paths to serve",
    )
    max_model_ram_mb: int | None = Field(
        None, ge=1, description="cap RAM for models, e.g. on a shared laptop or to play a weak device"
    )
    queue_limit: int = Field(4, ge=1, description="requests per model waiting or running before RESOURCE_EXHAUSTED")
    n_ctx: int = Field(2048, ge=128, description="context window in tokens for loaded models")
    n_threads: int | None = Field(None, ge=1, description="llama.cpp threads; default: physical cores")
    self_benchmark: bool = Field(True, description="measure tokens/s at start-up (cached per model)")
    heartbeat_s: float = Field(5.0, gt=0, description="how often capabilities are re-read and re-announced if changed")


class EnergySettings(BaseModel):
    watts_per_core: float = Field(
        3.5, gt=0, description="per-core CPU power for the estimate where no sensor exists (W)"
    )
    carbon_g_per_kwh: float | None = Field(None, ge=0, description="grid carbon intensity you set (gCO2e/kWh)")
    region: str | None = Field(None, description="ISO country code for the shipped carbon-intensity table")
    pue: float = Field(1.0, ge=1.0, description="power usage effectiveness of the room (1.0 = a home, ~1.1-1.6 a datacentre)")
    sensor: str = Field(
        "auto", description="energy source: auto, rapl, battery, pmic, nvml, apple or estimate"
    )
    cpu_tdp_watts: float | None = Field(
        None, gt=0, description="your CPU's TDP (W) when it is not in the shipped table"
    )
    power_cap_watts: float | None = Field(
        None, gt=0, description="keep the node's measured or estimated power under this (W) by adapting threads"
    )
    battery_min_percent: float = Field(
        30.0, ge=0, le=100, description="on battery below this charge a node stops taking heavy work"
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve Prometheus metrics on 127.0.0.1:PORT (None = off)"
    )


class OrchestratorSettings(BaseModel):
    static_peers: list[str] = Field(
        default_factory=list, description="node addresses host:port for networks where multicast does not pass"
    )
    discover: bool = Field(True, description="browse the LAN for nodes with zeroconf")
    discovery_interface: str | None = Field(None, description="interface or IP to browse on")
    health_interval_s: float = Field(5.0, gt=0, description="seconds between health checks of known nodes")
    health_failures: int = Field(2, ge=1, description="failed health checks before a node is dropped")
    embedded: Literal["auto", "always", "never"] = Field(
        "auto", description="in-process node: 'auto' when no node is found, 'always' as the local device, or 'never'"
    )
    discovery_wait_s: float = Field(1.5, ge=0, description="how long to listen for nodes before the first question")
    local_node: str | None = Field(
        None, description="name of the node on the device you use; placement prefers it and delegates when it is too weak"
    )
    min_battery_percent: float = Field(30.0, ge=0, le=100, description="avoid nodes on battery below this level")
    max_failovers: int = Field(2, ge=0, description="times an answer may move to another node when one disappears")
    openai_endpoints: list[str] = Field(
        default_factory=list,
        description="OpenAI-compatible servers (llama-server, Ollama, vLLM) as URL[#model1,model2] used as nodes",
    )
    openai_joules_per_token: float = Field(
        0.0, ge=0, description="energy per token you assume for remote endpoints (they report none); 0 = unknown"
    )
    embedded_model: str = Field("smollm2-135m-instruct-q4_1", description="model the embedded node serves")
    tool_answers: bool = Field(
        True, description="answer a bare expression, equation, percentage or unit conversion with the tools, no model")
    program_aided: bool = Field(
        True, description="math word problems: the model writes a Python program, the sandbox runs it")
    verify_answers: bool = Field(
        True, description="check answers with the tools (arithmetic, running code) and never show one proven wrong")


class RouterSettings(BaseModel):
    head: Literal["logistic", "centroid"] = Field(
        "logistic", description="classifier on the prompt embeddings: logistic regression or nearest centroid"
    )
    min_confidence: float | None = Field(
        None, ge=0.0, le=1.0, description="below this confidence the router falls back; None = calibrated"
    )
    fallback_route: str = Field("chat", description="route used when the router is unsure")
    builtin_examples: bool = Field(True, description="train on the example utterances shipped with covey")
    examples: dict[str, list[str]] = Field(
        default_factory=dict, description="extra example prompts per route; a new name adds a route"
    )
    example_files: list[Path] = Field(
        default_factory=list, description='JSONL files of {"prompt": ..., "route": ...} lines to train on'
    )
    int8: bool = Field(
        True, description="route with an int8-quantized MiniLM: about half the CPU per task, same accuracy"
    )
    torch_threads: int | None = Field(
        1, ge=1, description="torch threads (process-wide) set when the router loads; None leaves torch's default. "
        "One thread is several times faster per task when the cores are also busy with llama.cpp"
    )


class RagSettings(BaseModel):
    """Retrieval over the user's documents (covey.rag)."""

    embedder: str = Field(
        "all-MiniLM-L6-v2",
        description="sentence-transformers model: the packaged all-MiniLM-L6-v2 (offline) or any model name/path",
    )
    chunk_tokens: int = Field(200, ge=16, description="chunk size in embedder tokens (capped by the model window)")
    overlap_tokens: int = Field(32, ge=0, description="tokens repeated from the previous chunk of a section")
    batch_size: int = Field(32, ge=1, description="texts per embedding batch")
    embed_threads: int | None = Field(
        1, ge=1, description="torch threads for embedding (process-wide); 1 keeps queries fast beside llama.cpp, "
        "None = torch's default",
    )
    approximate_above: int = Field(
        20_000, ge=1, description="above this many chunks the collection switches from exact search to HNSW"
    )
    relevance_threshold: float = Field(
        0.30, ge=-1.0, le=1.0,
        description="cosine similarity a passage needs to ground an answer (calibrated for MiniLM on pydoc topics)",
    )
    top_k: int = Field(5, ge=1, description="passages fetched per question")
    max_file_mb: float = Field(32.0, gt=0, description="larger files are skipped with a note")
    commit_every: int = Field(
        2000, ge=1, description="chunks per atomic commit during an ingest (what a crash can lose at most)"
    )
    lock_timeout_s: float = Field(600.0, ge=0, description="how long a writer waits for another writer")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="COVEY_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: Path = Field(default_factory=default_data_dir, description="all state lives here (COVEY_DATA_DIR)")
    config_file: Path | None = Field(None, description="TOML config file (COVEY_CONFIG_FILE); default DATA_DIR/config.toml")
    log_level: str = Field("WARNING", description="DEBUG, INFO, WARNING or ERROR")
    agents_file: Path | None = Field(
        None, description="TOML file of your own agents, added to the shipped specialists (default DATA_DIR/agents.toml)"
    )
    node: NodeSettings = Field(default_factory=NodeSettings)
    orchestrator: OrchestratorSettings = Field(default_factory=OrchestratorSettings)
    energy: EnergySettings = Field(default_factory=EnergySettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    rag: RagSettings = Field(default_factory=RagSettings)

    @field_validator("agents_file")
    @classmethod
    def _agents_default(cls, v: Path | None, info) -> Path | None:
        if v is None and info.data.get("data_dir") is not None:
            return Path(info.data["data_dir"]) / "agents.toml"
        return v

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, _config_path()))

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Build settings from flags given as keyword arguments (None means "not given")."""
        given = _drop_none(overrides)
        path = given.get("config_file")
        if path is not None and not Path(path).exists():
            from covey.errors import ConfigError

            raise ConfigError(f"config file {path} does not exist")
        token = _CONFIG_OVERRIDE.set((path, given.get("data_dir")))
        try:
            return cls(**given)
        except ValidationError as exc:
            from covey.errors import ConfigError

            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
            raise ConfigError(f"invalid setting ({problems})") from None
        finally:
            _CONFIG_OVERRIDE.reset(token)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            v = _drop_none(v)
            if not v:
                continue
        if v is not None:
            out[k] = v
    return out


# --config / --data-dir given as flags, seen by the TOML source while one Settings is being built.
_CONFIG_OVERRIDE: ContextVar[tuple[Any, Any]] = ContextVar("covey_config_override", default=(None, None))


def _config_path() -> Path:
    path, data_dir = _CONFIG_OVERRIDE.get()
    if path:
        return Path(path)
    if env := os.environ.get("COVEY_CONFIG_FILE"):
        return Path(env)
    base = Path(data_dir) if data_dir else Path(os.environ.get("COVEY_DATA_DIR") or default_data_dir())
    return base.expanduser() / "config.toml"
