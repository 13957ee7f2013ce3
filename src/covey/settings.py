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
    SettingsError,
    TomlConfigSettingsSource,
)

from covey.estimates import WATTS_PER_CORE


# What the wire can carry (protos/covey/v1/node.proto): a setting that reaches a message field is bounded by
# the field's type, so a flag that would overflow it is refused at start-up, not by every later Info call.
WIRE_UINT32_MAX = 2**32 - 1
WIRE_UINT64_MAX = 2**64 - 1
GRPC_INT_MAX = 2**31 - 1  # gRPC's channel options are C ints
MIB = 1024 * 1024


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
        None, ge=1, le=WIRE_UINT64_MAX // MIB,
        description="cap RAM for models, e.g. on a shared laptop or to play a weak device (announced in bytes as a "
        "uint64, hence at most 17592186044415)"
    )
    queue_limit: int = Field(
        4, ge=1, le=WIRE_UINT32_MAX,
        description="requests per model waiting or running before RESOURCE_EXHAUSTED (a uint32 on the wire)")
    n_ctx: int = Field(2048, ge=128, le=2**24, description="context window in tokens for loaded models")
    n_threads: int | None = Field(
        None, ge=1, le=512, description="llama.cpp threads (at most 512, ggml's limit); default: physical cores")
    adaptive_threads: Literal["energy", "speed", "off"] = Field(
        "energy", description="time generation and keep the best thread count up to n_threads for how busy the "
        "machine is now (llama.cpp's threads wait on each other when another process takes a core: on 2 cores "
        "with one busy, 1 thread was 2.8x faster than 2): 'energy' the fewest CPU seconds per token at no more "
        "than 25% below the fastest speed, 'speed' the fastest, 'off' always n_threads. A power cap moves threads instead")
    self_benchmark: bool = Field(True, description="measure tokens/s at start-up (cached per model)")
    load: Literal["start", "first_use"] = Field(
        "start", description="when models are loaded: all at start-up, or each on its first request "
                             "(the embedded node's way: an answer a tool gives loads no model at all)"
    )
    heartbeat_s: float = Field(
        5.0, gt=0, le=86_400, allow_inf_nan=False,
        description="how often capabilities are re-read and re-announced if changed")
    max_request_bytes: int = Field(
        4 * MIB, ge=64 * 1024, le=GRPC_INT_MAX,
        description="largest GenerateRequest the gRPC server reads (bytes); a larger one is refused before it is "
        "decoded")
    max_messages: int = Field(
        1024, ge=1, le=WIRE_UINT32_MAX,
        description="chat messages per request; more are refused before the chat template is rendered")
    max_prompt_chars: int = Field(
        262_144, ge=1024, le=GRPC_INT_MAX,
        description="characters of text per request (messages, raw prompt, text to continue); more are refused "
        "before tokenising, which bounds the tokenizer's work")
    shutdown_grace_s: float = Field(
        5.0, gt=0, le=600, allow_inf_nan=False,
        description="after SIGTERM or Ctrl-C, how long in-flight generations and model loads may take to stop "
        "before the node exits anyway")
    weight_buffers: Literal["auto", "on", "off"] = Field(
        "auto", description="llama.cpp's extra weight-repack buffers (AMX, repacked quants): 'auto' turns them "
        "off on CPUs where they are known to crash (Intel AMX) and if a first-load check crashes, 'on' or 'off'"
    )
    canary: bool = Field(
        True, description="before first serving a model with this llama.cpp build on this CPU, generate a few "
        "tokens in a child process, so a native crash costs a child, never the node (cached in DATA_DIR/cache)"
    )


