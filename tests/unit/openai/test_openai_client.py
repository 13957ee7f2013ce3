"""OpenAINodeClient against scripted OpenAI-compatible servers on httpx.MockTransport (a real transport)."""

from __future__ import annotations

import json

import httpx
import pytest

from covey import errors
from covey.orchestrator.client import NodeClient
from covey.orchestrator.openai_client import (
    REMOTE_ENERGY_SOURCE, UNKNOWN_ENERGY_SOURCE, OpenAINodeClient, endpoint_node_id, parse_endpoint, sse_data,
)
from covey.types import EnergyMethod, FinishReason, GenerateFinal, GenerateRequest, Message, Sampling, TokenPiece

MODEL = "smollm2-135m-instruct-q4_1"
BASE = "http://gpu-box:8000"


def sse(*events: dict | str, done: bool = True) -> list[bytes]:
    out = [(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n").encode() for e in events]
    if done:
        out.append(b"data: [DONE]\n\n")
    return out


def delta(text: str | None = None, *, logprob: float | None = None, finish: str | None = None,
          role: str | None = None) -> dict:
    d: dict = {}
    if role:
        d["role"] = role
    if text is not None:
        d["content"] = text
    lp = {"content": [{"token": text, "logprob": logprob, "top_logprobs": []}]} if logprob is not None else None
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": d, "logprobs": lp,
                                                             "finish_reason": finish}]}


