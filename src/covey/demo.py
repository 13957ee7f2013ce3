"""`covey demo`: the whole path on one machine, with no multicast on real interfaces.

Two device nodes run in this process on 127.0.0.1 and are given to the orchestrator as static
peers; the embedded in-process node plays "this laptop". One of the peers plays a weak device
(a RAM cap too small for Gemma) so the demo shows delegation as well as routing and energy.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from rich.console import Console
from rich.table import Table

from covey.device_node.runner import build_node
from covey.device_node.server import NodeServer
from covey.orchestrator.client import GrpcNodeClient
from covey.settings import Settings

logger = logging.getLogger(__name__)

QUESTIONS = (
    "What is 17 times 23?",
    "Write a short poem about an old laptop that still works.",
    "Write a Python function is_even(n) that returns True when n is even.",
    "Translate 'good morning, my friends' into French.",
    "Say hello to my grandmother in one friendly sentence.",
)


def demo_roster():
    """The shipped specialists, whose ladders climb from SmolLM2 to Gemma 3 270M (the hub rungs above are
    skipped, as no node here serves them). The translator starts on Gemma, which the weak 'old-laptop'
    cannot load, so the demo shows delegation too."""
    from covey.agents import default_roster

    return default_roster()


async def start_peer(settings: Settings, name: str, models: list[str], ram_cap_mb: int | None) -> NodeServer:
    node = settings.node.model_copy(update={"name": name, "models": models, "max_model_ram_mb": ram_cap_mb,
                                            "port": 0, "host": "127.0.0.1", "announce": False})
    data_dir = settings.data_dir / "demo" / name
    service = build_node(settings.model_copy(update={"node": node, "data_dir": data_dir}))
    await service.start()
    server = NodeServer(service, host="127.0.0.1", port=0)
    await server.start()
    return server


async def run_demo(settings: Settings, console: Console) -> None:
    from covey.cli_output import nodes_grid, print_grid, print_stream
    from covey.wiring import build

    console.rule("covey demo: an embedded node and two nodes on 127.0.0.1 (no multicast)")
    servers = [
        await start_peer(settings, "old-laptop", ["smollm2-135m-instruct-q4_1"], ram_cap_mb=260),
        await start_peer(settings, "den-pc", ["smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"], ram_cap_mb=None),
    ]
    o = settings.orchestrator.model_copy(update={
        "discover": False, "embedded": "always", "embedded_extra_models": [],
        "local_node": "old-laptop"})  # Gemma only on den-pc: the translator delegates
    # The peers run in this process on 127.0.0.1, unpaired: they are handed over as plaintext loopback
    # clients, so the demo works the same whether or not this data dir holds a cluster identity.
    peers = [GrpcNodeClient(s.address) for s in servers]
    orch = await build(settings.model_copy(update={"orchestrator": o}), extra_clients=peers, agents=demo_roster())
    try:
        print_grid(nodes_grid(orch.deps.pool.nodes()), console)
        session = f"demo-{uuid.uuid4().hex[:8]}"  # history lasts: a fresh session per run
        for q in QUESTIONS:
            console.rule(f"[bold]{q}[/bold]", align="left")
            await print_stream(orch.stream(q, session_id=session))
        console.rule("follow-up in the same session")
        await print_stream(orch.stream("And what is that number plus one?", session_id=session))
    finally:
        await orch.close()
        await asyncio.gather(*(s.stop(0.5) for s in servers))
        for s in servers:
            await s.service.close()
    console.rule("done")


__all__ = ["run_demo", "start_peer", "Table"]
