"""Raw HTTP against the app (httpx on a real 127.0.0.1 server): malformed requests, limits, health, metrics."""

from __future__ import annotations

import httpx

from covey.api.app import create_app
from covey.api.keys import ApiKeys
from covey.settings import ServeSettings

from scripted import ScriptedBackend, running
from polling import until

CHAT = {"model": "covey-auto", "messages": [{"role": "user", "content": "hi"}]}


def error(r: httpx.Response) -> dict:
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


async def test_malformed_bodies_get_400_with_the_envelope():
    backend = ScriptedBackend()
    async with running(create_app(backend)) as url, httpx.AsyncClient(base_url=url) as h:
        r = await h.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and error(r)["code"] == "invalid_json"
        r = await h.post("/v1/chat/completions", json=["a", "list"])
        assert r.status_code == 400 and "JSON object" in error(r)["message"]
        r = await h.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 400 and error(r)["param"] == "model"
        r = await h.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "wizard", "content": "x"}]})
        assert r.status_code == 400 and error(r)["param"].startswith("messages.0.role")
        r = await h.post("/v1/chat/completions", json={**CHAT, "messages": [{"role": "user", "content": "  "}]})
        assert r.status_code == 400 and "empty" in error(r)["message"]
        r = await h.post("/v1/completions", json={"model": "covey-auto", "prompt": ["a", "b"]})
        assert r.status_code == 400 and error(r)["param"] == "prompt"
        r = await h.post("/v1/embeddings", json={"model": "covey-embed", "input": "x"})
        assert r.status_code == 404 and error(r)["code"] == "model_not_found"  # this app has no embedder
    assert backend.seen == []


async def test_content_parts_and_unknown_fields_are_accepted():
    backend = ScriptedBackend()
    async with running(create_app(backend)) as url, httpx.AsyncClient(base_url=url) as h:
        r = await h.post("/v1/chat/completions", json={
            "model": "covey-auto", "temperature": 0.2, "top_p": 0.9, "seed": 1, "frequency_penalty": 0,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "part one, "},
                                                      {"type": "text", "text": "part two"}]}]})
    assert r.status_code == 200, r.text
    assert backend.seen[0]["prompt"] == "part one, part two"


async def test_unknown_paths_and_methods():
    async with running(create_app(ScriptedBackend())) as url, httpx.AsyncClient(base_url=url) as h:
        r = await h.get("/v1/chat/completions")
        assert r.status_code == 405 and error(r)["code"] == "method_not_allowed"
        r = await h.post("/v1/assistants", json={})
        assert r.status_code == 404 and error(r)["code"] == "not_found"


async def test_body_size_limit_413_by_header_and_by_stream():
    backend = ScriptedBackend()
    app = create_app(backend, settings=ServeSettings(max_request_bytes=2048))
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    async with running(app) as url, httpx.AsyncClient(base_url=url) as h:
        r = await h.post("/v1/chat/completions", json=big)
        assert r.status_code == 413 and error(r)["code"] == "request_too_large"

        async def chunks():  # no Content-Length: the limit holds while reading
            for _ in range(10):
                yield b" " * 1000
            yield b"{}"

        r = await h.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
    assert backend.seen == []


async def test_rate_limit_429_with_retry_after_per_key(tmp_path):
    now = [0.0]
    keys = ApiKeys(tmp_path / "k.json")
    _, a = keys.create("a")
    _, b = keys.create("b")
    app = create_app(ScriptedBackend(), keys=keys, settings=ServeSettings(rate_per_minute=6, burst=2),
                     clock=lambda: now[0])
    async with running(app) as url, httpx.AsyncClient(base_url=url) as h:
        def auth(k):
            return {"authorization": f"Bearer {k}"}

        codes = [(await h.get("/v1/models", headers=auth(a))).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        r = await h.get("/v1/models", headers=auth(a))
        assert error(r)["code"] == "rate_limit_exceeded" and r.headers["retry-after"] == "10"
        assert (await h.get("/v1/models", headers=auth(b))).status_code == 200  # another key has its own bucket
        now[0] += 10.0
        assert (await h.get("/v1/models", headers=auth(a))).status_code == 200


async def test_missing_or_malformed_authorization_header(tmp_path):
    keys = ApiKeys(tmp_path / "k.json")
    _, good = keys.create("a")
    async with running(create_app(ScriptedBackend(), keys=keys)) as url, httpx.AsyncClient(base_url=url) as h:
        for headers in ({}, {"authorization": good}, {"authorization": "Basic " + good}, {"authorization": "Bearer"}):
            r = await h.post("/v1/chat/completions", json=CHAT, headers=headers)
            assert r.status_code == 401 and error(r)["code"] == "invalid_api_key", headers
        r = await h.get("/metrics")
        assert r.status_code == 401
        assert (await h.get("/health")).status_code == 200  # liveness needs no key


async def test_metrics_count_answers_escalations_joules_per_route_and_node():
    async with running(create_app(ScriptedBackend())) as url, httpx.AsyncClient(base_url=url) as h:
        for _ in range(2):
            assert (await h.post("/v1/chat/completions", json=CHAT)).status_code == 200
        r = await h.get("/metrics")
        health = (await h.get("/health")).json()
    text = r.text
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'covey_answers_total{node="den",route="chat"} 2.0' in text
    assert 'covey_escalations_total{node="old-laptop",route="chat"} 2.0' in text
    assert 'covey_answer_joules_total{method="estimated",node="den",route="chat"} 7.2' in text
    assert 'covey_http_requests_total{endpoint="/v1/chat/completions",status="200"} 2.0' in text
    assert "covey_answers_in_flight 0.0" in text
    assert health == {"status": "ok", "models": ["smollm2-135m-instruct-q4_1"], "answers_in_flight": 0}


async def test_disconnect_during_a_non_streamed_answer_cancels_it():
    backend = ScriptedBackend(words=tuple(f"w{i}" for i in range(300)), delay=0.02)
    app = create_app(backend)
    async with running(app) as url, httpx.AsyncClient(base_url=url, timeout=0.5) as h:
        try:
            await h.post("/v1/chat/completions", json=CHAT)
        except httpx.ReadTimeout:
            pass
        await until(lambda: backend.cancelled, what="the answer to be cancelled")
    assert backend.cancelled and backend.finished == []
    assert app.state.api.in_flight == 0
