"""Esc in `covey chat` over a real Orchestrator and NodePool: the graph stops, the node's slot is freed."""

from __future__ import annotations

import asyncio

from chat_fakes import SMOL, agents, node, settle

from covey.energy.carbon import CarbonIntensity
from covey.models.catalog import Catalog
from covey.orchestrator.graph import Deps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.pool import NodePool
from covey.router.classifier import RouteDecision
from covey.settings import OrchestratorSettings
from covey.tui.app import ChatApp
from covey.tui.widgets import NodesPanel
from covey.types import TokenPiece


class OneRouteRouter:
    routes = ("chat", "code")

    def classify(self, text, history=()):
        return RouteDecision(route="chat", confidence=0.9)


class StallingNode:
    """Sends one piece, then waits for ever; records when the orchestrator closes its stream."""

    def __init__(self) -> None:
        self.info_ = node("den", models=(SMOL,), source="embedded")
        self.address = "den:50551"
        self.streaming = asyncio.Event()
        self.closed = asyncio.Event()

    async def info(self):
        return self.info_

    async def generate(self, req):
        try:
            yield TokenPiece(text="Once", logprobs=(-0.1,), token_ids=(1,))
            self.streaming.set()
            await asyncio.Event().wait()
        finally:
            self.closed.set()

    async def healthy(self):
        return True

    async def close(self):
        pass


async def test_escape_stops_the_graph_and_frees_the_nodes_slot(tmp_path) -> None:
    settings = OrchestratorSettings(discover=False, tool_answers=False, program_aided=False, verify_answers=False)
    pool = NodePool(settings)
    client = StallingNode()
    await pool.add_client(client)
    deps = Deps(router=OneRouteRouter(), agents=agents(), pool=pool, catalog=Catalog(models_dir=tmp_path / "models"),
                settings=settings)
    orch = Orchestrator(deps)
    app = ChatApp(orch, data_dir=tmp_path, carbon=CarbonIntensity(g_per_kwh=100.0, source="test"), session_id="c1")
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press(*"tell me a story", "enter")
        await settle(pilot, app, lambda: client.streaming.is_set())
        app.refresh_nodes()
        body = lambda: str(app.query_one(NodesPanel).query_one("#nodes-body").content)  # noqa: E731
        assert "load 1/4" in body()  # the answer holds one of den's slots
        await pilot.press("escape")
        await settle(pilot, app, lambda: app.answering is None)
        await asyncio.wait_for(client.closed.wait(), 5)
        assert pool.nodes()[0].models[0].queue_depth == 0
        app.refresh_nodes()
        assert "load 0/4" in body()
    await pool.close()
