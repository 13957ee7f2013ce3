"""The live node directory: which nodes exist right now, fed by zeroconf, static peers and health checks.

:class:`NodeDirectory` holds one frozen :class:`~covey.types.NodeInfo` per node id, replaced whole on
each update, and tells subscribers what changed. Three feeders keep it current:

- :class:`~covey.discovery.browser.ZeroconfDirectory` browses ``_covey._tcp.local.`` (added, updated, removed on goodbye);
- :class:`~covey.discovery.health.HealthChecker` probes static peers (``host:port``, for VPNs and routed subnets where
  multicast does not pass) and drops any node that fails ``failures`` health checks in a row;
- the caller may :meth:`NodeDirectory.upsert` nodes it learns about itself (the embedded node).

Nodes that speak another protocol version are kept out and listed by :meth:`NodeDirectory.refused`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import Field

from covey.plausibility import checked_info
from covey.types import Frozen, NodeId, NodeInfo

logger = logging.getLogger(__name__)

EventKind = Literal["added", "updated", "removed", "refused"]

GOODBYE = "said goodbye"
"""Removal reason when a node withdrew its announcement itself (it is not coming back by itself)."""
EXPIRED = "its announcement expired without a goodbye"
"""Removal reason when the records' TTL ran out (a node that froze, lost the network or was killed)."""


class RefusedNode(Frozen):
    """A node kept out of the directory, and why (e.g. it speaks another protocol version)."""

    key: str
    address: str
    reason: str
    foreign: bool = Field(False, description="not a member of this cluster (unpaired, another cluster, a spoofed id)")


class DirectoryEvent(Frozen):
    """One change: ``node`` is the new snapshot (added/updated), the last one (removed), None (refused)."""

    kind: EventKind
    node: NodeInfo | None = None
    refused: RefusedNode | None = None
    reason: str = ""


Subscriber = Callable[[DirectoryEvent], None]
Check = Callable[[NodeInfo], Awaitable[bool]]
Probe = Callable[[str], Awaitable[NodeInfo]]
Admit = Callable[[NodeInfo], Awaitable[NodeInfo]]
"""Checks an announced node before it enters the directory and returns what to keep (covey.cluster.access)."""
Sleep = Callable[[float], Awaitable[None]]


class NodeDirectory:
    """Nodes keyed by node id; every change is announced to subscribers as a :class:`DirectoryEvent`."""

    def __init__(self) -> None:
        self._nodes: dict[NodeId, NodeInfo] = {}
        self._refused: dict[str, RefusedNode] = {}
        self._subscribers: list[Subscriber] = []
        self._changed = asyncio.Condition()  # binds to the running loop on first use

    def nodes(self) -> tuple[NodeInfo, ...]:
        """Every known node, by name then id."""
        return tuple(sorted(self._nodes.values(), key=lambda n: (n.name, n.node_id)))

    def get(self, node_id: str) -> NodeInfo | None:
        return self._nodes.get(NodeId(node_id))

    def at_address(self, address: str) -> NodeInfo | None:
        """The node serving ``host:port``, if any."""
        return next((n for n in self._nodes.values() if n.address == address), None)

    def refused(self) -> tuple[RefusedNode, ...]:
        return tuple(self._refused.values())

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` on every change, from the event loop; returns a function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def upsert(self, node: NodeInfo) -> DirectoryEvent | None:
        """Add ``node`` or replace the snapshot with its id; None when nothing changed.

        Figures that cannot be true (a speed of 9999 tok/s, 0.0001 J/token, NaN) are dropped to
        "unknown" and named in ``node.flags`` first, so a boastful node does not attract all the work.
        """
        node = checked_info(node)
        old = self._nodes.get(node.node_id)
        if old == node:
            return None
        if node.flags and (old is None or old.flags != node.flags):
            logger.warning("node %s (%s) reports implausible figures: %s", node.name, node.node_id,
                           "; ".join(node.flags))
        self._nodes[node.node_id] = node
        self._refused.pop(node.address, None)
        if old is None:
            logger.info("node %s (%s) joined at %s via %s", node.name, node.node_id, node.address, node.source)
        return self._emit(DirectoryEvent(kind="added" if old is None else "updated", node=node))

    def remove(self, node_id: str, reason: str) -> DirectoryEvent | None:
        """Drop the node with ``node_id``; None when it was not there."""
        node = self._nodes.pop(NodeId(node_id), None)
        if node is None:
            return None
        logger.info("node %s (%s) left: %s", node.name, node.node_id, reason)
        return self._emit(DirectoryEvent(kind="removed", node=node, reason=reason))

    def refuse(self, key: str, address: str, reason: str, *, foreign: bool = False) -> DirectoryEvent | None:
        """Keep the node known as ``key`` (service name or address) out, visibly; None if already so."""
        refused = RefusedNode(key=key, address=address, reason=reason, foreign=foreign)
        if self._refused.get(key) == refused:
            return None
        self._refused[key] = refused
        logger.warning("refused node %s: %s", key, reason)
        return self._emit(DirectoryEvent(kind="refused", refused=refused, reason=reason))

    def forget_refused(self, key: str) -> None:
        self._refused.pop(key, None)

    async def wait_for(self, predicate: Callable[[NodeDirectory], bool], timeout_s: float) -> bool:
        """Wait until ``predicate(self)`` holds (True) or ``timeout_s`` passes (False)."""
        changed = self._changed

        async def until() -> None:
            async with changed:
                await changed.wait_for(lambda: predicate(self))

        try:
            await asyncio.wait_for(until(), timeout_s)
        except asyncio.TimeoutError:
            return predicate(self)
        return True

    def _emit(self, event: DirectoryEvent) -> DirectoryEvent:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                logger.exception("directory subscriber %r failed on %s", callback, event.kind)
        if _loop_running():
            asyncio.ensure_future(_notify(self._changed))
        return event


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _notify(condition: asyncio.Condition) -> None:
    async with condition:
        condition.notify_all()
