"""The gRPC edge: covey.types <-> covey.v1 protobuf round trips and status code <-> covey error mapping."""

from __future__ import annotations

import grpc
import pytest

from covey import errors, wire
from covey.types import (
    Battery, Energy, EnergyComponent, EnergyMethod, FinishReason, GenerateFinal, GenerateRequest, Message, ModelId,
    ModelOffer, NodeId, NodeInfo, RequestId, Sampling, Timings, TokenPiece,
)
from covey.v1 import node_pb2 as pb


def test_chat_request_round_trips() -> None:
    req = GenerateRequest(request_id=RequestId("r1"), model_id=ModelId("m"), max_tokens=33, deadline_ms=1500,
                          messages=(Message(role="system", content="be brief"), Message(role="user", content="hi é")),
                          sampling=Sampling(temperature=0.0, top_p=0.5, top_k=7, repeat_penalty=1.2, seed=4,
                                            stop=("\n\n",)),
                          continue_from="Once")
    msg = pb.GenerateRequest.FromString(wire.request_to_pb(req, 1).SerializeToString())
    assert msg.protocol_version == 1 and msg.WhichOneof("input") == "chat"
    back = wire.request_from_pb(msg)
    assert back.messages == req.messages and back.prompt is None and back.continue_from == "Once"
    assert back.max_tokens == 33 and back.deadline_ms == 1500
    assert back.sampling.seed == 4 and back.sampling.top_k == 7 and back.sampling.stop == ("\n\n",)
    assert back.sampling.temperature == 0.0 and back.sampling.top_p == pytest.approx(0.5)


def test_prompt_request_round_trips_and_unset_fields_get_defaults() -> None:
    req = GenerateRequest(request_id=RequestId("r"), model_id=ModelId("m"), prompt="The sky is")
    back = wire.request_from_pb(wire.request_to_pb(req, 1))
    assert back.prompt == "The sky is" and back.messages == () and back.sampling.seed is None
    bare = wire.request_from_pb(pb.GenerateRequest(model_id="m", prompt="x", max_tokens=5))
    assert bare.max_tokens == 5 and bare.sampling == Sampling()


def test_max_tokens_zero_or_unset_is_refused_not_replaced_by_a_default() -> None:
    with pytest.raises(errors.BadRequest) as exc:
        wire.request_from_pb(pb.GenerateRequest(model_id="m", prompt="x"))
    assert "max_tokens is 0 or not set" in str(exc.value) and "1 to 32768" in str(exc.value)
    too_many = pb.GenerateRequest(model_id="m", prompt="x", max_tokens=40_000)
    with pytest.raises(errors.BadRequest, match="field 'max_tokens'"):
        wire.request_from_pb(too_many)


def test_out_of_range_request_fields_are_bad_requests_naming_the_field() -> None:
    msg = pb.GenerateRequest(model_id="m", prompt="x", max_tokens=4, sampling=pb.Sampling(temperature=9.0))
    with pytest.raises(errors.BadRequest) as exc:
        wire.request_from_pb(msg)
    assert "field 'temperature'" in str(exc.value) and "less than or equal to 5" in str(exc.value)


def test_events_round_trip() -> None:
    piece = TokenPiece(text="Hé", logprobs=(-0.25, -1.5), token_ids=(5, 9))
    assert wire.event_from_pb(wire.event_to_pb(piece)) == piece
    energy = Energy.of([EnergyComponent(name="cpu", joules=1.5, marginal_joules=1.0, method=EnergyMethod.ESTIMATED,
                                        source="per-core", uncertainty=0.3)])
    final = GenerateFinal(finish_reason=FinishReason.CANCELLED, prompt_tokens=3, completion_tokens=4,
                          timings=Timings(queue_ms=1, prompt_ms=2, generate_ms=3, total_ms=6), energy=energy,
                          node_id=NodeId("n"), model_id=ModelId("m"))
    assert wire.event_from_pb(pb.GenerateEvent.FromString(wire.event_to_pb(final).SerializeToString())) == final


