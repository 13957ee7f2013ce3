"""StoreGrounding through the whole graph: a real FAISS + SQLite store (packaged MiniLM), the real
retrieve step, a node client that records its prompt, and an answer whose sources are the cited passages."""

from __future__ import annotations

from pathlib import Path

from covey.agents import Acceptance, AgentRoster, AgentSpec
from covey.models.catalog import Catalog
from covey.orchestrator.graph import Deps
from covey.orchestrator.orchestrator import Orchestrator
from covey.orchestrator.pool import NodePool
from covey.orchestrator.client import GrpcNodeClient
from covey.orchestrator.results import AnswerResult, Notice
from covey.orchestrator.retrieval import StoreGrounding
from covey.rag import NOTHING_FOUND, Store
from covey.router.classifier import RouteDecision
from covey.settings import Settings
from covey.types import (
    Energy, FinishReason, GenerateFinal, GenerateRequest, ModelOffer, NodeId, NodeInfo, Sampling, Timings, TokenPiece,
)

MODEL = "smollm2-135m-instruct-q4_1"
REPLY = "The office wifi password is tulip-4471 [1]."


class KnowledgeRouter:
    """Every question is a knowledge question (the router is not what this test is about)."""

    def classify(self, text, history=()):
        return RouteDecision(route="knowledge", confidence=0.9)


class RecordingNode:
    """A node that answers REPLY word by word and keeps every request it was sent."""

    address = "library-node:1"

    def __init__(self) -> None:
        self.seen: list[GenerateRequest] = []

    async def info(self) -> NodeInfo:
        return NodeInfo(node_id=NodeId("id-library"), name="library", address=self.address,
                        models=(ModelOffer(model_id=MODEL, loaded=True, tokens_per_second=50.0),),
                        ram_total_bytes=8 << 30, ram_free_bytes=4 << 30, cpu_cores=4, tokens_per_second=50.0)

    async def generate(self, req: GenerateRequest):
        self.seen.append(req)
        words = REPLY.split(" ")
        for i, word in enumerate(words):
            yield TokenPiece(text=word if i == 0 else " " + word, logprobs=(-0.1,), token_ids=(i,))
        yield GenerateFinal(finish_reason=FinishReason.STOP, prompt_tokens=100, completion_tokens=len(words),
                            timings=Timings(generate_ms=10.0, total_ms=12.0), energy=Energy(),
                            node_id=NodeId("id-library"), model_id=req.model_id)

    async def healthy(self) -> bool:
        return True

    async def close(self) -> None:
        pass


def librarian() -> AgentRoster:
    return AgentRoster([AgentSpec(name="librarian", routes=("knowledge",), ladder=(MODEL,), grounded=True,
                                  system_prompt="Answer from the documents.", sampling=Sampling(temperature=0.0),
                                  max_tokens=32, accept=Acceptance(min_mean_logprob=-9.0, min_token_logprob=-99.0))])


async def librarian_over(o, settings: Settings) -> tuple[Orchestrator, RecordingNode]:
    """The librarian grounded in `settings`' store, answering on one recording node."""
    node = RecordingNode()
    pool = NodePool(o, client_factory=GrpcNodeClient)
    await pool.add_client(node)
    return Orchestrator(Deps(router=KnowledgeRouter(), agents=librarian(), pool=pool, catalog=Catalog(),
                             settings=o, grounding=StoreGrounding.from_settings(settings))), node


async def test_store_grounding_through_the_graph_cites_the_passages_it_sent(tmp_path: Path, minilm: object) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "office.md").write_text(
        "# Office handbook\n\n## Network\n\nThe office wifi network is called Heron.\n"
        "The wifi password is tulip-4471.\n\n## Kitchen\n\nThe coffee machine is cleaned on Fridays.\n"
    )
    (docs / "garden.md").write_text("# Garden\n\nWater the tomatoes every evening in July.\n")
    data_dir = tmp_path / "data"
    with Store.in_data_dir(data_dir, embedder=minilm) as store:  # type: ignore[arg-type]
        store.add([docs])

    settings = Settings(data_dir=data_dir)
    o = settings.orchestrator.model_copy(update={"discover": False, "embedded": "never"})
    orch, node = await librarian_over(o, settings)
    try:
        events = [ev async for ev in orch.stream("What is the wifi password at the office?", session_id="rag")]
        result = events[-1]
        assert isinstance(result, AnswerResult)
        assert result.agent == "librarian" and result.text == REPLY
        assert [(s.n, s.path, s.position) for s in result.sources][:1] == [(1, str(docs / "office.md"), "5-6")]
        prompt = "\n".join(m.content for m in node.seen[0].messages)
        assert "tulip-4471" in prompt and "[1]" in prompt  # the passage the answer cites is the one it was sent

        events = [ev async for ev in orch.stream("Who painted the Mona Lisa?", session_id="rag-2")]
        result = events[-1]
        assert isinstance(result, AnswerResult)  # nothing relevant: the model answers, labelled as such
        assert result.grounding == "not_from_documents" and result.sources == ()
        assert any(isinstance(e, Notice) and e.kind == "grounding" for e in events)
        assert len(node.seen) == 2
    finally:
        await orch.close()

    strict = settings.model_copy(update={"rag": settings.rag.model_copy(update={"strict": True})})
    orch, node = await librarian_over(o, strict)
    try:
        events = [ev async for ev in orch.stream("Who painted the Mona Lisa?", session_id="rag-3")]
        result = events[-1]
        assert isinstance(result, AnswerResult)
        assert result.text == NOTHING_FOUND and result.sources == ()
        assert node.seen == []  # strict: nothing relevant, the node is never asked
    finally:
        await orch.close()
