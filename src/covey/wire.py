"""The gRPC edge: converts covey.v1 protobuf messages to covey.types models and back, and maps
status codes to covey errors. Only this module, the node's server and the orchestrator's client
import the generated ``*_pb2`` modules.
"""

from __future__ import annotations

import grpc

from covey import errors
from covey.types import (
    Battery, Constraint, Energy, EnergyMethod, FinishReason, GenerateEvent, GenerateFinal,
    GenerateRequest, Message, ModelId, ModelOffer, NodeId, NodeInfo, RequestId, Sampling, Timings, TokenPiece,
)
from covey.v1 import node_pb2 as pb

_ROLE_TO_PB = {"system": pb.ROLE_SYSTEM, "user": pb.ROLE_USER, "assistant": pb.ROLE_ASSISTANT}
_ROLE_FROM_PB = {v: k for k, v in _ROLE_TO_PB.items()}
_FINISH_TO_PB = {
    FinishReason.STOP: pb.FINISH_REASON_STOP, FinishReason.LENGTH: pb.FINISH_REASON_LENGTH,
    FinishReason.CANCELLED: pb.FINISH_REASON_CANCELLED, FinishReason.DEADLINE: pb.FINISH_REASON_DEADLINE,
}
_FINISH_FROM_PB = {v: k for k, v in _FINISH_TO_PB.items()}
_METHOD_TO_PB = {EnergyMethod.MEASURED: pb.ENERGY_METHOD_MEASURED, EnergyMethod.ESTIMATED: pb.ENERGY_METHOD_ESTIMATED}
_METHOD_FROM_PB = {v: k for k, v in _METHOD_TO_PB.items()}


# -- requests ------------------------------------------------------------------------------------------

def request_to_pb(req: GenerateRequest, protocol_version: int) -> pb.GenerateRequest:
    s = req.sampling
    msg = pb.GenerateRequest(
        protocol_version=protocol_version, request_id=req.request_id, model_id=req.model_id,
        sampling=pb.Sampling(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k,
                             repeat_penalty=s.repeat_penalty, seed=s.seed, stop=list(s.stop)),
        max_tokens=req.max_tokens, deadline_ms=req.deadline_ms, continue_from=req.continue_from,
    )
    if req.constraint is not None:
        msg.constraint.CopyFrom(pb.Constraint(**{req.constraint.kind: req.constraint.text}))
    if req.prompt is not None:
        msg.prompt = req.prompt
    else:
        msg.chat.messages.extend(pb.ChatMessage(role=_ROLE_TO_PB[m.role], content=m.content) for m in req.messages)
    return msg


