"""A grounded answer end to end on real parts: MiniLM retrieval from a real store, the prompt built by
`ground()`, SmolLM2 generating through a real node over gRPC on 127.0.0.1, citations in the result."""

from __future__ import annotations

from pathlib import Path

from covey.device_node.runner import build_node
from covey.device_node.server import NodeServer
from covey.orchestrator.client import GrpcNodeClient
from covey.rag import NOTHING_FOUND, Store, ground, render_answer
from covey.estimates import estimate_tokens
from covey.settings import Settings
from covey.types import GenerateFinal, GenerateRequest, ModelId, RequestId, Sampling, TokenPiece

MODEL = "smollm2-135m-instruct-q4_1"
N_CTX = 1024
ANSWER_TOKENS = 48


async def test_grounded_answer_through_a_real_node_cites_its_sources(tmp_path: Path, minilm: object) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "office.md").write_text(
        "# Office handbook\n\n## Network\n\nThe office wifi network is called Heron.\n"
        "The wifi password is tulip-4471.\n\n## Kitchen\n\nThe coffee machine is cleaned on Fridays.\n"
    )
    (docs / "garden.md").write_text("# Garden\n\nWater the tomatoes every evening in July.\n")
    store = Store.in_data_dir(tmp_path, embedder=minilm)  # type: ignore[arg-type]
    store.add([docs])

    question = "What is the wifi password at the office?"
    grounded = ground(question, store.search(question, k=3), budget_tokens=N_CTX - ANSWER_TOKENS - 64,
                      count_tokens=estimate_tokens)
    assert grounded.found
    assert grounded.citations[0].label == f"{docs / 'office.md'}:5-6"
    assert "tulip-4471" in grounded.messages[1].content

    off_topic = ground("Who painted the Mona Lisa?", store.search("Who painted the Mona Lisa?", k=3),
                       budget_tokens=900, count_tokens=estimate_tokens)
    assert not off_topic.found and off_topic.reply == NOTHING_FOUND  # the node is never asked

    settings = Settings(data_dir=tmp_path / "node", node={"models": [MODEL], "self_benchmark": False,
                                                          "n_ctx": N_CTX, "announce": False, "port": 0,
                                                          "n_threads": 1})
    service = build_node(settings)
    await service.start()
    server = NodeServer(service, host="127.0.0.1", port=0)
    client = GrpcNodeClient(await server.start())
    try:
        req = GenerateRequest(request_id=RequestId("rag-e2e"), model_id=ModelId(MODEL), messages=grounded.messages,
                              sampling=Sampling(temperature=0.0, seed=0), max_tokens=ANSWER_TOKENS)
        pieces: list[str] = []
        final: GenerateFinal | None = None
        async for event in client.generate(req):
            if isinstance(event, TokenPiece):
                pieces.append(event.text)
            elif isinstance(event, GenerateFinal):
                final = event
    finally:
        await client.close()
        await server.stop()
        await service.close()
        store.close()
    answer = "".join(pieces)
    assert final is not None and final.prompt_tokens <= N_CTX - ANSWER_TOKENS
    # A 135M model at temperature 0 sometimes quotes the neighbouring line of the passage (a near-tie
    # that flips with llama.cpp's thread scheduling): either way it quotes facts only the document holds.
    assert "tulip-4471" in answer or "Heron" in answer, answer
    shown = render_answer(answer, grounded.citations)
    assert shown.startswith(answer.rstrip())
    assert f"\n\nSources:\n[1] {docs / 'office.md'}:5-6" in shown
