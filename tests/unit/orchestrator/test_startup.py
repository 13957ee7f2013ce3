"""Start-up: remembered nodes (kept in the data dir, asked directly, ending the discovery wait early) and the embedded node."""

from __future__ import annotations

import asyncio
import json

from covey.orchestrator.node_memory import NodeMemory
from covey.orchestrator.pool import NodePool
from covey.orchestrator.client import GrpcNodeClient
from covey.wiring import wait_for_first_nodes
from covey.settings import OrchestratorSettings

from fakes import FakeNodeClient, node_info

SMOL = "smollm2-135m-instruct-q4_1"
DAY = 86400.0


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class DeadClient(FakeNodeClient):
    async def healthy(self):
        raise ConnectionRefusedError("connection refused")


class SlowClient(FakeNodeClient):
    async def healthy(self):
        await asyncio.sleep(30)
        return True


def remember(path, *nodes, clock=None):
    memory = NodeMemory(path, max_age_s=7 * DAY, clock=clock or Clock())
    for n in nodes:
        memory.note(n)
    memory.save()


def test_remembers_discovered_nodes_across_runs_and_forgets_old_ones(tmp_path) -> None:
    path, clock = tmp_path / "cache" / "nodes.json", Clock()
    remember(path, node_info("den", {SMOL: 10}, source="zeroconf"), node_info("pinned", {SMOL: 10}),
             node_info("embedded", {SMOL: 10}, source="embedded"), clock=clock)
    later = NodeMemory(path, max_age_s=7 * DAY, clock=Clock(clock.t + DAY))
    assert [(n.name, n.address) for n in later.recall()] == [("den", "den:1")]  # static and embedded come from settings
    assert NodeMemory(path, max_age_s=7 * DAY, clock=Clock(clock.t + 8 * DAY)).recall() == ()


def test_unreadable_memory_is_ignored(tmp_path) -> None:
    path = tmp_path / "nodes.json"
    for junk in ("{not json", json.dumps({"version": 99, "nodes": []}),
                 json.dumps({"version": 1, "nodes": [{"node_id": "x"}, "y"]})):
        path.write_text(junk)
        assert NodeMemory(path, max_age_s=DAY).recall() == ()
    path.write_bytes(b"\xff\xfe")
    assert NodeMemory(path, max_age_s=DAY).recall() == ()


async def test_recall_adds_the_remembered_nodes_that_answer(tmp_path) -> None:
    path = tmp_path / "nodes.json"
    up, down, slow = (node_info(n, {SMOL: 10}, source="zeroconf") for n in ("up", "down", "slow"))
    remember(path, up, down, slow)
    clients = {"up:1": FakeNodeClient(up.model_copy(update={"source": "static"})), "down:1": DeadClient(down),
               "slow:1": SlowClient(slow)}
    asked: list[str] = []

    def factory(address: str):
        asked.append(address)
        return clients[address]

    pool = NodePool(OrchestratorSettings(discover=False, embedded="never"), client_factory=factory,
                    memory=NodeMemory(path, max_age_s=DAY, clock=Clock()))
    await pool.start()
    try:
        found = await asyncio.wait_for(pool.recall(0.2), 5)
        assert [n.name for n in found] == ["up"]
        assert sorted(asked) == ["down:1", "slow:1", "up:1"]
        (node,) = pool.nodes()
        assert node.name == "up" and node.source == "zeroconf"  # dropped by health checks like any discovered node
    finally:
        await pool.close()


async def test_a_remembered_node_ends_the_discovery_wait_and_is_remembered_again(tmp_path) -> None:
    path, clock = tmp_path / "nodes.json", Clock()
    den = node_info("den", {SMOL: 10}, source="zeroconf")
    remember(path, den, clock=clock)
    settings = OrchestratorSettings(discover=False, embedded="never", discovery_wait_s=30.0, recall_timeout_s=0.5)
    later = Clock(clock.t + 60)
    pool = NodePool(settings, client_factory=lambda a: FakeNodeClient(den),
                    memory=NodeMemory(path, max_age_s=DAY, clock=later))
    await pool.start()
    try:
        await asyncio.wait_for(wait_for_first_nodes(pool, settings), 5)  # not the 30 s window
        assert [n.name for n in pool.nodes()] == ["den"]
    finally:
        await pool.close()
    saved = json.loads(path.read_text())["nodes"]
    assert [(n["name"], n["last_seen"]) for n in saved] == [("den", later.t)]


