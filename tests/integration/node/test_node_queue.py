"""The bounded per-model queue on a real node: cancellation frees the slot, a full queue refuses at once."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from covey.device_node.service import collect
from covey.errors import NodeBusy
from covey.orchestrator.client import GrpcNodeClient
from covey.types import FinishReason, GenerateRequest, ModelId, RequestId, Sampling, TokenPiece
from covey.v1 import node_pb2 as pb
from covey.v1 import node_pb2_grpc as pb_grpc

from .conftest import SMOLLM, NodeThread

# A raw prompt SmolLM2 continues greedily for 300+ tokens: it runs to the token budget unless stopped.
LONG = GenerateRequest(request_id=RequestId("long"), model_id=ModelId(SMOLLM), prompt="Once upon a time",
                       max_tokens=200, sampling=Sampling(temperature=0.0))
SHORT = GenerateRequest(request_id=RequestId("short"), model_id=ModelId(SMOLLM), prompt="The sky is",
                        max_tokens=3, sampling=Sampling(temperature=0.0))


async def start_long(client: GrpcNodeClient, pieces: int = 2):
    """A long generation with its first pieces already received, so it surely holds the slot."""
    stream = client.generate(LONG)
    got = [await anext(stream) for _ in range(pieces)]
    assert all(isinstance(p, TokenPiece) for p in got)
    return stream


async def test_the_long_prompt_really_runs_to_its_budget(node: NodeThread) -> None:
    # The control for the tests below: uncancelled, LONG fills its budget (so a CANCELLED there is real).
    client = GrpcNodeClient(node.address)
    try:
        _, final = await collect(client.generate(LONG.model_copy(update={"max_tokens": 40})))
    finally:
        await client.close()
    assert final.finish_reason is FinishReason.LENGTH and final.completion_tokens == 40


@pytest.mark.parametrize("how", ["close-stream", "close-channel"])
async def test_client_disconnect_mid_stream_stops_generation_and_frees_the_slot(node: NodeThread, how: str) -> None:
    client = GrpcNodeClient(node.address)
    stream = await start_long(client)
    assert node.depth() == 1
    node.runs.clear()
    if how == "close-stream":
        await stream.aclose()
    else:
        await client.close()
    node.wait_depth(0)
    (stats,) = node.wait_runs(1)
    assert stats.finish is FinishReason.CANCELLED and stats.completion_tokens < 100
    other = GrpcNodeClient(node.address)
    try:
        text, final = await collect(other.generate(SHORT))
    finally:
        await other.close()
        await client.close()
    assert final.completion_tokens == 3 and text


async def test_next_request_right_after_a_cancel_is_served_not_refused(node: NodeThread) -> None:
    client = GrpcNodeClient(node.address)
    try:
        stream = await start_long(client)
        await stream.aclose()
        # No waiting for the node to notice: the slot of a cancelled request is not counted as busy.
        text, final = await collect(client.generate(SHORT))
    finally:
        await client.close()
    assert final.completion_tokens == 3 and text
    node.wait_depth(0)


async def test_full_queue_refuses_at_once_with_resource_exhausted(node: NodeThread) -> None:
    client = GrpcNodeClient(node.address)
    second = GrpcNodeClient(node.address)
    node.runs.clear()
    try:
        stream = await start_long(client)
        with pytest.raises(NodeBusy) as exc:
            # wait_for guards against a hang: a full queue must answer, not wait for the slot.
            await asyncio.wait_for(collect(second.generate(SHORT)), timeout=20)
        msg = str(exc.value)
        assert "limit 1" in msg and SMOLLM in msg and "add another node" in msg
        info = await second.info()
        assert info.offer(SMOLLM).queue_depth == 1  # Info still answers while the model is busy
        await stream.aclose()
    finally:
        await client.close()
        await second.close()
    node.wait_depth(0)
    assert [s.finish for s in node.wait_runs(1)] == [FinishReason.CANCELLED]  # the first was in flight all along


def test_full_queue_status_code_on_the_wire(node: NodeThread) -> None:
    with grpc.insecure_channel(node.address) as channel:
        stub = pb_grpc.NodeStub(channel)
        req = pb.GenerateRequest(protocol_version=1, request_id="a", model_id=SMOLLM, prompt=LONG.prompt,
                                 max_tokens=200)
        first = stub.Generate(req, timeout=60)
        next(first)
        with pytest.raises(grpc.RpcError) as exc:
            list(stub.Generate(req, timeout=20))
        first.cancel()
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    node.wait_depth(0)


async def test_deadline_ends_with_the_text_so_far_not_a_transport_error(node: NodeThread) -> None:
    # The node stops at deadline_ms and sends a Final(DEADLINE); the client must wait for it rather than
    # cut the call at the same instant (which would look like a dead node and trigger a failover).
    client = GrpcNodeClient(node.address)
    try:
        text, final = await collect(client.generate(LONG.model_copy(update={"deadline_ms": 300})))
    finally:
        await client.close()
    assert final.finish_reason is FinishReason.DEADLINE
    assert 0 < final.completion_tokens < 200 and text.strip()
    node.wait_depth(0)


CLIENT_SCRIPT = """
import sys, time, grpc
from covey.v1 import node_pb2 as pb, node_pb2_grpc as pb_grpc
stub = pb_grpc.NodeStub(grpc.insecure_channel(sys.argv[1]))
stream = stub.Generate(pb.GenerateRequest(protocol_version=1, request_id="k", model_id=sys.argv[2],
                                          prompt="Once upon a time", max_tokens=200))
next(stream)
print("streaming", flush=True)
time.sleep(60)
"""


def test_client_process_killed_mid_stream_frees_the_slot(node: NodeThread) -> None:
    import signal
    import subprocess
    import sys

    node.runs.clear()
    proc = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, node.address, SMOLLM], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "streaming"
        assert node.depth() == 1
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    node.wait_depth(0)
    (stats,) = node.wait_runs(1)
    assert stats.finish is FinishReason.CANCELLED
