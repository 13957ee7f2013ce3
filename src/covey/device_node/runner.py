"""`covey node join`: load models, serve gRPC, announce with zeroconf, withdraw cleanly on a signal."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
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
        meter=meter if meter is not None else (
            energy.meter if energy is not None else CpuTimeEstimator(settings.energy.watts_per_core)),
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


HARD_EXIT_CODE = 1
WATCHDOG_SLACK_S = 2.0  # past shutdown_grace_s: the graceful path's own timeouts come first


def _exit_now(reason: str) -> None:
    logger.error("%s; exiting now", reason)
    logging.shutdown()
    os._exit(HARD_EXIT_CODE)


class _Shutdown:
    """SIGINT/SIGTERM: the first stops the node gracefully and arms a watchdog that ends the process if a
    native call (a model load, a llama.cpp batch) is still running when the grace period is over; the
    second ends it at once. Interpreter exit would otherwise wait for such a thread for as long as it takes."""

    def __init__(self, stop: asyncio.Event, service: NodeService | None, grace_s: float) -> None:
        self.stop, self.service, self.grace_s = stop, service, grace_s
        self.received = False

    def __call__(self) -> None:
        if self.received:
            _exit_now("second signal while stopping")
        self.received = True
        self.stop.set()
        if self.service is not None:
            self.service.begin_shutdown()
        timer = threading.Timer(self.grace_s + WATCHDOG_SLACK_S, _exit_now,
                                (f"the node did not stop within {self.grace_s + WATCHDOG_SLACK_S:g} s of the signal "
                                 "(a model load or a llama.cpp call is still running)",))
        timer.daemon = True
        timer.start()


async def run_node(settings: Settings, *, on_ready: Callable[[NodeService, str, str | None], None] | None = None,
                   stop: asyncio.Event | None = None) -> bool:
    """Serve until SIGINT/SIGTERM (or `stop` is set); the announcement is withdrawn on the way out.

    A signal stops the node within settings.node.shutdown_grace_s whatever it is doing, loading models
    included: generations in flight are cancelled (their clients see NodeUnavailable and continue elsewhere).
    Returns whether a signal stopped it (the process is then meant to exit; see `exit_process`).
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    on_signal = _Shutdown(stop, None, settings.node.shutdown_grace_s)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    check_port_free(settings.node.host, settings.node.port)  # before minutes of model loading, not after
    from covey.cluster.tls import node_security

    service = build_node(settings)  # claims this process's identity; models load in start()
    on_signal.service = service
    try:
        security = await node_security(settings.data_dir, settings.node.host, service.identity.node_id,
                                       insecure=settings.cluster.insecure, cert_days=settings.cluster.cert_days)
    except BaseException:
        await service.close()
        raise
    if not await _start_unless_stopped(service, stop):
        logger.info("stopped while loading models")
        return on_signal.received
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
        if on_ready is not None and not stop.is_set():
            on_ready(service, address, metrics.url if metrics is not None else None)
        await stop.wait()
        logger.info("stopping node")
    finally:
        service.begin_shutdown()  # new requests refused, generations in flight stop at their next token
        if revocations is not None:
            revocations.cancel()
        if heartbeat is not None:
            heartbeat.cancel()
            with suppress(asyncio.CancelledError):
                await heartbeat
        if announcer is not None:
            await announcer.close()
        await server.stop(min(2.0, settings.node.shutdown_grace_s))
        await service.close()
    return on_signal.received


def exit_process(code: int = 0) -> None:
    """End a node's process once run_node has returned: output flushed, the interpreter's teardown skipped.

    Teardown waits for every worker thread, and one may still be inside llama.cpp (a model load cut short
    by the signal); it also took seconds on a loaded machine. The node saved what it keeps in run_node.
    """
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)


async def _start_unless_stopped(service: NodeService, stop: asyncio.Event) -> bool:
    """Load the models, or give up on them when `stop` is set first (True when the node started)."""
    starting = asyncio.ensure_future(service.start())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if starting.done():
        starting.result()  # a start-up error is raised here
        return True
    starting.cancel()  # start() closes what it had loaded; a load still in a thread is left to the watchdog
    with suppress(asyncio.CancelledError):
        await starting
    return False
