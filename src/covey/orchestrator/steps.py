"""The graph's steps: each a module-level ``async step(state, deps) -> update`` (see graph.py).

Steps read covey's frozen models from the state and return the fields they change. Tokens and
notices for the user are written to LangGraph's stream as they happen (`emit`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import time
import uuid
from collections.abc import Sequence
from typing import Any

from covey.agents.checkers import echoes_instructions
from covey.agents.spec import AgentSpec
from covey.errors import CoveyError, NoCapableNode, NodeBusy, NodeUnavailable, PromptTooLong
from covey.orchestrator import cascade
from covey.orchestrator.graph import Deps, State
from covey.orchestrator.placement import Placement, Refusal, choose
from covey.orchestrator.results import AnswerResult, Attempt, Confidence, Notice, Token
from covey.orchestrator.tool_steps import could_not
from covey.router.classifier import RouteDecision
from covey.text import stands_alone, trimmed_answer
from covey.types import (
    Energy, EnergyComponent, EnergyMethod, FinishReason, GenerateFinal, GenerateRequest, Message, ModelId, NodeInfo,
    RequestId, Timings, TokenPiece,
)

HISTORY_TURNS = 6
GROUNDING_BUDGET_TOKENS = 1100  # of a 2k context: the rest is the answer and the chat template
MIN_RUNG_SECONDS = 1.0
"""A rung is started only while at least this much of the agent's latency budget is left."""
ALL_BUSY_HINT = ("retry in a few seconds, or add a node (`covey node join` on a spare device) or raise the "
                 "nodes' --queue-limit")


def emit(event: Token | Notice) -> None:
    """Send a token or notice to whoever streams this run (nothing outside a streaming run)."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except RuntimeError:  # outside a streaming run
        return
    writer(event)


def _own(deps: Deps, label: str):
    """An energy window for the orchestrator's own work, or None without a meter."""
    return deps.meter.open(label) if deps.meter is not None else None


def _closed(window) -> tuple[Energy, ...]:
    return (window.close(),) if window is not None else ()


async def classify(state: State, deps: Deps) -> dict[str, Any]:
    """Route the prompt (off the event loop: the router runs a sentence encoder) and pick the agent."""
    window = _own(deps, "route")
    pin = state.get("pin") or {}
    if pin.get("agent"):  # the caller named the agent (e.g. the HTTP API's model "covey-agent/NAME")
        spec = deps.agents.get(pin["agent"])
        decision = RouteDecision(route=spec.routes[0], confidence=1.0, reason=f"agent '{spec.name}' was asked for")
    else:
        decision = await asyncio.to_thread(deps.router.classify, state["prompt"], list(state.get("history", ())))
        spec = deps.agents.for_route(decision.route)
    notes: tuple[str, ...] = ()
    if (cheaper := cheaper_on_a_close_call(decision, spec, deps)) is not None:
        notes = (f"a close call between {decision.route} and {decision.runner_up} (margin {decision.margin:.2f}): "
                 f"the cheaper agent, {cheaper.name}, answered instead of {spec.name}",)
        spec = cheaper
    return {"route": decision, "agent": spec.name, "rung": 0, "attempts": (), "notes": notes, "escalate": False,
            "own_energy": _closed(window), "sources": (), "grounded_messages": (), "direct_reply": None,
            "next_placement": None, "placement": None, "final": None, "text": "", "logprobs": (),
            "no_history": deps.settings.history_for == "follow_ups" and stands_alone(state["prompt"])}


