"""The graph's steps one by one (state in, update out), the latency budget, and an added step."""

from __future__ import annotations

import threading
import time

from covey.models.catalog import Catalog
from covey.orchestrator import steps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.graph import Deps, State, build_graph
from covey.orchestrator.placement import Placement
from covey.orchestrator.pool import NodePool
from covey.orchestrator.client import GrpcNodeClient
from covey.router.classifier import RouteDecision
from covey.settings import OrchestratorSettings
from covey.types import (
    Energy, FinishReason, GenerateFinal, ModelId, NodeId, Timings,
)

from fakes import FakeNodeClient, ScriptedRouter, node_info, roster, spec

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"


class ThreadRecordingRouter(ScriptedRouter):
    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.threads: list[str] = []

    def classify(self, text, history=()):
        self.threads.append(threading.current_thread().name)
        return super().classify(text, history)


async def _deps(clients, agents, router=None) -> Deps:
    settings = OrchestratorSettings(discover=False, embedded="never")
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    for c in clients:
        await pool.add_client(c)
    return Deps(router=router or ScriptedRouter(), agents=agents, pool=pool, catalog=Catalog(), settings=settings)


def _final(tokens: int = 2, finish: FinishReason = FinishReason.STOP) -> GenerateFinal:
    return GenerateFinal(finish_reason=finish, prompt_tokens=5, completion_tokens=tokens,
                         timings=Timings(generate_ms=50.0, total_ms=60.0), energy=Energy(),
                         node_id=NodeId("id-a"), model_id=ModelId(SMOL))


async def test_classify_routes_off_the_event_loop_and_resets_the_answer_fields() -> None:
    router = ThreadRecordingRouter("chat")
    deps = await _deps([], roster(spec("chatter", (SMOL,))), router)
    update = await steps.classify(State(prompt="hello", history=[], t0=time.monotonic(), text="old answer"), deps)
    assert isinstance(update["route"], RouteDecision) and update["route"].route == "chat"
    assert update["agent"] == "chatter" and update["attempts"] == () and update["text"] == ""
    assert router.threads and router.threads[0] != threading.main_thread().name


async def test_assess_escalates_to_the_next_rung_some_node_can_run() -> None:
    a = node_info("a", {SMOL: 100})
    deps = await _deps([FakeNodeClient(a), FakeNodeClient(node_info("b", {GEMMA: 50}))],
                       roster(spec("k", (SMOL, GEMMA), min_mean_logprob=-1.0)))
    placement = Placement(node=a, model_id=SMOL, rung=0, expected_joules=1.0, expected_seconds=1.0)
    state = State(prompt="capital of France?", agent="k", t0=time.monotonic(), placement=placement,
                  final=_final(), text="um", logprobs=(-4.0, -4.0), attempts=(), notes=())
    update = await steps.assess(state, deps)
    assert update["escalate"] is True and update["next_placement"].model_id == GEMMA
    assert [a.outcome for a in update["attempts"]] == ["escalated"]
    assert steps.after_assess({**state, **update}) == "place"


async def test_no_escalation_once_the_latency_budget_is_spent() -> None:
    a = node_info("a", {SMOL: 100})
    deps = await _deps([FakeNodeClient(a), FakeNodeClient(node_info("b", {GEMMA: 50}))],
                       roster(spec("k", (SMOL, GEMMA), min_mean_logprob=-1.0)))
    placement = Placement(node=a, model_id=SMOL, rung=0, expected_joules=1.0, expected_seconds=1.0)
    long_ago = time.monotonic() - 10_000
    state = State(prompt="capital of France?", agent="k", t0=long_ago, placement=placement,
                  final=_final(finish=FinishReason.DEADLINE), text="um", logprobs=(-4.0,), attempts=(), notes=())
    update = await steps.assess(state, deps)
    assert update["escalate"] is False and update["next_placement"] is None
    assert any("latency budget" in n and "is spent" in n for n in update["notes"]), update["notes"]
    assert update["ladder_noted"] == []  # out of time is not the ladder's fault
    assert any("was stopped at agent 'k''s latency budget" in n for n in update["notes"])


async def test_generate_passes_what_is_left_of_the_budget_as_the_node_deadline() -> None:
    client = FakeNodeClient(node_info("a", {SMOL: 100}))
    agents = roster(spec("k", (SMOL,)).model_copy(update={"latency_budget_s": 20.0}))
    deps = await _deps([client], agents)
    placement = Placement(node=node_info("a", {SMOL: 100}), model_id=SMOL, rung=0, expected_joules=1.0,
                          expected_seconds=1.0)
    state = State(prompt="hi", agent="k", t0=time.monotonic() - 5.0, placement=placement, attempts=(),
                  history=[])
    update = await steps.generate(state, deps)
    assert update["text"] == "Hello world" and isinstance(update["final"], GenerateFinal)
    assert 13_000 <= client.seen[0].deadline_ms <= 15_000  # 20 s budget, 5 s already gone


async def test_an_added_step_after_record_sees_every_answer() -> None:
    """The example in graph.py's docstring, as written there."""
    team_log: list[tuple[str, float]] = []

    async def audit(state: State, deps: Deps) -> dict:
        team_log.append((state["result"].route, state["result"].energy.joules))
        return {}

    deps = await _deps([FakeNodeClient(node_info("den", {SMOL: 100}), joules=2.0)], roster(spec("c", (SMOL,))))
    orch = Orchestrator(deps, graph=build_graph(deps, extra_steps={"audit": audit}, edges=[("record", "audit")]))
    result = await orch.ask("hello")
    await orch.ask("again")
    assert result.text == "Hello world"
    assert team_log == [("chat", 2.0), ("chat", 2.0)]
