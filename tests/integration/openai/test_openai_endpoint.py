"""OpenAINodeClient against a real OpenAI-compatible server (llama-cpp-python's) on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from covey import errors
from covey.models.catalog import Catalog
from covey.orchestrator.client import NodeClient
from covey.orchestrator.openai_client import OpenAINodeClient, parse_endpoint
from covey.orchestrator.placement import choose
from covey.orchestrator.pool import NodePool
from covey.orchestrator.client import GrpcNodeClient
from covey.settings import OrchestratorSettings
from covey.types import (
    EnergyMethod, FinishReason, GenerateFinal, GenerateRequest, Message, NodeInfo, Sampling, TokenPiece,
)

SMOLLM = "smollm2-135m-instruct-q4_1"


def free_port() -> int:
    """A port nothing listens on (bound and released on 127.0.0.1)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(text: str, **kw) -> GenerateRequest:
    base = dict(request_id="r1", model_id=SMOLLM, messages=(Message(role="user", content=text),),
                max_tokens=8, sampling=Sampling(temperature=0.0, seed=1))
    base.update(kw)
    return GenerateRequest(**base)


async def test_info_describes_the_endpoint_as_a_node(llama_server):
    url, models = parse_endpoint(llama_server.url + "/v1")
    client = OpenAINodeClient(url, models=models or None, joules_per_token=0.05)
    try:
        info = await client.info()
        assert isinstance(client, NodeClient)
        assert info.source == "openai" and info.address == llama_server.url
        assert info.name == llama_server.url.removeprefix("http://")
        assert [(m.model_id, m.loaded) for m in info.models] == [(SMOLLM, True)]
        assert info.joules_per_token == 0.05
        assert await client.healthy() is True
    finally:
        await client.close()


async def test_a_streamed_answer_with_logprobs_counts_and_energy(llama_server):
    client = OpenAINodeClient(llama_server.url, joules_per_token=0.05)
    try:
        events = [ev async for ev in client.generate(ask("Name a colour."))]
    finally:
        await client.close()
    pieces, final = events[:-1], events[-1]
    assert pieces and all(isinstance(p, TokenPiece) for p in pieces)
    assert isinstance(final, GenerateFinal)
    assert "".join(p.text for p in pieces).strip()
    logprobs = [lp for p in pieces for lp in p.logprobs]
    assert logprobs and all(lp <= 0.0 for lp in logprobs)  # llama-cpp-python sends per-token logprobs
    assert final.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert 1 <= final.completion_tokens <= 8
    assert final.completion_tokens == len(logprobs)
    assert final.prompt_tokens >= 1
    assert final.timings.total_ms > 0 and final.timings.total_ms >= final.timings.prompt_ms
    assert final.node_id == client.node_id and final.model_id == SMOLLM
    (comp,) = final.energy.components
    assert comp.name == "remote" and comp.method is EnergyMethod.ESTIMATED and comp.uncertainty == 1.0
    assert comp.joules == pytest.approx(0.05 * final.completion_tokens)


async def test_an_unknown_model_is_refused_before_the_server_substitutes_its_own(llama_server):
    # llama-cpp-python (like llama-server) answers ANY model name with its loaded model; the client must not.
    client = OpenAINodeClient(llama_server.url)
    try:
        with pytest.raises(errors.UnknownModel) as exc:
            async for _ in client.generate(ask("hi", model_id="gemma3-270m-q4_k_m")):
                pass
        assert SMOLLM in str(exc.value) and "gemma3-270m-q4_k_m" in str(exc.value)
    finally:
        await client.close()


async def test_a_prompt_longer_than_the_context_fails_clearly(llama_server):
    # Streaming, llama-cpp-python's server sends 200 and then an empty stream for this (vLLM and
    # llama-server answer 400, which becomes PromptTooLong; see the unit tests).
    client = OpenAINodeClient(llama_server.url)
    try:
        with pytest.raises(errors.GenerationFailed, match="context window"):
            async for _ in client.generate(ask("word " * 3000)):
                pass
    finally:
        await client.close()


async def test_a_request_the_server_rejects_is_a_bad_request(llama_server):
    client = OpenAINodeClient(llama_server.url, extra_body={"max_tokens": "many"})
    try:
        with pytest.raises(errors.BadRequest) as exc:
            async for _ in client.generate(ask("hi")):
                pass
        assert "max_tokens" in str(exc.value)
    finally:
        await client.close()


async def test_a_url_without_an_openai_api_is_node_unavailable(llama_server):
    client = OpenAINodeClient(llama_server.url + "/not-here")
    try:
        with pytest.raises(errors.NodeUnavailable, match="HTTP 404") as exc:
            await client.info()
        assert "check the endpoint URL" in str(exc.value)
        assert await client.healthy() is False
    finally:
        await client.close()


async def test_closing_early_disconnects_and_the_server_stops(llama_server):
    client = OpenAINodeClient(llama_server.url)
    try:
        gen = client.generate(ask("Write a very long story about a lighthouse keeper.", max_tokens=1000))
        got = [await gen.__anext__() for _ in range(2)]
        assert all(isinstance(p, TokenPiece) for p in got)
        await gen.aclose()
        for _ in range(600):  # the server notices on its next token and logs the disconnect
            if "Disconnected from client" in llama_server.log_text():
                break
            await asyncio.sleep(0.1)
        assert "Disconnected from client" in llama_server.log_text()
        after = [ev async for ev in client.generate(ask("Say yes.", max_tokens=3))]
        assert isinstance(after[-1], GenerateFinal) and after[-1].completion_tokens <= 3
    finally:
        await client.close()


async def test_continue_from_is_sent_as_a_partial_assistant_turn(llama_server):
    client = OpenAINodeClient(llama_server.url)
    try:
        events = [ev async for ev in client.generate(ask("Count from 1 to 10.", continue_from="1, 2, 3,"))]
    finally:
        await client.close()
    assert isinstance(events[-1], GenerateFinal) and events[-1].completion_tokens >= 1


async def test_pool_places_answers_on_the_endpoint(llama_server):
    pool = NodePool(OrchestratorSettings(discover=False), client_factory=GrpcNodeClient)
    client = OpenAINodeClient(llama_server.url, models=[SMOLLM], name="cluster", joules_per_token=0.05)
    try:
        info = await pool.add_client(client)
        assert [n.node_id for n in pool.directory.nodes()] == [info.node_id]
        other = NodeInfo(node_id="busy-laptop", name="busy-laptop", models=())
        placement, reasons = choose([other, *pool.directory.nodes()], SMOLLM, catalog=Catalog(), max_tokens=8)
        assert placement is not None and placement.node.node_id == info.node_id
        assert placement.expected_joules == pytest.approx(8 * 0.05)
        assert reasons == [f"'busy-laptop' does not serve {SMOLLM}"]
        chosen = pool.client(placement.node)
        assert chosen is client
        events = [ev async for ev in chosen.generate(ask("Say hello."))]
        assert isinstance(events[-1], GenerateFinal) and events[-1].node_id == info.node_id
        refreshed = await pool.refresh(info.node_id)
        assert refreshed is not None and refreshed.models[0].queue_depth == 0
    finally:
        await pool.close()


async def test_a_stopped_endpoint_is_unavailable_and_unhealthy():
    client = OpenAINodeClient(f"http://127.0.0.1:{free_port()}", connect_timeout_s=2.0)
    try:
        assert await client.healthy() is False
        with pytest.raises(errors.NodeUnavailable, match="unreachable"):
            await client.info()
        with pytest.raises(errors.NodeUnavailable):
            async for _ in client.generate(ask("hi")):
                pass
    finally:
        await client.close()
