"""Announce a node on the LAN as the DNS-SD service ``_covey._tcp.local.`` (mDNS, via python-zeroconf).

Any DNS-SD browser sees the node (``avahi-browse -r _covey._tcp``, ``dig -p 5353 @HOST
_covey._tcp.local PTR``). The TXT record (see :mod:`covey.discovery.txt`) is re-published only when its
content changes, and :meth:`ZeroconfAnnouncer.close` sends goodbye packets so browsers drop the
node at once instead of waiting for the records to expire.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from covey.discovery.txt import SERVICE_TYPE, encode_txt, local_addresses, open_zeroconf, resolve_interface
from covey.errors import CoveyError, DuplicateNode
from covey.types import NodeInfo

if TYPE_CHECKING:
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

logger = logging.getLogger(__name__)

ZeroconfFactory = Callable[[str | None], "AsyncZeroconf"]
"""Opens an AsyncZeroconf on one IPv4 interface address (None: all interfaces)."""


def instance_label(info: NodeInfo) -> str:
    """The DNS-SD instance label: the node's name plus a short node id, unique per node, <= 63 bytes."""
    short = _slug(str(info.node_id))[:8] or "node"
    name = info.name.replace(".", "-").strip() or "covey"
    room = 63 - len(short.encode()) - 1
    encoded = name.encode()
    if len(encoded) > room:
        name = encoded[:room].decode("utf-8", errors="ignore")
    return f"{name}-{short}"


def host_label(info: NodeInfo) -> str:
    """The mDNS host name for the node's address records, unique per node (``den-pc-3f2a9c0e.local.``)."""
    short = _slug(str(info.node_id))[:8] or "node"
    return f"{_slug(info.name)[:40] or 'covey'}-{short}.local."


class ZeroconfAnnouncer:
    """Registers one node's ``_covey._tcp`` service and keeps its TXT record current.

    ``info_provider`` returns the node's current snapshot (called on start and on each heartbeat);
    ``port`` is the gRPC port; ``interface`` is an IPv4 address or interface name to announce on
    (None: every interface, announcing every local IPv4 address).
    """

    def __init__(
        self,
        info_provider: Callable[[], NodeInfo],
        port: int,
        interface: str | None = None,
        zeroconf_factory: ZeroconfFactory = open_zeroconf,
    ) -> None:
        self._info_provider = info_provider
        self._port = port
        self._interface = interface
        self._factory = zeroconf_factory
        self._zc: AsyncZeroconf | None = None
        self._service: AsyncServiceInfo | None = None
        self._txt: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._broadcast: asyncio.Future[object] | None = None

    @property
    def service_name(self) -> str | None:
        """The registered instance name (``den-pc-3f2a9c0e._covey._tcp.local.``), None before start."""
        return self._service.name if self._service is not None else None

    @property
    def txt(self) -> dict[str, str]:
        """The TXT record currently announced."""
        return dict(self._txt)

    async def start(self) -> None:
        """Probe for the instance name (about 1 s), then announce; returns once the first announcement
        is out (the two repeats follow in the background)."""
        from zeroconf import NonUniqueNameException

        async with self._lock:
            if self._zc is not None:
                return
            ip = resolve_interface(self._interface)
            info = self._info_provider()
            txt = encode_txt(info)
            service = self._service_info(info, txt, [ip] if ip else local_addresses())
            zc = self._factory(ip)
            try:
                broadcast = await zc.async_register_service(service, allow_name_change=False)
            except NonUniqueNameException:
                await zc.async_close()
                raise DuplicateNode(
                    f"another node already announces {service.name!r} (node id {info.node_id})"
                ) from None
            except BaseException:
                await zc.async_close()
                raise
            self._zc, self._service, self._txt = zc, service, txt
            self._broadcast = asyncio.ensure_future(broadcast)
            logger.info("announced %s on %s port %d", service.name, ip or "all interfaces", self._port)

    async def update(self, info: NodeInfo | None = None) -> bool:
        """Re-announce with ``info`` (default: a fresh snapshot) if the TXT record changed.

        Returns True when new records were sent. The node id must not change while announced.
        """
        async with self._lock:
            if self._zc is None or self._service is None:
                raise RuntimeError("ZeroconfAnnouncer.update() called before start() or after close()")
            info = info if info is not None else self._info_provider()
            txt = encode_txt(info)
            if txt == self._txt:
                return False
            if txt["id"] != self._txt["id"]:
                raise ValueError(f"node id changed from {self._txt['id']} to {txt['id']} while announced")
            service = self._service_info(info, txt, self._service.parsed_addresses())
            await self._settle()
            self._broadcast = asyncio.ensure_future(await self._zc.async_update_service(service))
            self._service, self._txt = service, txt
            logger.debug("re-announced %s: %s", service.name, txt)
            return True

    async def heartbeat(
        self, interval_s: float, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        """Forever: wait ``interval_s``, re-read the node and re-announce if it changed.

        Run it as a task and cancel it before :meth:`close`. A failing snapshot is logged and retried.
        """
        while True:
            await sleep(interval_s)
            try:
                await self.update()
            except CoveyError as exc:
                logger.warning("could not re-announce the node: %s", exc)
            except Exception:  # keep announcing: a dead heartbeat would leave a stale record behind
                logger.exception("re-announcing the node failed; trying again in %.0f s", interval_s)

    async def close(self) -> None:
        """Unregister (goodbye packets, TTL 0) and close the sockets. Safe to call twice."""
        async with self._lock:
            zc, service = self._zc, self._service
            self._zc = self._service = None
            if zc is None:
                return
            try:
                await self._settle()
                if service is not None:
                    goodbye = await zc.async_unregister_service(service)
                    await goodbye
                    logger.info("withdrew %s", service.name)
            finally:
                await zc.async_close()

    async def _settle(self) -> None:
        """Let the previous announcement's repeats finish so two never interleave."""
        broadcast, self._broadcast = self._broadcast, None
        if broadcast is not None:
            try:
                await broadcast
            except Exception as exc:  # a failed repeat must not stop an update or the goodbye
                logger.debug("announcement repeat failed: %s", exc)

    def _service_info(self, info: NodeInfo, txt: dict[str, str], addresses: list[str]) -> AsyncServiceInfo:
        from zeroconf.asyncio import AsyncServiceInfo

        return AsyncServiceInfo(
            SERVICE_TYPE,
            f"{instance_label(info)}.{SERVICE_TYPE}",
            port=self._port,
            properties=txt,
            server=host_label(info),
            parsed_addresses=addresses,
        )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
