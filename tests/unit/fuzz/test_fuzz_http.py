"""Property-based fuzz of `covey serve`'s app in-process: any body, any path, any header gets either a success
or the OpenAI error envelope with a 4xx/503 status, never a 500 and never an exception."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from starlette.testclient import TestClient

from covey.api.app import create_app
from covey.settings import ServeSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from scripted import RecordingEmbedder, ScriptedBackend  # noqa: E402

FUZZ = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]
MODELS = ["covey-auto", "covey", "covey-agent/coder", "covey-agent/nope", "smollm2-135m-instruct-q4_1", "covey-embed",
          "", "\udcff", "[bold]x[/"]

text = st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "\udcff\udcfe hi", "\ud800", "[/bold]", "hi",
                                                           "\x00", "<|im_end|>"]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True), text)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(text, inner, max_size=4)), max_leaves=12)
message = st.fixed_dictionaries({"role": st.one_of(st.sampled_from(["user", "system", "assistant", "developer",
                                                                     "tool", "wizard"]), json_values),
                                 "content": st.one_of(text, json_values,
                                                      st.lists(st.fixed_dictionaries({"type": st.just("text"),
                                                                                      "text": text}), max_size=2))})
shaped = st.fixed_dictionaries(
    {"model": st.one_of(st.sampled_from(MODELS), json_values)},
    optional={"messages": st.one_of(st.lists(message, max_size=3), json_values),
              "prompt": st.one_of(text, st.lists(text, max_size=2), json_values),
              "input": st.one_of(text, st.lists(text, max_size=3), json_values),
              "stream": st.one_of(st.booleans(), json_values),
              "max_tokens": st.one_of(st.integers(-5, 2**40), json_values),
              "max_completion_tokens": st.one_of(st.integers(-5, 40), json_values),
              "temperature": st.one_of(st.floats(allow_nan=True), json_values),
              "session": st.one_of(text, json_values),
              "stream_options": st.one_of(st.fixed_dictionaries({"include_usage": st.booleans()}), json_values),
              "encoding_format": st.one_of(st.sampled_from(["float", "base64", "hex"]), json_values)})


def _dump(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()  # ASCII: lone surrogates become \\udcff escapes, as JSON allows


bodies = st.one_of(shaped.map(_dump), json_values.map(_dump), st.binary(max_size=200),
                   st.sampled_from([b"", b"{", b"null", b"[]", b'{"model": "covey-auto", "messages": []}',
                                    b'{"model": "covey-auto", "messages": [{"role": "user", "content": "\\udcff"}]}']))


def check(r: httpx.Response) -> None:
    assert r.status_code != 500 and r.status_code < 600, (r.status_code, r.text)
    if r.status_code == 200:
        if r.headers["content-type"].startswith("text/event-stream"):
            events = [line[6:] for line in r.text.splitlines() if line.startswith("data: ")]
            assert events[-1] == "[DONE]"
            for ev in events[:-1]:
                assert isinstance(json.loads(ev), dict)
        else:
            assert isinstance(r.json(), dict)
        return
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str) and body["error"]["message"], body
    assert 400 <= r.status_code < 500 or r.status_code == 503


_APP = create_app(ScriptedBackend(), settings=ServeSettings(rate_per_minute=1e9, burst=10**6),
                  embedder=RecordingEmbedder())
_CLIENT = TestClient(_APP, base_url="http://127.0.0.1", raise_server_exceptions=False)


def run(requests) -> list[httpx.Response]:
    return [_CLIENT.request(method, path, content=body, headers=headers) for method, path, body, headers in requests]


@FUZZ
@given(path=st.sampled_from(PATHS), body=bodies)
@example(path=PATHS[0], body=b'{"model": "\\udcff", "messages": [{"role": "user", "content": "hi"}]}')
@example(path=PATHS[1], body=b'{"model": "covey-auto", "prompt": "x", "session": "\\ud800"}')
@example(path=PATHS[2], body=b'{"model": "covey-embed", "input": ["ok", "\\udcff"]}')
def test_any_body_is_an_answer_or_the_error_envelope(path: str, body: bytes) -> None:
    for r in run([("POST", path, body, {"content-type": "application/json"})]):
        check(r)


@settings(max_examples=40, deadline=None, database=None)
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
       path=st.one_of(st.sampled_from(PATHS + ["/v1/models", "/v1/models/covey-auto", "/health", "/metrics"]),
                      st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=30).map(
                          lambda p: "/" + p)),
       auth=st.one_of(st.none(), st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30)),
       length=st.one_of(st.none(), st.sampled_from(["-1", "abc", "99999999999999999999", "0"])))
def test_any_method_path_and_header_is_answered_without_a_500(method, path, auth, length) -> None:
    headers = {"content-type": "application/json"}
    if auth is not None:
        headers["authorization"] = auth
    if length is not None:
        headers["content-length"] = length
    body = b'{"model": "covey-auto", "messages": [{"role": "user", "content": "hi"}]}' if length is None else b""
    for r in run([(method, path, body if method in ("POST", "PUT", "PATCH") else b"", headers)]):
        if r.headers.get("content-type", "").startswith("text/plain"):  # /metrics
            assert r.status_code == 200
            continue
        check(r)
