"""Grounding that helps: strong passages are offered to every route, a knowledge question the documents
do not answer is answered by the model and labelled "not from your documents", strict mode refuses it."""

from __future__ import annotations

from covey.orchestrator.client import GrpcNodeClient
from covey.models.catalog import Catalog
from covey.orchestrator.graph import Deps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.pool import NodePool
from covey.orchestrator.results import Notice, Source
from covey.rag.grounding import NOT_FROM_DOCUMENTS, NOTHING_FOUND, OFFER_SYSTEM, GroundedPrompt
from covey.settings import OrchestratorSettings
from covey.types import Message

from fakes import FakeNodeClient, ScriptedRouter, node_info, roster, spec

SMOL = "smollm2-135m-instruct-q4_1"


class ScoredGrounding:
    """A collection whose best passage scores `score`: found when it clears the threshold asked for."""

    def __init__(self, score: float | None, *, threshold: float = 0.3, offer_threshold: float | None = 0.45,
                 strict: bool = False) -> None:
        self.score = score
        self.threshold = threshold
        self.offer_threshold = offer_threshold
        self.strict = strict
        self.seen: list[tuple[str, float | None, str | None]] = []

    async def ground(self, query, *, budget_tokens, threshold=None, system=None):
        self.seen.append((query, threshold, system))
        if self.score is None:
            return None, ()
        if self.score < (self.threshold if threshold is None else threshold):
            return GroundedPrompt(found=False, reply=NOTHING_FOUND), ()
        msgs = (Message(role="system", content=system or "Cite like [1]."),
                Message(role="user", content=f"[1] parse_config() reads covey.toml\n\nQuestion: {query}"))
        return GroundedPrompt(found=True, messages=msgs), (Source(n=1, path="/docs/config.py", position="3-9",
                                                                  score=self.score),)


async def make(grounding, route: str, *, grounded: bool):
    client = FakeNodeClient(node_info("den", {SMOL: 100}), words=("An", " answer"))
    agent = spec("agent", (SMOL,), routes=(route,)).model_copy(update={"grounded": grounded})
    settings = OrchestratorSettings(discover=False, embedded="never")
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    await pool.add_client(client)
    orch = Orchestrator(Deps(router=ScriptedRouter(route), pool=pool, catalog=Catalog(), settings=settings,
                             agents=roster(agent), grounding=grounding))
    return orch, client


async def events(orch, prompt):
    return [ev async for ev in orch.stream(prompt, session_id="s")]


async def test_strong_passages_are_offered_to_a_route_that_is_not_knowledge() -> None:
    grounding = ScoredGrounding(0.62)
    orch, client = await make(grounding, "code", grounded=False)
    evs = await events(orch, "Fix the bug in my parse_config function")
    result = evs[-1]
    (_, threshold, system) = grounding.seen[0]
    assert threshold == 0.45 and OFFER_SYSTEM in system and "You are helpful." in system  # the agent's own prompt
    assert "parse_config() reads covey.toml" in client.seen[0].messages[-1].content
    assert result.sources[0].path == "/docs/config.py" and result.grounding == "documents"
    assert any(isinstance(e, Notice) and e.kind == "grounding" and "match strongly" in e.text for e in evs)


async def test_weak_passages_are_not_offered_and_the_answer_is_not_labelled() -> None:
    grounding = ScoredGrounding(0.35)  # enough for a knowledge question, not for an offer to another route
    orch, client = await make(grounding, "writing", grounded=False)
    evs = await events(orch, "Write a haiku about rain")
    result = evs[-1]
    assert client.seen[0].messages[-1].content == "Write a haiku about rain"
    assert result.sources == () and result.grounding == "not_from_documents"
    assert not any(isinstance(e, Notice) and e.kind == "grounding" for e in evs)
    assert not any(NOT_FROM_DOCUMENTS in n for n in result.notes)


async def test_a_knowledge_question_the_documents_do_not_answer_is_answered_and_labelled() -> None:
    grounding = ScoredGrounding(0.1)
    orch, client = await make(grounding, "knowledge", grounded=True)
    evs = await events(orch, "What is the capital of France?")
    result = evs[-1]
    assert client.seen and result.text == "An answer"  # the model answered from its own knowledge
    assert grounding.seen[0][1] is None  # searched with the relevance threshold
    assert result.grounding == "not_from_documents" and result.sources == ()
    assert any(n.startswith(NOT_FROM_DOCUMENTS) for n in result.notes)
    assert any(isinstance(e, Notice) and NOT_FROM_DOCUMENTS in e.text for e in evs)


async def test_strict_mode_refuses_instead_of_answering_from_the_model() -> None:
    orch, client = await make(ScoredGrounding(0.1, strict=True), "knowledge", grounded=True)
    result = (await events(orch, "What is the capital of France?"))[-1]
    assert client.seen == [] and result.text == NOTHING_FOUND and "--strict" in result.text
    assert result.grounding == "not_from_documents" and result.node == "orchestrator"


async def test_a_knowledge_question_the_documents_answer_is_grounded() -> None:
    orch, client = await make(ScoredGrounding(0.5, strict=True), "knowledge", grounded=True)
    result = (await events(orch, "What does parse_config read?"))[-1]
    assert result.grounding == "documents" and result.sources and client.seen


async def test_without_documents_nothing_is_offered_or_labelled() -> None:
    orch, client = await make(ScoredGrounding(None), "code", grounded=False)
    result = (await events(orch, "Write a function"))[-1]
    assert result.grounding == "" and result.sources == () and client.seen


async def test_with_offers_switched_off_other_routes_are_not_searched() -> None:
    grounding = ScoredGrounding(0.9, offer_threshold=None)
    orch, _ = await make(grounding, "code", grounded=False)
    result = (await events(orch, "Write a function"))[-1]
    assert grounding.seen == [] and result.grounding == ""


async def test_a_tool_answer_is_not_searched_for() -> None:
    grounding = ScoredGrounding(0.9)
    orch, client = await make(grounding, "math", grounded=False)
    result = (await events(orch, "What is 17 times 23?"))[-1]
    assert grounding.seen == [] and client.seen == [] and "391" in result.text
