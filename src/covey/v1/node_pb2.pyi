from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProtocolVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTOCOL_VERSION_UNSPECIFIED: _ClassVar[ProtocolVersion]
    PROTOCOL_VERSION_1: _ClassVar[ProtocolVersion]
    PROTOCOL_VERSION_CURRENT: _ClassVar[ProtocolVersion]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_SYSTEM: _ClassVar[Role]
    ROLE_USER: _ClassVar[Role]
    ROLE_ASSISTANT: _ClassVar[Role]

class FinishReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINISH_REASON_UNSPECIFIED: _ClassVar[FinishReason]
    FINISH_REASON_STOP: _ClassVar[FinishReason]
    FINISH_REASON_LENGTH: _ClassVar[FinishReason]
    FINISH_REASON_CANCELLED: _ClassVar[FinishReason]
    FINISH_REASON_DEADLINE: _ClassVar[FinishReason]

class EnergyMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENERGY_METHOD_UNSPECIFIED: _ClassVar[EnergyMethod]
    ENERGY_METHOD_MEASURED: _ClassVar[EnergyMethod]
    ENERGY_METHOD_ESTIMATED: _ClassVar[EnergyMethod]
PROTOCOL_VERSION_UNSPECIFIED: ProtocolVersion
PROTOCOL_VERSION_1: ProtocolVersion
PROTOCOL_VERSION_CURRENT: ProtocolVersion
ROLE_UNSPECIFIED: Role
ROLE_SYSTEM: Role
ROLE_USER: Role
ROLE_ASSISTANT: Role
FINISH_REASON_UNSPECIFIED: FinishReason
FINISH_REASON_STOP: FinishReason
FINISH_REASON_LENGTH: FinishReason
FINISH_REASON_CANCELLED: FinishReason
FINISH_REASON_DEADLINE: FinishReason
ENERGY_METHOD_UNSPECIFIED: EnergyMethod
ENERGY_METHOD_MEASURED: EnergyMethod
ENERGY_METHOD_ESTIMATED: EnergyMethod

class ChatMessage(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: Role
    content: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., content: _Optional[str] = ...) -> None: ...

class Conversation(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ...) -> None: ...

