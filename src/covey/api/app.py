"""The OpenAI-compatible ASGI app: chat and text completions (streamed or not), models, embeddings.

`create_app(backend)` takes anything with the Orchestrator's `stream(...)`, `agent_names()` and
`served_models()` (tests pass a scripted one). Standard clients read `usage`; covey's own figures
(route, agent, node, attempts, joules with their range, gCO2e) ride in a `covey` field they ignore.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from covey.api import local
from covey.api.errors import ApiError, from_covey
from covey.api.keys import ApiKeys
from covey.api.limits import RateLimiter
from covey.api.metrics import ServeMetrics
from covey.api.schemas import ChatRequest, CompletionRequest, EmbeddingRequest
from covey.api.shapes import Shape, finish_reason, model_card, sse
from covey.errors import CoveyError
from covey.orchestrator.results import AnswerResult, Notice, Token
from covey.settings import ServeSettings
from covey.types import Message

logger = logging.getLogger(__name__)

AUTO = "covey-auto"
AGENT_PREFIX = "covey-agent/"
EMBED_ALIAS = "covey-embed"


class Backend(Protocol):
    """What the app needs from an orchestrator."""

    def stream(self, prompt: str, *, session_id: str | None = None, history: Sequence[Message] | None = None,
               agent: str | None = None, model: str | None = None,
               max_tokens: int | None = None) -> AsyncIterator[Token | Notice | AnswerResult]:
        ...

    def agent_names(self) -> list[str]: ...

    def served_models(self) -> list[str]: ...


def create_app(backend: Backend, *, settings: ServeSettings | None = None, keys: ApiKeys | None = None,
               embedder: Any = None, grams_co2e: Callable[[float], float] | None = None,
               clock: Callable[[], float] = time.monotonic) -> Starlette:
    """The ASGI app. `keys` None serves without authentication (loopback only: see covey.api.server).

    `embedder` is an Embedder or a zero-argument function returning one (loaded on first use).
    `grams_co2e` turns joules into gCO2e (the carbon intensity and PUE from the energy settings).
    """
    api = _Api(backend, settings or ServeSettings(), keys, embedder, grams_co2e, clock)
    routes = [
        Route("/v1/chat/completions", api.chat, methods=["POST"]),
        Route("/v1/completions", api.completions, methods=["POST"]),
        Route("/v1/models", api.models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", api.model, methods=["GET"]),
        Route("/v1/embeddings", api.embeddings, methods=["POST"]),
        Route("/health", api.health, methods=["GET"]),
        Route("/metrics", api.metrics_endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_allowed})
    app.state.api = api
    app.add_middleware(_CountRequests, metrics=api.metrics)
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    return ApiError(404, f"no such endpoint: {request.method} {request.url.path}", code="not_found").response()


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return ApiError(405, f"{request.method} is not allowed on {request.url.path}", code="method_not_allowed").response()


class _CountRequests:
    """Pure ASGI middleware: counts requests per endpoint and status (no buffering of streams)."""

    KNOWN = ("/v1/chat/completions", "/v1/completions", "/v1/models", "/v1/embeddings", "/health", "/metrics")

    def __init__(self, app, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        endpoint = next((k for k in self.KNOWN if path == k or path.startswith(k + "/")), "other")

        async def counting_send(message) -> None:
            if message["type"] == "http.response.start":
                self.metrics.requests.labels(endpoint, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)


class _Api:
    def __init__(self, backend: Backend, settings: ServeSettings, keys: ApiKeys | None, embedder: Any,
                 grams_co2e: Callable[[float], float] | None, clock: Callable[[], float]) -> None:
        self.backend = backend
        self.settings = settings
        self.keys = keys
        self._embedder = embedder
        self._embedder_lock = asyncio.Lock()
        self.grams_co2e = grams_co2e
        self.limiter = RateLimiter(settings.rate_per_minute, settings.burst, clock=clock)
        self.metrics = ServeMetrics()
        self.in_flight = 0

    # -- guards ------------------------------------------------------------------------------------

    def _authorize(self, request: Request) -> str:
        """The caller's rate-limit identity; raises 401 for a missing or wrong key, 429 over the rate."""
        who = request.client.host if request.client else "unknown"
        if self.keys is not None:
            header = request.headers.get("authorization", "")
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise ApiError(401, "this server needs an API key: send 'Authorization: Bearer KEY' "
                               "(create one with `covey serve keys create NAME`)", code="invalid_api_key")
            key = self.keys.verify(secret.strip())
            if key is None:
                raise ApiError(401, "incorrect or revoked API key; see `covey serve keys list`",
                               code="invalid_api_key")
            who = key.key_id
        wait = self.limiter.take(who)
        if wait > 0:
            raise ApiError(429, f"rate limit of {self.settings.rate_per_minute:g} requests per minute reached; "
                           f"retry in {wait:.1f} s", code="rate_limit_exceeded",
                           headers={"Retry-After": str(max(1, round(wait)))})
        return who

    async def _body(self, request: Request, model: type[BaseModel]) -> Any:
        limit = self.settings.max_request_bytes
        too_big = ApiError(413, f"the request body is over {limit} bytes (serve.max_request_bytes)",
                           code="request_too_large")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise too_big
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise too_big
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the body must be a JSON object", code="invalid_json")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            param = ".".join(str(p) for p in first["loc"]) or None
            raise ApiError(400, f"invalid '{param}': {first['msg']}", code="invalid_request", param=param) from None

    def _pins(self, name: str) -> tuple[str | None, str | None]:
        """(agent, model) for a requested model name; 404 model_not_found for names covey does not serve."""
        if name in (AUTO, "covey"):
            return None, None
        if name.startswith(AGENT_PREFIX):
            agent = name[len(AGENT_PREFIX):]
            if agent in self.backend.agent_names():
                return agent, None
        elif name in self.backend.served_models():
            return None, name
        raise ApiError(404, f"the model '{name}' does not exist here; GET /v1/models lists "
                       f"{AUTO}, {AGENT_PREFIX}NAME per agent and every served model", code="model_not_found",
                       param="model")

    def _admit(self) -> None:
        if self.in_flight >= self.settings.max_streams:
            raise ApiError(429, f"{self.in_flight} answers are already in progress (serve.max_streams); retry "
                           "shortly", code="too_many_requests", headers={"Retry-After": "1"})

    # -- endpoints ---------------------------------------------------------------------------------

    async def chat(self, request: Request) -> Response:
        try:
            self._authorize(request)
            body: ChatRequest = await self._body(request, ChatRequest)
            agent, model = self._pins(body.model)
            last = body.messages[-1]
            if last.role != "user":
                raise ApiError(400, "the last message must be the user's (role 'user')", param="messages")
            prompt = last.text()
            if not prompt.strip():
                raise ApiError(400, "the last user message is empty", param="messages")
            history = [Message(role="system" if m.role in ("system", "developer") else m.role,  # type: ignore[arg-type]
                               content=m.text()) for m in body.messages[:-1] if m.role != "tool"]
            stored = body.session is not None and not history  # continue the stored conversation
            kw = dict(session_id=body.session or f"api-{uuid.uuid4().hex[:12]}",
                      history=None if stored else history, agent=agent, model=model,
                      max_tokens=body.max_completion_tokens or body.max_tokens)
            return await self._answer(request, prompt, kw, body.model, body.stream,
                                      bool(body.stream_options and body.stream_options.include_usage), chat=True)
        except CoveyError as exc:
            return from_covey(exc).response()

    async def completions(self, request: Request) -> Response:
        try:
            self._authorize(request)
            body: CompletionRequest = await self._body(request, CompletionRequest)
            agent, model = self._pins(body.model)
            prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
            if len(prompts) != 1:
                raise ApiError(400, "send one prompt per request", param="prompt")
            if not prompts[0].strip():
                raise ApiError(400, "the prompt is empty", param="prompt")
            kw = dict(session_id=body.session or f"api-{uuid.uuid4().hex[:12]}",
                      history=None if body.session else [], agent=agent, model=model, max_tokens=body.max_tokens)
            return await self._answer(request, prompts[0], kw, body.model, body.stream,
                                      bool(body.stream_options and body.stream_options.include_usage), chat=False)
        except CoveyError as exc:
            return from_covey(exc).response()

    async def _answer(self, request: Request, prompt: str, kw: dict, model_name: str, stream: bool,
                      include_usage: bool, *, chat: bool) -> Response:
        self._admit()
        self.in_flight += 1
        self.metrics.in_flight.inc()
        events = aiter(self.backend.stream(prompt, **kw))
        try:
            first = await anext(events)  # errors before the first token still get their HTTP status
        except BaseException:
            self._done()
            await events.aclose()
            raise
        shape = Shape(chat=chat, model=model_name)
        if not stream:
            async def collect() -> AnswerResult:
                ev = first
                while not isinstance(ev, AnswerResult):
                    ev = await anext(events)
                return ev

            task = asyncio.create_task(collect())
            try:
                while not task.done():  # a client that hangs up cancels the answer here too
                    await asyncio.wait({task}, timeout=0.25)
                    if not task.done() and await request.is_disconnected():
                        task.cancel()
                        self.metrics.cancelled.inc()
                        logger.info("client went away: cancelling the answer")
                        return Response(status_code=499)
                result = task.result()
            finally:
                if not task.done():
                    task.cancel()
                    await asyncio.wait({task})  # let it leave the generator before closing it
                self._done()
                await events.aclose()
            self.metrics.observe(result)
            return JSONResponse(shape.whole(result, self._extension(result)))
        whole = request.headers.get(local.RESULT_HEADER) == "1"  # `covey ask` rebuilds its own result from it
        return StreamingResponse(self._sse(first, events, shape, include_usage, whole),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _sse(self, first, events, shape: Shape, include_usage: bool,
                   whole: bool = False) -> AsyncIterator[str]:
        finished = False
        try:
            if shape.chat:
                yield sse(shape.chunk({"role": "assistant", "content": ""}))
            ev = first
            attempt = 0
            while True:
                if isinstance(ev, Token):
                    # an escalation restarts the answer on a stronger model: say so on its first token
                    ext = {"attempt": ev.attempt, "restart": True} if ev.attempt != attempt else None
                    attempt = ev.attempt
                    yield sse(shape.chunk({"content": ev.text} if shape.chat else ev.text, extension=ext))
                elif isinstance(ev, Notice):
                    yield sse(shape.chunk({} if shape.chat else "", extension={"notice": ev.model_dump()}))
                elif isinstance(ev, AnswerResult):
                    self.metrics.observe(ev)
                    ext = self._extension(ev)
                    last = {**ext, "result": ev.model_dump(mode="json")} if whole else ext
                    yield sse(shape.chunk({} if shape.chat else "", finish=finish_reason(ev), extension=last))
                    if include_usage:
                        yield sse(shape.usage_chunk(ev, ext))
                    break
                try:
                    ev = await anext(events)
                except StopAsyncIteration:
                    break
            finished = True
        except CoveyError as exc:
            finished = True
            yield sse(from_covey(exc).envelope())
        finally:
            self._done()
            if not finished:
                self.metrics.cancelled.inc()
                logger.info("client went away: cancelling the answer")
            await events.aclose()
        yield "data: [DONE]\n\n"

    def _done(self) -> None:
        self.in_flight -= 1
        self.metrics.in_flight.dec()

    def _extension(self, r: AnswerResult) -> dict[str, Any]:
        e = r.energy
        unc = sum(c.joules * c.uncertainty for c in e.components) / e.joules if e.joules > 0 else 0.0
        return {
            "session": r.session_id, "route": r.route, "route_confidence": r.route_confidence, "agent": r.agent,
            "node": r.node, "model": r.model, "escalated": r.escalated, "failed_over": r.failed_over,
            "attempts": [{"node": a.node_name, "model": a.model_id, "outcome": a.outcome,
                          "completion_tokens": a.completion_tokens, "joules": a.energy.joules}
                         for a in r.attempts],
            "joules": e.joules, "joules_low": e.joules * max(0.0, 1 - unc), "joules_high": e.joules * (1 + unc),
            "energy_method": e.method.value,
            "g_co2e": self.grams_co2e(e.joules) if self.grams_co2e else None,
            "seconds": r.seconds, "notes": list(r.notes),
            "sources": [s.model_dump(mode="json") for s in r.sources],
        }

    async def models(self, request: Request) -> Response:
        try:
            self._authorize(request)
        except CoveyError as exc:
            return from_covey(exc).response()
        return JSONResponse({"object": "list", "data": [model_card(m) for m in self._model_ids()]})

    async def model(self, request: Request) -> Response:
        try:
            self._authorize(request)
            name = request.path_params["model_id"]
            if name not in self._model_ids():
                raise ApiError(404, f"the model '{name}' does not exist here", code="model_not_found", param="model")
        except CoveyError as exc:
            return from_covey(exc).response()
        return JSONResponse(model_card(name))

    def _model_ids(self) -> list[str]:
        ids = [AUTO] + [AGENT_PREFIX + a for a in self.backend.agent_names()] + list(self.backend.served_models())
        if self._embedder is not None:
            ids.append(EMBED_ALIAS)
        return list(dict.fromkeys(ids))

    async def embeddings(self, request: Request) -> Response:
        try:
            self._authorize(request)
            body: EmbeddingRequest = await self._body(request, EmbeddingRequest)
            if self._embedder is None:
                raise ApiError(404, "this server has no embedder (install covey[orchestrator])", code="model_not_found",
                               param="model")
            embedder = await self._load_embedder()
            if body.model not in (EMBED_ALIAS, embedder.name, embedder.name.rsplit("/", 1)[-1]):
                raise ApiError(404, f"the embedding model '{body.model}' does not exist here; use '{EMBED_ALIAS}' "
                               f"({embedder.name})", code="model_not_found", param="model")
            texts = [body.input] if isinstance(body.input, str) else list(body.input)
            if any(not isinstance(t, str) or not t for t in texts):
                raise ApiError(400, "each input must be a non-empty string", param="input")
            vectors = await asyncio.to_thread(embedder.embed, texts)
            tokens = sum(embedder.count_tokens(t) for t in texts)
        except CoveyError as exc:
            return from_covey(exc).response()
        vectors = np.asarray(vectors, dtype=np.float32)
        data = [{"object": "embedding", "index": i,
                 "embedding": (base64.b64encode(v.astype("<f4").tobytes()).decode() if body.encoding_format == "base64"
                               else v.tolist())} for i, v in enumerate(vectors)]
        return JSONResponse({"object": "list", "data": data, "model": body.model,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    async def _load_embedder(self):
        async with self._embedder_lock:
            if callable(self._embedder) and not hasattr(self._embedder, "embed"):
                self._embedder = await asyncio.to_thread(self._embedder)
        return self._embedder

    async def health(self, request: Request) -> Response:
        served = self.backend.served_models()
        return JSONResponse({"status": "ok" if served else "degraded", "models": served,
                             "answers_in_flight": self.in_flight},
                            status_code=200 if served else 503)

    async def metrics_endpoint(self, request: Request) -> Response:
        try:
            self._authorize(request)
        except CoveyError as exc:
            return from_covey(exc).response()
        return Response(self.metrics.render(), media_type=self.metrics.content_type)