async def retrieve(state: State, deps: Deps) -> dict[str, Any]:
    """The user's passages: a grounded agent searches with the relevance threshold, any other route is
    offered only passages that clear the (higher) offer threshold.

    A grounded agent's question the documents do not answer is answered by the model and labelled
    "not from your documents", or refused in strict mode."""
    if deps.grounding is None or state.get("direct_reply") is not None:
        return {"grounding": ""}
    spec = deps.agents.get(state["agent"])
    offer = getattr(deps.grounding, "offer_threshold", None)
    if not spec.grounded and offer is None:
        return {"grounding": ""}
    from covey.rag.grounding import NOT_FROM_DOCUMENTS, OFFER_SYSTEM

    window = _own(deps, "retrieve")
    if spec.grounded:
        grounded, sources = await deps.grounding.ground(state["prompt"], budget_tokens=GROUNDING_BUDGET_TOKENS)
    else:
        system = f"{spec.system_prompt}\n\n{OFFER_SYSTEM}" if spec.system_prompt else OFFER_SYSTEM
        grounded, sources = await deps.grounding.ground(state["prompt"], budget_tokens=GROUNDING_BUDGET_TOKENS,
                                                        threshold=offer, system=system)
    own = state.get("own_energy", ()) + _closed(window)
    notes = state.get("notes", ())
    if grounded is None:
        if not spec.grounded:
            return {"own_energy": own, "grounding": ""}
        return {"own_energy": own, "grounding": "",
                "notes": (*notes, "no documents added yet (`covey rag add PATH`): answered from the model alone")}
    if grounded.found:
        if not spec.grounded:
            emit(Notice(kind="grounding", text=f"{len(sources)} passage(s) from your documents match strongly; "
                                               "they are given to the model"))
        return {"grounded_messages": tuple(grounded.messages), "sources": tuple(sources), "own_energy": own,
                "grounding": "documents"}
    if not spec.grounded:  # an offer nobody needed: the route answers as it always does
        return {"own_energy": own, "grounding": "not_from_documents"}
    if getattr(deps.grounding, "strict", False):
        emit(Notice(kind="grounding", text="nothing relevant found in your documents (strict: not answering "
                                           "from the model's own knowledge)"))
        return {"direct_reply": grounded.reply, "own_energy": own, "grounding": "not_from_documents",
                "notes": (*notes, "nothing relevant found in your documents; strict grounding refused to answer "
                                  "from the model's own knowledge")}
    emit(Notice(kind="grounding", text=f"nothing relevant found in your documents: the answer is {NOT_FROM_DOCUMENTS}"))
    return {"own_energy": own, "grounding": "not_from_documents",
            "notes": (*notes, f"{NOT_FROM_DOCUMENTS}: nothing in them cleared the relevance threshold, so the "
                              "model answered from its own knowledge")}


def find_placement(deps: Deps, spec: AgentSpec, from_rung: int, model: str | None = None
                   ) -> tuple[Placement | None, list[Refusal]]:
    """The first rung from `from_rung` up that some node can run now (its slot reserved), and why lower
    ones could not.

    `model` (a model the caller asked for by name) replaces the agent's ladder with that one rung.
    The slot is reserved in the same breath as the choice (no await in between), so every answer of
    a burst sees the ones placed before it and they spread by free slots."""
    tried: list[Refusal] = []
    local = [deps.settings.local_node] if deps.settings.local_node else []
    ladder = (model,) if model else spec.ladder
    for rung in range(from_rung, len(ladder)):
        model_id = ladder[rung]
        placement, reasons = choose(
            deps.pool.nodes(), model_id, catalog=deps.catalog, max_tokens=spec.max_tokens,
            latency_budget_s=spec.latency_budget_s, policy=deps.policy, local_names=local, rung=rung)
        if placement is not None:
            deps.pool.reserve(placement.node, placement.model_id)
            return placement, tried
        tried.append(why_no_node(model_id, reasons))
    return None, tried


