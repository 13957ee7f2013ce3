"""The LangGraph graph behind every answer.

classify -> retrieve -> place -> generate -> assess -> (place again: escalate | record) -> END

Built by `build_graph(deps)`, never at import time, so a team can add its own steps: pass
`extra_steps` (name -> async step) and `edges` to splice them in, or take the uncompiled
`StateGraph` from `graph_builder(deps)` and compile it yourself.
"""

from __future__ import annotations

import operator
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, TypedDict

from covey.agents.roster import AgentRoster
from covey.energy.meter import EnergyMeter
from covey.errors import NoCapableNode, NodeUnavailable
from covey.models.catalog import Catalog
from covey.orchestrator import cascade
from covey.orchestrator.placement import Placement, PlacementPolicy, choose
from covey.orchestrator.pool import NodePool
from covey.orchestrator.router import RouteDecision, Router
from covey.orchestrator.results import AnswerResult, Attempt, Notice, Source, Token
from covey.settings import OrchestratorSettings
from covey.types import (
    Energy, EnergyComponent, EnergyMethod, GenerateFinal, GenerateRequest, Message, ModelId, RequestId,
    TokenPiece,
)

HISTORY_TURNS = 6
GROUNDING_BUDGET_TOKENS = 1100  # of a 2k context: the rest is the answer and the chat template


class Grounded(Protocol):
    found: bool
    messages: tuple[Message, ...]
    reply: str | None


class Grounding(Protocol):
    """Retrieval for grounded agents (covey.orchestrator.grounding.StoreGrounding is the real one)."""

    async def ground(self, query: str, *, budget_tokens: int) -> tuple[Grounded | None, tuple[Source, ...]]:
        """(None, ()) when the user has no documents at all: the agent then answers ungrounded."""


@dataclass
class Deps:
    """Everything the graph's steps use, passed in (wiring.build names the real classes)."""

    router: Router
    agents: AgentRoster
    pool: NodePool
    catalog: Catalog
    settings: OrchestratorSettings
    grounding: Grounding | None = None
    record: Callable[[AnswerResult], Awaitable[None] | None] | None = None
    meter: EnergyMeter | None = None  # the orchestrator's own work (routing, retrieval)
    policy: PlacementPolicy = field(default_factory=PlacementPolicy)


class State(TypedDict, total=False):
    session_id: str
    history: Annotated[list[dict[str, str]], operator.add]  # kept per session by the checkpointer
    pin: dict[str, Any]  # {"agent", "model", "max_tokens"} the caller asked for instead of the agent's own
    prompt: str
    t0: float
    route: dict[str, Any]
    agent: str
    grounded_messages: list[dict[str, str]]
    direct_reply: str | None
    sources: list[dict[str, Any]]
    rung: int
    placement: dict[str, Any] | None
    next_placement: dict[str, Any] | None
    attempts: list[dict[str, Any]]
    text: str
    logprobs: list[float]
    final: dict[str, Any] | None
    escalate: bool
    notes: list[str]
    own_energy: list[dict[str, Any]]
    result: dict[str, Any]


def _writer():
    from langgraph.config import get_stream_writer

    try:
        return get_stream_writer()
    except RuntimeError:  # outside a streaming run
        return lambda _chunk: None


