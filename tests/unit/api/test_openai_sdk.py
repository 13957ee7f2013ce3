"""The API on a real uvicorn server on 127.0.0.1, driven by the real `openai` SDK, over a scripted orchestrator."""

from __future__ import annotations

import asyncio

import numpy as np
import openai
import pytest

from covey.api.app import create_app
from covey.api.keys import ApiKeys
from covey.errors import NoCapableNode, PromptTooLong
from covey.orchestrator.results import Notice
from covey.settings import ServeSettings
from covey.types import Message

from scripted import SMOL, RecordingEmbedder, ScriptedBackend, running
from polling import until


_OPEN: list[openai.AsyncOpenAI] = []


def client(url: str, key: str = "none", **kw) -> openai.AsyncOpenAI:
    c = openai.AsyncOpenAI(base_url=url + "/v1", api_key=key, max_retries=0, **kw)
    _OPEN.append(c)
    return c


@pytest.fixture(autouse=True)
async def clients_closed():
    """Close every SDK client in the test's own loop; left open, one is closed later in a dead loop and
    asyncio logs 'Task exception was never retrieved' into whichever test runs then."""
    yield
    while _OPEN:
        await _OPEN.pop().close()


async def test_chat_not_streamed_has_usage_and_covey_extension():
    backend = ScriptedBackend()
    async with running(create_app(backend, grams_co2e=lambda j: j / 1000)) as url:
        resp = await client(url).chat.completions.create(
            model="covey-auto", messages=[{"role": "system", "content": "be brief"},
                                          {"role": "user", "content": "my cat is Miso"},
                                          {"role": "assistant", "content": "nice"},
                                          {"role": "user", "content": "her name?"}])
    assert resp.choices[0].message.content == "Hello world" and resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (12, 3, 15)
    ext = resp.model_extra["covey"]
    assert ext["route"] == "chat" and ext["agent"] == "companion" and ext["node"] == "den"
    assert [a["outcome"] for a in ext["attempts"]] == ["escalated", "answered"] and ext["escalated"] is True
    assert ext["joules"] == pytest.approx(3.6) and ext["energy_method"] == "estimated"
    assert (ext["joules_low"], ext["joules_high"]) == (pytest.approx(1.8), pytest.approx(5.4))
    assert ext["g_co2e"] == pytest.approx(0.0036)
    [seen] = backend.seen
    assert seen["prompt"] == "her name?" and seen["agent"] is None and seen["model"] is None
    assert seen["history"] == [Message(role="system", content="be brief"), Message(role="user", content="my cat is Miso"),
                               Message(role="assistant", content="nice")]
    assert seen["session_id"].startswith("api-") and seen["max_tokens"] is None


async def test_chat_streamed_with_include_usage_and_notices():
    backend = ScriptedBackend(words=("Hel", "lo", "!"), notices={1: Notice(kind="escalate", text="unsure; escalating")},
                              restart_at=1)
    async with running(create_app(backend)) as url:
        stream = await client(url).chat.completions.create(
            model="covey-agent/coder", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True}, max_tokens=7)
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello!"
    assert chunks[0].choices[0].delta.role == "assistant"
    notices = [c.model_extra["covey"]["notice"] for c in chunks if c.model_extra.get("covey", {}).get("notice")]
    assert notices == [{"kind": "escalate", "text": "unsure; escalating"}]
    restarts = [(c.choices[0].delta.content, c.model_extra["covey"]) for c in chunks
                if c.choices and c.model_extra.get("covey", {}).get("restart")]
    assert restarts == [("lo", {"attempt": 1, "restart": True})]
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage.total_tokens == 15 and last.model_extra["covey"]["agent"] == "coder"
    assert backend.seen[0]["agent"] == "coder" and backend.seen[0]["history"] == []
    assert backend.seen[0]["max_tokens"] == 7


async def test_streamed_without_include_usage_sends_no_usage_chunk():
    async with running(create_app(ScriptedBackend())) as url:
        stream = await client(url).chat.completions.create(
            model=SMOL, messages=[{"role": "user", "content": "hi"}], stream=True)
        chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)


async def test_served_model_pins_the_model_and_session_continues_the_stored_conversation():
    backend = ScriptedBackend()
    async with running(create_app(backend)) as url:
        await client(url).chat.completions.create(model=SMOL, messages=[{"role": "user", "content": "again"}],
                                                  extra_body={"session": "pets"})
    assert backend.seen[0]["model"] == SMOL and backend.seen[0]["session_id"] == "pets"
    assert backend.seen[0]["history"] is None  # the orchestrator loads the session's stored turns


async def test_text_completions_streamed_and_not():
    backend = ScriptedBackend()
    async with running(create_app(backend)) as url:
        c = client(url)
        whole = await c.completions.create(model="covey-auto", prompt="Say hi")
        parts = [p async for p in await c.completions.create(model="covey-auto", prompt="Say hi", stream=True,
                                                              stream_options={"include_usage": True})]
    assert whole.choices[0].text == "Hello world" and whole.usage.completion_tokens == 3
    assert whole.model_extra["covey"]["route"] == "chat"
    assert "".join(p.choices[0].text for p in parts if p.choices) == "Hello world"
    assert parts[-1].usage.total_tokens == 15


async def test_models_lists_auto_agents_served_models_and_the_embedder():
    async with running(create_app(ScriptedBackend(), embedder=RecordingEmbedder())) as url:
        c = client(url)
        ids = [m.id async for m in c.models.list()]
        one = await c.models.retrieve("covey-agent/coder")
        with pytest.raises(openai.NotFoundError):
            await c.models.retrieve("gpt-4o")
    assert ids == ["covey-auto", "covey-agent/companion", "covey-agent/coder", SMOL, "covey-embed"]
    assert one.id == "covey-agent/coder" and one.owned_by == "covey"