async def place(state: State, deps: Deps) -> dict[str, Any]:
    """Choose the node for the current rung (or pass a direct reply straight to record)."""
    if state.get("direct_reply") is not None:
        emit(Token(text=state["direct_reply"] or ""))
        return {"placement": None}
    spec = deps.agents.get(state["agent"])
    notes = state.get("notes", ())
    tried: list[Refusal] = []
    placement = state.get("next_placement")  # assess already found the stronger rung's node
    if placement is None:
        placement, tried = find_placement(deps, spec, state.get("rung", 0), (state.get("pin") or {}).get("model"))
    if placement is None:
        if any(t.kind == "busy" for t in tried):  # nodes that could run it are full right now
            raise NodeBusy(f"all nodes that can run agent '{spec.name}' are busy: " + "; ".join(tried),
                           hint=ALL_BUSY_HINT)
        raise NoCapableNode(f"no node can run agent '{spec.name}': " + "; ".join(tried))
    if placement.reason:
        notes = (*notes, placement.reason)
        emit(Notice(kind="delegate", text=placement.reason))
    return {"placement": placement, "rung": placement.rung, "notes": notes, "next_placement": None}


def after_place(state: State) -> str:
    return "generate" if state.get("placement") else "record"


async def generate(state: State, deps: Deps) -> dict[str, Any]:
    """Stream the rung's answer; when its node vanishes, continue on another from the text so far."""
    spec = deps.agents.get(state["agent"])
    placement = state["placement"]
    assert placement is not None
    attempt_no = len(state.get("attempts", ()))
    left_s = budget_left(state, spec)
    base = GenerateRequest(request_id=RequestId(uuid.uuid4().hex[:12]), model_id=ModelId(placement.model_id),
                           messages=messages_for(spec, state), sampling=spec.sampling,
                           max_tokens=answer_max_tokens(spec, state),
                           deadline_ms=max(int(left_s * 1000), int(MIN_RUNG_SECONDS * 1000)))
    if spec.prompt_format == "translation":  # off the loop: the first read loads py3langid's model (about 2 s)
        base = await asyncio.to_thread(translation_request, base, state, deps)
    from covey.orchestrator.tool_calls import answer_start

    text, attempts = answer_start(state.get("tool_results") or ()), list(state.get("attempts", ()))
    if text:  # begun with the model's tool results (covey.orchestrator.tool_calls); the node continues from them
        emit(Token(text=text, attempt=attempt_no))
    logprobs: list[float] = []
    exclude: list[str] = []
    busy: list[str] = []  # nodes that refused this answer as busy (alive, so never forgotten)
    failovers = 0
    notes = state.get("notes", ())
    from covey.orchestrator.tool_steps import degenerate

    while True:
        node = placement.node
        final: GenerateFinal | None = None
        produced_here = 0
        looping = False
        t_node = time.monotonic()  # how long this node worked, for an attempt that ends with no Final
        try:
            left_ms = max(int(budget_left(state, spec) * 1000), int(MIN_RUNG_SECONDS * 1000))
            stream = deps.pool.generate(node, base.model_copy(update={"continue_from": text, "deadline_ms": left_ms}))
            async with contextlib.aclosing(stream):
                async for ev in stream:
                    if isinstance(ev, TokenPiece):
                        text += ev.text
                        logprobs.extend(ev.logprobs)
                        produced_here += len(ev.logprobs)
                        if ev.text:
                            emit(Token(text=ev.text, attempt=attempt_no))
                        # A small model stuck in a loop: stop now rather than at max_tokens (closing the
                        # stream cancels the generation and frees the node's slot).
                        if "\n" in ev.text and degenerate(text):
                            looping = True
                            break
                    else:
                        final = ev
            if looping:
                final = GenerateFinal(
                    finish_reason=FinishReason.CANCELLED, prompt_tokens=0, completion_tokens=produced_here,
                    timings=_elapsed(t_node), energy=lost_energy(node, produced_here, time.monotonic() - t_node),
                    node_id=node.node_id, model_id=ModelId(placement.model_id))
                notes = (*notes, f"{placement.model_id} was stopped after {produced_here} tokens: "
                                 "the answer was repeating itself")
            if final is None:
                raise NodeUnavailable(f"node '{node.name}' ended the stream without a final message")
            break
        except PromptTooLong as exc:
            # The conversation so far does not fit this model's context (a long earlier answer or pasted
            # text): answer the new message without it, once, and say so. The message alone too long is the error.
            shorter = _without_history(base.messages)
            if text or shorter == base.messages:
                raise
            base = base.model_copy(update={"messages": shorter})
            msg = f"the conversation so far is too long for {placement.model_id} ({exc}); answered without it"
            notes = (*notes, msg)
            emit(Notice(kind="trimmed", text=msg))
        except NodeBusy as exc:
            # Its queue filled since our snapshot (another orchestrator, or a stale Info): ask another
            # capable node and keep this one out for the rest of the answer; it is alive, so it stays known.
            busy.append(f"'{node.name}' is busy")
            exclude.append(node.node_id)
            nxt, reasons = choose(deps.pool.nodes(), placement.model_id, catalog=deps.catalog,
                                  max_tokens=spec.max_tokens, policy=deps.policy, exclude=exclude,
                                  rung=placement.rung)
            if nxt is None:
                others = [r for r in reasons if not r.cannot_carry]
                raise NodeBusy(f"all nodes that serve {placement.model_id} are busy: "
                               + ", ".join([*busy, *others]), hint=ALL_BUSY_HINT) from exc
            deps.pool.reserve(nxt.node, nxt.model_id)
            msg = f"'{node.name}' is busy; asked '{nxt.node.name}'"
            notes = (*notes, msg)
            emit(Notice(kind="busy", text=msg))
            placement = nxt
        except NodeUnavailable as exc:
            if budget_left(state, spec) <= 0:
                # The call outlived the latency budget (a long queue or a slow prompt on the node, which sent
                # no Final in time): no time to continue elsewhere, and the node is slow, not gone, so it stays.
                if not text:
                    raise NodeBusy(f"no answer from '{node.name}' within agent '{spec.name}''s latency budget "
                                   f"({spec.latency_budget_s:g} s): its queue took the whole budget",
                                   hint=ALL_BUSY_HINT) from exc
                final = GenerateFinal(
                    finish_reason=FinishReason.DEADLINE, prompt_tokens=0, completion_tokens=produced_here,
                    timings=_elapsed(t_node), energy=lost_energy(node, produced_here, time.monotonic() - t_node),
                    node_id=node.node_id, model_id=ModelId(placement.model_id))
                break
            failovers += 1
            attempts.append(Attempt(node_id=node.node_id, node_name=node.name, address=node.address,
                                    model_id=placement.model_id, outcome="failed_over", text=text,
                                    completion_tokens=produced_here, seconds=time.monotonic() - t_node,
                                    energy=lost_energy(node, produced_here, time.monotonic() - t_node),
                                    reason=str(exc)))
            deps.pool.forget(node, f"failed mid-answer: {exc}")
            exclude.append(node.node_id)
            nxt, reasons = choose(deps.pool.nodes(), placement.model_id, catalog=deps.catalog,
                                  max_tokens=spec.max_tokens, policy=deps.policy, exclude=exclude,
                                  rung=placement.rung)
            if nxt is None or failovers > deps.settings.max_failovers:
                tried = ", ".join(f"'{a.node_name}'" for a in attempts if a.outcome == "failed_over")
                why = "; ".join(reasons) or "no other node serves it"
                msg = f"could not finish the answer with {placement.model_id}: tried {tried} (each went away mid-answer); {why}"
                if nxt is None and any(r.kind == "busy" for r in reasons):  # others serve it but are full now
                    raise NodeBusy(msg, hint=ALL_BUSY_HINT) from exc
                raise NoCapableNode(msg) from exc
            deps.pool.reserve(nxt.node, nxt.model_id)
            emit(Notice(kind="failover", text=f"'{node.name}' went away; continuing on '{nxt.node.name}'"))
            placement = nxt
    return {"text": text, "logprobs": tuple(logprobs), "final": final, "attempts": tuple(attempts), "notes": notes,
            "placement": placement}


