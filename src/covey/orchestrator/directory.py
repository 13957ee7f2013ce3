"""The live node directory: which nodes exist right now, fed by zeroconf, static peers and health checks.

:class:`NodeDirectory` holds one frozen :class:`~covey.types.NodeInfo` per node id, replaced whole on
each update, and tells subscribers what changed. Three feeders keep it current:

- :class:`ZeroconfDirectory` browses ``_covey._tcp.local.`` (added, updated, removed on goodbye);
- :class:`HealthChecker` probes static peers (``host:port``, for VPNs and routed subnets where
  multicast does not pass) and drops any node that fails ``failures`` health checks in a row;
- the caller may :meth:`NodeDirectory.upsert` nodes it learns about itself (the embedded node).

Nodes that speak another protocol version are kept out and listed by :meth:`NodeDirectory.refused`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Literal

from covey.dnssd import SERVICE_TYPE, decode_txt, format_address, open_zeroconf, resolve_interface
from covey.errors import CoveyError, IncompatibleProtocol, InvalidAnnouncement
from covey.plausibility import checked_info
from covey.types import Frozen, NodeId, NodeInfo

if TYPE_CHECKING:
    from rich.table import Table
    from zeroconf import ServiceStateChange, Zeroconf
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

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


class DirectoryEvent(Frozen):
    """One change: ``node`` is the new snapshot (added/updated), the last one (removed), None (refused)."""

    kind: EventKind
    node: NodeInfo | None = None
    refused: RefusedNode | None = None
    reason: str = ""


Subscriber = Callable[[DirectoryEvent], None]
Check = Callable[[NodeInfo], Awaitable[bool]]
Probe = Callable[[str], Awaitable[NodeInfo]]
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

    def refuse(self, key: str, address: str, reason: str) -> DirectoryEvent | None:
        """Keep the node known as ``key`` (service name or address) out, visibly; None if already so."""
        refused = RefusedNode(key=key, address=address, reason=reason)
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
            if node.node_id not in self._lost:
                continue  # a goodbye or a fresh announcement arrived meanwhile
            if healthy:
                logger.info("node %s (%s) answers again", node.name, node.node_id)
                self._directory.upsert(node)
                continue
            left = self._lost[node.node_id][1] - 1
            if left <= 0:
                del self._lost[node.node_id]
            else:
                self._lost[node.node_id] = (node, left)

    async def _check_one(self, node: NodeInfo) -> bool:
        try:
            return bool(await asyncio.wait_for(self._check(node), self._timeout_s))
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
        except Exception as exc:
            if address not in self._unreachable:
                logger.warning("static peer %s does not answer (%s); will keep trying", address, exc)
                self._unreachable.add(address)
            return
        self._unreachable.discard(address)
        self._directory.upsert(node.model_copy(update={"address": address, "source": "static"}))


class ZeroconfDirectory:
    """Feeds a :class:`NodeDirectory` from an mDNS browser for ``_covey._tcp.local.``.

    ``interface`` is an IPv4 address or interface name to browse on (None: all interfaces).
    A node is added once its SRV, TXT and address records resolve, updated when they change, and
    removed when it says goodbye. A node that vanishes silently is left to :class:`HealthChecker`.
    """

    def __init__(
        self,
        directory: NodeDirectory,
        interface: str | None = None,
        zeroconf_factory: Callable[[str | None], AsyncZeroconf] = open_zeroconf,
        resolve_timeout_ms: int = 3000,
    ) -> None:
        self._directory = directory
        self._interface = interface
        self._factory = zeroconf_factory
        self._resolve_timeout_ms = resolve_timeout_ms
        self._ip: str | None = None
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._names: dict[str, NodeId] = {}
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._goodbyes: set[str] = set()
        self._listener: object | None = None

    async def start(self) -> None:
        from zeroconf.asyncio import AsyncServiceBrowser

        if self._zc is not None:
            return
        self._ip = resolve_interface(self._interface)
        self._zc = self._factory(self._ip)
        # Added before the browser, so a goodbye is seen before the browser reports the removal.
        self._listener = _goodbye_listener(self._goodbyes)
        self._zc.zeroconf.async_add_listener(self._listener, None)
        self._browser = AsyncServiceBrowser(self._zc.zeroconf, SERVICE_TYPE, handlers=[self._on_change])
        logger.info("browsing %s on %s", SERVICE_TYPE, self._ip or "all interfaces")

    async def close(self) -> None:
        zc, browser = self._zc, self._browser
        self._zc = self._browser = None
        for task in self._resolving.values():
            task.cancel()
        await asyncio.gather(*self._resolving.values(), return_exceptions=True)
        self._resolving.clear()
        if browser is not None:
            await browser.async_cancel()
        if zc is not None:
            if self._listener is not None:
                zc.zeroconf.async_remove_listener(self._listener)
            await zc.async_close()
        self._listener = None

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        from zeroconf import ServiceStateChange

        if self._zc is None:
            return
        previous = self._resolving.pop(name, None)
        if previous is not None:
            previous.cancel()
        if state_change is ServiceStateChange.Removed:
            said_goodbye = name.lower() in self._goodbyes
            self._goodbyes.discard(name.lower())
            self._withdraw(name, GOODBYE if said_goodbye else EXPIRED)
            return
        self._goodbyes.discard(name.lower())
        task = asyncio.ensure_future(self._resolve(name))
        self._resolving[name] = task
        task.add_done_callback(lambda t, n=name: self._resolving.pop(n, None) if self._resolving.get(n) is t else None)

    async def _resolve(self, name: str) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        assert self._zc is not None
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(self._zc.zeroconf, self._resolve_timeout_ms):
            logger.warning("could not resolve %s within %d ms; waiting for its next announcement", name, self._resolve_timeout_ms)
            return
        address = format_address(self._pick_address(info.parsed_addresses()), info.port or 0)
        try:
            node = decode_txt(info.properties, address)
        except (IncompatibleProtocol, InvalidAnnouncement) as exc:
            self._withdraw(name, "now refused")
            self._directory.refuse(name, address, str(exc))
            return
        except CoveyError as exc:  # pragma: no cover - decode only raises the two above
            logger.warning("ignoring %s: %s", name, exc)
            return
        old_id = self._names.get(name)
        if old_id is not None and old_id != node.node_id:
            self._withdraw(name, f"now announces node id {node.node_id}")
        self._names[name] = node.node_id
        self._directory.forget_refused(name)
        self._directory.upsert(node)

    def _withdraw(self, name: str, reason: str) -> None:
        self._directory.forget_refused(name)
        node_id = self._names.pop(name, None)
        if node_id is None or node_id in self._names.values():
            return
        node = self._directory.get(node_id)
        if node is not None and node.source == "zeroconf":
            self._directory.remove(node_id, reason)

    def _pick_address(self, addresses: list[str]) -> str:
        v4 = [a for a in addresses if ":" not in a] or addresses
        if not v4:
            return ""
        if self._ip is not None and self._ip in v4:
            return self._ip
        loopback = self._ip is not None and self._ip.startswith("127.")
        preferred = [a for a in v4 if a.startswith("127.") == loopback]
        return (preferred or v4)[0]


def _goodbye_listener(goodbyes: set[str]):
    """A zeroconf record listener that notes service names whose PTR record arrived with TTL 0.

    zeroconf reports a goodbye and an expiry alike as ``ServiceStateChange.Removed``; the listener
    sees the goodbye packet itself, before the browser reports the removal.
    """
    from zeroconf import DNSPointer, RecordUpdateListener

    class GoodbyeListener(RecordUpdateListener):
        def async_update_records(self, zc: Zeroconf, now: float, records: list) -> None:
            for update in records:
                record = update.new
                if (isinstance(record, DNSPointer) and record.ttl == 0
                        and record.name.lower() == SERVICE_TYPE.lower()):
                    goodbyes.add(record.alias.lower())

        def async_update_records_complete(self) -> None:
            pass

    return GoodbyeListener()


def render_nodes_table(nodes: Sequence[NodeInfo], refused: Sequence[RefusedNode] = ()) -> Table:
    """The directory as a rich table for ``covey nodes``; refused nodes are listed under it."""
    from rich import box
    from rich.table import Table

    table = Table(title="covey nodes", title_justify="left", caption_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("node")
    table.add_column("address", overflow="fold")
    table.add_column("models (* loaded)", min_width=12, overflow="fold")
    table.add_column("RAM GiB\nfree/all", justify="right")
    table.add_column("cpu", justify="right")
    table.add_column("tok/s", justify="right")
    table.add_column("J/tok", justify="right")
    table.add_column("battery", justify="right")
    for n in nodes:
        models = "\n".join(f"{m.model_id}{'*' if m.loaded else ''}" for m in n.models) or "-"
        cpu = f"{n.cpu_cores or '-'}{' ' + n.accelerator if n.accelerator else ''}"
        table.add_row(
            f"{n.name}\n[dim]{str(n.node_id)[:8]}[/dim]", f"{n.address or '-'}\n[dim]{n.source}[/dim]", models,
            f"{_gib(n.ram_free_bytes)}/{_gib(n.ram_total_bytes)}", cpu,
            f"{n.tokens_per_second:.0f}" if n.tokens_per_second else "-",
            f"{n.joules_per_token:.3g}" if n.joules_per_token else "-", _battery(n),
        )
    lines = [f"[red]refused[/red] {r.key.split('.')[0]} at {r.address or '?'}: {r.reason}" for r in refused]
    if not nodes:
        lines.insert(0, "no nodes found: start one with `covey node join`, or add --peer HOST:PORT")
    if lines:
        table.caption = "\n".join(lines)
    return table


def _gib(n: int) -> str:
    gib = n / 1024**3
    return f"{gib:.0f}" if gib >= 10 else f"{gib:.1f}"


def _battery(n: NodeInfo) -> str:
    if not n.battery.present:
        return "-"
    return f"{n.battery.percent:.0f}%{' bat' if n.battery.on_battery else ' ac'}"


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _notify(condition: asyncio.Condition) -> None:
    async with condition:
        condition.notify_all()
