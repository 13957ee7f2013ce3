"""A close call between two prose routes goes to the cheaper agent (issue 10's "prefer the cheaper agent
when both can serve"), and says so; anything else keeps the best route's agent."""

from __future__ import annotations

import pytest

from covey.models.catalog import Catalog
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.graph import Deps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.pool import NodePool
from covey.router.classifier import RouteDecision
from covey.settings import OrchestratorSettings

from fakes import FakeNodeClient, node_info, roster, spec

SMOL = "smollm2-135m-instruct-q4_1"


class CloseRouter:
    def __init__(self, route: str, runner_up: str, margin: float) -> None:
        self.decision = RouteDecision(route=route, confidence=0.45, runner_up=runner_up,
                                      runner_up_confidence=0.45 - margin, margin=margin)

    def classify(self, text, history=()):
        return self.decision


async def ask(router, **kw):
    settings = OrchestratorSettings(discover=False, embedded="never", **kw)
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    await pool.add_client(FakeNodeClient(node_info("a", {SMOL: 100}), words=("Paris.",)))
    agents = roster(spec("librarian", (SMOL,), routes=("knowledge",), checker="nonempty", max_tokens=512),
                    spec("companion", (SMOL,), routes=("chat",), checker="nonempty", max_tokens=384),
                    spec("coder", (SMOL,), routes=("code",), checker="python_parses", max_tokens=64))
    orch = Orchestrator(Deps(router=router, pool=pool, catalog=Catalog(), settings=settings, agents=agents))
    try:
        return await orch.ask("What do people in Paris like to eat?")
    finally:
        await orch.close()


async def test_a_close_call_between_knowledge_and_chat_goes_to_the_cheaper_agent_and_says_so() -> None:
    result = await ask(CloseRouter("knowledge", "chat", 0.04))
    assert result.agent == "companion" and result.route == "knowledge"  # the route stays the router's
    (note,) = [n for n in result.notes if "close call" in n]
    assert "between knowledge and chat (margin 0.04)" in note and "companion" in note and "librarian" in note


@pytest.mark.parametrize(("router", "kw"), [
    (CloseRouter("knowledge", "chat", 0.25), {}),                    # not close
    (CloseRouter("knowledge", "chat", 0.04), {"close_calls": "best"}),  # the setting keeps the best route's
    (CloseRouter("chat", "knowledge", 0.04), {}),                    # the best is already the cheaper one
])
async def test_otherwise_the_best_routes_agent_answers(router, kw) -> None:
    result = await ask(router, **kw)
    assert result.agent == ("companion" if router.decision.route == "chat" else "librarian")
    assert not any("close call" in n for n in result.notes)


async def test_a_close_call_with_a_route_that_runs_tools_is_not_swapped() -> None:
    """Code runs its answer in the sandbox: a prose agent cannot serve it, however close the call."""
    result = await ask(CloseRouter("code", "chat", 0.01))
    assert result.agent == "coder"