def graph_builder(deps: Deps, extra_steps: dict[str, Callable] | None = None,
                  edges: list[tuple[str, str]] | None = None):
    from langgraph.graph import END, START, StateGraph

    def measure(label: str):
        return deps.meter.open(label) if deps.meter is not None else None

    async def classify(state: State) -> dict[str, Any]:
        window = measure("route")
        history = [Message(role=m["role"], content=m["content"]) for m in state.get("history", [])]
        pin = state.get("pin") or {}
        if pin.get("agent"):  # the caller named the agent (e.g. the HTTP API's model "covey-agent/NAME")
            spec = deps.agents.get(pin["agent"])
            decision = RouteDecision(route=spec.routes[0], confidence=1.0, reason=f"agent '{spec.name}' was asked for")
        else:
            decision = deps.router.classify(state["prompt"], history=history)
            spec = deps.agents.for_route(decision.route)
        own = [window.close().model_dump(mode="json")] if window else []
        return {"route": decision.model_dump(mode="json"), "agent": spec.name, "rung": 0, "attempts": [], "notes": [],
                "escalate": False, "own_energy": own, "sources": [], "grounded_messages": [],
                "direct_reply": None, "next_placement": None}

    async def retrieve(state: State) -> dict[str, Any]:
        spec = deps.agents.get(state["agent"])
        if not spec.grounded or deps.grounding is None:
            return {}
        window = measure("retrieve")
        grounded, sources = await deps.grounding.ground(state["prompt"], budget_tokens=GROUNDING_BUDGET_TOKENS)
        own = state.get("own_energy", []) + ([window.close().model_dump(mode="json")] if window else [])
        notes = list(state.get("notes", []))
        if grounded is None:
            notes.append("no documents added yet (`covey rag add PATH`): answered from the model alone")
            return {"own_energy": own, "notes": notes}
        if not grounded.found:
            # Say so instead of letting a small model invent an answer.
            notes.append("nothing relevant found in your documents")
            _writer()(Notice(kind="grounding", text="nothing relevant found in your documents"))
            return {"direct_reply": grounded.reply, "own_energy": own, "notes": notes}
        return {"grounded_messages": [m.model_dump(mode="json") for m in grounded.messages],
                "sources": [s.model_dump(mode="json") for s in sources], "own_energy": own, "notes": notes}

    def find_placement(spec, from_rung: int, model: str | None = None) -> tuple[Placement | None, list[str]]:
        """The first rung from `from_rung` up that some node can run now, and why lower ones could not.

        `model` (a model the caller asked for by name) replaces the agent's ladder with that one rung."""
        tried: list[str] = []
        ladder = (model,) if model else spec.ladder
        for rung in range(from_rung, len(ladder)):
            model_id = ladder[rung]
            placement, reasons = choose(
                deps.pool.nodes(), model_id, catalog=deps.catalog, max_tokens=spec.max_tokens,
                latency_budget_s=spec.latency_budget_s, policy=deps.policy,
                local_names=[deps.settings.local_node] if deps.settings.local_node else [], rung=rung)
            if placement is not None:
                return placement, tried
            tried.append(_why_no_node(model_id, reasons))
        return None, tried

    async def place(state: State) -> dict[str, Any]:
        if state.get("direct_reply") is not None:
            _writer()(Token(text=state["direct_reply"]))
            return {"placement": None}
        spec = deps.agents.get(state["agent"])
        notes = list(state.get("notes", []))
        if chosen := state.get("next_placement"):  # assess already found the stronger rung's node
            placement, tried = Placement.model_validate(chosen), []
        else:
            placement, tried = find_placement(spec, state.get("rung", 0), (state.get("pin") or {}).get("model"))
        if placement is None:
            raise NoCapableNode(f"no node can run agent '{spec.name}': " + "; ".join(tried))
        if placement.reason:
            notes.append(placement.reason)
            _writer()(Notice(kind="delegate", text=placement.reason))
        return {"placement": placement.model_dump(mode="json"), "rung": placement.rung, "notes": notes,
                "next_placement": None}

    async def generate(state: State) -> dict[str, Any]:
        spec = deps.agents.get(state["agent"])
        placement = Placement.model_validate(state["placement"])
        write = _writer()
        attempt_no = len(state.get("attempts", []))
        messages = _messages(spec, state)
        max_tokens = min(spec.max_tokens, (state.get("pin") or {}).get("max_tokens") or spec.max_tokens)
        base = GenerateRequest(request_id=RequestId(uuid.uuid4().hex[:12]), model_id=ModelId(placement.model_id),
                               messages=messages, sampling=spec.sampling, max_tokens=max_tokens)
        text, logprobs, attempts = "", [], list(state.get("attempts", []))
        exclude: list[str] = []
        failovers = 0
        while True:
            node = placement.node
            final: GenerateFinal | None = None
            produced_here = 0
            try:
                async for ev in deps.pool.generate(node, base.model_copy(update={"continue_from": text})):
                    if isinstance(ev, TokenPiece):
                        text += ev.text
                        logprobs.extend(ev.logprobs)
                        produced_here += len(ev.logprobs)
                        if ev.text:
                            write(Token(text=ev.text, attempt=attempt_no))
                    else:
                        final = ev
                if final is None:
                    raise NodeUnavailable(f"node '{node.name}' ended the stream without a final message")
                break
            except NodeUnavailable as exc:
                failovers += 1
                lost = _lost_energy(node, produced_here)
                attempts.append(Attempt(node_id=node.node_id, node_name=node.name, address=node.address,
                                        model_id=placement.model_id, outcome="failed_over", text=text,
                                        completion_tokens=produced_here, energy=lost, reason=str(exc)).model_dump(mode="json"))
                deps.pool.forget(node, f"failed mid-answer: {exc}")
                exclude.append(node.node_id)
                nxt, reasons = choose(deps.pool.nodes(), placement.model_id, catalog=deps.catalog,
                                      max_tokens=spec.max_tokens, policy=deps.policy, exclude=exclude,
                                      rung=placement.rung)
                if nxt is None or failovers > deps.settings.max_failovers:
                    tried = ", ".join(f"'{a['node_name']}'" for a in attempts if a["outcome"] == "failed_over")
                    why = "; ".join(reasons) or "no other node serves it"
                    raise NoCapableNode(f"could not finish the answer with {placement.model_id}: tried {tried} "
                                        f"(each went away mid-answer); {why}") from exc
                write(Notice(kind="failover", text=f"'{node.name}' went away; continuing on '{nxt.node.name}'"))
                placement = nxt
        return {"text": text, "logprobs": logprobs, "final": final.model_dump(mode="json"), "attempts": attempts,
                "placement": placement.model_dump(mode="json")}

    async def assess(state: State) -> dict[str, Any]:
        spec = deps.agents.get(state["agent"])
        placement = Placement.model_validate(state["placement"])
        final = GenerateFinal.model_validate(state["final"])
        conf = cascade.assess(state["prompt"], state["text"], state["logprobs"],
                              min_mean_logprob=spec.accept.min_mean_logprob,
                              min_token_logprob=spec.accept.min_token_logprob,
                              checker=_checker(spec.checker), checker_name=spec.checker or "")
        pinned = (state.get("pin") or {}).get("model")
        stronger, tried = (find_placement(spec, placement.rung + 1, pinned) if not conf.passed else (None, []))
        escalate = stronger is not None
        node = placement.node
        attempts = list(state.get("attempts", []))
        attempts.append(Attempt(
            node_id=node.node_id, node_name=node.name, address=node.address, model_id=placement.model_id,
            outcome="escalated" if escalate else "answered", text=state["text"],
            prompt_tokens=final.prompt_tokens, completion_tokens=final.completion_tokens,
            seconds=final.timings.total_ms / 1000.0, tokens_per_second=final.tokens_per_second,
            energy=final.energy, finish=final.finish_reason, confidence=conf,
            reason=conf.reason).model_dump(mode="json"))
        notes = list(state.get("notes", []))
        if escalate:
            msg = f"{placement.model_id} was unsure ({conf.reason}); escalating"
            notes.append(msg)
            _writer()(Notice(kind="escalate", text=msg))
        elif not conf.passed:
            why = "; ".join(tried) if tried else "it is the top of the ladder"
            notes.append(f"{placement.model_id} was unsure ({conf.reason}) but no stronger model is available: {why}")
        return {"attempts": attempts, "escalate": escalate, "rung": stronger.rung if escalate else placement.rung,
                "next_placement": stronger.model_dump(mode="json") if escalate else None,
                "notes": notes}

    async def record(state: State) -> dict[str, Any]:
        attempts = [Attempt.model_validate(a) for a in state.get("attempts", [])]
        answered = [a for a in attempts if a.outcome == "answered"] or [a for a in attempts if a.text]
        if answered:
            last = answered[-1]
        else:  # answered without a model (nothing found in the user's documents)
            last = Attempt(node_id="", node_name="orchestrator", address="", model_id="none", outcome="answered",
                           text=state.get("direct_reply") or "")
        own = [Energy.model_validate(e) for e in state.get("own_energy", [])]
        energy = _sum([a.energy for a in attempts] + own)
        route = state["route"]
        result = AnswerResult(
            session_id=state["session_id"], text=last.text, route=route["route"],
            route_confidence=route["confidence"], route_note=route.get("reason", "") if route.get("fallback") else "",
            agent=state["agent"], node=last.node_name, model=last.model_id, attempts=tuple(attempts),
            prompt_tokens=sum(a.prompt_tokens for a in attempts),
            completion_tokens=sum(a.completion_tokens for a in attempts),
            seconds=time.monotonic() - state["t0"], energy=energy, overhead=_sum(own),
            sources=tuple(Source.model_validate(s) for s in state.get("sources", [])),
            notes=tuple(dict.fromkeys(state.get("notes", []))),
        )
        if deps.record is not None:
            maybe = deps.record(result)
            if hasattr(maybe, "__await__"):
                await maybe
        return {"result": result.model_dump(mode="json"),
                "history": [{"role": "user", "content": state["prompt"]},
                            {"role": "assistant", "content": result.text}]}

    g = StateGraph(State)
    for name, fn in (("classify", classify), ("retrieve", retrieve), ("place", place), ("generate", generate),
                     ("assess", assess), ("record", record)):
        g.add_node(name, fn)
    g.add_edge(START, "classify")
    g.add_edge("classify", "retrieve")
    g.add_edge("retrieve", "place")
    g.add_conditional_edges("place", lambda s: "generate" if s.get("placement") else "record",
                            {"generate": "generate", "record": "record"})
    g.add_edge("generate", "assess")
    g.add_conditional_edges("assess", lambda s: "place" if s.get("escalate") else "record",
                            {"place": "place", "record": "record"})
    g.add_edge("record", END)
    for name, fn in (extra_steps or {}).items():
        g.add_node(name, fn)
    for a, b in edges or []:
        g.add_edge(a, b)
    return g


