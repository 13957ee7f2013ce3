"""Frozen data shared by every part of covey: ids, requests, results, node snapshots."""

from __future__ import annotations

from enum import Enum
from typing import Literal, NewType

from pydantic import BaseModel, ConfigDict, Field

NodeId = NewType("NodeId", str)
ModelId = NewType("ModelId", str)
RequestId = NewType("RequestId", str)

PROTOCOL_VERSION = 2
"""Wire protocol version this side speaks at most; peers speaking none of `SUPPORTED_PROTOCOLS` are refused."""

SUPPORTED_PROTOCOLS = (1, 2)
"""Versions this side still speaks: version 2 only adds `GenerateRequest.constraint`, so a request
without one is a version-1 request and a version-1 peer can take it."""

def spoken_protocols(prefix: str = "v") -> str:
    """'v2 (and v1)': the versions this side speaks, newest first, for refusal messages."""
    older = [f"{prefix}{v}" for v in sorted(SUPPORTED_PROTOCOLS, reverse=True) if v != PROTOCOL_VERSION]
    return f"{prefix}{PROTOCOL_VERSION}" + (f" (and {', '.join(older)})" if older else "")


CONSTRAINED_PROTOCOL = 2
"""The first version whose nodes constrain decoding with a grammar or a JSON schema."""

MB = 1024 * 1024
"""Bytes in a mebibyte: RAM figures are MB in settings and announcements, bytes in NodeInfo."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Role = Literal["system", "user", "assistant"]

AttemptOutcome = Literal["answered", "escalated", "failed_over", "failed", "cancelled"]
"""What became of one try at an answer; the result, the ledger and the reports share this vocabulary."""


class Message(Frozen):
    role: Role
    content: str


class Sampling(Frozen):
    temperature: float = Field(0.7, ge=0.0, le=5.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    top_k: int = Field(40, ge=0, le=2**31 - 1)  # int32 on the wire
    repeat_penalty: float = Field(1.1, ge=0.0)
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="fix for reproducible output (a uint32)")
    stop: tuple[str, ...] = ()


class Constraint(Frozen):
    """What the generated text must match: a llama.cpp GBNF grammar (start rule ``root``) or a JSON schema."""

    kind: Literal["grammar", "json_schema"]
    text: str = Field(min_length=1, description="the GBNF grammar, or the JSON Schema document")


class GenerateRequest(Frozen):
    """One generation asked of a node: either chat messages or a raw prompt."""

    request_id: RequestId
    model_id: ModelId
    messages: tuple[Message, ...] = ()
    prompt: str | None = None
    sampling: Sampling = Sampling()
    max_tokens: int = Field(256, ge=1, le=32768)
    deadline_ms: int = Field(0, ge=0, le=2**32 - 1, description="0 = no deadline (a uint32 on the wire)")
    continue_from: str = Field("", description="text already produced elsewhere (failover)")
    constraint: Constraint | None = Field(None, description="constrained decoding (protocol version 2 and up)")

    @property
    def protocol_needed(self) -> int:
        """The lowest wire version that can carry this request."""
        return CONSTRAINED_PROTOCOL if self.constraint is not None else 1


class FinishReason(str, Enum):
    STOP = "stop"
    LENGTH = "length"
    CANCELLED = "cancelled"
    DEADLINE = "deadline"


class EnergyMethod(str, Enum):
    MEASURED = "measured"
    ESTIMATED = "estimated"


class EnergyComponent(Frozen):
    name: str
    joules: float = Field(ge=0.0)
    marginal_joules: float = Field(0.0, ge=0.0)
    method: EnergyMethod
    source: str = ""
    uncertainty: float = Field(0.0, ge=0.0, description="relative, 0.3 = +/-30 %")
    uncertainty_high: float | None = Field(
        None, ge=0.0, description="relative upward bound when the range is asymmetric (1.9 = +190 %); "
        "None = the same as uncertainty")

    @property
    def joules_low(self) -> float:
        """The low end of this figure's documented range (never below 0)."""
        return self.joules * max(0.0, 1.0 - self.uncertainty)

    @property
    def joules_high(self) -> float:
        up = self.uncertainty if self.uncertainty_high is None else self.uncertainty_high
        return self.joules * (1.0 + up)


class Energy(Frozen):
    joules: float = Field(0.0, ge=0.0)
    method: EnergyMethod = EnergyMethod.ESTIMATED
    components: tuple[EnergyComponent, ...] = ()

    @classmethod
    def of(cls, components: tuple[EnergyComponent, ...] | list[EnergyComponent]) -> Energy:
        comps = tuple(components)
        measured = bool(comps) and all(c.method is EnergyMethod.MEASURED for c in comps)
        return cls(
            joules=sum(c.joules for c in comps),
            method=EnergyMethod.MEASURED if measured else EnergyMethod.ESTIMATED,
            components=comps,
        )

    def __add__(self, other: Energy) -> Energy:
        return Energy.of(self.components + other.components)

    @property
    def joules_low(self) -> float:
        """Sum of the components' low ends (ranges add: a conservative bound, not quadrature)."""
        return sum(c.joules_low for c in self.components) if self.components else self.joules

    @property
    def joules_high(self) -> float:
        return sum(c.joules_high for c in self.components) if self.components else self.joules


class Timings(Frozen):
    queue_ms: float = 0.0
    prompt_ms: float = 0.0
    generate_ms: float = 0.0
    total_ms: float = 0.0


class TokenPiece(Frozen):
    text: str
    logprobs: tuple[float, ...] = ()
    token_ids: tuple[int, ...] = ()


class GenerateFinal(Frozen):
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    timings: Timings
    energy: Energy
    node_id: NodeId
    model_id: ModelId

    @property
    def tokens_per_second(self) -> float:
        if self.timings.generate_ms <= 0:
            return 0.0
        return self.completion_tokens / (self.timings.generate_ms / 1000.0)


GenerateEvent = TokenPiece | GenerateFinal


class ModelOffer(Frozen):
    model_id: ModelId
    loaded: bool = False
    ram_bytes: int = 0
    queue_depth: int = 0
    queue_limit: int = 0
    tokens_per_second: float = 0.0
    context_length: int = 0


class Battery(Frozen):
    present: bool = False
    on_battery: bool = False
    percent: float = 100.0


class NodeInfo(Frozen):
    """A snapshot of one node, replaced whole on each refresh."""

    node_id: NodeId
    name: str
    address: str = Field("", description="host:port the node serves gRPC on")
    protocol_version: int = PROTOCOL_VERSION
    covey_version: str = ""
    models: tuple[ModelOffer, ...] = ()
    ram_total_bytes: int = 0
    ram_free_bytes: int = 0
    model_ram_cap_bytes: int = Field(0, description="0 = no cap")
    cpu_cores: int = 0
    accelerator: str = ""
    tokens_per_second: float = 0.0
    battery: Battery = Battery()
    joules_per_token: float = 0.0
    light_only: bool = Field(False, description="on a low battery: takes only light models")
    note: str = Field("", description="why the node limits itself, e.g. 'on battery at 22 % (< 30 %): light work only'")
    source: Literal["embedded", "static", "zeroconf", "openai"] = "static"
    flags: tuple[str, ...] = Field((), description="figures this side found implausible and ignored (covey.plausibility)")

    def offer(self, model_id: str) -> ModelOffer | None:
        return next((m for m in self.models if m.model_id == model_id), None)

    @property
    def load(self) -> int:
        return sum(m.queue_depth for m in self.models)
