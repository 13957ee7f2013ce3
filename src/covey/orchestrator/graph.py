"""The LangGraph graph behind every answer.

classify -> solve -> retrieve -> place -> ([call_tool ->] generate | program) -> verify -> assess
    -> (place again: escalate | settle) -> record -> END

`solve`, `program`, `verify` and `settle` (covey.orchestrator.tool_steps) answer with the tools where
they can, let math word problems be solved by a program the model writes, check answers with the
tools, and make sure an answer a check proved wrong is never the one that stands. `call_tool`
(covey.orchestrator.tool_calls) lets the model make one JSON tool call, schema-constrained, whose
result the answer quotes, when a cue in the prompt says one of the agent's tools may help.

The state holds covey's own frozen models (`RouteDecision`, `Placement`, `Attempt`, ...), never
dicts; each step is a module-level function ``step(state, deps) -> update`` in
`covey.orchestrator.steps`, so it can be tested alone. The graph is built by `build_graph(deps)`,
never at import time, so a team can add its own steps: pass `extra_steps` (name -> async
``step(state, deps)``) and `edges` to splice them in, or take the uncompiled `StateGraph` from
`graph_builder(deps)` and compile it yourself. For example, a step that sees every finished answer::

    async def audit(state: State, deps: Deps) -> dict:
        team_log.append((state["result"].route, state["result"].energy.joules))
        return {}

    orch = Orchestrator(deps, graph=build_graph(deps, extra_steps={"audit": audit},
                                                edges=[("record", "audit")]))

(tests/unit/orchestrator/test_steps.py runs this example.)
"""

from __future__ import annotations

import operator
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, TypedDict

from covey.agents.roster import AgentRoster
from covey.energy.meter import EnergyMeter
from covey.models.catalog import Catalog
from covey.orchestrator.placement import Placement, PlacementPolicy
from covey.orchestrator.results import AnswerResult, Attempt, Source, ToolCallRecord
from covey.router.classifier import RouteDecision, Router
from covey.settings import OrchestratorSettings
from covey.types import Energy, GenerateEvent, GenerateFinal, GenerateRequest, Message, NodeInfo


class Grounded(Protocol):
    found: bool
    messages: tuple[Message, ...]
    reply: str | None


class Grounding(Protocol):
    """Retrieval over the user's documents (covey.orchestrator.retrieval.StoreGrounding is the real one).

    Grounded agents search with the relevance threshold; every other route is offered passages only
    when they clear `offer_threshold` (None: other routes are never offered documents). `strict`
    refuses a knowledge question the documents do not answer."""

    strict: bool
    offer_threshold: float | None

    async def ground(self, query: str, *, budget_tokens: int, threshold: float | None = None,
                     system: str | None = None) -> tuple[Grounded | None, tuple[Source, ...]]:
        """(None, ()) when the user has no documents at all: the agent then answers ungrounded."""


class NodeSource(Protocol):
    """The live nodes as the graph sees them (covey.orchestrator.pool.NodePool is the real one)."""

    def nodes(self) -> tuple[NodeInfo, ...]:
        """Snapshots for placement, with this orchestrator's own answers in flight counted."""

    def reserve(self, node: NodeInfo, model_id: str) -> None:
        """Count an answer just placed on `node` until its stream starts (a burst sees its own placements)."""

    def generate(self, node: NodeInfo, req: GenerateRequest) -> AsyncGenerator[GenerateEvent, None]:
        """The node's stream of pieces, then one final; covey errors on failure (NodeUnavailable also when
        the node goes silent mid-answer or leaves the directory)."""

    def forget(self, node: NodeInfo, reason: str) -> None:
        """Drop a node that failed under us (discovery or health checks may bring it back)."""

    async def close(self) -> None: ...


Recorder = Callable[[AnswerResult], Awaitable[None] | None]


@dataclass
class Deps:
    """Everything the graph's steps use, passed in (wiring.build names the real classes)."""

    router: Router
    agents: AgentRoster
    pool: NodeSource
    catalog: Catalog
    settings: OrchestratorSettings
    grounding: Grounding | None = None
    record: Recorder | None = None
    meter: EnergyMeter | None = None  # the orchestrator's own work (routing, retrieval)
    policy: PlacementPolicy = field(default_factory=PlacementPolicy)
    sandbox: Any = None  # covey.tools.Sandbox for program-aided maths and code checks (None: made on first use)
    tools: Any = None  # covey.tools.ToolRegistry for the model's tool calls (None: the shipped tools and plugins)