async def test_embeddings_float_and_the_sdks_default_base64():
    emb = RecordingEmbedder()
    async with running(create_app(ScriptedBackend(), embedder=lambda: emb)) as url:
        c = client(url)
        r = await c.embeddings.create(model="covey-embed", input=["a cat", "dog"])  # SDK asks for base64
        f = await c.embeddings.create(model="all-MiniLM-L6-v2", input="x", encoding_format="float")
        with pytest.raises(openai.NotFoundError) as info:
            await c.embeddings.create(model="text-embedding-3-small", input="x")
    assert np.allclose(r.data[0].embedding, [5.0, 0.5, -1.0]) and np.allclose(r.data[1].embedding, [3.0, 0.5, -1.0])
    assert r.usage.prompt_tokens == 3 and f.data[0].embedding == [1.0, 0.5, -1.0]
    assert emb.seen == [["a cat", "dog"], ["x"]]
    assert info.value.code == "model_not_found"


async def test_unknown_model_and_bad_bodies_get_the_openai_error_envelope():
    backend = ScriptedBackend()
    async with running(create_app(backend)) as url:
        c = client(url)
        with pytest.raises(openai.NotFoundError) as nf:
            await c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.BadRequestError) as empty:
            await c.chat.completions.create(model="covey-auto", messages=[])
        with pytest.raises(openai.BadRequestError) as last:
            await c.chat.completions.create(model="covey-auto", messages=[{"role": "assistant", "content": "hi"}])
        with pytest.raises(openai.BadRequestError) as n2:
            await c.chat.completions.create(model="covey-auto", n=2, messages=[{"role": "user", "content": "hi"}])
    assert nf.value.code == "model_not_found" and nf.value.param == "model" and "GET /v1/models" in nf.value.message
    assert empty.value.param == "messages" and empty.value.type == "invalid_request_error"
    assert last.value.param == "messages" and n2.value.param == "n"
    assert backend.seen == []  # nothing reached the orchestrator


async def test_context_length_exceeded_before_streaming_and_errors_mid_stream():
    too_long = ScriptedBackend(error=PromptTooLong("the prompt needs 3000 tokens; the model's context is 2048"))
    async with running(create_app(too_long)) as url:
        for stream in (False, True):
            with pytest.raises(openai.BadRequestError) as info:
                await client(url).chat.completions.create(model="covey-auto", stream=stream,
                                                          messages=[{"role": "user", "content": "long"}])
            assert info.value.code == "context_length_exceeded" and "2048" in info.value.message
    broken = ScriptedBackend(words=("a", "b", "c"), error=NoCapableNode("every node went away"), error_after=1)
    async with running(create_app(broken)) as url:
        stream = await client(url).chat.completions.create(model="covey-auto", stream=True,
                                                           messages=[{"role": "user", "content": "hi"}])
        got = []
        with pytest.raises(openai.APIError) as info:
            async for ch in stream:
                got.append(ch.choices[0].delta.content)
    assert "every node went away" in info.value.message and "a" in got


async def test_api_keys_required_bad_and_revoked(tmp_path):
    keys = ApiKeys(tmp_path / "api_keys.json")
    _, good = keys.create("laptop")
    _, gone = keys.create("old")
    keys.revoke("old")
    backend = ScriptedBackend()
    async with running(create_app(backend, keys=keys)) as url:
        ok = await client(url, good).chat.completions.create(model="covey-auto",
                                                             messages=[{"role": "user", "content": "hi"}])
        for bad in ("sk-covey-wrong", gone):
            with pytest.raises(openai.AuthenticationError) as info:
                await client(url, bad).chat.completions.create(model="covey-auto",
                                                               messages=[{"role": "user", "content": "hi"}])
            assert info.value.code == "invalid_api_key"
        assert [m.id async for m in client(url, good).models.list()][0] == "covey-auto"
    assert ok.choices[0].message.content == "Hello world" and len(backend.seen) == 1


async def test_client_disconnect_cancels_the_generation():
    backend = ScriptedBackend(words=tuple(f"w{i} " for i in range(200)), delay=0.02)
    app = create_app(backend)
    async with running(app) as url:
        stream = await client(url).chat.completions.create(model="covey-auto", stream=True,
                                                           messages=[{"role": "user", "content": "talk"}])
        got = 0
        async for _chunk in stream:
            got += 1
            if got == 4:
                break
        await stream.close()
        await until(lambda: backend.cancelled, what="the stream to be cancelled")
        assert backend.cancelled == [backend.seen[0]["session_id"]] and backend.finished == []
        assert app.state.api.in_flight == 0
        assert b"covey_answers_cancelled_total 1.0" in app.state.api.metrics.render()


async def test_several_concurrent_streams_and_the_stream_cap():
    backend = ScriptedBackend(words=("a", "b", "c", "d"), delay=0.05)
    async with running(create_app(backend, settings=ServeSettings(max_streams=4))) as url:
        c = client(url)

        async def one(i: int) -> str:
            s = await c.chat.completions.create(model="covey-auto", stream=True,
                                                messages=[{"role": "user", "content": f"q{i}"}])
            return "".join([ch.choices[0].delta.content or "" async for ch in s if ch.choices])

        texts = await asyncio.gather(*(one(i) for i in range(4)))
        assert texts == ["abcd"] * 4 and len(backend.finished) == 4
        busy = [asyncio.create_task(one(i)) for i in range(4)]
        await until(lambda: len(backend.seen) >= 8, what="four streams to be in flight")
        with pytest.raises(openai.RateLimitError):
            await one(99)
        assert await asyncio.gather(*busy) == ["abcd"] * 4
