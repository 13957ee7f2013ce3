"""`covey node join`: load models, serve gRPC, announce with zeroconf, withdraw cleanly on a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from contextlib import suppress

from covey.device_node.host import load_identity
from covey.device_node.server import NodeServer
from covey.device_node.service import NodeService
from covey.energy.meter import CpuTimeEstimator, EnergyMeter
from covey.models.catalog import Catalog
from covey.settings import Settings

logger = logging.getLogger(__name__)


def build_node(settings: Settings, meter: EnergyMeter | None = None) -> NodeService:
    """The one place that names a node's concrete parts."""
    data_dir = settings.data_dir
    return NodeService(
        settings.node,
        identity=load_identity(data_dir, settings.node.name),
        catalog=Catalog(models_dir=data_dir / "models"),
        data_dir=data_dir,
        meter=meter or CpuTimeEstimator(settings.energy.watts_per_core),
    )


async def run_node(settings: Settings, *, on_ready: Callable[[NodeService, str], None] | None = None,
                   stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or `stop` is set); the announcement is withdrawn on the way out."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    service = build_node(settings)
    await service.start()
    server = NodeServer(service, host=settings.node.host, port=settings.node.port)
    announcer = None
    heartbeat: asyncio.Task[None] | None = None
    try:
        address = await server.start()
        if settings.node.announce:
            from covey.device_node.announcer import ZeroconfAnnouncer

            interface = settings.node.interface or (None if settings.node.host in ("0.0.0.0", "::")
                                                    else settings.node.host)
            announcer = ZeroconfAnnouncer(service.info, server.port, interface=interface)
            await announcer.start()
            heartbeat = asyncio.create_task(announcer.heartbeat(settings.node.heartbeat_s))
        if on_ready is not None:
            on_ready(service, address)
        await stop.wait()
        logger.info("stopping node")
    finally:
        if heartbeat is not None:
            heartbeat.cancel()
            with suppress(asyncio.CancelledError):
                await heartbeat
        if announcer is not None:
            await announcer.close()
        await server.stop()
        await service.close()