def request_from_pb(msg: pb.GenerateRequest) -> GenerateRequest:
    """Raises errors.BadRequest when the message is well-formed protobuf but not a valid request."""
    from pydantic import ValidationError

    if msg.max_tokens == 0:  # proto3 cannot tell 0 from "not set": either way there is no sane answer length
        raise errors.BadRequest("max_tokens is 0 or not set; a request must ask for at least one token",
                                hint="set max_tokens in the GenerateRequest (1 to 32768)")
    s = msg.sampling
    try:
        sampling = Sampling(
            temperature=s.temperature, top_p=s.top_p or 1.0, top_k=s.top_k,
            repeat_penalty=s.repeat_penalty or 1.0, seed=s.seed if s.HasField("seed") else None, stop=tuple(s.stop),
        ) if msg.HasField("sampling") else Sampling()
        which = msg.WhichOneof("input")
        kind = msg.constraint.WhichOneof("kind") if msg.HasField("constraint") else None
        constraint = Constraint(kind=kind, text=getattr(msg.constraint, kind)) if kind else None
        return GenerateRequest(
            request_id=RequestId(msg.request_id), model_id=ModelId(msg.model_id),
            messages=tuple(Message(role=_ROLE_FROM_PB.get(m.role, "user"), content=m.content)
                           for m in msg.chat.messages) if which == "chat" else (),
            prompt=msg.prompt if which == "prompt" else None,
            sampling=sampling, max_tokens=msg.max_tokens, deadline_ms=msg.deadline_ms,
            continue_from=msg.continue_from, constraint=constraint,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise errors.BadRequest(f"invalid request field '{where}': {first['msg']}") from exc


# -- events --------------------------------------------------------------------------------------------

def energy_to_pb(e: Energy) -> pb.Energy:
    return pb.Energy(joules=e.joules, method=_METHOD_TO_PB[e.method], components=[
        pb.EnergyComponent(name=c.name, joules=c.joules, marginal_joules=c.marginal_joules,
                           method=_METHOD_TO_PB[c.method], source=c.source, uncertainty=c.uncertainty,
                           uncertainty_high=c.uncertainty_high)
        for c in e.components
    ])


def energy_from_pb(e: pb.Energy, node: str = "remote") -> Energy:
    """A node's energy figures; ones that cannot be true become flagged unknowns (covey.plausibility)."""
    from covey.plausibility import checked_component

    return Energy.of([
        checked_component(node, name=c.name, joules=c.joules, marginal_joules=c.marginal_joules,
                          method=_METHOD_FROM_PB.get(c.method, EnergyMethod.ESTIMATED), source=c.source,
                          uncertainty=c.uncertainty,
                          uncertainty_high=c.uncertainty_high if c.HasField("uncertainty_high") else None)
        for c in e.components
    ])


def event_to_pb(ev: GenerateEvent) -> pb.GenerateEvent:
    if isinstance(ev, TokenPiece):
        return pb.GenerateEvent(piece=pb.TokenPiece(text=ev.text, logprobs=ev.logprobs, token_ids=ev.token_ids))
    t = ev.timings
    return pb.GenerateEvent(final=pb.Final(
        finish_reason=_FINISH_TO_PB[ev.finish_reason], prompt_tokens=ev.prompt_tokens,
        completion_tokens=ev.completion_tokens,
        timings=pb.Timings(queue_ms=t.queue_ms, prompt_ms=t.prompt_ms, generate_ms=t.generate_ms, total_ms=t.total_ms),
        energy=energy_to_pb(ev.energy), node_id=ev.node_id, model_id=ev.model_id,
    ))


def event_from_pb(msg: pb.GenerateEvent, node: str = "remote") -> GenerateEvent:
    if msg.WhichOneof("event") == "piece":
        p = msg.piece
        return TokenPiece(text=p.text, logprobs=tuple(p.logprobs), token_ids=tuple(p.token_ids))
    f = msg.final
    t = f.timings
    return GenerateFinal(
        finish_reason=_FINISH_FROM_PB.get(f.finish_reason, FinishReason.STOP), prompt_tokens=f.prompt_tokens,
        completion_tokens=f.completion_tokens,
        timings=Timings(queue_ms=t.queue_ms, prompt_ms=t.prompt_ms, generate_ms=t.generate_ms, total_ms=t.total_ms),
        energy=energy_from_pb(f.energy, node), node_id=NodeId(f.node_id), model_id=ModelId(f.model_id),
    )


# -- node info -----------------------------------------------------------------------------------------

def info_to_pb(info: NodeInfo) -> pb.NodeInfo:
    b = info.battery
    return pb.NodeInfo(
        protocol_version=info.protocol_version, node_id=info.node_id, name=info.name,
        covey_version=info.covey_version,
        models=[pb.ModelOffer(model_id=m.model_id, loaded=m.loaded, ram_bytes=m.ram_bytes, queue_depth=m.queue_depth,
                              queue_limit=m.queue_limit, tokens_per_second=m.tokens_per_second,
                              context_length=m.context_length) for m in info.models],
        ram_total_bytes=info.ram_total_bytes, ram_free_bytes=info.ram_free_bytes,
        model_ram_cap_bytes=info.model_ram_cap_bytes, cpu_cores=info.cpu_cores, accelerator=info.accelerator,
        tokens_per_second=info.tokens_per_second,
        battery=pb.Battery(present=b.present, on_battery=b.on_battery, percent=b.percent),
        joules_per_token=info.joules_per_token, light_only=info.light_only, note=info.note,
    )


def info_from_pb(msg: pb.NodeInfo, address: str, source: str = "static") -> NodeInfo:
    b = msg.battery
    return NodeInfo(
        node_id=NodeId(msg.node_id), name=msg.name, address=address, protocol_version=msg.protocol_version,
        covey_version=msg.covey_version,
        models=tuple(ModelOffer(model_id=ModelId(m.model_id), loaded=m.loaded, ram_bytes=m.ram_bytes,
                                queue_depth=m.queue_depth, queue_limit=m.queue_limit,
                                tokens_per_second=m.tokens_per_second, context_length=m.context_length)
                     for m in msg.models),
        ram_total_bytes=msg.ram_total_bytes, ram_free_bytes=msg.ram_free_bytes,
        model_ram_cap_bytes=msg.model_ram_cap_bytes, cpu_cores=msg.cpu_cores, accelerator=msg.accelerator,
        tokens_per_second=msg.tokens_per_second,
        battery=Battery(present=b.present, on_battery=b.on_battery, percent=b.percent),
        joules_per_token=msg.joules_per_token, light_only=msg.light_only, note=msg.note, source=source,
    )


# -- errors --------------------------------------------------------------------------------------------

_CODE_FOR: list[tuple[type[errors.CoveyError], grpc.StatusCode]] = [
    (errors.PromptTooLong, grpc.StatusCode.OUT_OF_RANGE),
    (errors.BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.UnknownModel, grpc.StatusCode.NOT_FOUND),
    (errors.NodeBusy, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.IncompatibleProtocol, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ModelTooLarge, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ModelFileError, grpc.StatusCode.FAILED_PRECONDITION),
]
_ERROR_FOR: dict[grpc.StatusCode, type[errors.CoveyError]] = {
    grpc.StatusCode.OUT_OF_RANGE: errors.PromptTooLong,
    grpc.StatusCode.INVALID_ARGUMENT: errors.BadRequest,
    grpc.StatusCode.NOT_FOUND: errors.UnknownModel,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.NodeBusy,
    grpc.StatusCode.FAILED_PRECONDITION: errors.IncompatibleProtocol,
    grpc.StatusCode.UNAVAILABLE: errors.NodeUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.NodeUnavailable,
    grpc.StatusCode.CANCELLED: errors.NodeUnavailable,
}


ERROR_CLASS_KEY = "covey-error"
"""Trailing metadata naming the covey error class a node raised, so the client rebuilds the same class."""


def status_for(exc: errors.CoveyError) -> grpc.StatusCode:
    for cls, code in _CODE_FOR:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def error_metadata(exc: errors.CoveyError) -> tuple[tuple[str, str], ...]:
    """What a node sends beside the status: the error's class name."""
    return ((ERROR_CLASS_KEY, type(exc).__name__),)


def _class_from_metadata(exc: grpc.RpcError) -> type[errors.CoveyError] | None:
    trailing = getattr(exc, "trailing_metadata", None)
    for key, value in (trailing() if callable(trailing) else None) or ():
        if key == ERROR_CLASS_KEY:
            cls = getattr(errors, str(value), None)
            if isinstance(cls, type) and issubclass(cls, errors.CoveyError):
                return cls
    return None


def error_from_rpc(exc: grpc.aio.AioRpcError | grpc.RpcError, address: str) -> errors.CoveyError:
    """The one place where gRPC failures become covey errors. The node's message is kept verbatim.

    A covey node names its error class in trailing metadata and the same class is rebuilt here; the
    status code alone decides only for transport failures and for servers that send no class.
    """
    code = exc.code()
    details = exc.details() or code.name
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return errors.NodeUnavailable(f"node at {address} is unavailable ({code.name.lower()}: {details})")
    cls = _class_from_metadata(exc)
    if cls is None:
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details:
            # gRPC itself refused the message at the node's max_request_bytes, before covey saw it.
            return errors.RequestTooLarge(f"node at {address} refused the request as too large ({details})")
        if code == grpc.StatusCode.FAILED_PRECONDITION and "protocol" not in details:
            return errors.CoveyError(details)
        cls = _ERROR_FOR.get(code, errors.GenerationFailed)
    return cls(details, hint="")
