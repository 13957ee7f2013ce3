"""Run the API on uvicorn: refuses to bind beyond loopback without API keys."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from covey.api.keys import FILENAME, ApiKeys
from covey.cluster.tls import is_loopback
from covey.errors import ConfigError, PortInUse
from covey.settings import Settings

logger = logging.getLogger(__name__)


def api_keys(settings: Settings) -> ApiKeys | None:
    """The key store when keys are required for this bind address, else None (no authentication)."""
    s = settings.serve
    need = s.require_keys == "always" or (s.require_keys == "auto" and not is_loopback(s.host))
    if s.require_keys == "never" and not is_loopback(s.host):
        raise ConfigError(f"serve.require_keys is 'never' but the server would bind {s.host}, beyond this machine",
                          hint="bind 127.0.0.1, or create keys (`covey serve keys create NAME`) and leave "
                          "require_keys at 'auto'")
    if not need:
        return None
    keys = ApiKeys(settings.data_dir / FILENAME)
    if not keys.active():
        raise ConfigError(f"serving on {s.host} needs API keys and none exist",
                          hint="create one with `covey serve keys create NAME`, or bind 127.0.0.1")
    return keys


def build_app(settings: Settings, orchestrator: Any, *, keys: ApiKeys | None = None):
    """The app for a real orchestrator: keys per settings, the RAG embedder, carbon from the energy settings."""
    from covey.api.app import create_app
    from covey.energy.carbon import resolve_carbon

    carbon, pue = resolve_carbon(settings), settings.energy.pue

    def embedder():
        from covey.rag.embedder import from_settings

        return from_settings(settings.rag)

    return create_app(orchestrator, settings=settings.serve, keys=keys, embedder=embedder,
                      grams_co2e=lambda j: carbon.grams(j, pue))


async def serve(settings: Settings, orchestrator: Any, *, on_ready: Callable[[str], None] | None = None,
                keys: ApiKeys | None = None) -> None:
    """Serve until interrupted. `on_ready(url)` runs once the socket is listening."""
    import asyncio
    import socket

    import uvicorn

    keys = keys if keys is not None else api_keys(settings)
    app = build_app(settings, orchestrator, keys=keys)
    s = settings.serve
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on accepted sockets whose proto says TCP,
    # and without it Nagle plus delayed ACKs add ~40 ms to every streamed response.
    sock = socket.socket(socket.AF_INET6 if ":" in s.host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((s.host, s.port))
    except OSError as exc:
        sock.close()
        raise PortInUse(f"cannot serve on {s.host}:{s.port}: {exc.strerror}") from exc
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    host = f"[{s.host}]" if ":" in s.host else s.host

    advertised = None

    async def announce() -> None:
        nonlocal advertised
        while not server.started:
            await asyncio.sleep(0.02)
        url = f"http://{host}:{port}/v1"
        if s.advertise and is_loopback(s.host):
            from covey.api import local

            try:
                advertised = local.advertise(settings.data_dir, url, keys=keys is not None,
                                              discover=settings.orchestrator.discover)
            except OSError as exc:
                logger.warning("cannot advertise this server to `covey ask` (%s); it serves anyway", exc)
        if on_ready is not None:
            on_ready(url)

    waiter = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        waiter.cancel()
        sock.close()
        if advertised is not None:
            from covey.api import local

            local.withdraw(advertised)
