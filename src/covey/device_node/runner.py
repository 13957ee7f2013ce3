"""`covey node join`: load models, serve gRPC, announce with zeroconf, withdraw cleanly on a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Callable
from contextlib import suppress

from covey.device_node.backend import LlamaBackend
from covey.device_node.canary import LlamaCanary
from covey.device_node.host import claim_identity
from covey.device_node.server import NodeServer
from covey.device_node.service import NodeService
from covey.energy.meter import CpuTimeEstimator, EnergyMeter
from covey.errors import PortInUse
from covey.models.catalog import Catalog
from covey.settings import Settings

logger = logging.getLogger(__name__)


def build_node(settings: Settings, meter: EnergyMeter | None = None, *, measure: bool = True) -> NodeService:
    """The one place that names a node's concrete parts.

    With `measure`, energy comes from the best sensor on this device (RAPL, battery, PMIC, NVML) or a
    labelled estimate, with battery policy and the power cap; without, a plain CPU-time estimate.
    """
    data_dir = settings.data_dir
    energy = None
    if measure and meter is None:
        from covey.energy.node import NodeEnergy

        energy = NodeEnergy(settings, node_name=settings.node.name or "")
        logger.info("energy: %s", energy.summary())
    claim = claim_identity(data_dir, settings.node.name)
    if claim.note:
        logger.info("%s", claim.note)
    return NodeService(
        settings.node,
        identity=claim.identity,
        identity_claim=claim,
        catalog=Catalog(models_dir=data_dir / "models"),
        data_dir=data_dir,
        meter=meter or (None if energy else CpuTimeEstimator(settings.energy.watts_per_core)),
        energy=energy,
        canary=LlamaCanary(data_dir, settings.node.weight_buffers) if settings.node.canary else None,
        backend_factory=LlamaBackend,
    )


def check_port_free(host: str, port: int) -> None:
    """Fail fast when another program listens on host:port. The server's own bind stays the real check."""
    if port == 0:
        return
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        return  # the server reports an address that is not on this host
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does: TIME_WAIT is no conflict
        try:
            probe.bind(addr)
        except OSError as exc:
            raise PortInUse(f"could not listen on {host}:{port} ({(exc.strerror or str(exc)).lower()})") from exc


async def run_node(settings: Settings, *, on_ready: Callable[[NodeService, str, str | None], None] | None = None,
                   stop: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM (or `stop` is set); the announcement is withdrawn on the way out."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    check_port_free(settings.node.host, settings.node.port)  # before minutes of model loading, not after
    from covey.cluster.tls import node_security

    service = build_node(settings)  # claims this process's identity; models load in start()
    try:
        security = await node_security(settings.data_dir, settings.node.host, service.identity.node_id,
                                       insecure=settings.cluster.insecure, cert_days=settings.cluster.cert_days)
    except BaseException:
        await service.close()
        raise
    await service.start()
    server = NodeServer(service, host=settings.node.host, port=settings.node.port,
                        credentials=security.credentials, interceptors=security.interceptors)
    logger.info("gRPC security: %s", security.mode)
    revocations: asyncio.Task[None] | None = None
    from covey.energy.node import NodeEnergy

    metrics = (service.energy.serve_metrics(host=settings.energy.metrics_host)
               if isinstance(service.energy, NodeEnergy) else None)
    announcer = None
    heartbeat: asyncio.Task[None] | None = None
    try:
        address = await server.start()
        revocations = security.follow_revocations(settings.cluster.revocation_poll_s)
        if settings.node.announce:
            from covey.discovery.announcer import ZeroconfAnnouncer

            interface = settings.node.interface or (None if settings.node.host in ("0.0.0.0", "::")
                                                    else settings.node.host)
            announcer = ZeroconfAnnouncer(service.info, server.port, interface=interface)
            await announcer.start()
            heartbeat = asyncio.create_task(announcer.heartbeat(settings.node.heartbeat_s))
        if on_ready is not None:
            on_ready(service, address, metrics.url if metrics is not None else None)
        await stop.wait()
        logger.info("stopping node")
    finally:
        if revocations is not None:
            revocations.cancel()
        if heartbeat is not None:
            heartbeat.cancel()
            with suppress(asyncio.CancelledError):
                await heartbeat
        if announcer is not None:
            await announcer.close()
        await server.stop()
        await service.close()