class RecordingStream(httpx.AsyncByteStream):
    """A response body sent chunk by chunk that records how far it was read and whether it was closed."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.sent = 0
        self.closed = False

    async def __aiter__(self):
        for c in self.chunks:
            self.sent += 1
            yield c

    async def aclose(self) -> None:
        self.closed = True


class ScriptedServer:
    """An OpenAI-compatible server: /v1/models from a list, chat completions from a script; records requests."""

    def __init__(self, *, models=(MODEL,), chat=None, models_status: int = 200, extra_model_fields=None) -> None:
        self.models = list(models)
        self.chat = chat if chat is not None else sse(delta(role="assistant"), delta("Hi", logprob=-0.5),
                                                      delta(" there", logprob=-1.5), delta(finish="stop"))
        self.models_status = models_status
        self.extra_model_fields = extra_model_fields or {}
        self.seen: list[httpx.Request] = []
        self.streams: list[RecordingStream] = []

    def bodies(self) -> list[dict]:
        return [json.loads(r.content) for r in self.seen if r.url.path == "/v1/chat/completions"]

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.path == "/v1/models":
            if self.models_status != 200:
                return httpx.Response(self.models_status, json={"error": {"message": "models down"}})
            return httpx.Response(200, json={"object": "list", "data": [
                {"id": m, "object": "model", **self.extra_model_fields} for m in self.models]})
        if request.url.path == "/v1/chat/completions":
            if isinstance(self.chat, httpx.Response):
                return self.chat
            stream = RecordingStream(self.chat)
            self.streams.append(stream)
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)
        return httpx.Response(404, json={"detail": "Not Found"})


class StepClock:
    def __init__(self, step: float = 0.1) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def client_for(server: ScriptedServer, **kw) -> OpenAINodeClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(server.handler))
    return OpenAINodeClient(kw.pop("url", BASE), http=http, **kw)


def request(**kw) -> GenerateRequest:
    base = dict(request_id="r1", model_id=MODEL, messages=(Message(role="user", content="Say hi"),), max_tokens=16)
    base.update(kw)
    return GenerateRequest(**base)


async def collect(client: OpenAINodeClient, req: GenerateRequest) -> tuple[list[TokenPiece], GenerateFinal]:
    events = [ev async for ev in client.generate(req)]
    assert all(isinstance(e, TokenPiece) for e in events[:-1])
    assert isinstance(events[-1], GenerateFinal)
    return events[:-1], events[-1]  # type: ignore[return-value]


# -- endpoint specs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, url, models", [
    ("http://gpu-box:8000", "http://gpu-box:8000", []),
    ("http://gpu-box:8000/", "http://gpu-box:8000", []),
    ("http://gpu-box:8000/v1#a,b", "http://gpu-box:8000", ["a", "b"]),
    ("https://llm.example.org/proxy/v1/#qwen=qwen2.5:1.5b", "https://llm.example.org/proxy", ["qwen=qwen2.5:1.5b"]),
    (" http://127.0.0.1:11434#  a , ,b ", "http://127.0.0.1:11434", ["a", "b"]),
])
def test_parse_endpoint(spec, url, models):
    assert parse_endpoint(spec) == (url, models)


@pytest.mark.parametrize("spec", ["gpu-box:8000", "ftp://gpu-box", "http://", "http://h#=x", "http://h#a="])
def test_parse_endpoint_refuses_what_is_not_an_endpoint(spec):
    with pytest.raises(errors.ConfigError) as exc:
        parse_endpoint(spec)
    assert "e.g." in str(exc.value)


# -- info ----------------------------------------------------------------------------------------------

async def test_info_offers_every_served_model():
    server = ScriptedServer(models=[MODEL, "other"], extra_model_fields={"max_model_len": 4096})
    client = client_for(server, joules_per_token=0.3)
    info = await client.info()
    assert isinstance(client, NodeClient)
    assert info.source == "openai"
    assert info.node_id == endpoint_node_id(BASE) == client_for(ScriptedServer(), url=BASE + "/v1/").node_id
    assert info.name == "gpu-box:8000"
    assert info.address == BASE
    assert info.joules_per_token == 0.3
    offers = [(m.model_id, m.loaded, m.context_length) for m in info.models]
    assert offers == [(MODEL, True, 4096), ("other", True, 4096)]


async def test_info_with_configured_models_and_names_uses_the_name_and_the_aliases():
    server = ScriptedServer(models=["qwen2.5:1.5b"])
    client = client_for(server, models=["qwen-1.5b=qwen2.5:1.5b"], name="cluster", api_key="sekret")
    info = await client.info()
    assert info.name == "cluster"
    assert [m.model_id for m in info.models] == ["qwen-1.5b"]
    assert server.seen[0].headers["authorization"] == "Bearer sekret"
    server.chat = sse(delta("ok"), delta(finish="stop"))
    pieces, _ = await collect(client, request(model_id="qwen-1.5b"))
    assert server.bodies()[0]["model"] == "qwen2.5:1.5b"
    assert server.seen[-1].headers["authorization"] == "Bearer sekret"


async def test_info_from_an_unreachable_endpoint_is_node_unavailable():
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    client = OpenAINodeClient(BASE, http=httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    with pytest.raises(errors.NodeUnavailable) as exc:
        await client.info()
    assert "connection refused" in str(exc.value) and BASE in str(exc.value)
    assert await client.healthy() is False


async def test_info_from_something_that_is_not_an_openai_server():
    server = ScriptedServer()
    server.handler = lambda request: httpx.Response(200, json={"hello": "world"})  # type: ignore[method-assign]
    with pytest.raises(errors.NodeUnavailable, match="OpenAI model list"):
        await client_for(server).info()


async def test_healthy_follows_the_model_list():
    assert await client_for(ScriptedServer()).healthy() is True
    assert await client_for(ScriptedServer(models_status=503)).healthy() is False


# -- streaming -----------------------------------------------------------------------------------------

async def test_stream_yields_pieces_with_logprobs_and_a_final_from_usage():
    usage = {"object": "chat.completion.chunk", "choices": [],
             "usage": {"prompt_tokens": 31, "completion_tokens": 2, "total_tokens": 33}}
    server = ScriptedServer(chat=[b": ping - keepalive\n\n"] + sse(
        delta(role="assistant"), delta("Hi", logprob=-0.5), delta(" there", logprob=-1.5), delta(finish="length"),
        usage))
    client = client_for(server, joules_per_token=0.25, clock=StepClock(0.1))
    pieces, final = await collect(client, request(max_tokens=2))
    assert [(p.text, p.logprobs) for p in pieces] == [("Hi", (-0.5,)), (" there", (-1.5,))]
    assert final.finish_reason is FinishReason.LENGTH
    assert (final.prompt_tokens, final.completion_tokens) == (31, 2)
    assert final.node_id == client.node_id and final.model_id == MODEL
    assert final.timings.total_ms >= final.timings.prompt_ms + final.timings.generate_ms > 0
    (comp,) = final.energy.components
    assert (comp.name, comp.method, comp.source, comp.uncertainty) == ("remote", EnergyMethod.ESTIMATED,
                                                                       REMOTE_ENERGY_SOURCE, 1.0)
    assert comp.joules == pytest.approx(0.5) == final.energy.joules


async def test_request_body_carries_sampling_logprobs_usage_and_extra_body():
    server = ScriptedServer()
    client = client_for(server, extra_body={"top_k": 20})
    req = request(sampling=Sampling(temperature=0.2, top_p=0.9, seed=7, stop=("\nUser:",)), max_tokens=33)
    await collect(client, req)
    (body,) = server.bodies()
    assert body["messages"] == [{"role": "user", "content": "Say hi"}]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["logprobs"] is True and body["top_logprobs"] == 0
    assert (body["temperature"], body["top_p"], body["seed"], body["stop"], body["max_tokens"]) == (
        0.2, 0.9, 7, ["\nUser:"], 33)
    assert body["top_k"] == 20 and body["model"] == MODEL
    assert "authorization" not in server.seen[-1].headers


async def test_prompt_becomes_a_user_message_and_continue_from_a_partial_assistant_message():
    server = ScriptedServer()
    await collect(client_for(server), request(messages=(), prompt="Count to five", continue_from="1, 2,"))
    assert server.bodies()[0]["messages"] == [{"role": "user", "content": "Count to five"},
                                              {"role": "assistant", "content": "1, 2,"}]


async def test_without_usage_tokens_are_counted_from_logprobs_or_deltas():
    server = ScriptedServer(chat=sse(delta("a", logprob=-1.0), delta("b", logprob=-1.0), delta("c", logprob=-1.0),
                                     delta(finish="stop")))
    client = client_for(server)
    _, final = await collect(client, request(messages=(Message(role="user", content="x" * 40),)))
    assert final.completion_tokens == 3
    assert final.prompt_tokens == 12  # 40 characters at ~3.5 per token (covey.estimates) when the server does not say
    (comp,) = final.energy.components
    assert comp.joules == 0.0 and comp.source == UNKNOWN_ENERGY_SOURCE and comp.uncertainty == 1.0
    server.chat = sse(delta("a"), delta("bc"), delta(finish="stop"))
    _, final = await collect(client, request())
    assert final.completion_tokens == 2


async def test_multi_line_data_and_crlf_events_are_parsed():
    async def lines():
        for line in ["event: message", "id: 1", 'data: {"a":', "data: 1}", "", ": ping", "", "data: [DONE]"]:
            yield line

    assert [d async for d in sse_data(lines())] == ['{"a":\n1}', "[DONE]"]
    server = ScriptedServer(chat=[b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\r\n\r\n',
                                  b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\r\n\r\n'])
    pieces, final = await collect(client_for(server), request())
    assert [p.text for p in pieces] == ["x"] and final.finish_reason is FinishReason.STOP


async def test_a_server_that_ignores_stream_true_still_answers():
    body = {"object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Hello"}, "logprobs": None}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
    pieces, final = await collect(client_for(ScriptedServer(chat=httpx.Response(200, json=body))), request())
    assert [p.text for p in pieces] == ["Hello"]
    assert (final.finish_reason, final.prompt_tokens, final.completion_tokens) == (FinishReason.STOP, 5, 1)


async def test_speed_and_in_flight_requests_show_in_the_next_info():
    server = ScriptedServer(chat=sse(*[delta(str(i), logprob=-0.1) for i in range(5)], delta(finish="stop")))
    client = client_for(server, clock=StepClock(0.1))
    gen = client.generate(request())
    await gen.__anext__()
    assert (await client.info()).models[0].queue_depth == 1
    async for _ in gen:
        pass
    info = await client.info()
    assert info.models[0].queue_depth == 0
    assert info.models[0].tokens_per_second == pytest.approx(5 / 0.4)
    assert info.tokens_per_second == info.models[0].tokens_per_second


# -- ending early --------------------------------------------------------------------------------------

async def test_closing_the_iterator_early_closes_the_http_stream():
    server = ScriptedServer(chat=sse(*[delta(f"t{i}") for i in range(50)], delta(finish="stop")))
    client = client_for(server)
    gen = client.generate(request())
    first = await gen.__anext__()
    assert first.text == "t0"
    await gen.aclose()
    (stream,) = server.streams
    assert stream.closed and stream.sent < 51
    assert (await client.info()).models[0].queue_depth == 0


async def test_deadline_ends_the_answer_with_deadline():
    server = ScriptedServer(chat=sse(*[delta(f"t{i}") for i in range(50)], delta(finish="stop")))
    client = client_for(server, clock=StepClock(0.1))
    pieces, final = await collect(client, request(deadline_ms=450))
    assert final.finish_reason is FinishReason.DEADLINE
    assert 0 < len(pieces) < 50
    assert server.streams[0].closed


async def test_a_stream_cut_before_the_end_is_node_unavailable():
    server = ScriptedServer(chat=sse(delta("partial"), done=False))
    client = client_for(server)
    seen = []
    with pytest.raises(errors.NodeUnavailable, match="before the answer finished"):
        async for ev in client.generate(request()):
            seen.append(ev)
    assert [p.text for p in seen] == ["partial"]  # the orchestrator fails over with continue_from


async def test_a_stream_closed_without_any_event_is_generation_failed():
    server = ScriptedServer(chat=[b": ping\n\n"])
    with pytest.raises(errors.GenerationFailed, match="without sending anything"):
        await collect(client_for(server), request())


async def test_a_connection_dropped_mid_stream_is_node_unavailable():
    class Dropping(RecordingStream):
        async def __aiter__(self):
            yield sse(delta("a"), done=False)[0]
            raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    server = ScriptedServer()
    server.chat = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Dropping([]))
    with pytest.raises(errors.NodeUnavailable, match="peer closed connection"):
        await collect(client_for(server), request())


# -- errors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, body, error, text", [
    (429, {"error": {"message": "too many requests", "type": "rate_limit"}}, errors.NodeBusy, "too many requests"),
    (404, {"object": "error", "message": "The model `x` does not exist.", "type": "NotFoundError", "code": 404},
     errors.UnknownModel, "does not exist"),
    (404, {"error": "model \"x\" not found, try pulling it first"}, errors.UnknownModel, "try pulling it"),
    (404, {"detail": "Not Found"}, errors.NodeUnavailable, "Not Found"),
    (400, {"error": {"message": "temperature must be >= 0", "type": "invalid_request_error"}}, errors.BadRequest,
     "temperature must be"),
    (400, {"error": {"message": "This model's maximum context length is 2048 tokens.",
                     "code": "context_length_exceeded"}}, errors.PromptTooLong, "maximum context length"),
    (422, {"detail": [{"loc": ["body", "max_tokens"], "msg": "not an int"}]}, errors.BadRequest, "not an int"),
    (401, {"error": {"message": "Invalid API key"}}, errors.ConfigError, "Invalid API key"),
    (500, {"error": {"message": "CUDA out of memory"}}, errors.NodeUnavailable, "CUDA out of memory"),
    (500, {"error": {"message": "1 validation error:\n max_tokens", "type": "internal_server_error"}},
     errors.BadRequest, "validation error"),
    (503, "upstream connect error", errors.NodeUnavailable, "upstream connect error"),
    (418, {"error": {"message": "teapot"}}, errors.GenerationFailed, "teapot"),
])
async def test_http_errors_become_covey_errors_with_the_server_message(status, body, error, text):
    resp = httpx.Response(status, json=body) if isinstance(body, dict) else httpx.Response(status, text=body)
    server = ScriptedServer(chat=resp)
    with pytest.raises(error) as exc:
        await collect(client_for(server), request())
    assert text in str(exc.value) and f"HTTP {status}" in str(exc.value) and "gpu-box:8000" in str(exc.value)
    assert type(exc.value) is error


async def test_an_error_inside_the_stream_is_mapped():
    server = ScriptedServer(chat=sse(delta("a"), {"error": {"message": "KV cache full", "code": 503}}))
    with pytest.raises(errors.NodeUnavailable, match="KV cache full"):
        await collect(client_for(server), request())


async def test_garbage_in_the_stream_is_generation_failed():
    server = ScriptedServer(chat=[b"data: {not json\n\n"])
    with pytest.raises(errors.GenerationFailed, match="not JSON"):
        await collect(client_for(server), request())


async def test_a_model_the_endpoint_does_not_offer_fails_before_anything_is_sent():
    server = ScriptedServer(models=[MODEL])
    client = client_for(server)
    with pytest.raises(errors.UnknownModel) as exc:
        await collect(client, request(model_id="no-such-model"))
    assert MODEL in str(exc.value) and "no-such-model" in str(exc.value)
    assert server.bodies() == []
    configured = client_for(server, models=["only-this"])
    with pytest.raises(errors.UnknownModel, match="only-this"):
        await collect(configured, request())


async def test_a_model_pulled_after_the_first_look_is_found():
    server = ScriptedServer(models=["first"])
    client = client_for(server)
    await client.info()
    server.models.append(MODEL)
    _, final = await collect(client, request())
    assert final.model_id == MODEL


async def test_a_request_without_text_is_a_bad_request():
    with pytest.raises(errors.BadRequest, match="neither messages nor a prompt"):
        await collect(client_for(ScriptedServer()), request(messages=()))


def test_negative_joules_per_token_is_a_config_error():
    with pytest.raises(errors.ConfigError, match="joules_per_token"):
        OpenAINodeClient(BASE, joules_per_token=-1)


async def test_close_leaves_a_borrowed_http_client_open_and_closes_its_own():
    http = httpx.AsyncClient(transport=httpx.MockTransport(ScriptedServer().handler))
    borrowed = OpenAINodeClient(BASE, http=http)
    await borrowed.close()
    assert not http.is_closed
    await http.aclose()
    own = OpenAINodeClient(BASE)
    await own.close()
    assert own._http.is_closed
