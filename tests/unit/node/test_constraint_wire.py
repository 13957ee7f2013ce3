"""Protocol version 2: a GenerateRequest may carry a grammar or a JSON schema; version-1 peers still work
for requests without one, and are refused by name for requests with one."""

from __future__ import annotations

import pytest

from covey import errors, wire
from covey.device_node.server import check_request_version, spoken_version
from covey.orchestrator.client import GrpcNodeClient, check_peer_protocol
from covey.types import (
    PROTOCOL_VERSION, SUPPORTED_PROTOCOLS, Constraint, GenerateRequest, ModelId, RequestId, spoken_protocols,
)
from covey.v1 import node_pb2 as pb

GRAMMAR = 'root ::= "yes" | "no"'
SCHEMA = '{"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}'


def a_request(constraint: Constraint | None = None) -> GenerateRequest:
    return GenerateRequest(request_id=RequestId("r"), model_id=ModelId("m"), prompt="Is it?", constraint=constraint)


@pytest.mark.parametrize("kind,text", [("grammar", GRAMMAR), ("json_schema", SCHEMA)])
def test_a_constraint_round_trips_over_the_wire(kind: str, text: str) -> None:
    req = a_request(Constraint(kind=kind, text=text))
    assert req.protocol_needed == 2
    msg = pb.GenerateRequest.FromString(wire.request_to_pb(req, req.protocol_needed).SerializeToString())
    assert msg.protocol_version == 2 and msg.constraint.WhichOneof("kind") == kind
    back = wire.request_from_pb(msg)
    assert back.constraint == req.constraint


def test_a_request_without_a_constraint_is_a_version_1_request() -> None:
    req = a_request()
    assert req.protocol_needed == 1
    msg = wire.request_to_pb(req, req.protocol_needed)
    assert msg.protocol_version == 1 and not msg.HasField("constraint")
    assert wire.request_from_pb(msg).constraint is None


def test_the_node_takes_both_versions_and_refuses_others_naming_them() -> None:
    assert SUPPORTED_PROTOCOLS == (1, 2) and PROTOCOL_VERSION == 2
    check_request_version(pb.GenerateRequest(protocol_version=1, model_id="m", prompt="x"))
    check_request_version(pb.GenerateRequest(protocol_version=2, model_id="m", prompt="x",
                                             constraint=pb.Constraint(grammar=GRAMMAR)))
    with pytest.raises(errors.IncompatibleProtocol, match=r"client speaks covey protocol v3, this node speaks v2 "
                                                           r"\(and v1\)"):
        check_request_version(pb.GenerateRequest(protocol_version=3, model_id="m", prompt="x"))


def test_a_constraint_in_a_version_1_request_is_refused_naming_both_versions() -> None:
    with pytest.raises(errors.IncompatibleProtocol) as err:
        check_request_version(pb.GenerateRequest(protocol_version=1, model_id="m", prompt="x",
                                                 constraint=pb.Constraint(grammar=GRAMMAR)))
    assert "v1" in str(err.value) and "needs v2" in str(err.value)


def test_the_node_answers_a_version_1_client_as_a_version_1_node() -> None:
    assert spoken_version(1) == 1  # a v1 client refuses any other version in Info
    assert spoken_version(2) == 2 and spoken_version(0) == PROTOCOL_VERSION and spoken_version(7) == 2


def test_the_orchestrator_accepts_version_1_and_2_nodes_and_names_versions_when_refusing() -> None:
    check_peer_protocol(1, "h:1")
    check_peer_protocol(2, "h:1")
    with pytest.raises(errors.IncompatibleProtocol, match=r"node at h:1 speaks covey protocol v9, this orchestrator "
                                                           r"speaks v2 \(and v1\)"):
        check_peer_protocol(9, "h:1")
    assert spoken_protocols() == "v2 (and v1)" and spoken_protocols(prefix="") == "2 (and 1)"


async def test_a_constrained_request_to_a_version_1_node_is_refused_before_it_is_sent() -> None:
    client = GrpcNodeClient("127.0.0.1:1")  # nothing listens: the refusal must come before any call
    client.peer_version = 1
    try:
        with pytest.raises(errors.IncompatibleProtocol) as err:
            async for _ in client.generate(a_request(Constraint(kind="grammar", text=GRAMMAR))):
                pass
        assert "speaks covey protocol v1" in str(err.value) and "needs v2" in str(err.value)
    finally:
        await client.close()
