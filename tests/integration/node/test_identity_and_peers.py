"""Node identity across restarts, and the client refusing a node that speaks another protocol version."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from covey.device_node.host import load_identity
from covey.errors import IncompatibleProtocol
from covey.orchestrator.client import GrpcNodeClient
from covey.types import GenerateRequest, ModelId, RequestId
from covey.v1 import node_pb2 as pb
from covey.v1 import node_pb2_grpc as pb_grpc

from .conftest import NodeThread


async def node_id_of(data_dir: Path, name: str = "n") -> str:
    node = NodeThread(data_dir, name=name).start()
    try:
        client = GrpcNodeClient(node.address)
        try:
            return (await client.info()).node_id
        finally:
            await client.close()
    finally:
        node.stop()


async def test_node_id_is_stable_across_restarts_and_differs_per_data_dir(tmp_path: Path) -> None:
    first = await node_id_of(tmp_path / "a")
    again = await node_id_of(tmp_path / "a", name="renamed")  # the name may change, the id does not
    other = await node_id_of(tmp_path / "b")
    assert first == again and first != other
    assert (tmp_path / "a" / "node" / "identity.json").exists()


class FutureNodeServicer(pb_grpc.NodeServicer):
    """A node from a future covey: answers Info with protocol v99 and records what it was asked."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def Info(self, request: pb.InfoRequest, context) -> pb.NodeInfo:
        self.seen.append(f"info v{request.protocol_version}")
        return pb.NodeInfo(protocol_version=99, node_id="future", name="future-node")

    async def Generate(self, request: pb.GenerateRequest, context) -> AsyncIterator[pb.GenerateEvent]:
        self.seen.append(f"generate v{request.protocol_version}")
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                            f"client speaks covey protocol v{request.protocol_version}, this node speaks v99")
        yield pb.GenerateEvent()  # pragma: no cover - abort raises


@pytest.fixture
async def future_node() -> AsyncIterator[tuple[str, FutureNodeServicer]]:
    servicer = FutureNodeServicer()
    server = grpc.aio.server()
    pb_grpc.add_NodeServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        await server.stop(0)


async def test_client_refuses_a_node_answering_with_another_protocol_version(future_node) -> None:
    address, servicer = future_node
    client = GrpcNodeClient(address)
    try:
        with pytest.raises(IncompatibleProtocol) as info_exc:
            await client.info()
        req = GenerateRequest(request_id=RequestId("r"), model_id=ModelId("m"), prompt="Hi", max_tokens=2)
        with pytest.raises(IncompatibleProtocol) as gen_exc:
            [ev async for ev in client.generate(req)]
    finally:
        await client.close()
    # Info asks in the newest version (v2); a request without a constraint needs only v1.
    assert servicer.seen == ["info v2", "generate v1"]
    assert "v99" in str(info_exc.value) and "v1" in str(info_exc.value) and address in str(info_exc.value)
    assert "upgrade covey" in str(info_exc.value)
    assert "v99" in str(gen_exc.value) and "v1" in str(gen_exc.value)


async def test_two_nodes_running_on_one_data_dir_have_their_own_ids(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    first = NodeThread(shared, name="first").start()
    second = NodeThread(shared, name="second").start()
    try:
        ids = []
        for n in (first, second):
            client = GrpcNodeClient(n.address)
            try:
                ids.append((await client.info()).node_id)
            finally:
                await client.close()
        assert ids[0] != ids[1] and ids[0] == load_identity(shared).node_id
        assert first.service.ready_notes() == []
        (note,) = second.service.ready_notes()
        assert f"takes its own identity {ids[1]} (identity-2.json)" in note and str(shared) in note
    finally:
        second.stop()
        first.stop()
    assert await node_id_of(shared) == ids[0]  # released on close: the data dir's own id again
