"""The live set of nodes the orchestrator can use: a directory plus one client per node."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import suppress

from covey.orchestrator.client import NodeClient
from covey.discovery.directory import Admit, DirectoryEvent, NodeDirectory
from covey.discovery.health import HealthChecker
from covey.discovery.browser import ZeroconfDirectory
from covey.orchestrator.node_memory import NodeMemory
from covey.settings import OrchestratorSettings
from covey.types import GenerateEvent, GenerateRequest, NodeInfo

logger = logging.getLogger(__name__)

ClientFactory = Callable[[str], NodeClient]


class NodePool:
    """Keeps the directory fed (zeroconf, static peers, health checks) and hands out clients."""

    def __init__(self, settings: OrchestratorSettings, *, client_factory: ClientFactory,
                 directory: NodeDirectory | None = None, admit: Admit | None = None,
                 memory: NodeMemory | None = None) -> None:
        """`client_factory` makes the client for a node's address (wiring passes the cluster's mutual-TLS
        one from covey.cluster.access, with `admit`); `memory` remembers recently seen nodes so an ask
        need not wait for discovery."""
        self.settings = settings
        self._admit = admit
        self.directory = directory or NodeDirectory()
        self.memory = memory
        self._factory = client_factory
        self._clients: dict[str, NodeClient] = {}
        self._inflight: dict[tuple[str, str], int] = {}
        self._local: dict[str, NodeClient] = {}
        self._browser: ZeroconfDirectory | None = None
        self._health: asyncio.Task[None] | None = None
        self._checker = HealthChecker(
            self.directory, self._check, failures=settings.health_failures, interval_s=settings.health_interval_s,
            probe=self._probe, static_peers=settings.static_peers,
        )

    async def start(self) -> None:
        if self.memory is not None:
            self.directory.subscribe(self._remember)
        if self.settings.discover:
            self._browser = ZeroconfDirectory(self.directory, interface=self.settings.discovery_interface,
                                              admit=self._admit)
            await self._browser.start()
        await self._checker.tick()  # static peers are known before the first question
        self._health = asyncio.create_task(self._run())

    async def _run(self) -> None:
        """Health rounds; nodes registered by hand (remote endpoints) come back once they answer again."""
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            await self._checker.tick()
            for node_id, client in list(self._local.items()):
                if self.directory.get(node_id) is None:
                    with suppress(Exception):
                        if await client.healthy():
                            self.directory.upsert(await client.info())

    async def recall(self, timeout_s: float) -> tuple[NodeInfo, ...]:
        """Ask the remembered nodes directly (health check, then Info); the ones that answer join the directory.

        Each node gets `timeout_s`, all at once, so a remembered laptop that is switched off costs
        no more than that. The nodes found are treated as discovered ones: health checks drop them
        when they go away, and zeroconf refreshes them when it hears them.
        """
        if self.memory is None:
            return ()
        wanted = [n for n in self.memory.recall() if self.directory.get(n.node_id) is None]

        async def ask(address: str) -> NodeInfo | None:
            client = self._clients.get(address) or self._factory(address)
            self._clients[address] = client
            try:
                async with asyncio.timeout(timeout_s):
                    if not await client.healthy():
                        return None
                    info = await client.info()
            except Exception as exc:  # down, moved, or another program on that port now
                logger.debug("remembered node at %s did not answer: %s", address, exc)
                return None
            return info.model_copy(update={"address": address, "source": "zeroconf"})

        found = await asyncio.gather(*(ask(n.address) for n in wanted))
        out = []
        for info in found:
            if info is not None and self.directory.get(info.node_id) is None:
                self.directory.upsert(info)
                out.append(info)
        if wanted:
            logger.info("%d of %d remembered nodes answered", len(out), len(wanted))
        return tuple(out)

    def _remember(self, event: DirectoryEvent) -> None:
        if self.memory is not None and event.node is not None and event.kind in ("added", "updated"):
            self.memory.note(event.node)

    async def add_client(self, client: NodeClient) -> NodeInfo:
        """Register a node reached without discovery (the embedded node, an OpenAI endpoint)."""
        info = await client.info()
        self._local[info.node_id] = client
        self.directory.upsert(info)
        return info

    async def refresh(self, node_id: str) -> NodeInfo | None:
        """Re-read one node's snapshot (load, queue) from the node itself."""
        node = self.directory.get(node_id)
        if node is None:
            return None
        try:
            info = await self.client(node).info()
        except Exception as exc:
            logger.debug("refresh of %s failed: %s", node.name, exc)
            return node
        info = info.model_copy(update={"address": node.address, "source": node.source})
        self.directory.upsert(info)
        return info

    async def wait_for_nodes(self, timeout_s: float, want: int = 1) -> tuple[NodeInfo, ...]:
        """Wait up to timeout_s for at least `want` nodes (discovery needs a moment)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while len(self.directory.nodes()) < want and loop.time() < end:
            await asyncio.sleep(0.05)
        return self.directory.nodes()

    def nodes(self) -> tuple[NodeInfo, ...]:
        """Directory snapshots with each model's queue at least what this orchestrator has in flight there.

        Zeroconf announcements carry no queue depth and Info is only read now and then, so the
        orchestrator's own count keeps placement from piling work onto one node between refreshes.
        """
        if not self._inflight:
            return self.directory.nodes()
        out = []
        for node in self.directory.nodes():
            mine = {m: n for (nid, m), n in self._inflight.items() if nid == node.node_id and n}
            if mine:
                node = node.model_copy(update={"models": tuple(
                    o.model_copy(update={"queue_depth": max(o.queue_depth, mine.get(o.model_id, 0))})
                    for o in node.models)})
            out.append(node)
        return tuple(out)

    async def generate(self, node: NodeInfo, req: GenerateRequest) -> AsyncGenerator[GenerateEvent, None]:
        """The node's stream, counted in flight while it runs."""
        key = (node.node_id, req.model_id)
        self._inflight[key] = self._inflight.get(key, 0) + 1
        try:
            async for ev in self.client(node).generate(req):
                yield ev
        finally:
            self._inflight[key] -= 1
            if not self._inflight[key]:
                del self._inflight[key]

    def client(self, node: NodeInfo) -> NodeClient:
        if node.node_id in self._local:
            return self._local[node.node_id]
        if node.address not in self._clients:
            self._clients[node.address] = self._factory(node.address)
        return self._clients[node.address]

    def forget(self, node: NodeInfo, reason: str) -> None:
        """Drop a node that failed under us; discovery or the health check may bring it back."""
        self.directory.remove(node.node_id, reason)

    async def _probe(self, address: str) -> NodeInfo:
        if address not in self._clients:
            self._clients[address] = self._factory(address)
        return await self._clients[address].info()

    async def _check(self, node: NodeInfo) -> bool:
        return await self.client(node).healthy()

    async def close(self) -> None:
        if self._health is not None:
            self._health.cancel()
            with suppress(asyncio.CancelledError):
                await self._health
        if self._browser is not None:
            await self._browser.close()
        for c in list(self._clients.values()) + list(self._local.values()):
            with suppress(Exception):
                await c.close()
        if self.memory is not None:
            self.memory.save()
