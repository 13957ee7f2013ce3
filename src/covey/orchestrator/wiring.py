"""The one function that names covey's concrete classes: `build(settings)` -> Orchestrator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from covey.models.catalog import Catalog
from covey.orchestrator.client import InProcessNodeClient, NodeClient
from covey.orchestrator.core import Orchestrator
from covey.orchestrator.graph import Deps
from covey.orchestrator.placement import PlacementPolicy
from covey.orchestrator.pool import NodePool
from covey.settings import Settings

logger = logging.getLogger(__name__)


async def build_pool(settings: Settings, *, extra_clients: Sequence[NodeClient] = ()) -> NodePool:
    """Start discovery and static peers; add the embedded node per settings.orchestrator.embedded."""
    o = settings.orchestrator
    pool = NodePool(o)
    await pool.start()
    for client in list(extra_clients) + _openai_clients(settings):
        await pool.add_client(client)
    if o.discover and o.discovery_wait_s:
        await pool.wait_for_nodes(o.discovery_wait_s)
    if o.embedded == "always" or (o.embedded == "auto" and not pool.directory.nodes()):
        await pool.add_client(await embedded_client(settings))
    return pool


def _openai_clients(settings: Settings) -> list[NodeClient]:
    if not settings.orchestrator.openai_endpoints:
        return []
    from covey.orchestrator.openai_client import OpenAINodeClient, parse_endpoint

    clients: list[NodeClient] = []
    for spec in settings.orchestrator.openai_endpoints:
        url, models = parse_endpoint(spec)
        clients.append(OpenAINodeClient(url, models=models or None,
                                        joules_per_token=settings.orchestrator.openai_joules_per_token))
    return clients


async def embedded_client(settings: Settings) -> InProcessNodeClient:
    from covey.device_node.runner import build_node

    node_settings = settings.node.model_copy(update={
        "models": [settings.orchestrator.embedded_model], "name": settings.node.name or "embedded"})
    service = build_node(settings.model_copy(update={"node": node_settings}))
    await service.start()
    return InProcessNodeClient(service)


async def build(settings: Settings, *, extra_clients: Sequence[NodeClient] = (), router=None, agents=None,
                grounding=None, record=None) -> Orchestrator:
    """Everything an answer needs, from settings. Pass parts to replace the defaults."""
    from covey.energy.meter import CpuTimeEstimator

    pool = await build_pool(settings, extra_clients=extra_clients)
    if router is None:
        from covey.orchestrator.router import load_default_router

        router = load_default_router(settings.data_dir, settings.router)
    if agents is None:
        from covey.agents import default_roster

        agents = default_roster(settings.agents_file, catalog=Catalog(models_dir=settings.data_dir / "models"))
    if grounding is None:
        grounding = _rag_grounding(settings)
    if record is None:
        record = _ledger_recorder(settings)
    o = settings.orchestrator
    if o.tool_answers or o.program_aided or o.verify_answers:
        await asyncio.to_thread(_warm_tools)
    deps = Deps(router=router, agents=agents, pool=pool, catalog=Catalog(models_dir=settings.data_dir / "models"),
                settings=settings.orchestrator, grounding=grounding, record=record,
                meter=CpuTimeEstimator(settings.energy.watts_per_core),
                policy=PlacementPolicy(min_battery_percent=settings.orchestrator.min_battery_percent))
    return Orchestrator(deps)


def _warm_tools() -> None:
    """Load sympy and pint once at build, so no answer pays for their import (about a second)."""
    try:
        from covey.tools import arithmetic, units
        from covey.tools.questions import read_question

        arithmetic.evaluate("1+1")
        units.unit_registry()
        read_question("What is 1 plus 1?")
    except Exception as exc:  # a base install without the orchestrator extra: the tools say so when used
        logger.info("maths tools not warmed: %s", exc)


def _rag_grounding(settings: Settings):
    from covey.orchestrator.grounding import StoreGrounding

    return StoreGrounding.from_settings(settings)


def _ledger_recorder(settings: Settings):
    from covey.orchestrator.ledger_hook import LedgerRecorder

    return LedgerRecorder(settings)
