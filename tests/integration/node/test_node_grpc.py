"""A real node over real gRPC: streaming with log-probabilities, Info, health, reflection, and bad input.

Every fault test ends by proving the node still answers (`assert_still_serving`).
"""

from __future__ import annotations

import math

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

import covey
from covey.device_node.service import collect
from covey.errors import BadRequest, IncompatibleProtocol, PromptTooLong, UnknownModel
from covey.orchestrator.client import GrpcNodeClient
from covey.types import (
    EnergyMethod, FinishReason, GenerateFinal, GenerateRequest, Message, ModelId, RequestId, Sampling, TokenPiece,
)
from covey.v1 import node_pb2 as pb
from covey.v1 import node_pb2_grpc as pb_grpc

from .conftest import SMOLLM, NodeThread


def ask(text: str = "Name a colour.", *, model: str = SMOLLM, max_tokens: int = 12, **kw) -> GenerateRequest:
    return GenerateRequest(request_id=RequestId("t"), model_id=ModelId(model), max_tokens=max_tokens,
                           messages=(Message(role="user", content=text),) if text is not None else (),
                           sampling=Sampling(temperature=0.0, seed=1), **kw)


async def assert_still_serving(node: NodeThread) -> None:
    client = GrpcNodeClient(node.address)
    try:
        text, final = await collect(client.generate(ask(max_tokens=4)))
        assert final.completion_tokens > 0 and text
        assert await client.healthy()
    finally:
        await client.close()
    node.wait_depth(0)


async def test_generate_streams_pieces_with_logprobs_then_one_final(node: NodeThread) -> None:
    client = GrpcNodeClient(node.address)
    try:
        events = [ev async for ev in client.generate(ask("Write one sentence about the sea.", max_tokens=16))]
        info = await client.info()
    finally:
        await client.close()
    pieces, final = events[:-1], events[-1]
    assert isinstance(final, GenerateFinal) and all(isinstance(p, TokenPiece) for p in pieces)
    assert pieces and "".join(p.text for p in pieces).strip()
    logprobs = [lp for p in pieces for lp in p.logprobs]
    assert logprobs and all(math.isfinite(lp) and lp <= 0.0 for lp in logprobs)
    assert all(len(p.logprobs) == len(p.token_ids) for p in pieces)
    assert len(logprobs) == final.completion_tokens
    assert final.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert 0 < final.completion_tokens <= 16 and final.prompt_tokens > 0
    t = final.timings
    assert t.queue_ms >= 0 and t.prompt_ms > 0 and t.generate_ms > 0
    assert t.total_ms >= t.prompt_ms + t.generate_ms
    assert final.energy.joules > 0 and final.energy.method is EnergyMethod.ESTIMATED
    assert final.node_id == info.node_id and final.model_id == SMOLLM


async def test_greedy_generation_is_reproducible_over_the_wire(node: NodeThread) -> None:
    client = GrpcNodeClient(node.address)
    try:
        first, _ = await collect(client.generate(ask(max_tokens=10)))
        second, _ = await collect(client.generate(ask(max_tokens=10)))
    finally:
        await client.close()
    assert first == second


async def test_info_returns_identity_and_capabilities(node: NodeThread) -> None:
    client = GrpcNodeClient(node.address)
    try:
        info = await client.info()
    finally:
        await client.close()
    assert info.name == "test-node" and len(info.node_id) == 16
    assert info.address == node.address and info.protocol_version == 2
    assert info.covey_version == covey.__version__
    offer = info.offer(SMOLLM)
    assert offer is not None and offer.loaded and offer.queue_limit == 1 and offer.queue_depth == 0
    assert offer.context_length == 256 and offer.ram_bytes > 0
    assert info.cpu_cores >= 1 and info.ram_total_bytes >= info.ram_free_bytes > 0
    assert info.model_ram_cap_bytes == 0  # no cap configured


def test_standard_health_service_answers_serving(node: NodeThread) -> None:
    with grpc.insecure_channel(node.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "covey.v1.Node"):
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert resp.status == health_pb2.HealthCheckResponse.SERVING, service


def test_server_reflection_lists_and_describes_the_node_service(node: NodeThread) -> None:
    with grpc.insecure_channel(node.address) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        services = set(db.get_services())
        assert {"covey.v1.Node", "grpc.health.v1.Health"} <= services
        described = DescriptorPool(db).FindServiceByName("covey.v1.Node")
        assert {m.name for m in described.methods} == {"Generate", "Info"}
        assert described.methods_by_name["Generate"].server_streaming


# -- bad input: each refused with a clear message, and the node keeps serving ------------------------