def test_node_info_round_trips() -> None:
    info = NodeInfo(node_id=NodeId("abc"), name="den-pc", address="10.0.0.2:50551", covey_version="0.1.0",
                    models=(ModelOffer(model_id=ModelId("m"), loaded=True, ram_bytes=10, queue_depth=1, queue_limit=4,
                                       tokens_per_second=150.0, context_length=2048),),
                    ram_total_bytes=8, ram_free_bytes=4, model_ram_cap_bytes=2, cpu_cores=4, accelerator="cuda",
                    tokens_per_second=150.0, battery=Battery(present=True, on_battery=True, percent=50.0),
                    joules_per_token=0.05)
    assert wire.info_from_pb(wire.info_to_pb(info), "10.0.0.2:50551") == info


class FakeRpcError(grpc.RpcError):
    """What a failed call raises: a status code and the node's details."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize("error, code", [
    (errors.PromptTooLong("long"), grpc.StatusCode.OUT_OF_RANGE),
    (errors.BadRequest("bad"), grpc.StatusCode.INVALID_ARGUMENT),
    (errors.UnknownModel("who"), grpc.StatusCode.NOT_FOUND),
    (errors.NodeBusy("busy"), grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.IncompatibleProtocol("client speaks covey protocol v9"), grpc.StatusCode.FAILED_PRECONDITION),
])
def test_node_errors_cross_the_wire_as_the_same_covey_error(error: errors.CoveyError, code: grpc.StatusCode) -> None:
    assert wire.status_for(error) == code
    back = wire.error_from_rpc(FakeRpcError(code, str(error)), "10.0.0.2:1")
    assert type(back) is type(error) and str(back) == str(error)  # the node's message, verbatim, hint included


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                  grpc.StatusCode.CANCELLED])
def test_transport_failures_are_node_unavailable_naming_the_address(code: grpc.StatusCode) -> None:
    err = wire.error_from_rpc(FakeRpcError(code, "connection refused"), "10.0.0.2:1")
    assert isinstance(err, errors.NodeUnavailable) and "10.0.0.2:1" in str(err) and "connection refused" in str(err)


def test_unexpected_node_failure_is_generation_failed() -> None:
    err = wire.error_from_rpc(FakeRpcError(grpc.StatusCode.UNKNOWN, "boom"), "a:1")
    assert isinstance(err, errors.GenerationFailed) and "boom" in str(err)


class FakeRpcErrorWithClass(FakeRpcError):
    """A covey node's refusal: the status code plus the error class in trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str, cls_name: str) -> None:
        super().__init__(code, details)
        self._trailing = ((wire.ERROR_CLASS_KEY, cls_name),)

    def trailing_metadata(self):
        return self._trailing


@pytest.mark.parametrize("error", [
    errors.ModelTooLarge("gemma3-270m needs 410 MB, this node allows 256 MB"),
    errors.ModelFileError("truncated file"),
    errors.IncompatibleProtocol("client speaks covey protocol v9"),
    errors.PromptTooLong("long"),
    errors.GenerationFailed("native error"),
])
def test_the_error_class_travels_in_trailing_metadata(error: errors.CoveyError) -> None:
    """FAILED_PRECONDITION carries three classes; the class name, not the text, tells them apart."""
    (key, name), = wire.error_metadata(error)
    back = wire.error_from_rpc(FakeRpcErrorWithClass(wire.status_for(error), str(error), name), "10.0.0.2:1")
    assert type(back) is type(error) and str(back) == str(error)


def test_a_class_name_that_is_not_a_covey_error_falls_back_to_the_status_code() -> None:
    back = wire.error_from_rpc(FakeRpcErrorWithClass(grpc.StatusCode.NOT_FOUND, "who", "SystemExit"), "a:1")
    assert type(back) is errors.UnknownModel
