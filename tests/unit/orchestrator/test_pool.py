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


class StallingClient(FakeNodeClient):
    """Sends one piece, then nothing at all (a node that froze mid-answer)."""

    async def generate(self, req):
        async for ev in super().generate(req):
            yield ev
            await asyncio.Event().wait()


async def test_a_stream_silent_past_the_idle_deadline_is_abandoned_as_unavailable() -> None:
    from covey.errors import NodeUnavailable

    pool = NodePool(OrchestratorSettings(discover=False, embedded="never", stream_idle_s=0.05), client_factory=GrpcNodeClient)
    await pool.add_client(StallingClient(node_info("den", {SMOL: 50})))
    node = pool.nodes()[0]
    got = []
    try:
        async for ev in pool.generate(node, _req()):
            got.append(ev)
        raise AssertionError("the stream should have been abandoned")
    except NodeUnavailable as exc:
        assert "'den' sent nothing for 0.05 s mid-answer" in str(exc) and "stream_idle_s" in str(exc)
    assert len(got) == 1 and _depth(pool) == 0
    await pool.close()


async def test_the_first_piece_may_take_longer_than_the_idle_deadline() -> None:
    """The wait for the first piece covers the node's queue and prompt: bounded by the deadline and keepalive."""
    pool = NodePool(OrchestratorSettings(discover=False, embedded="never", stream_idle_s=0.01), client_factory=GrpcNodeClient)
    client = GatedClient(node_info("den", {SMOL: 50}), words=("one",))
    await pool.add_client(client)
    node = pool.nodes()[0]

    async def drain() -> list:
        return [ev async for ev in pool.generate(node, _req())]

    task = asyncio.create_task(drain())
    await client.started.wait()
    await asyncio.sleep(0.05)
    client.release.set()
    events = await task
    assert [getattr(e, "text", None) for e in events][:1] == ["one"] and len(events) == 2
    await pool.close()


async def test_dropping_a_node_from_the_directory_aborts_its_streams_at_once() -> None:
    from covey.errors import NodeUnavailable

    pool = NodePool(OrchestratorSettings(discover=False, embedded="never"), client_factory=GrpcNodeClient)
    frozen = GatedClient(node_info("den", {SMOL: 50}))
    other = GatedClient(node_info("attic", {SMOL: 50}))
    await pool.add_client(frozen)
    await pool.add_client(other)
    den, attic = sorted(pool.nodes(), key=lambda n: n.name != "den")

    async def drain(node) -> list:
        return [ev async for ev in pool.generate(node, _req())]

    on_den = [asyncio.create_task(drain(den)) for _ in range(2)]
    on_attic = asyncio.create_task(drain(attic))
    await frozen.started.wait()
    await other.started.wait()
    pool.forget(den, "failed 2 health checks")
    for task in on_den:
        try:
            await asyncio.wait_for(task, 5.0)
            raise AssertionError("the stream should have been aborted")
        except NodeUnavailable as exc:
            assert "'den' left the directory mid-answer (failed 2 health checks)" in str(exc)
    assert not on_attic.done()
    other.release.set()
    assert len(await on_attic) == 3  # the other node's answer is untouched
    await pool.close()


async def test_a_reservation_counts_from_placement_until_its_stream_ends() -> None:
    from covey.orchestrator.pool import RESERVATION_S

    now = [100.0]
    pool = NodePool(OrchestratorSettings(discover=False, embedded="never"), clock=lambda: now[0], client_factory=GrpcNodeClient)
    client = GatedClient(node_info("den", {SMOL: 50}))
    await pool.add_client(client)
    node = pool.nodes()[0]
    pool.reserve(node, SMOL)
    pool.reserve(node, SMOL)
    assert _depth(pool) == 2

    async def drain() -> None:
        async for _ in pool.generate(node, _req()):
            pass

    task = asyncio.create_task(drain())
    await client.started.wait()
    assert _depth(pool) == 2  # one reservation became the stream; the other still waits
    pool.release(node, SMOL)
    assert _depth(pool) == 1
    client.release.set()
    await task
    assert _depth(pool) == 0
    pool.reserve(node, SMOL)  # a placement whose answer never reached the node
    now[0] += RESERVATION_S + 1
    assert _depth(pool) == 0
    await pool.close()


class RecordingBrowser:
    """Stands in for ZeroconfDirectory: records how it was made, started and closed; 'hears' one node."""

    def __init__(self, directory, *, interface, admit, heard=None) -> None:
        self.directory, self.interface, self.admit, self.heard = directory, interface, admit, heard
        self.seen: list[str] = []

    async def start(self) -> None:
        self.seen.append("start")
        if self.heard is not None:
            self.directory.upsert(self.heard)

    async def close(self) -> None:
        self.seen.append("close")


async def test_a_pool_starts_the_browser_it_is_given_on_its_directory_and_closes_it() -> None:
    made: list[RecordingBrowser] = []
    den = node_info("den", {SMOL: 50}, source="zeroconf")

    def browser_factory(directory, *, interface, admit):
        made.append(RecordingBrowser(directory, interface=interface, admit=admit, heard=den))
        return made[-1]

    async def admit(node):
        return None

    pool = NodePool(OrchestratorSettings(discover=True, discovery_interface="127.0.0.1", embedded="never"),
                    client_factory=lambda address: FakeNodeClient(den), browser_factory=browser_factory, admit=admit)
    assert made == []  # made when the pool starts, not before
    await pool.start()
    (browser,) = made
    assert browser.directory is pool.directory
    assert (browser.interface, browser.admit) == ("127.0.0.1", admit)
    assert browser.seen == ["start"]
    assert [n.name for n in pool.nodes()] == ["den"]  # what it hears is what the pool hands out
    await pool.close()
    assert browser.seen == ["start", "close"]


async def test_a_pool_with_discovery_off_never_makes_its_browser() -> None:
    made: list[object] = []

    def browser_factory(directory, *, interface, admit):
        made.append(directory)
        return RecordingBrowser(directory, interface=interface, admit=admit)

    pool = NodePool(OrchestratorSettings(discover=False, embedded="never"), client_factory=GrpcNodeClient,
                    browser_factory=browser_factory)
    await pool.start()
    await pool.close()
    assert made == []