def _without_history(messages: tuple[Message, ...]) -> tuple[Message, ...]:
    """The system prompt(s) and the last message: what a request is without the turns before it."""
    if len(messages) < 2:
        return messages
    kept = tuple(m for m in messages[:-1] if m.role == "system") + (messages[-1],)
    return kept if len(kept) < len(messages) else messages


async def assess(state: State, deps: Deps) -> dict[str, Any]:
    """Accept the rung's answer, or find the stronger rung's node and escalate."""
    spec = deps.agents.get(state["agent"])
    placement, final = state["placement"], state["final"]
    assert placement is not None and final is not None
    if (chose := state.get("call_final")) is not None:  # the generation that chose a tool call is this rung's too
        from covey.orchestrator.tool_steps import combined_final

        final = combined_final([chose, final], placement)
    # off the event loop: a checker may load py3langid (about a second, once) or parse a long answer
    conf = await asyncio.to_thread(functools.partial(
        cascade.assess, state["prompt"], state["text"], state["logprobs"],
        min_mean_logprob=spec.accept.min_mean_logprob, min_token_logprob=spec.accept.min_token_logprob,
        checker=checker_for(spec.checker), checker_name=spec.checker or ""))
    if spec.system_prompt and conf.check_ok and echoes_instructions(spec.system_prompt, state["text"]):
        conf = failed_check(conf, "the answer recites the agent's instructions instead of answering")
    if failure := state.get("check_failure"):  # the verify step proved the answer wrong (covey.orchestrator.tool_steps)
        conf = failed_check(conf, failure)
    elif unsure := state.get("unsure"):  # e.g. the sampled programs disagree: not wrong, but not worth standing on
        why = f"{conf.reason}; {unsure}" if conf.reason else unsure
        conf = conf.model_copy(update={"passed": False, "reason": why})
    elif (proof := state.get("verified")) and conf.check_ok:
        # Proven right (the prompt's tests passed, the tools computed its value): low log-probs do not make a
        # right answer worth a stronger rung's joules.
        why = f"{conf.reason}, but verified: {proof}" if conf.reason else ""
        conf = conf.model_copy(update={"passed": True, "verified": proof, "reason": why})
    notes = state.get("notes", ())
    if final.finish_reason is FinishReason.DEADLINE:
        notes = (*notes, f"{placement.model_id} was stopped at agent '{spec.name}''s latency budget "
                         f"({spec.latency_budget_s:.0f} s)")
    stronger: Placement | None = None
    tried: list[Refusal] = []
    out_of_time = budget_left(state, spec) < MIN_RUNG_SECONDS
    drifted = not out_of_time and _drifted_into_history(state, conf)
    if not conf.passed and not out_of_time:
        # Drifted into the earlier turns' language: the same rung once more without them, as the turns and
        # not the model were the cause; otherwise the next rung up.
        stronger, tried = find_placement(deps, spec, placement.rung + (0 if drifted else 1),
                                         (state.get("pin") or {}).get("model"))
    escalate = stronger is not None
    node = placement.node
    attempt = Attempt(
        node_id=node.node_id, node_name=node.name, address=node.address, model_id=placement.model_id,
        outcome="escalated" if escalate else "answered", text=state["text"],
        prompt_tokens=final.prompt_tokens, completion_tokens=final.completion_tokens,
        seconds=final.timings.total_ms / 1000.0, tokens_per_second=final.tokens_per_second,
        energy=final.energy, finish=final.finish_reason, confidence=conf, reason=conf.reason)
    if escalate:
        msg = f"{placement.model_id} was unsure ({conf.reason}); escalating"
        if drifted:
            again = stronger is not None and stronger.rung == placement.rung
            msg = (f"{placement.model_id} answered in another language than the request ({conf.reason}), "
                   f"as the earlier turns are; {'trying again' if again else 'escalating'} without them")
        notes = (*notes, msg)
        emit(Notice(kind="escalate", text=msg))
    noted: list[str] = []
    if not escalate and not conf.passed:
        if out_of_time:
            notes = (*notes, f"{placement.model_id} was unsure ({conf.reason}) but agent '{spec.name}''s "
                             f"latency budget ({spec.latency_budget_s:.0f} s) is spent")
        else:
            # Said once per session: the same missing rungs on every answer are noise, not news.
            key = f"{spec.name}@{placement.model_id}"
            if key not in state.get("ladder_noted", ()):
                noted.append(key)
                notes = (*notes, unsure_at_top(spec.name, placement.model_id, conf.reason, tried))
    return {"attempts": (*state.get("attempts", ()), attempt), "escalate": escalate,
            "rung": stronger.rung if stronger is not None else placement.rung,
            "next_placement": stronger, "notes": notes, "ladder_noted": noted, "call_final": None,
            "no_history": bool(state.get("no_history")) or (escalate and drifted)}