class EnergySettings(BaseModel):
    watts_per_core: float = Field(
        WATTS_PER_CORE, gt=0, le=1000, allow_inf_nan=False,
        description="per-core CPU power for the estimate where no sensor exists (W)"
    )
    carbon_g_per_kwh: float | None = Field(None, ge=0, allow_inf_nan=False, description="grid carbon intensity you set (gCO2e/kWh)")
    region: str | None = Field(None, description="ISO country code for the shipped carbon-intensity table")
    pue: float = Field(1.0, ge=1.0, le=10.0, allow_inf_nan=False, description="power usage effectiveness of the room (1.0 = a home, ~1.1-1.6 a datacentre)")
    sensor: str = Field(
        "auto", description="energy source: auto, rapl, battery, pmic, nvml, apple or estimate"
    )
    cpu_tdp_watts: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="your CPU's TDP (W) when it is not in the shipped table"
    )
    power_cap_watts: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="keep the node's measured or estimated power under this (W) by adapting threads"
    )
    battery_min_percent: float = Field(
        30.0, ge=0, le=100, allow_inf_nan=False, description="on battery below this charge a node stops taking heavy work"
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve Prometheus metrics on 127.0.0.1:PORT (None = off)"
    )
    metrics_host: str = Field(
        "127.0.0.1", description="address the Prometheus endpoint binds, whatever the node's --host is"
    )


class OrchestratorSettings(BaseModel):
    static_peers: list[str] = Field(
        default_factory=list, description="node addresses host:port for networks where multicast does not pass"
    )
    discover: bool = Field(True, description="browse the LAN for nodes with zeroconf")

    @field_validator("static_peers")
    @classmethod
    def _host_and_port(cls, peers: list[str]) -> list[str]:
        for peer in peers:
            host, _, port = peer.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"peer {peer!r} is not host:port (e.g. 192.168.1.20:50551)")
        return peers

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
    stream_idle_s: float = Field(
        10.0, gt=0, description="seconds a node may send nothing between the pieces of an answer before it is "
        "abandoned and the answer continues on another node (the first piece may take longer: the wait for the "
        "node's queue is bounded by the latency budget and gRPC keepalive)",
    )
    openai_endpoints: list[str] = Field(
        default_factory=list,
        description="OpenAI-compatible servers (llama-server, Ollama, vLLM) as URL[#model1,model2] used as nodes",
    )
    openai_joules_per_token: float = Field(
        0.0, ge=0, description="energy per token you assume for remote endpoints (they report none); 0 = unknown"
    )
    embedded_model: str = Field("smollm2-135m-instruct-q4_1", description="model the embedded node serves")
    embedded_extra_models: list[str] = Field(
        default_factory=lambda: ["gemma3-270m-q4_k_m"],
        description="more models the embedded node serves so answers can escalate with no other node; "
        "ones not installed or over the RAM cap are left out with a note",
    )
    remember_nodes_days: float = Field(
        7.0, ge=0, description="ask nodes discovered in the last N days directly (DATA_DIR/cache/nodes.json) "
        "instead of waiting for discovery; 0 = off",
    )
    recall_timeout_s: float = Field(0.5, gt=0, description="how long a remembered node has to answer its health check")

    history_for: Literal["follow_ups", "every_question"] = Field(
        "follow_ups", description="which questions the session's recent turns go with: 'follow_ups' (a question "
        "that points back, 'make it shorter', 'and in German?'; a request that stands alone, 'Write a poem about "
        "rain', goes without them, as small models copy earlier turns' language and content) or 'every_question'")
    close_calls: Literal["cheaper", "best"] = Field(
        "cheaper", description="when the router's best route leads its runner-up by under 0.10 and both are "
        "chat, knowledge or writing (prose agents either of which can serve), 'cheaper' lets the agent whose first "
        "rung costs less (parameters x max_tokens) answer, and says so in a note; 'best' keeps the best route's")
    tool_answers: bool = Field(
        True, description="answer a bare expression, equation, percentage or unit conversion with the tools, no model")
    program_aided: bool = Field(
        True, description="math word problems: the model writes a Python program, the sandbox runs it")
    program_votes: int = Field(
        1, ge=1, le=9, description="programs written per math word problem: the first greedy, the rest sampled; "
        "the value most of them print stands (self-consistency). 1 by default: with the bundled models 3 votes "
        "got no more problems right (3/16 either way) at three times the joules")
    program_vote_temperature: float = Field(
        0.7, ge=0.0, le=2.0, description="sampling temperature of the programs after the first")
    program_agreement: float = Field(
        0.6, ge=0.0, le=1.0, description="share of the programs that must print the same value for the rung to "
        "stand; less escalates to the next rung")
    program_candidates: bool = Field(
        True, description="math word problems on protocol-v2 nodes: the program must be one of the best-ranked "
        "expressions of one or two operations over the problem's numbers (a fitted scorer; distractor numbers "
        "may go unused), so the model chooses the expression and never invents a number; problems with no such "
        "expression get a free program")
    ranker_answers: bool = Field(
        True, description="math word problems: when the fitted expression ranker is confident (ranker_confidence) "
        "the tools answer with no model, saying which expression over the question's numbers gave the value; "
        "when no expression is even plausible (ranker_floor) the answer says it could not get this right")
    ranker_confidence: float = Field(
        0.95, ge=0.0, le=1.0, description="probability the ranker's likeliest value needs to be answered with no "
        "model; 0.95 is the lowest threshold whose out-of-fold precision on the training problems (MAWPS and "
        "covey's own) reached 0.97 (123/125 right, 27 in 100 answered; scripts/fit_expression_ranker.py); "
        "bench/bench_expression_ranker.py reports it on MAWPS fold 1, SVAMP, GSM8K and arith_dev")
    ranker_choice: Literal["ranker", "model"] = Field(
        "ranker", description="math word problems the ranker is not confident of: 'ranker' answers with its "
        "likeliest value, said to be unchecked, with no model; 'model' lets the model choose among the "
        "best-ranked expressions. The model chose worse than the ranker's first pick (bench/bench_word_problems.py "
        "with the bundled models: 16 vs 32 of 40 own problems, 11 vs 13 of 18 arith_dev, 1 vs 4 of 30 GSM8K)")
    ranker_floor: float = Field(
        0.0, ge=0.0, le=1.0, description="below this probability for the ranker's likeliest value no expression "
        "is plausible: the answer is 'I could not get this right' with no model run; 0 = never (the model "
        "writes a free program instead)")
    program_candidate_count: int = Field(
        12, ge=1, le=64, description="how many of the best-ranked candidate expressions the program may choose from")
    model_tool_calls: bool = Field(
        True, description="before answering, an agent with tools may have the model make one JSON tool call "
        "(schema-constrained, on protocol-v2 nodes) when the prompt has a cue for one of them (a date and "
        "'weekday', a quantity and a unit, ...); the answer quotes the result. Costs one short generation "
        "on those prompts only; ordinary chat never pays it")
    verify_answers: bool = Field(
        True, description="check answers with the tools (arithmetic, running code) and never show one proven wrong")


