"""The zeroconf browser that feeds a NodeDirectory from _covey._tcp announcements."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from covey.discovery.directory import EXPIRED, GOODBYE, Admit, NodeDirectory
from covey.discovery.txt import SERVICE_TYPE, decode_txt, format_address, open_zeroconf, resolve_interface
from covey.errors import ClusterError, CoveyError, IncompatibleProtocol, InvalidAnnouncement
from covey.types import NodeId

if TYPE_CHECKING:
    from zeroconf import RecordUpdateListener, ServiceStateChange, Zeroconf
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

logger = logging.getLogger(__name__)


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
        admit: Admit | None = None,
    ) -> None:
        self._directory = directory
        self._admit = admit
        self._interface = interface
        self._factory = zeroconf_factory
        self._resolve_timeout_ms = resolve_timeout_ms
        self._ip: str | None = None
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._names: dict[str, NodeId] = {}
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._goodbyes: set[str] = set()
        self._listener: RecordUpdateListener | None = None

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
        def done(t: asyncio.Future[None], n: str = name) -> None:
            if self._resolving.get(n) is t:
                self._resolving.pop(n, None)

        task.add_done_callback(done)

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
        if self._admit is not None:
            try:
                node = await self._admit(node)
            except ClusterError as exc:  # unpaired, another cluster, a spoofed id, revoked
                self._withdraw(name, "now refused")
                self._directory.refuse(name, address, str(exc), foreign=True)
                return
            except CoveyError as exc:
                logger.warning("could not check %s at %s (%s); waiting for its next announcement", name, address, exc)
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


def _goodbye_listener(goodbyes: set[str]) -> RecordUpdateListener:
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