def _drifted_into_history(state: State, conf: Confidence) -> bool:
    """Whether the answer failed its check by being in another language than the request while earlier
    turns, which a small model imitates, are in the prompt (a translation a turn ago, say)."""
    if conf.check_ok or state.get("no_history") or not state.get("history"):
        return False
    from covey.agents.translation import other_language

    return other_language(state["prompt"], state.get("text") or "") is not None


def after_assess(state: State) -> str:
    return "place" if state.get("escalate") else "record"


async def record(state: State, deps: Deps) -> dict[str, Any]:
    """The AnswerResult from the attempts, written to the ledger, and the turn kept in the history."""
    attempts = state.get("attempts", ())
    answered = [a for a in attempts if a.outcome == "answered"] or [a for a in attempts if a.text]
    if (stands := state.get("standing_attempt")) is not None:  # settle kept an earlier rung's answer
        last = attempts[stands]
    elif answered:
        last = answered[-1]
    else:  # answered without a model (nothing found in the user's documents)
        last = Attempt(node_id="", node_name="orchestrator", address="", model_id=state.get("direct_model") or "none",
                       outcome="answered", text=state.get("direct_reply") or "")
    own = state.get("own_energy", ())
    route = state["route"]
    text = trimmed_answer(state.get("standing_text") or last.text)
    result = AnswerResult(
        session_id=state["session_id"], text=text, unanswered=could_not(text), route=route.route,
        route_confidence=route.confidence,
        route_note=route.reason if route.fallback else "", agent=state["agent"], node=last.node_name,
        model=last.model_id, attempts=tuple(attempts),
        prompt_tokens=sum(a.prompt_tokens for a in attempts),
        completion_tokens=sum(a.completion_tokens for a in attempts),
        seconds=time.monotonic() - state["t0"], energy=total([a.energy for a in attempts] + list(own)),
        overhead=total(list(own)), sources=state.get("sources", ()),
        notes=tuple(dict.fromkeys(state.get("notes", ()))), tool_calls=state.get("tool_calls", ()),
        grounding=state.get("grounding") or "",
    )
    if deps.record is not None:
        maybe = deps.record(result)
        if inspect.isawaitable(maybe):
            await maybe
    return {"result": result,
            "history": [Message(role="user", content=state["prompt"]), Message(role="assistant", content=result.text)]}