class Sampling(_message.Message):
    __slots__ = ("temperature", "top_p", "top_k", "repeat_penalty", "seed", "stop")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    REPEAT_PENALTY_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    top_p: float
    top_k: int
    repeat_penalty: float
    seed: int
    stop: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., top_k: _Optional[int] = ..., repeat_penalty: _Optional[float] = ..., seed: _Optional[int] = ..., stop: _Optional[_Iterable[str]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("protocol_version", "request_id", "model_id", "chat", "prompt", "sampling", "max_tokens", "deadline_ms", "continue_from", "constraint")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    CHAT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SAMPLING_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    CONTINUE_FROM_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINT_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    request_id: str
    model_id: str
    chat: Conversation
    prompt: str
    sampling: Sampling
    max_tokens: int
    deadline_ms: int
    continue_from: str
    constraint: Constraint
    def __init__(self, protocol_version: _Optional[int] = ..., request_id: _Optional[str] = ..., model_id: _Optional[str] = ..., chat: _Optional[_Union[Conversation, _Mapping]] = ..., prompt: _Optional[str] = ..., sampling: _Optional[_Union[Sampling, _Mapping]] = ..., max_tokens: _Optional[int] = ..., deadline_ms: _Optional[int] = ..., continue_from: _Optional[str] = ..., constraint: _Optional[_Union[Constraint, _Mapping]] = ...) -> None: ...

class Constraint(_message.Message):
    __slots__ = ("grammar", "json_schema")
    GRAMMAR_FIELD_NUMBER: _ClassVar[int]
    JSON_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    grammar: str
    json_schema: str
    def __init__(self, grammar: _Optional[str] = ..., json_schema: _Optional[str] = ...) -> None: ...

class TokenPiece(_message.Message):
    __slots__ = ("text", "logprobs", "token_ids")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LOGPROBS_FIELD_NUMBER: _ClassVar[int]
    TOKEN_IDS_FIELD_NUMBER: _ClassVar[int]
    text: str
    logprobs: _containers.RepeatedScalarFieldContainer[float]
    token_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, text: _Optional[str] = ..., logprobs: _Optional[_Iterable[float]] = ..., token_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class EnergyComponent(_message.Message):
    __slots__ = ("name", "joules", "marginal_joules", "method", "source", "uncertainty", "uncertainty_high")
    NAME_FIELD_NUMBER: _ClassVar[int]
    JOULES_FIELD_NUMBER: _ClassVar[int]
    MARGINAL_JOULES_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    UNCERTAINTY_FIELD_NUMBER: _ClassVar[int]
    UNCERTAINTY_HIGH_FIELD_NUMBER: _ClassVar[int]
    name: str
    joules: float
    marginal_joules: float
    method: EnergyMethod
    source: str
    uncertainty: float
    uncertainty_high: float
    def __init__(self, name: _Optional[str] = ..., joules: _Optional[float] = ..., marginal_joules: _Optional[float] = ..., method: _Optional[_Union[EnergyMethod, str]] = ..., source: _Optional[str] = ..., uncertainty: _Optional[float] = ..., uncertainty_high: _Optional[float] = ...) -> None: ...

class Energy(_message.Message):
    __slots__ = ("joules", "method", "components")
    JOULES_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    joules: float
    method: EnergyMethod
    components: _containers.RepeatedCompositeFieldContainer[EnergyComponent]
    def __init__(self, joules: _Optional[float] = ..., method: _Optional[_Union[EnergyMethod, str]] = ..., components: _Optional[_Iterable[_Union[EnergyComponent, _Mapping]]] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("queue_ms", "prompt_ms", "generate_ms", "total_ms")
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_MS_FIELD_NUMBER: _ClassVar[int]
    GENERATE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    queue_ms: float
    prompt_ms: float
    generate_ms: float
    total_ms: float
    def __init__(self, queue_ms: _Optional[float] = ..., prompt_ms: _Optional[float] = ..., generate_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class Final(_message.Message):
    __slots__ = ("finish_reason", "prompt_tokens", "completion_tokens", "timings", "energy", "node_id", "model_id")
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    timings: Timings
    energy: Energy
    node_id: str
    model_id: str
    def __init__(self, finish_reason: _Optional[_Union[FinishReason, str]] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., energy: _Optional[_Union[Energy, _Mapping]] = ..., node_id: _Optional[str] = ..., model_id: _Optional[str] = ...) -> None: ...

class GenerateEvent(_message.Message):
    __slots__ = ("piece", "final")
    PIECE_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    piece: TokenPiece
    final: Final
    def __init__(self, piece: _Optional[_Union[TokenPiece, _Mapping]] = ..., final: _Optional[_Union[Final, _Mapping]] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ("protocol_version",)
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    def __init__(self, protocol_version: _Optional[int] = ...) -> None: ...

class ModelOffer(_message.Message):
    __slots__ = ("model_id", "loaded", "ram_bytes", "queue_depth", "queue_limit", "tokens_per_second", "context_length")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    LOADED_FIELD_NUMBER: _ClassVar[int]
    RAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    QUEUE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    loaded: bool
    ram_bytes: int
    queue_depth: int
    queue_limit: int
    tokens_per_second: float
    context_length: int
    def __init__(self, model_id: _Optional[str] = ..., loaded: _Optional[bool] = ..., ram_bytes: _Optional[int] = ..., queue_depth: _Optional[int] = ..., queue_limit: _Optional[int] = ..., tokens_per_second: _Optional[float] = ..., context_length: _Optional[int] = ...) -> None: ...

class Battery(_message.Message):
    __slots__ = ("present", "on_battery", "percent")
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    ON_BATTERY_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    present: bool
    on_battery: bool
    percent: float
    def __init__(self, present: _Optional[bool] = ..., on_battery: _Optional[bool] = ..., percent: _Optional[float] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("protocol_version", "node_id", "name", "covey_version", "models", "ram_total_bytes", "ram_free_bytes", "model_ram_cap_bytes", "cpu_cores", "accelerator", "tokens_per_second", "battery", "joules_per_token", "light_only", "note")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    COVEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    RAM_TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    RAM_FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MODEL_RAM_CAP_BYTES_FIELD_NUMBER: _ClassVar[int]
    CPU_CORES_FIELD_NUMBER: _ClassVar[int]
    ACCELERATOR_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    BATTERY_FIELD_NUMBER: _ClassVar[int]
    JOULES_PER_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LIGHT_ONLY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    node_id: str
    name: str
    covey_version: str
    models: _containers.RepeatedCompositeFieldContainer[ModelOffer]
    ram_total_bytes: int
    ram_free_bytes: int
    model_ram_cap_bytes: int
    cpu_cores: int
    accelerator: str
    tokens_per_second: float
    battery: Battery
    joules_per_token: float
    light_only: bool
    note: str
    def __init__(self, protocol_version: _Optional[int] = ..., node_id: _Optional[str] = ..., name: _Optional[str] = ..., covey_version: _Optional[str] = ..., models: _Optional[_Iterable[_Union[ModelOffer, _Mapping]]] = ..., ram_total_bytes: _Optional[int] = ..., ram_free_bytes: _Optional[int] = ..., model_ram_cap_bytes: _Optional[int] = ..., cpu_cores: _Optional[int] = ..., accelerator: _Optional[str] = ..., tokens_per_second: _Optional[float] = ..., battery: _Optional[_Union[Battery, _Mapping]] = ..., joules_per_token: _Optional[float] = ..., light_only: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...
