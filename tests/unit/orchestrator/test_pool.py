"""NodePool: answers in flight count in the snapshots placement sees; hand-registered nodes come back."""

from __future__ import annotations

import asyncio

from covey.orchestrator.pool import NodePool
from covey.orchestrator.client import GrpcNodeClient
from covey.settings import OrchestratorSettings
from covey.types import GenerateRequest, Message, ModelId, RequestId

from fakes import FakeNodeClient, node_info
from polling import until

SMOL = "smollm2-135m-instruct-q4_1"


class GatedClient(FakeNodeClient):
    """Streams one piece, then waits for `release` before finishing; `healthy` is switchable."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.up = True
        self.checked = asyncio.Event()

    async def generate(self, req):
        async for ev in super().generate(req):
            self.started.set()
            await self.release.wait()
            yield ev

    async def healthy(self):
        self.checked.set()
        return self.up


def _req() -> GenerateRequest:
    return GenerateRequest(request_id=RequestId("r"), model_id=ModelId(SMOL),
                           messages=(Message(role="user", content="hi"),), max_tokens=4)


def _depth(pool: NodePool) -> int:
    (node,) = pool.nodes()
    offer = node.offer(SMOL)
    assert offer is not None
    return offer.queue_depth


async def test_answers_in_flight_raise_the_queue_depth_until_they_end() -> None:
    pool = NodePool(OrchestratorSettings(discover=False, embedded="never"), client_factory=GrpcNodeClient)
    client = GatedClient(node_info("den", {SMOL: 50}))
    await pool.add_client(client)
    node = pool.nodes()[0]
    assert _depth(pool) == 0

    async def drain() -> None:
        async for _ in pool.generate(node, _req()):
            pass

    tasks = [asyncio.create_task(drain()) for _ in range(3)]
    await client.started.wait()
    await until(lambda: _depth(pool) == 3, what="all three answers in flight")
    assert _depth(pool) == 3
    client.release.set()
    await asyncio.gather(*tasks)
    assert _depth(pool) == 0
    await pool.close()


async def test_a_stream_that_fails_still_leaves_the_in_flight_count() -> None:
    pool = NodePool(OrchestratorSettings(discover=False, embedded="never"), client_factory=GrpcNodeClient)
    client = FakeNodeClient(node_info("den", {SMOL: 50}), die_after=1)
    await pool.add_client(client)
    node = pool.nodes()[0]
    try:
        async for _ in pool.generate(node, _req()):
            pass
    except Exception as exc:
        assert "unavailable" in str(exc)
    assert _depth(pool) == 0
    await pool.close()


async def test_a_forgotten_hand_registered_node_comes_back_when_it_answers_again() -> None:
    pool = NodePool(OrchestratorSettings(discover=False, embedded="never", health_interval_s=0.01),
                    client_factory=GrpcNodeClient)
    client = GatedClient(node_info("gpu-box", {SMOL: 50}))
    await pool.start()
    await pool.add_client(client)
    node = pool.nodes()[0]
    client.up = False
    pool.forget(node, "failed mid-answer: connection reset")
    assert pool.nodes() == ()
    # While it does not answer it stays out; the revival loop keeps asking.
    for _ in range(2):
        client.checked.clear()
        await asyncio.wait_for(client.checked.wait(), 5.0)
    assert pool.nodes() == ()
    client.up = True
    assert await pool.directory.wait_for(lambda d: bool(d.nodes()), 5.0)
    assert pool.nodes()[0].name == "gpu-box"
    await pool.close()


async def test_the_client_for_a_node_is_made_once_per_address() -> None:
    made: list[str] = []

    def factory(address: str):
        made.append(address)
        return FakeNodeClient(node_info("x", {SMOL: 1}))

    pool = NodePool(OrchestratorSettings(discover=False, embedded="never"), client_factory=factory)
    remote = node_info("den", {SMOL: 50})
    assert pool.client(remote) is pool.client(remote)
    assert made == ["den:1"]
    await pool.close()