# -- helpers ---------------------------------------------------------------------------------------------

PROSE_ROUTES = frozenset({"chat", "knowledge", "writing"})
"""Routes whose agents answer in prose with no tool to run and no check beyond 'nonempty': on a close call
between two of them either agent serves (summarize and translate transform a given text; code and math
run tools and checks)."""


def cheaper_on_a_close_call(decision: RouteDecision, spec: AgentSpec, deps: Deps) -> AgentSpec | None:
    """The runner-up's agent when the decision was a close call (`close_calls` 'cheaper') between two of
    PROSE_ROUTES, whose agents can each serve the other's prompts, and the runner-up's first rung costs less
    (parameters x max_tokens); None otherwise, or when a cost is not known."""
    from covey.router.classifier import CLOSE_MARGIN

    if (deps.settings.close_calls != "cheaper" or decision.fallback or decision.margin >= CLOSE_MARGIN
            or {decision.route, decision.runner_up} - PROSE_ROUTES):
        return None
    other = deps.agents.for_route(decision.runner_up or "")
    if other.name == spec.name or other.checker != "nonempty" or spec.checker != "nonempty":
        return None

    def cost(agent: AgentSpec) -> float | None:
        try:
            params = deps.catalog.get(agent.ladder[0]).params_m
        except (CoveyError, IndexError):
            return None
        return params * agent.max_tokens if params > 0 else None  # a local file's size says nothing of it

    mine, theirs = cost(spec), cost(other)
    return other if mine is not None and theirs is not None and theirs < mine else None


