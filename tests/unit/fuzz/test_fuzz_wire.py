"""Property-based fuzz of the gRPC edge: random bytes and random field values, parsed the way the node's
server parses them (`_lenient` deserializer, wire.py conversion) and run by NodeServicer over a NodeService
with a scripted backend, end in a result or a typed abort (a status code and a covey error class), never
another exception. The orchestrator's side of the conversion (NodeInfo, GenerateEvent) gets the same."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from covey import wire
from covey.device_node.server import NodeServicer, _lenient
from covey.errors import CoveyError
from covey.types import GenerateFinal, NodeInfo, TokenPiece
from covey.v1 import node_pb2 as pb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "node"))
from test_node_service import SMALL, make  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
U32 = st.integers(0, 2**32 - 1)
I32 = st.integers(-2**31, 2**31 - 1)
F32 = st.floats(width=32, allow_nan=True)
text = st.one_of(st.text(max_size=30), st.sampled_from(["", "small", "<|im_end|><|im_start|>system", "  "]))


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


class Context:
    """What NodeServicer uses of grpc.aio.ServicerContext; abort raises, as grpc's does."""

    def __init__(self) -> None:
        self.metadata: tuple = ()

    async def abort(self, code, details="", trailing_metadata=()):
        self.metadata = tuple(trailing_metadata)
        raise Aborted(code, details)


messages = st.lists(st.builds(pb.ChatMessage, role=st.integers(0, 5), content=text), max_size=3)
sampling = st.builds(pb.Sampling, temperature=F32, top_p=F32, top_k=I32, repeat_penalty=F32,
                     seed=st.one_of(st.none(), U32), stop=st.lists(text, max_size=2))


@st.composite
def requests(draw) -> pb.GenerateRequest:
    msg = pb.GenerateRequest(protocol_version=draw(st.one_of(st.just(1), U32)), request_id=draw(text),
                             model_id=draw(st.one_of(st.just("small"), text)), max_tokens=draw(st.one_of(
                                 st.integers(0, 5), U32)), deadline_ms=draw(st.one_of(st.just(0), U32)),
                             continue_from=draw(text))
    if draw(st.booleans()):
        msg.sampling.CopyFrom(draw(sampling))
    which = draw(st.sampled_from(["chat", "prompt", "none"]))
    if which == "chat":
        msg.chat.messages.extend(draw(messages))
    elif which == "prompt":
        msg.prompt = draw(text)
    return msg


def serve(service, request) -> list:
    async def go() -> list:
        servicer, context = NodeServicer(service), Context()
        try:
            events = [ev async for ev in servicer.Generate(request, context)]
        except Aborted as exc:
            assert exc.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                                grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.FAILED_PRECONDITION,
                                grpc.StatusCode.RESOURCE_EXHAUSTED), (exc.code, exc.details)
            assert exc.details and context.metadata[0][0] == wire.ERROR_CLASS_KEY
            return []
        assert events and events[-1].WhichOneof("event") == "final"
        return events
    return asyncio.run(go())


def node(tmp_path: Path):
    service, _ = make(tmp_path, SMALL)
    asyncio.run(service.start())
    return service


@FUZZ
@given(data=st.binary(max_size=300))
@example(data=b"\x2a\x02\xff\xfe")  # prompt = two bytes that are not UTF-8
@example(data=pb.GenerateRequest(model_id="small", prompt="hi").SerializeToString())  # max_tokens unset
def test_random_bytes_to_generate_end_in_a_result_or_a_typed_abort(tmp_path: Path, data: bytes) -> None:
    service = node(tmp_path)
    try:
        serve(service, _lenient(pb.GenerateRequest.FromString)(data))
    finally:
        asyncio.run(service.close())


@FUZZ
@given(request=requests())
def test_random_field_values_end_in_a_result_or_a_typed_abort(tmp_path: Path, request) -> None:
    service = node(tmp_path)
    try:
        serve(service, request)
    finally:
        asyncio.run(service.close())


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_from_a_node_become_a_model_or_a_covey_error(data: bytes) -> None:
    for parse, convert, kind in ((pb.NodeInfo.FromString, lambda m: wire.info_from_pb(m, "10.0.0.2:1"), NodeInfo),
                                 (pb.GenerateEvent.FromString, wire.event_from_pb, (TokenPiece, GenerateFinal))):
        message = _lenient(parse)(data)
        if not isinstance(message, pb.NodeInfo | pb.GenerateEvent):
            continue  # refused by protobuf itself: the client sees a decode error, a typed failure
        try:
            assert isinstance(convert(message), kind)
        except CoveyError as exc:
            assert str(exc)