async def test_nothing_remembered_waits_the_window(tmp_path) -> None:
    settings = OrchestratorSettings(discover=False, embedded="never", discovery_wait_s=0.3)
    pool = NodePool(settings, memory=NodeMemory(tmp_path / "nodes.json", max_age_s=DAY), client_factory=GrpcNodeClient)
    await pool.start()
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        await wait_for_first_nodes(pool, settings)
        assert loop.time() - start >= 0.25 and pool.nodes() == ()
    finally:
        await pool.close()
    assert not (tmp_path / "nodes.json").exists()  # nothing seen, nothing written


class FakeBrowser:
    """Stands in for ZeroconfDirectory (no multicast in unit tests); can 'hear' one node after a delay."""

    heard: object = None

    def __init__(self, directory, interface=None, admit=None) -> None:
        self.directory = directory
        self.closed = False

    async def start(self) -> None:
        if FakeBrowser.heard is not None:
            asyncio.get_running_loop().call_later(0.05, self.directory.upsert, FakeBrowser.heard)

    async def close(self) -> None:
        self.closed = True


class FakeEmbedded(FakeNodeClient):
    made: list["FakeEmbedded"] = []

    def __init__(self) -> None:
        super().__init__(node_info("embedded", {SMOL: 10}, source="embedded"))
        self.closed = False
        FakeEmbedded.made.append(self)

    async def close(self):
        self.closed = True


async def _build_pool(monkeypatch, tmp_path, heard):
    from covey import wiring
    from covey.settings import Settings

    order: list[str] = []
    real_wait = wiring.wait_for_first_nodes

    async def fake_embedded(_settings):
        order.append("embedded node starts")
        return FakeEmbedded()

    async def wait(pool, o):
        await real_wait(pool, o)
        order.append("discovery window over")

    FakeBrowser.heard, FakeEmbedded.made = heard, []
    monkeypatch.setattr(wiring, "ZeroconfDirectory", FakeBrowser)
    monkeypatch.setattr(wiring, "embedded_client", fake_embedded)
    monkeypatch.setattr(wiring, "wait_for_first_nodes", wait)
    settings = Settings(data_dir=tmp_path, orchestrator={"discover": True, "discovery_wait_s": 0.5, "embedded": "auto"})
    pool = await wiring.build_pool(settings)
    return pool, order


async def test_a_lone_device_loads_the_embedded_node_during_the_discovery_window(monkeypatch, tmp_path):
    pool, order = await _build_pool(monkeypatch, tmp_path, heard=None)
    try:
        assert order == ["embedded node starts", "discovery window over"]  # loaded during the window, not after
        assert [n.name for n in pool.nodes()] == ["embedded"]
    finally:
        await pool.close()


async def test_the_early_embedded_node_is_closed_when_discovery_finds_a_node(monkeypatch, tmp_path):
    den = node_info("den", {SMOL: 10}, source="zeroconf")
    pool, _order = await _build_pool(monkeypatch, tmp_path, heard=den)
    try:
        assert [n.name for n in pool.nodes()] == ["den"]
        (embedded,) = FakeEmbedded.made
        assert embedded.closed
    finally:
        await pool.close()
    assert [n["name"] for n in json.loads((tmp_path / "cache" / "nodes.json").read_text())["nodes"]] == ["den"]


async def test_the_embedded_node_serves_both_bundled_models_without_a_self_benchmark(monkeypatch, tmp_path):
    from covey.device_node import runner
    from covey import wiring
    from covey.settings import Settings

    seen, preloaded = [], []

    class Service:
        async def start(self):
            pass

        def preload(self, model_id):
            preloaded.append(model_id)

    def build_node(settings):
        seen.append(settings.node)
        return Service()

    monkeypatch.setattr(runner, "build_node", build_node)
    await wiring.embedded_client(Settings(data_dir=tmp_path))
    await wiring.embedded_client(Settings(data_dir=tmp_path, orchestrator={
        "embedded_model": "gemma3-270m-q4_k_m", "embedded_extra_models": ["gemma3-270m-q4_k_m"]}))
    assert seen[0].models == ["smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"] and not seen[0].self_benchmark
    assert seen[0].name == "embedded"
    assert seen[1].models == ["gemma3-270m-q4_k_m"]
    assert preloaded == ["smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"]  # the default model starts loading
