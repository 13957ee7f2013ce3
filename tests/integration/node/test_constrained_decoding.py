"""Protocol version 2 on real parts: llama.cpp constrains decoding with a GBNF grammar or a JSON schema
sent over real gRPC on 127.0.0.1, version-1 clients are still served, and a version-1 node (an old
servicer on a real port) is spoken to in version 1 and refused constrained requests by name."""

from __future__ import annotations

import ast
import json
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest

from covey.device_node.service import collect
from covey.errors import BadRequest, IncompatibleProtocol
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.tool_steps import PROGRAM_CONSTRAINT, PROGRAM_START, program_messages
from covey.types import Constraint, GenerateRequest, Message, ModelId, RequestId, Sampling
from covey.v1 import node_pb2 as pb
from covey.v1 import node_pb2_grpc as pb_grpc

from .conftest import SMOLLM, NodeThread


@pytest.fixture(scope="module")
def roomy_node(tmp_path_factory) -> Iterator[NodeThread]:
    n = NodeThread(tmp_path_factory.mktemp("constrained-node"), n_ctx=1024, name="constrained").start()
    try:
        yield n
    finally:
        n.stop()


def ask(text: str, constraint: Constraint | None = None, *, max_tokens: int = 24, **kw) -> GenerateRequest:
    return GenerateRequest(request_id=RequestId("c"), model_id=ModelId(SMOLLM), max_tokens=max_tokens,
                           messages=(Message(role="user", content=text),), constraint=constraint,
                           sampling=Sampling(temperature=0.0, seed=1), **kw)


async def test_a_grammar_constrains_what_the_node_generates(roomy_node: NodeThread) -> None:
    client = GrpcNodeClient(roomy_node.address)
    try:
        info = await client.info()
        grammar = Constraint(kind="grammar", text='root ::= ("red" | "green" | "blue") "."')
        text, final = await collect(client.generate(ask("Write a long poem about the sea.", grammar)))
    finally:
        await client.close()
    assert info.protocol_version == 2 and client.peer_version == 2
    assert text in ("red.", "green.", "blue.") and final.completion_tokens > 0


async def test_a_json_schema_makes_the_output_one_valid_tool_call(roomy_node: NodeThread) -> None:
    schema = {"type": "object", "properties": {
        "tool": {"enum": ["calculator"]},
        "arguments": {"type": "object", "properties": {"a": {"type": "integer"}, "op": {"enum": ["+", "-", "*", "/"]},
                                                       "b": {"type": "integer"}},
                      "required": ["a", "op", "b"]}},
        "required": ["tool", "arguments"]}
    client = GrpcNodeClient(roomy_node.address)
    try:
        text, final = await collect(client.generate(
            ask("What is 17 times 23? Call the calculator.", Constraint(kind="json_schema", text=json.dumps(schema)),
                max_tokens=64)))
    finally:
        await client.close()
    call = json.loads(text)
    assert call["tool"] == "calculator" and call["arguments"]["op"] in "+-*/"
    assert isinstance(call["arguments"]["a"], int) and isinstance(call["arguments"]["b"], int)


async def test_the_program_grammar_makes_smollm2_write_a_program_that_parses(roomy_node: NodeThread) -> None:
    client = GrpcNodeClient(roomy_node.address)
    req = GenerateRequest(request_id=RequestId("p"), model_id=ModelId(SMOLLM), max_tokens=120,
                          messages=tuple(program_messages("Sam has 7 bags with 6 marbles in each bag. How many "
                                                          "marbles does he have?")),
                          sampling=Sampling(temperature=0.0, seed=0), continue_from=PROGRAM_START,
                          constraint=PROGRAM_CONSTRAINT)
    try:
        text, final = await collect(client.generate(req))
    finally:
        await client.close()
    assert text.endswith(")\n```") and "\nprint(" in text, text
    tree = ast.parse(text.removesuffix("```"))
    *assignments, printed = tree.body
    assert assignments and all(isinstance(a, ast.Assign) for a in assignments)
    assert ast.unparse(printed).startswith("print(") and final.completion_tokens > 0


async def test_a_grammar_that_does_not_compile_is_a_bad_request_and_the_node_still_serves(
        roomy_node: NodeThread) -> None:
    client = GrpcNodeClient(roomy_node.address)
    try:
        with pytest.raises(BadRequest, match="GBNF grammar could not be compiled"):
            await collect(client.generate(ask("Hi", Constraint(kind="grammar", text="root ::= ( unclosed"))))
        text, _ = await collect(client.generate(ask("Name a colour.", max_tokens=4)))
    finally:
        await client.close()
    assert text


def test_a_version_1_client_is_answered_as_a_version_1_node(roomy_node: NodeThread) -> None:
    with grpc.insecure_channel(roomy_node.address) as channel:
        stub = pb_grpc.NodeStub(channel)
        info = stub.Info(pb.InfoRequest(protocol_version=1), timeout=10)
        events = list(stub.Generate(pb.GenerateRequest(protocol_version=1, request_id="v1", model_id=SMOLLM,
                                                       prompt="Hello", max_tokens=3), timeout=30))
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.Generate(pb.GenerateRequest(protocol_version=1, request_id="v1c", model_id=SMOLLM,
                                                  prompt="Hello", max_tokens=3,
                                                  constraint=pb.Constraint(grammar='root ::= "a"')), timeout=30))
    assert info.protocol_version == 1
    assert events[-1].WhichOneof("event") == "final"
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "needs v2" in refused.value.details()


class VersionOneNode(pb_grpc.NodeServicer):
    """What a covey node of protocol version 1 does: it refuses every other version by name."""

    def __init__(self) -> None:
        self.generate_versions: list[int] = []

    async def _refuse(self, version: int, context) -> None:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                            f"client speaks covey protocol v{version}, this node speaks v1",
                            trailing_metadata=(("covey-error", "IncompatibleProtocol"),))

    async def Info(self, request, context):
        if request.protocol_version and request.protocol_version != 1:
            await self._refuse(request.protocol_version, context)
        return pb.NodeInfo(protocol_version=1, node_id="old", name="old-node")

    async def Generate(self, request, context) -> AsyncIterator[pb.GenerateEvent]:
        self.generate_versions.append(request.protocol_version)
        if request.protocol_version and request.protocol_version != 1:
            await self._refuse(request.protocol_version, context)
        yield pb.GenerateEvent(piece=pb.TokenPiece(text="hi", logprobs=[-0.1], token_ids=[1]))
        yield pb.GenerateEvent(final=pb.Final(finish_reason=pb.FINISH_REASON_STOP, completion_tokens=1,
                                              node_id="old", model_id=request.model_id))


async def test_a_version_1_node_is_spoken_to_in_version_1_and_refuses_nothing_it_can_do() -> None:
    servicer = VersionOneNode()
    server = grpc.aio.server()
    pb_grpc.add_NodeServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = GrpcNodeClient(f"127.0.0.1:{port}")
    try:
        info = await client.info()
        text, _ = await collect(client.generate(ask("Hello")))
        with pytest.raises(IncompatibleProtocol) as err:
            await collect(client.generate(ask("Hello", Constraint(kind="grammar", text='root ::= "a"'))))
    finally:
        await client.close()
        await server.stop(None)
    assert info.protocol_version == 1 and client.peer_version == 1
    assert text == "hi" and servicer.generate_versions == [1]  # the constrained request was never sent
    assert "speaks covey protocol v1" in str(err.value) and "needs v2" in str(err.value)
