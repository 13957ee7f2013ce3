"""Health checks: static peers probed until they answer, nodes dropped after failed checks, lost ones revived."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from covey.discovery.directory import GOODBYE, Check, DirectoryEvent, NodeDirectory, Probe, Sleep
from covey.errors import ClusterError, IncompatibleProtocol
from covey.types import NodeId, NodeInfo

logger = logging.getLogger(__name__)

LOOP_LAG_S = 0.25
"""A check that timed out this much later than its timeout was judged by a busy event loop, not by the node."""


class HealthChecker:
    """Probes static peers until they answer and drops nodes after ``failures`` failed checks in a row.

    ``check(node) -> bool`` is the health check (the lead's gRPC ``grpc.health.v1`` call; raising
    counts as a failure); ``probe("host:port") -> NodeInfo`` asks a static peer who it is (gRPC
    ``Info``). Static peers that are down are probed again every round, so they come back by
    themselves. A discovered node removed for any reason but its own goodbye (failed checks, a
    failure seen by the caller) is still checked for ``revive_rounds`` rounds and comes back when
    it answers again, since mDNS will not announce it anew unless its record changes.
    A check or probe that takes longer than ``timeout_s`` (default: the interval, at least 1 s) fails.
    ``sleep`` is injected so tests can drive rounds with :meth:`tick`.
    """

    def __init__(
        self,
        directory: NodeDirectory,
        check: Check,
        *,
        failures: int,
        interval_s: float,
        probe: Probe | None = None,
        static_peers: Sequence[str] = (),
        sleep: Sleep = asyncio.sleep,
        revive_rounds: int = 60,
        timeout_s: float | None = None,
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be >= 1")
        if static_peers and probe is None:
            raise ValueError("static peers need a probe to ask them who they are")
        self._directory = directory
        self._check = check
        self._failures = failures
        self._interval_s = interval_s
        self._probe = probe
        self._static_peers = tuple(static_peers)
        self._sleep = sleep
        self._missed: dict[NodeId, int] = {}
        self._unreachable: set[str] = set()
        self._revive_rounds = revive_rounds
        self._timeout_s = timeout_s if timeout_s is not None else max(interval_s, 1.0)
        self._lost: dict[NodeId, tuple[NodeInfo, int]] = {}
        directory.subscribe(self._on_event)

    def missed(self, node_id: str) -> int:
        """Consecutive failed checks of ``node_id`` so far."""
        return self._missed.get(NodeId(node_id), 0)

    async def run(self) -> None:
        """Forever: one round, then sleep ``interval_s``. Run as a task; cancel to stop."""
        while True:
            await self.tick()
            await self._sleep(self._interval_s)

    async def tick(self) -> None:
        """One round: probe absent static peers, check lost nodes, then check every node once."""
        await asyncio.gather(*(self._probe_peer(a) for a in self._static_peers if self._directory.at_address(a) is None))
        await self._revive()
        nodes = [n for n in self._directory.nodes() if n.source != "embedded"]
        results = await asyncio.gather(*(self._check_one(n) for n in nodes))
        known = {n.node_id for n in self._directory.nodes()}
        self._missed = {k: v for k, v in self._missed.items() if k in known}
        for node, healthy in zip(nodes, results):
            if healthy is None:
                continue  # no verdict this round
            if healthy:
                self._missed.pop(node.node_id, None)
                continue
            missed = self._missed.get(node.node_id, 0) + 1
            self._missed[node.node_id] = missed
            if missed >= self._failures and self._directory.get(node.node_id) is not None:
                self._missed.pop(node.node_id, None)
                self._directory.remove(node.node_id, f"failed {missed} health checks in a row")

    def _on_event(self, event: DirectoryEvent) -> None:
        node = event.node
        if node is None:
            return
        if event.kind == "removed" and node.source == "zeroconf" and event.reason != GOODBYE:
            self._lost[node.node_id] = (node, self._revive_rounds)
        elif event.kind == "removed" or event.kind == "added":
            self._lost.pop(node.node_id, None)

    async def _revive(self) -> None:
        lost = [n for n, _ in self._lost.values() if self._directory.get(n.node_id) is None]
        results = await asyncio.gather(*(self._check_one(n) for n in lost))
        for node, healthy in zip(lost, results):
            if node.node_id not in self._lost or healthy is None:
                continue  # a goodbye or a fresh announcement arrived meanwhile, or no verdict this round
            if healthy:
                logger.info("node %s (%s) answers again", node.name, node.node_id)
                self._directory.upsert(node)
                continue
            left = self._lost[node.node_id][1] - 1
            if left <= 0:
                del self._lost[node.node_id]
            else:
                self._lost[node.node_id] = (node, left)

    async def _check_one(self, node: NodeInfo) -> bool | None:
        """Whether the node answered its check; None when the check timed out only because this process's
        event loop was too busy to see the answer in time (a burst of work here says nothing of the node)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            return bool(await asyncio.wait_for(self._check(node), self._timeout_s))
        except TimeoutError:
            late = loop.time() - start - self._timeout_s
            if late > max(LOOP_LAG_S, self._timeout_s / 4):
                logger.debug("health check of %s timed out %.1f s late (this process was busy): no verdict",
                             node.name, late)
                return None
            logger.debug("health check of %s at %s timed out", node.name, node.address)
            return False
        except Exception as exc:  # a check that raises is a failed check, whatever the reason
            logger.debug("health check of %s at %s failed: %s", node.name, node.address, exc)
            return False

    async def _probe_peer(self, address: str) -> None:
        assert self._probe is not None
        try:
            node = await asyncio.wait_for(self._probe(address), self._timeout_s)
        except IncompatibleProtocol as exc:
            self._directory.refuse(address, address, str(exc))
            return
        except ClusterError as exc:
            self._directory.refuse(address, address, str(exc), foreign=True)
            return
        except Exception as exc:
            if address not in self._unreachable:
                logger.warning("static peer %s does not answer (%s); will keep trying", address, exc)
                self._unreachable.add(address)
            return
        self._unreachable.discard(address)
        self._directory.upsert(node.model_copy(update={"address": address, "source": "static"}))