def build_graph(deps: Deps, *, checkpointer=None, **kw):
    """Compile the graph with a per-session checkpointer (conversation memory)."""
    from langgraph.checkpoint.memory import InMemorySaver

    return graph_builder(deps, **kw).compile(checkpointer=checkpointer or InMemorySaver())


def _messages(spec, state: State) -> tuple[Message, ...]:
    """System prompt, recent turns, then the new message (or the grounded system+user pair)."""
    history = [Message(role=m["role"], content=m["content"])  # type: ignore[arg-type]
               for m in state.get("history", [])[-2 * HISTORY_TURNS:]]
    grounded = [Message.model_validate(m) for m in state.get("grounded_messages") or []]
    if grounded:
        system = [m for m in grounded if m.role == "system"]
        rest = [m for m in grounded if m.role != "system"]
        return tuple(system + history + rest)
    msgs = [Message(role="system", content=spec.system_prompt)] if spec.system_prompt else []
    return tuple(msgs + history + [Message(role="user", content=state["prompt"])])


def _why_no_node(model_id: str, reasons: list[str]) -> str:
    if not reasons:
        return f"{model_id}: no nodes known"
    # Nodes that do serve it are busy, on a low battery, ...: those reasons are worth reading.
    serving = [r for r in reasons if "does not serve" not in r and " needs " not in r]
    return f"{model_id}: " + ", ".join(serving) if serving else f"no node serves {model_id}"


def _checker(name: str | None):
    """The agent's named answer check as (prompt, answer) -> (ok, reason), or None."""
    if not name:
        return None
    from covey.agents.checkers import CHECKERS

    check = CHECKERS[name]

    def run(prompt: str, answer: str) -> tuple[bool, str]:
        r = check(prompt, answer)
        return r.ok, r.reason

    return run


def _sum(parts: list[Energy]) -> Energy:
    total = Energy()
    for p in parts:
        total = total + p
    return total


def _lost_energy(node, tokens: int) -> Energy:
    """A node that vanished never sent its figure: estimate from its advertised J/token."""
    jpt = node.joules_per_token or 0.0
    return Energy.of([EnergyComponent(name=f"lost:{node.name}", joules=jpt * tokens, method=EnergyMethod.ESTIMATED,
                                      source="node's advertised J/token x tokens seen before it went away",
                                      uncertainty=1.0)])


__all__ = ["Deps", "Grounding", "State", "build_graph", "graph_builder"]
