"""The translator through the graph: the request each kind of model gets, and the language check's escalation."""

from __future__ import annotations

from covey.models.catalog import Catalog
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.graph import Deps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.pool import NodePool
from covey.orchestrator.results import Notice
from covey.orchestrator.tool_steps import COULD_NOT
from covey.settings import OrchestratorSettings

from fakes import ScriptedNodeClient, ScriptedRouter, node_info, roster, spec

SMOL, GEMMA = "smollm2-135m-instruct-q4_1", "gemma3-270m-q4_k_m"  # a chat model, then a base model (no template)
ASK = "Translate 'He has two cars.' into French."


def translator(ladder=(SMOL, GEMMA)):
    return spec("translator", ladder, routes=("translate",), checker="translation", max_tokens=256).model_copy(
        update={"prompt_format": "translation"})


async def make(clients, agents) -> Orchestrator:
    settings = OrchestratorSettings(discover=False, embedded="never")
    pool = NodePool(settings, client_factory=GrpcNodeClient)
    for c in clients:
        await pool.add_client(c)
    deps = Deps(router=ScriptedRouter("translate"), pool=pool, catalog=Catalog(), settings=settings, agents=agents)
    return Orchestrator(deps)


async def test_a_chat_model_gets_example_turns_and_the_sentence_alone_greedy_to_the_line_end() -> None:
    smol = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["Il a deux voitures."])
    result = await (await make([smol], roster(translator((SMOL,))))).ask(ASK)
    assert result.text == "Il a deux voitures."
    (req,) = smol.seen
    assert req.prompt is None and req.messages[-1].content == "He has two cars."
    assert "English text into French" in req.messages[0].content and len(req.messages) == 6
    assert req.sampling.temperature == 0.0 and "\n" in req.sampling.stop
    assert req.max_tokens == 16 + len("He has two cars.")


async def test_an_untranslated_answer_escalates_and_the_base_model_gets_a_completion() -> None:
    smol = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["He has two cars."])
    gemma = ScriptedNodeClient(node_info("b", {GEMMA: 50}), ["Il a deux voitures."])
    result = await (await make([smol, gemma], roster(translator()))).ask(ASK)
    assert result.text == "Il a deux voitures." and result.model == GEMMA
    assert [a.outcome for a in result.attempts] == ["escalated", "answered"]
    assert "left in English" in (result.attempts[0].confidence.reason if result.attempts[0].confidence else "")
    (req,) = gemma.seen
    assert req.messages == () and req.prompt is not None and req.prompt.endswith("English: He has two cars.\nFrench:")


async def test_a_wrong_language_answer_at_the_top_is_withdrawn_not_shown() -> None:
    smol = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["He has two cars."])
    gemma = ScriptedNodeClient(node_info("b", {GEMMA: 50}), ["Tiene dos coches."])
    orch = await make([smol, gemma], roster(translator()))
    events = [ev async for ev in orch.stream(ASK, session_id="s")]
    result = events[-1]
    assert result.text.startswith(COULD_NOT) and "Tiene dos coches" not in result.text
    assert "reads as Spanish, not French" in result.text
    assert any(isinstance(e, Notice) and e.kind == "replaced" for e in events)


async def test_a_follow_up_covey_cannot_read_goes_to_the_model_as_chat_with_the_history() -> None:
    smol = ScriptedNodeClient(node_info("a", {SMOL: 100}), ["Il a deux voitures.", "Er hat zwei Autos."])
    orch = await make([smol], roster(translator((SMOL,))))
    await orch.ask(ASK, session_id="s")
    await orch.ask("and in German?", session_id="s")
    follow = smol.seen[-1]
    assert follow.prompt is None and follow.messages[0].content == "You are helpful."
    assert [m.content for m in follow.messages[1:]] == [ASK, "Il a deux voitures.", "and in German?"]
    assert follow.sampling.stop == ()  # the agent's own sampling: a free answer is not cut at a line
