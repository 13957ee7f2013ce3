"""The live set of nodes the orchestrator can use: a directory plus one client per node."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import suppress
from typing import Protocol

from covey.errors import NodeUnavailable
from covey.orchestrator.client import NodeClient
from covey.discovery.directory import Admit, DirectoryEvent, NodeDirectory
from covey.discovery.health import HealthChecker
from covey.orchestrator.node_memory import NodeMemory
from covey.settings import OrchestratorSettings
from covey.types import GenerateEvent, GenerateRequest, NodeInfo

logger = logging.getLogger(__name__)

ClientFactory = Callable[[str], NodeClient]


class Browser(Protocol):
    """What the pool uses of a discovery browser (covey.discovery.browser.ZeroconfDirectory): it feeds
    the directory it was made with between `start` and `close`."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class BrowserFactory(Protocol):
    """Makes the pool's browser for its directory (wiring passes ZeroconfDirectory)."""

    def __call__(self, directory: NodeDirectory, *, interface: str | None, admit: Admit | None) -> Browser: ...


Key = tuple[str, str]  # (node id, model id)

RESERVATION_S = 30.0
"""How long a placement holds its slot before its stream starts. The gap is milliseconds; a placement
that never reached its node (the answer failed or was cancelled in between) stops counting after this."""


class NodePool:
    """Keeps the directory fed (zeroconf, static peers, health checks) and hands out clients."""

    def __init__(self, settings: OrchestratorSettings, *, client_factory: ClientFactory,
                 browser_factory: BrowserFactory | None = None,
                 directory: NodeDirectory | None = None, admit: Admit | None = None,
                 memory: NodeMemory | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        """`client_factory` makes the client for a node's address (wiring passes the cluster's mutual-TLS
        one from covey.cluster.access, with `admit`); `browser_factory` makes the discovery browser, started
        with the pool when `settings.discover` is on (wiring passes zeroconf's; None: no browsing, only
        static peers and nodes added by hand); `memory` remembers recently seen nodes so an ask need not
        wait for discovery; `clock` ages reservations."""
        self.settings = settings
        self._admit = admit
        self.directory = directory or NodeDirectory()
        self.memory = memory
        self._factory = client_factory
        self._browser_factory = browser_factory
        self._clients: dict[str, NodeClient] = {}
        self._inflight: dict[Key, int] = {}
        self._reserved: dict[Key, deque[float]] = {}  # placements made whose streams have not started
        self._streams: dict[str, set[asyncio.Future[str]]] = {}  # per node: resolved when it leaves
        self._clock = clock
        self._local: dict[str, NodeClient] = {}
        self._browser: Browser | None = None
        self._health: asyncio.Task[None] | None = None
        self._checker = HealthChecker(
            self.directory, self._check, failures=settings.health_failures, interval_s=settings.health_interval_s,
            probe=self._probe, static_peers=settings.static_peers,
        )
        self.directory.subscribe(self._abort_streams)

    async def start(self) -> None:
        if self.memory is not None:
            self.directory.subscribe(self._remember)
        if self.settings.discover and self._browser_factory is not None:
            self._browser = self._browser_factory(self.directory, interface=self.settings.discovery_interface,
                                                  admit=self._admit)
            await self._browser.start()
        elif self.settings.discover:
            logger.debug("discovery is on but this pool was given no browser: static peers and added nodes only")
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
        """Directory snapshots with each model's queue at least what this orchestrator has placed there.

        Zeroconf announcements carry no queue depth and Info is only read now and then, so the
        orchestrator's own count (answers streaming plus placements about to start) keeps placement
        from piling a burst onto one node between refreshes.
        """
        mine = self._mine()
        if not mine:
            return self.directory.nodes()
        out = []
        for node in self.directory.nodes():
            if any(nid == node.node_id for nid, _ in mine):
                node = node.model_copy(update={"models": tuple(
                    o.model_copy(update={"queue_depth": max(o.queue_depth, mine.get((node.node_id, o.model_id), 0))})
                    for o in node.models)})
            out.append(node)
        return tuple(out)

    def _mine(self) -> dict[Key, int]:
        counts = {k: n for k, n in self._inflight.items() if n}
        stale = self._clock() - RESERVATION_S
        for key, held in list(self._reserved.items()):
            while held and held[0] < stale:
                held.popleft()
            if not held:
                del self._reserved[key]
                continue
            counts[key] = counts.get(key, 0) + len(held)
        return counts

    def reserve(self, node: NodeInfo, model_id: str) -> None:
        """Count one answer on `node` from the moment it is placed there, before its stream starts.

        Placement and reservation happen with no await in between, so every placement of a burst sees
        the ones before it; the stream that starts on that node and model takes the reservation over.
        """
        self._reserved.setdefault((node.node_id, model_id), deque()).append(self._clock())

    def release(self, node: NodeInfo, model_id: str) -> None:
        """Give back a reservation whose stream will not start (the answer went elsewhere)."""
        held = self._reserved.get((node.node_id, model_id))
        if held:
            held.pop()
            if not held:
                del self._reserved[(node.node_id, model_id)]

    async def generate(self, node: NodeInfo, req: GenerateRequest) -> AsyncGenerator[GenerateEvent, None]:
        """The node's stream, counted in flight while it runs.

        Abandoned with NodeUnavailable (so the answer can continue elsewhere) when the node sends
        nothing for `stream_idle_s` between pieces, or leaves the directory (health checks, discovery,
        another answer's failure) while the stream runs.
        """
        key = (node.node_id, req.model_id)
        self.release(node, req.model_id)  # the reservation becomes this stream
        self._inflight[key] = self._inflight.get(key, 0) + 1
        gone: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._streams.setdefault(node.node_id, set()).add(gone)
        stream = aiter(self.client(node).generate(req))
        idle = self.settings.stream_idle_s
        try:
            first = True
            while True:
                try:
                    ev = await self._next(stream, node, gone, None if first else idle)
                except StopAsyncIteration:
                    return
                first = False
                yield ev
        finally:
            watchers = self._streams.get(node.node_id)
            if watchers is not None:
                watchers.discard(gone)
                if not watchers:
                    del self._streams[node.node_id]
            self._inflight[key] -= 1
            if not self._inflight[key]:
                del self._inflight[key]
            close = getattr(stream, "aclose", None)
            if close is not None:
                with suppress(Exception):
                    await close()

    @staticmethod
    async def _next(stream: AsyncIterator[GenerateEvent], node: NodeInfo, gone: asyncio.Future[str],
                    idle_s: float | None) -> GenerateEvent:
        """The stream's next event, unless the node leaves or (with `idle_s`) goes silent first."""
        nxt = asyncio.ensure_future(anext(stream))
        try:
            done, _ = await asyncio.wait((nxt, gone), timeout=idle_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not nxt.done():
                nxt.cancel()
                with suppress(BaseException):
                    await nxt
        if nxt in done:
            return nxt.result()
        if gone.done():
            raise NodeUnavailable(f"node '{node.name}' left the directory mid-answer ({gone.result()})")
        raise NodeUnavailable(f"node '{node.name}' sent nothing for {idle_s:g} s mid-answer "
                              "(frozen, or its network went away)",
                              hint="the answer continues on another node; raise orchestrator.stream_idle_s "
                              "for very slow nodes")

    def _abort_streams(self, event: DirectoryEvent) -> None:
        """A node dropped from the directory takes its streams with it: each fails over at once."""
        if event.kind != "removed" or event.node is None:
            return
        for gone in self._streams.get(event.node.node_id, ()):
            if not gone.done():
                gone.set_result(event.reason or "removed")

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