class State(TypedDict, total=False):
    session_id: str
    history: Annotated[list[Message], operator.add]  # kept per session by the checkpointer
    ladder_noted: Annotated[list[str], operator.add]  # "agent@model" unsure-at-the-top notes given this session
    pin: dict[str, Any]  # {"agent", "model", "max_tokens"} the caller asked for instead of the agent's own
    prompt: str
    t0: float
    route: RouteDecision
    agent: str
    grounded_messages: tuple[Message, ...]
    direct_reply: str | None
    sources: tuple[Source, ...]
    rung: int
    placement: Placement | None
    next_placement: Placement | None
    attempts: tuple[Attempt, ...]
    text: str
    logprobs: tuple[float, ...]
    final: GenerateFinal | None
    escalate: bool
    notes: tuple[str, ...]
    own_energy: tuple[Energy, ...]
    result: AnswerResult
    program_aided: bool  # this rung answers by writing a program (math word problems)
    direct_model: str | None  # "tool:<name>" when a tool answered without a model
    tool_calls: tuple[ToolCallRecord, ...]
    check_failure: str | None  # the latest answer was proven wrong by a check (and why)
    verified: str | None  # the latest answer was proven right by a check (the prompt's tests, the tools' value)
    unsure: str | None  # the latest answer is not proven wrong but too weakly supported (e.g. programs disagree)
    standing_text: str | None  # the answer that stands when settle replaced the last one
    standing_attempt: int | None  # the attempt whose answer stands, when settle chose an earlier rung's
    cued_tools: tuple[str, ...]  # the agent's tools a cue in the prompt says may help (covey.orchestrator.tool_calls)
    tool_results: tuple[str, ...]  # results of the model's tool calls, put before the question in the answer's messages
    call_final: GenerateFinal | None  # the generation that chose this rung's tool call (assess counts it in the attempt)
    no_history: bool  # answer without the earlier turns (the request stands alone, or a rung drifted into their language)
    grounding: str  # "documents", "not_from_documents" (retrieval ran, nothing strong) or "" (it did not run)


Step = Callable[[State, Deps], Awaitable[dict[str, Any]]]

STATE_TYPES: tuple[type, ...] = (Message, RouteDecision, Placement, Attempt, Source, GenerateFinal, Energy,
                                 AnswerResult, ToolCallRecord)
"""covey types the checkpointer may rebuild from a checkpoint (LangGraph's msgpack allow-list)."""


def _bind(step: Step, deps: Deps) -> Callable[[State], Awaitable[dict[str, Any]]]:
    async def run(state: State) -> dict[str, Any]:
        return await step(state, deps)

    run.__name__ = getattr(step, "__name__", "step")
    return run


def graph_builder(deps: Deps, extra_steps: dict[str, Step] | None = None,
                  edges: Sequence[tuple[str, str]] | None = None):
    """The uncompiled StateGraph, with `extra_steps` added and `edges` drawn (targets may be "END")."""
    from langgraph.graph import END, START, StateGraph

    from covey.orchestrator import steps, tool_calls, tool_steps

    g = StateGraph(State)
    for step in (steps.classify, tool_steps.solve, steps.retrieve, steps.place, tool_calls.call_tool, steps.generate,
                 tool_steps.program, tool_steps.verify, steps.assess, tool_steps.settle, steps.record):
        g.add_node(step.__name__, _bind(step, deps))  # type: ignore[call-overload]  # mypy: a TypedDict is not TypedDictLikeV1
    g.add_edge(START, "classify")
    g.add_edge("classify", "solve")
    g.add_edge("solve", "retrieve")
    g.add_edge("retrieve", "place")
    g.add_conditional_edges("place", tool_steps.after_place,
                            {"generate": "generate", "program": "program", "call_tool": "call_tool",
                             "record": "record"})
    g.add_edge("call_tool", "generate")
    g.add_edge("generate", "verify")
    g.add_edge("program", "verify")
    g.add_edge("verify", "assess")
    g.add_conditional_edges("assess", steps.after_assess, {"place": "place", "record": "settle"})
    g.add_edge("settle", "record")
    g.add_edge("record", END)
    for name, fn in (extra_steps or {}).items():
        g.add_node(name, _bind(fn, deps))  # type: ignore[call-overload]  # as above
    for a, b in edges or []:
        g.add_edge(a, END if b == "END" else b)
    return g


def memory_saver():
    """Per-session memory that rebuilds covey's own types (and only those) from its checkpoints."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    allowed = [(t.__module__, t.__name__) for t in STATE_TYPES] + [
        ("covey.types", name) for name in ("EnergyComponent", "EnergyMethod", "Timings", "FinishReason",
                                           "NodeInfo", "ModelOffer", "Battery")] + [
        ("covey.orchestrator.results", "Confidence")]
    return InMemorySaver(serde=JsonPlusSerializer(allowed_msgpack_modules=allowed))


def build_graph(deps: Deps, *, checkpointer=None, **kw: Any):
    """Compile the graph with a per-session checkpointer (conversation memory)."""
    return graph_builder(deps, **kw).compile(checkpointer=checkpointer or memory_saver())


__all__ = ["Deps", "Grounding", "NodeSource", "State", "Step", "build_graph", "graph_builder", "memory_saver"]