async def test_unknown_model_id_is_refused_naming_what_the_node_serves(node: NodeThread) -> None:
    client = GrpcNodeClient(node.address)
    try:
        with pytest.raises(UnknownModel) as exc:
            await collect(client.generate(ask(model="no-such-model")))
    finally:
        await client.close()
    msg = str(exc.value)
    assert "no-such-model" in msg and SMOLLM in msg and "--model" in msg
    await assert_still_serving(node)


@pytest.mark.parametrize("text", ["", "   \n ", None])
async def test_empty_prompt_is_refused(node: NodeThread, text: str | None) -> None:
    client = GrpcNodeClient(node.address)
    try:
        with pytest.raises(BadRequest) as exc:
            await collect(client.generate(ask(text)))
    finally:
        await client.close()
    assert "prompt is empty" in str(exc.value) and "send some text" in str(exc.value)
    await assert_still_serving(node)


async def test_prompt_longer_than_the_context_is_refused_with_both_figures(node: NodeThread) -> None:
    client = GrpcNodeClient(node.address)
    try:
        with pytest.raises(PromptTooLong) as exc:
            await collect(client.generate(ask("tell me about the weather " * 80)))
    finally:
        await client.close()
    msg = str(exc.value)
    assert "256-token context" in msg and "shorten the prompt" in msg
    assert int(msg.split("the prompt is ")[1].split()[0]) > 256
    await assert_still_serving(node)


def _raw_generate(channel: grpc.Channel):
    return channel.unary_stream("/covey.v1.Node/Generate", request_serializer=lambda b: b,
                                response_deserializer=pb.GenerateEvent.FromString)


@pytest.mark.parametrize("field", [b"\x2a\x02\xff\xfe", b"\x1a\x01\xff"], ids=["prompt", "model_id"])
async def test_invalid_utf8_on_the_wire_is_invalid_argument(node: NodeThread, field: bytes) -> None:
    # Hand-serialized GenerateRequest: protocol_version=1, request_id="r", then a string field
    # (5 = prompt or 3 = model_id) holding bytes that are not UTF-8.
    raw = b"\x08\x01" + b"\x12\x01r" + field
    with grpc.insecure_channel(node.address) as channel:
        with pytest.raises(grpc.RpcError) as exc:
            list(_raw_generate(channel)(raw, timeout=10))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "UTF-8" in exc.value.details()
    await assert_still_serving(node)


async def test_well_formed_raw_request_through_the_generic_channel_works(node: NodeThread) -> None:
    # The control for the test above: the same hand-built bytes with a valid prompt generate.
    raw = b"\x08\x01" + b"\x12\x01r" + b"\x1a" + bytes([len(SMOLLM)]) + SMOLLM.encode() + b"\x2a\x05Hello" + b"\x38\x03"
    with grpc.insecure_channel(node.address) as channel:
        events = list(_raw_generate(channel)(raw, timeout=30))
    assert events[-1].WhichOneof("event") == "final" and events[-1].final.completion_tokens > 0


def test_client_speaking_another_protocol_version_is_refused_naming_both(node: NodeThread) -> None:
    with grpc.insecure_channel(node.address) as channel:
        stub = pb_grpc.NodeStub(channel)
        req = pb.GenerateRequest(protocol_version=99, request_id="r", model_id=SMOLLM, prompt="Hi", max_tokens=2)
        with pytest.raises(grpc.RpcError) as gen_exc:
            list(stub.Generate(req, timeout=10))
        with pytest.raises(grpc.RpcError) as info_exc:
            stub.Info(pb.InfoRequest(protocol_version=99), timeout=10)
    for exc in (gen_exc.value, info_exc.value):
        assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "v99" in exc.details() and "v1" in exc.details() and "upgrade covey" in exc.details()


async def test_protocol_refusal_maps_to_incompatible_protocol_in_the_client(node: NodeThread) -> None:
    from covey import wire

    with grpc.insecure_channel(node.address) as channel:
        with pytest.raises(grpc.RpcError) as exc:
            pb_grpc.NodeStub(channel).Info(pb.InfoRequest(protocol_version=99), timeout=10)
    err = wire.error_from_rpc(exc.value, node.address)
    assert isinstance(err, IncompatibleProtocol) and "v99" in str(err)
    await assert_still_serving(node)


async def test_a_real_refusal_arrives_as_the_same_covey_class(node: NodeThread) -> None:
    """UnknownModel from the node's service comes back as UnknownModel through the real client."""
    from covey.errors import UnknownModel
    from covey.orchestrator.client import GrpcNodeClient
    from covey.types import GenerateRequest, Message, ModelId, RequestId

    client = GrpcNodeClient(node.address)
    try:
        req = GenerateRequest(request_id=RequestId("r1"), model_id=ModelId("no-such-model"),
                              messages=(Message(role="user", content="Hi"),), max_tokens=2)
        with pytest.raises(UnknownModel) as exc:
            async for _ in client.generate(req):
                pass
        assert "no-such-model" in str(exc.value)
    finally:
        await client.close()