def stronger_rung_runs(deps: Deps, spec: AgentSpec, state: State) -> bool:
    """Whether assess could escalate the current answer now: no model pinned by the caller, time left for
    another rung, and a rung above the current one that some node can run (nothing is reserved here)."""
    placement = state.get("placement")
    if placement is None or (state.get("pin") or {}).get("model") or budget_left(state, spec) < 2 * MIN_RUNG_SECONDS:
        return False
    local = [deps.settings.local_node] if deps.settings.local_node else []
    for rung in range(placement.rung + 1, len(spec.ladder)):
        found, _reasons = choose(deps.pool.nodes(), spec.ladder[rung], catalog=deps.catalog, max_tokens=spec.max_tokens,
                                 latency_budget_s=spec.latency_budget_s, policy=deps.policy, local_names=local,
                                 rung=rung)
        if found is not None:
            return True
    return False


def answer_max_tokens(spec: AgentSpec, state: State) -> int:
    """The tokens an answer may take: the agent's limit, or the caller's lower cap (`ask(max_tokens=)`).
    Every generation of the answer (the first and a repair of it) is held to it."""
    return min(spec.max_tokens, (state.get("pin") or {}).get("max_tokens") or spec.max_tokens)


def budget_left(state: State, spec: AgentSpec) -> float:
    """Seconds left of the agent's latency budget for this answer (it covers every rung and failover)."""
    return spec.latency_budget_s - (time.monotonic() - state["t0"])


def messages_for(spec: AgentSpec, state: State) -> tuple[Message, ...]:
    """System prompt, recent turns, then the new message (or the grounded system+user pair); the results
    of the model's tool calls (covey.orchestrator.tool_calls) go before the question."""
    history = [] if state.get("no_history") else list(state.get("history", ()))[-2 * HISTORY_TURNS:]
    grounded = list(state.get("grounded_messages") or ())
    if grounded:
        system = [m for m in grounded if m.role == "system"]
        rest = [m for m in grounded if m.role != "system"]
        return tuple(system + history + _with_tool_results(rest, state))
    msgs = [Message(role="system", content=spec.system_prompt)] if spec.system_prompt else []
    return tuple(msgs + history + _with_tool_results([Message(role="user", content=state["prompt"])], state))


def translation_request(base: GenerateRequest, state: State, deps: Deps) -> GenerateRequest:
    """The request as covey.agents.translation puts a sentence to a small model; unchanged when the prompt
    is not a one-line translation request it reads (a follow-up such as "and in German?")."""
    from covey.agents import translation

    req = translation.read_request(state["prompt"])
    if req is None or state.get("tool_results") or state.get("grounded_messages"):
        return base
    try:
        chat = deps.catalog.get(base.model_id).chat
    except CoveyError:  # not in the catalog: a .gguf path; the node renders its template, or the plain format
        chat = True
    messages, prompt = translation.request_for(req, chat=chat)
    return base.model_copy(update={"messages": messages, "prompt": prompt,
                                   "sampling": translation.sampling_for(base.sampling),
                                   "max_tokens": translation.max_tokens_for(req, base.max_tokens)})


