"""The one function that names covey's concrete classes: `build(settings)` -> Orchestrator."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from covey.models.catalog import Catalog
from covey.discovery.browser import ZeroconfDirectory
from covey.device_node.inprocess import InProcessNodeClient
from covey.orchestrator.client import NodeClient
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.graph import Deps
from covey.orchestrator.node_memory import NodeMemory
from covey.orchestrator.placement import PlacementPolicy
from covey.orchestrator.pool import NodePool
from covey.settings import OrchestratorSettings, Settings

logger = logging.getLogger(__name__)


async def node_pool(settings: Settings, *, memory: NodeMemory | None = None) -> NodePool:
    """A pool (not started) that reaches nodes the way this device's cluster identity allows (covey.cluster)
    and, with discovery on, browses for them with zeroconf."""
    from covey.cluster.access import orchestrator_access

    access = await orchestrator_access(settings.data_dir, insecure=settings.cluster.insecure,
                                       cert_days=settings.cluster.cert_days)
    logger.info("reaching nodes with %s", access.mode)
    return NodePool(settings.orchestrator, client_factory=access.client_factory, browser_factory=ZeroconfDirectory,
                    admit=access.admit, memory=memory)


async def build_pool(settings: Settings, *, extra_clients: Sequence[NodeClient] = ()) -> NodePool:
    """Start discovery and static peers; add the embedded node per settings.orchestrator.embedded.

    With discovery on, the nodes remembered from earlier runs are asked directly while zeroconf
    listens: the first node to answer either way ends the wait, so a household whose nodes are up
    does not wait the whole discovery window on every question.
    """
    o = settings.orchestrator
    memory = None
    if o.discover and o.remember_nodes_days:
        memory = NodeMemory(settings.data_dir / "cache" / "nodes.json", max_age_s=o.remember_nodes_days * 86400)
    pool = await node_pool(settings, memory=memory)
    await pool.start()
    for client in list(extra_clients) + _openai_clients(settings):
        await pool.add_client(client)
    waits = bool(o.discover and o.discovery_wait_s)
    # Load the embedded node during the discovery window when it will (likely) be needed: always, or
    # on 'auto' when no other node is known or remembered (a lone laptop, the usual first run).
    early = None
    if waits and (o.embedded == "always" or (o.embedded == "auto" and not pool.directory.nodes()
                                             and not (memory is not None and memory.recall()))):
        early = asyncio.create_task(embedded_client(settings))
    try:
        if waits:
            await wait_for_first_nodes(pool, o)
        needed = o.embedded == "always" or (o.embedded == "auto" and not pool.directory.nodes())
        if early is not None and not needed:
            await _discard(early)
        elif needed:
            await pool.add_client(await (early or embedded_client(settings)))
    except BaseException:
        if early is not None and not early.done():
            early.cancel()
        await pool.close()
        raise
    return pool


async def _discard(task: asyncio.Task[InProcessNodeClient]) -> None:
    """A node turned up during the window: the embedded node loaded meanwhile is not needed."""
    try:
        client = await task
    except Exception as exc:
        logger.info("embedded node not needed (and it could not start: %s)", exc)
        return
    await client.close()


async def wait_for_first_nodes(pool: NodePool, o: OrchestratorSettings) -> None:
    """Ask the remembered nodes while discovery listens; return when a node is known or the window ends."""
    recall = asyncio.create_task(pool.recall(min(o.recall_timeout_s, o.discovery_wait_s)))
    await pool.wait_for_nodes(o.discovery_wait_s)
    await recall


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

    o = settings.orchestrator
    models = list(dict.fromkeys([o.embedded_model, *o.embedded_extra_models]))
    # No self-benchmark: it costs seconds per model on a first run, and placement prefers the local
    # device whatever its speed; the node's speed only matters to pick among remote nodes. Models load on
    # first use (an answer from SmolLM2 never pays for Gemma), except the default model, which starts
    # loading at once in the background: most answers need it, and a tool's answer does not wait for it.
    node_settings = settings.node.model_copy(update={"models": models, "name": settings.node.name or "embedded",
                                                     "self_benchmark": False, "load": "first_use"})
    service = build_node(settings.model_copy(update={"node": node_settings}))
    await service.start()
    service.preload(o.embedded_model)  # the first rung of most ladders loads while the router and graph do
    return InProcessNodeClient(service)


async def build(settings: Settings, *, extra_clients: Sequence[NodeClient] = (), router=None, agents=None,
                grounding=None, record=None, history=None, warm: bool = True) -> Orchestrator:
    """Everything an answer needs, from settings. Pass parts to replace the defaults.

    `warm` loads the maths tools (sympy) now, so no answer of a long-running front pays for the import;
    a one-shot `covey ask` passes False: its one prompt imports them only if it needs them.
    """
    from covey.energy.meter import CpuTimeEstimator

    # The router (MiniLM) and the graph's imports (langgraph) load in threads while discovery listens and
    # the embedded node loads its models (llama.cpp releases the GIL while it reads them).
    loading = None if router is not None else asyncio.create_task(asyncio.to_thread(_load_router, settings))
    importing = asyncio.create_task(asyncio.to_thread(_import_graph_modules))
    o = settings.orchestrator
    warming = (asyncio.create_task(asyncio.to_thread(_warm_tools))
               if warm and (o.tool_answers or o.program_aided or o.verify_answers) else None)
    try:
        pool = await build_pool(settings, extra_clients=extra_clients)
    except BaseException:
        if loading is not None:
            loading.cancel()  # the thread finishes on its own; nobody waits for it
        raise
    try:
        if loading is not None:
            router = await loading
        await importing
    except BaseException:
        await pool.close()
        raise
    if agents is None:
        from covey.agents import default_roster

        agents = default_roster(settings.agents_file, catalog=Catalog(models_dir=settings.data_dir / "models"))
    if grounding is None:
        grounding = _rag_grounding(settings)
    if record is None:
        record = _ledger_recorder(settings)
    if warming is not None:
        await warming
    deps = Deps(router=router, agents=agents, pool=pool, catalog=Catalog(models_dir=settings.data_dir / "models"),
                settings=settings.orchestrator, grounding=grounding, record=record,
                meter=CpuTimeEstimator(settings.energy.watts_per_core),
                policy=PlacementPolicy(min_battery_percent=settings.orchestrator.min_battery_percent))
    if history is None:
        history = conversation_store(settings)
    return Orchestrator(deps, history=history, history_turns=settings.history.turns)


def _warm_tools() -> None:
    """Load sympy once at build, so no answer pays for its import (about half a second). pint's unit
    registry (as long again) is built by the first conversion asked, not by every answer."""
    try:
        from covey.tools import arithmetic
        from covey.tools.questions import read_question

        arithmetic.evaluate("1+1")
        read_question("What is 1 plus 1?")
    except Exception as exc:  # a base install without the orchestrator extra: the tools say so when used
        logger.info("maths tools not warmed: %s", exc)


def conversation_store(settings: Settings):
    """The conversation history every front shares: DATA_DIR/history.db."""
    from covey.history.store import FILENAME, HistoryStore

    return HistoryStore(settings.data_dir / FILENAME, keep_text=settings.history.keep_text)


def _import_graph_modules() -> None:
    """Import what build_graph needs (langgraph: seconds of module execution) off the event loop."""
    import langgraph.checkpoint.memory  # noqa: F401
    import langgraph.graph  # noqa: F401


def _load_router(settings: Settings):
    """The router with its encoder's weights read (the shipped head needs no embedding to load, so the
    first `classify` would otherwise read them on the answer's path)."""
    from covey.router.classifier import load_default_router

    router = load_default_router(settings.data_dir, settings.router)
    load = getattr(router.embedder, "load", None)
    if load is not None:
        load()
    return router


def _rag_grounding(settings: Settings):
    from covey.orchestrator.retrieval import StoreGrounding

    return StoreGrounding.from_settings(settings)


def _ledger_recorder(settings: Settings):
    from covey.orchestrator.recorder import LedgerRecorder

    return LedgerRecorder(settings)