class ClusterSettings(BaseModel):
    """Pairing and mutual TLS (covey.cluster)."""

    insecure: bool = Field(
        False, description="plaintext gRPC without pairing, also off loopback (warns): anyone on the network can use "
        "and impersonate nodes")
    invite_ttl_s: float = Field(600.0, gt=0, description="how long an invite code stays valid (seconds)")
    enrol_port: int = Field(50552, ge=0, le=65535, description="port of the enrolment listener on the CA host")
    cert_days: float = Field(90.0, gt=0, description="validity of device certificates; renewed with a third left")
    revocation_poll_s: float = Field(
        60.0, gt=0, description="how often a member node fetches the CA host's signed revocation list (cluster serve)")


class RouterSettings(BaseModel):
    head: Literal["logistic", "mlp", "centroid"] = Field(
        "logistic", description="classifier on the prompt embeddings: logistic regression, a one-hidden-layer "
        "perceptron (mlp) or nearest centroid"
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
    fallback_calibration: Literal["fallback-better", "coin-flip"] = Field(
        "fallback-better", description="how the fallback threshold is calibrated when min_confidence is unset: "
        "below the confidence where the fallback route beat the head's pick out of fold (often never), or "
        "where the pick was right less than half the time"
    )
    balance_sources: bool = Field(
        True, description="weight each example source (covey's own, each public dataset, your files) equally "
        "within a route when fitting the logistic head, so no one source sets the boundaries"
    )
    backend: Literal["auto", "onnx-int8", "onnx", "numpy", "torch"] = Field(
        "auto", description="how MiniLM runs for routing: 'onnx-int8' (onnxruntime, int8 weights: ~4 ms per task at "
        "p95 on one thread, its own fitted heads; the graph is built once into DATA_DIR/cache/minilm-onnx), 'onnx' "
        "(onnxruntime fp32, numpy's vectors, ~2x faster than numpy), 'numpy' (no onnxruntime, same vectors as "
        "sentence-transformers fp32), 'torch' (sentence-transformers, int8 if set) or 'auto' (onnx-int8 when "
        "onnxruntime and onnx are installed, else numpy); an onnx backend that cannot run falls back to numpy "
        "with one log line. `covey eval route` prints which one ran"
    )
    int8: bool = Field(
        True, description="with backend 'torch': route with an int8-quantized MiniLM, about half the CPU per task"
    )
    torch_threads: int | None = Field(
        1, ge=1, description="threads the router's MiniLM embeds with (numpy's BLAS during its own calls; with "
        "an onnx backend, its session's; with backend 'torch', torch's, process-wide); None leaves the default. One thread is several times faster per "
        "task when the cores are also busy with llama.cpp"
    )


class RagSettings(BaseModel):
    """Retrieval over the user's documents (covey.rag)."""

    embedder: str = Field(
        "all-MiniLM-L6-v2",
        description="embedding model: the packaged all-MiniLM-L6-v2 (offline, run with numpy and sharing its weights "
        "with the router's) or any sentence-transformers model name/path",
    )
    chunk_tokens: int = Field(200, ge=16, description="chunk size in embedder tokens (capped by the model window)")
    overlap_tokens: int = Field(32, ge=0, description="tokens repeated from the previous chunk of a section")
    batch_size: int = Field(32, ge=1, description="texts per embedding batch")
    embed_threads: int | None = Field(
        1, ge=1, description="threads retrieval embeds with (numpy's BLAS during its own calls for the packaged "
        "MiniLM; torch's, process-wide, for another model); 1 keeps queries fast beside llama.cpp, None = the "
        "library's default",
    )
    approximate_above: int = Field(
        20_000, ge=1, description="above this many chunks the collection switches from exact search to HNSW"
    )
    relevance_threshold: float = Field(
        0.30, ge=-1.0, le=1.0,
        description="cosine similarity a passage needs to ground an answer (calibrated for MiniLM on pydoc topics)",
    )
    top_k: int = Field(5, ge=1, description="passages fetched per question")
    collection: str = Field(
        "default", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="collection answers are grounded in (`covey rag add --collection`, `covey ask --collection`)",
    )
    offer_threshold: float = Field(
        0.50, ge=-1.0, le=1.0,
        description="cosine similarity at which passages are offered to every route, not only knowledge questions "
        "(higher than relevance_threshold so unrelated questions are not given documents; with MiniLM on the pydoc "
        "topics, 0 of 160 writing, chat, translation and summary prompts reach 0.50)",
    )
    strict: bool = Field(
        False, description="when your documents hold nothing relevant, a knowledge question is refused instead of "
        "answered from the model's own knowledge (`covey ask --strict`)",
    )
    max_file_mb: float = Field(32.0, gt=0, description="larger files are skipped with a note")
    commit_every: int = Field(
        2000, ge=1, description="chunks per atomic commit during an ingest (what a crash can lose at most)"
    )
    commit_every_s: float = Field(
        5.0, gt=0, description="seconds of ingest work between commits, whichever of the two comes first "
        "(stretched to 4x a commit's own time on huge collections, so commits cost at most ~20%)"
    )
    lock_timeout_s: float = Field(600.0, ge=0, description="how long a writer waits for another writer")


class HistorySettings(BaseModel):
    """Conversations kept in DATA_DIR/history.db (covey.history)."""

    keep_text: bool = Field(
        True, description="store prompts and answers; false keeps only route, node, tokens and joules per turn "
        "(sessions then remember nothing once the process ends)",
    )
    turns: int = Field(6, ge=0, description="recent turns of a session sent with each new question")


class ServeSettings(BaseModel):
    """`covey serve`: the OpenAI-compatible HTTP API (covey.api)."""

    host: str = Field("127.0.0.1", description="address to bind; anything but loopback requires API keys")
    port: int = Field(8088, ge=0, le=65535, description="HTTP port; 0 picks a free one")
    require_keys: Literal["auto", "always", "never"] = Field(
        "auto", description="bearer API keys: 'auto' requires them off loopback, 'always', or 'never' (loopback only)"
    )
    max_request_bytes: int = Field(1_000_000, ge=1024, description="larger request bodies get 413")
    rate_per_minute: float = Field(120.0, gt=0, description="requests per minute per API key (or per client without keys)")
    burst: int = Field(20, ge=1, description="requests a key may send at once before the rate applies")
    max_streams: int = Field(16, ge=1, description="answers in progress at once; more get 429")
    advertise: bool = Field(
        True, description="while serving on loopback, leave DATA_DIR/run/serve.json so `covey ask` with the same "
                          "data dir answers through this warm server instead of loading everything itself"
    )
    ask_through: bool = Field(
        True, description="`covey ask` answers through a `covey serve` advertised in its data dir, when one runs "
                          "(`ask --local` answers in-process)"
    )


CHAT_KEYS: dict[str, str] = {
    "send": "enter", "newline": "ctrl+j", "cancel": "escape", "nodes": "ctrl+n", "help": "f1",
    "scroll_up": "pageup", "scroll_down": "pagedown", "quit": "ctrl+q",
}
"""`covey chat`'s actions and their default keys (Textual key names; several keys: 'ctrl+j,shift+enter')."""


class ChatSettings(BaseModel):
    """`covey chat`: the terminal UI (covey.tui)."""

    keys: dict[str, str] = Field(
        default_factory=dict, description="keys for the chat's actions, over the defaults: "
        + ", ".join(f"{action} = {key!r}" for action, key in CHAT_KEYS.items())
        + " (Textual key names; 'a,b' binds two keys), e.g. {cancel = 'ctrl+x'}",
    )
    nodes_panel: Literal["auto", "show", "hide"] = Field(
        "auto", description="the side panel of live nodes: 'auto' shows it when the terminal has at least "
        "wide_columns columns; the nodes key toggles it either way",
    )
    wide_columns: int = Field(100, ge=40, description="terminal width from which 'auto' shows the nodes panel")
    refresh_s: float = Field(1.0, gt=0, description="seconds between re-reads of the nodes' load and speed "
                             "(joins and departures show at once)")
    shown_entries: int = Field(40, ge=2, description="answers and notes kept on screen; older ones leave it "
                               "(a long conversation stays quick to draw) but stay in the history (`covey logs`)")

    @field_validator("keys")
    @classmethod
    def _known_actions(cls, keys: dict[str, str]) -> dict[str, str]:
        import difflib

        for action, key in keys.items():
            if action not in CHAT_KEYS:
                close = difflib.get_close_matches(action, list(CHAT_KEYS), n=1)
                raise ValueError(f"no chat action {action!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                                 + f"; actions are {', '.join(CHAT_KEYS)}")
            if not key.strip():
                raise ValueError(f"the key for chat action {action!r} is empty")
        return keys

    def bindings(self) -> dict[str, str]:
        """Every action with its key(s): the defaults with your keys over them."""
        return {**CHAT_KEYS, **self.keys}


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
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    rag: RagSettings = Field(default_factory=RagSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)

    @field_validator("agents_file")
    @classmethod
    def _agents_default(cls, v: Path | None, info) -> Path | None:
        if v is None and info.data.get("data_dir") is not None:
            return Path(info.data["data_dir"]) / "agents.toml"
        return v

    @field_validator("data_dir", mode="before")
    @classmethod
    def _empty_is_default(cls, v: Any) -> Any:
        """An empty COVEY_DATA_DIR (or `data_dir = ""`) means the default, never the current directory."""
        return default_data_dir() if isinstance(v, str) and not v.strip() else v

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
        return cls.load_explained(**overrides)[0]

    @classmethod
    def load_explained(cls, **overrides: Any) -> tuple[Settings, dict[str, str], Path | None]:
        """Settings, where each dotted key's value came from (default, file, env, flag), and the file read.

        Unknown keys in the file or in COVEY_* variables, a malformed file and invalid values are
        ConfigErrors whose hint names the flag, variable or file that holds the bad value.
        """
        from covey.errors import ConfigError
        from covey.settings_sources import (
            check_keys, describe_source, env_settings, flatten, origin_of, read_toml,
        )

        given = _drop_none(overrides)
        env = env_settings()
        path = given.get("config_file")
        if path is not None and not Path(path).exists():
            raise ConfigError(f"config file {path} does not exist",
                              hint="check the flag --config: it must name an existing TOML file")
        if path is None and os.environ.get("COVEY_CONFIG_FILE"):
            env_path = Path(os.environ["COVEY_CONFIG_FILE"]).expanduser()
            if not env_path.exists():
                raise ConfigError(f"config file {env_path} does not exist",
                                  hint="check the variable COVEY_CONFIG_FILE: it must name an existing TOML file")
        token = _CONFIG_OVERRIDE.set((path, given.get("data_dir")))
        try:
            config_path = _config_path()
            file_data = read_toml(config_path) if config_path.is_file() else {}
            check_keys(file_data, cls, where=str(config_path), allow=frozenset({"agents"}))
            flags = {k for k, _ in flatten(given)}
            if "data_dir" in flags and str(given["data_dir"]) == os.environ.get("COVEY_DATA_DIR"):
                flags.discard("data_dir")  # typer's --data-dir reads COVEY_DATA_DIR: the variable set it, not a flag
            keys = {"flags": flags, "env": set(env), "file": {k for k, _ in flatten(file_data)}}
            try:
                settings = cls(**given)
            except ValidationError as exc:
                errors = exc.errors()
                first = ".".join(str(p) for p in errors[0]["loc"])
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:3])
                source = describe_source(first, origin_of(first, flags=keys["flags"], env=keys["env"],
                                                          file=keys["file"]), config_path)
                raise ConfigError(f"invalid setting ({problems})", hint=f"fix {source}") from None
            except SettingsError as exc:
                raise ConfigError(f"cannot read the environment: {exc}",
                                  hint="list values are JSON, e.g. COVEY_NODE__MODELS='[\"smollm2-135m-instruct-q4_1\"]'"
                                  ) from None
        finally:
            _CONFIG_OVERRIDE.reset(token)
        if "agents" in file_data and (settings.agents_file is None
                                      or settings.agents_file.resolve() != config_path.resolve()):
            raise ConfigError(f"{config_path}: [[agents]] tables are read from {settings.agents_file}, not here",
                              hint=f"move them to {settings.agents_file}, or set agents_file = \"{config_path}\"")
        if settings.data_dir.exists() and not settings.data_dir.is_dir():
            origin = origin_of("data_dir", flags=keys["flags"], env=keys["env"], file=keys["file"])
            where = ("--data-dir or COVEY_DATA_DIR" if origin != "file"
                     else describe_source("data_dir", origin, config_path))
            raise ConfigError(f"the data dir {settings.data_dir} is a file, not a folder",
                              hint=f"move that file away, or point {where} at a folder")
        origins: dict[str, str] = {k: origin_of(k, flags=keys["flags"], env=keys["env"], file=keys["file"])
                   for k, _ in flatten(settings.model_dump())}
        return settings, origins, config_path if config_path.is_file() else None


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