def _with_tool_results(messages: list[Message], state: State) -> list[Message]:
    results = state.get("tool_results") or ()
    if not results or not messages or messages[-1].role != "user":
        return messages
    from covey.orchestrator.tool_calls import tool_context

    last = messages[-1]
    question = last.content if last.content.startswith("Context:") else f"Question: {last.content}"
    return [*messages[:-1], last.model_copy(update={"content": tool_context(results) + question})]


def why_no_node(model_id: str, reasons: list[Refusal]) -> Refusal:
    """One rung's line; its kind is "busy" when some node that serves the model is only full right now."""
    if not reasons:
        return Refusal(f"{model_id}: no nodes known", "not_served")
    # Nodes that do serve it are busy, on a low battery, ...: those reasons are worth reading.
    serving = [r for r in reasons if not r.cannot_carry]
    if not serving:
        return Refusal(f"no node serves {model_id}", "not_served")
    kind = "busy" if any(r.kind == "busy" for r in serving) else serving[0].kind
    return Refusal(f"{model_id}: " + ", ".join(serving), kind)


def unsure_at_top(agent: str, model_id: str, reason: str, tried: Sequence[str]) -> str:
    """One line: the answer stands unsure, and why no stronger rung could take over."""
    if not tried:
        return f"{model_id} was unsure ({reason}); it is the top of the '{agent}' ladder"
    unserved = [t.removeprefix("no node serves ") for t in tried if t.startswith("no node serves ")]
    other = [t for t in tried if not t.startswith("no node serves ")]
    why = "; ".join(other + ([f"no node serves {', '.join(unserved)}"] if unserved else []))
    return f"{model_id} was unsure ({reason}) and no stronger rung could run ({why}); see `covey agents`"


def checker_for(name: str | None) -> cascade.Checker | None:
    """The agent's named answer check as (prompt, answer) -> (ok, reason), or None."""
    if not name:
        return None
    from covey.agents.checkers import CHECKERS

    check = CHECKERS[name]

    def run(prompt: str, answer: str) -> tuple[bool, str]:
        r = check(prompt, answer)
        return r.ok, r.reason

    return run


def failed_check(conf, reason: str):
    """The confidence with a check a step ran (outside the agent's checker) failed."""
    why = f"{conf.reason}; {reason}" if conf.reason else reason
    return conf.model_copy(update={"check_ok": False, "passed": False, "reason": why})


def total(parts: list[Energy]) -> Energy:
    out = Energy()
    for p in parts:
        out = out + p
    return out


def lost_energy(node: NodeInfo, tokens: int, seconds: float = 0.0) -> Energy:
    """An attempt that ended with no Final (the node vanished, or covey stopped a looping answer) has no
    figure from the node: estimate from its advertised J/token, or, when it advertises none (the embedded
    node runs no self-benchmark), from the time it worked at the default watts per core."""
    from covey.estimates import WATTS_PER_CORE

    jpt = node.joules_per_token or 0.0
    if jpt > 0 or seconds <= 0:
        joules, source = jpt * tokens, "node's advertised J/token x tokens seen before the stream ended"
    else:
        cores = max(1, min(node.cpu_cores or 1, 4))
        joules = seconds * WATTS_PER_CORE * cores
        source = f"{seconds:.1f} s x {WATTS_PER_CORE:g} W/core x {cores} cores (the node advertises no J/token)"
    return Energy.of([EnergyComponent(name=f"lost:{node.name}", joules=joules, method=EnergyMethod.ESTIMATED,
                                      source=source, uncertainty=1.0)])


def _elapsed(since: float) -> Timings:
    ms = (time.monotonic() - since) * 1000.0
    return Timings(generate_ms=ms, total_ms=ms)
