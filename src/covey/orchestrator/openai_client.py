"""Remote OpenAI-compatible endpoints (llama-server, llama-cpp-python's server, Ollama, vLLM) as covey nodes.

A team that outgrows its devices points covey at a bigger serving cluster by URL; the orchestrator
then places answers there like on any other node. The endpoint is reached with plain HTTP and
server-sent events (``POST /v1/chat/completions`` with ``stream: true``), so nothing of covey runs
on the remote side: no protocol version, no energy sensor, no queue figures. What covey cannot
know is said so: energy is an estimate from a configured joules-per-token figure (or zero, labelled
unknown), the queue depth is the number of requests this client has in flight there, and the
speed is what this client measured on earlier answers.

Model names. An endpoint offers every id its ``GET /v1/models`` lists, unless the endpoint spec
names models (``URL#model-a,model-b``); an entry may map a covey id to the server's own name
(``qwen2.5-1.5b-instruct-q4_k_m=qwen2.5:1.5b`` for Ollama). Requests for a model the endpoint does
not offer fail here with UnknownModel before anything is sent, because single-model servers
(llama-server, llama-cpp-python) answer ANY model name with the model they have loaded.

Continuing a failed-over answer (``GenerateRequest.continue_from``) appends the text as a final,
partial assistant message. What a server does with it differs: llama-server and Ollama prefill
the assistant turn and continue it; vLLM continues only when asked
(``extra_body={"continue_final_message": True, "add_generation_prompt": False}``);
llama-cpp-python's server closes that turn and starts a new one, so its answer may repeat the
text. Only the new text is yielded either way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from urllib.parse import urlsplit

import httpx

from covey import errors
from covey.estimates import estimate_tokens
from covey.types import (
    Energy, EnergyComponent, EnergyMethod, FinishReason, GenerateEvent, GenerateFinal, GenerateRequest, ModelId,
    ModelOffer, NodeId, NodeInfo, Timings, TokenPiece,
)

logger = logging.getLogger(__name__)

REMOTE_ENERGY_SOURCE = "remote endpoint: joules_per_token x tokens (unmeasured)"
UNKNOWN_ENERGY_SOURCE = "remote endpoint: energy unknown (no joules_per_token configured), 0 J recorded"
_MAX_SERVER_MESSAGE = 400
_FINISH = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH}


def parse_endpoint(spec: str) -> tuple[str, list[str]]:
    """``"http://gpu-box:8000/v1#model-a,model-b"`` -> ``("http://gpu-box:8000", ["model-a", "model-b"])``.

    The URL may end in ``/v1`` or not; the models part is optional (all served models are offered).
    Raises ConfigError for anything that is not an http(s) URL with a host.
    """
    url, _, models_part = spec.strip().partition("#")
    base = normalize_base_url(url)
    models = [m.strip() for m in models_part.split(",") if m.strip()]
    for m in models:
        covey_id, eq, remote = m.partition("=")
        if not covey_id.strip() or (eq and not remote.strip()):
            raise errors.ConfigError(
                f"endpoint '{spec}': model entry '{m}' should be ID or ID=SERVER_NAME",
                hint="write the endpoint as URL#model1,model2 (e.g. http://gpu-box:8000#qwen=qwen2.5:1.5b)",
            )
    return base, models


def normalize_base_url(url: str) -> str:
    """The endpoint's root URL without a trailing ``/`` or ``/v1``; ConfigError when it is not http(s)."""
    raw = url.strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.ConfigError(
            f"'{url}' is not an OpenAI-compatible endpoint URL",
            hint="give an http(s) URL with a host, e.g. http://gpu-box:8000 or http://127.0.0.1:11434/v1",
        )
    base = raw.rstrip("/")
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return base


def endpoint_node_id(base_url: str) -> NodeId:
    """A node id that stays the same for the same URL across restarts."""
    return NodeId("openai-" + hashlib.sha256(base_url.encode("utf-8")).hexdigest()[:12])


class OpenAINodeClient:
    """A NodeClient for an OpenAI-compatible HTTP endpoint. Errors are covey errors.

    ``models`` names what the endpoint offers (``ID`` or ``ID=SERVER_NAME``; None: whatever
    ``/v1/models`` lists). ``joules_per_token`` is the operator's figure for the remote hardware
    (0: unknown, recorded as 0 J and said so). ``extra_body`` is merged into every request, for
    parameters outside the OpenAI API that some servers take: ``top_k`` and ``repeat_penalty``
    (llama.cpp) or ``repetition_penalty`` (vLLM); covey's own ``top_k``/``repeat_penalty`` are not
    sent otherwise, since the OpenAI API itself refuses unknown parameters. A passed-in ``http``
    client is borrowed, not closed.
    """

    def __init__(self, base_url: str, *, models: Sequence[str] | None = None, name: str | None = None,
                 api_key: str | None = None, http: httpx.AsyncClient | None = None,
                 joules_per_token: float = 0.0, extra_body: Mapping[str, object] | None = None,
                 connect_timeout_s: float = 5.0, read_timeout_s: float = 120.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if joules_per_token < 0:
            raise errors.ConfigError(f"joules_per_token must be >= 0, got {joules_per_token}")
        self.address = normalize_base_url(base_url)
        self.node_id = endpoint_node_id(self.address)
        parts = urlsplit(self.address)
        self.name = name or (f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname))
        self.joules_per_token = joules_per_token
        self.extra_body = dict(extra_body or {})
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._clock = clock
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._own_http = http is None
        self._http = http or httpx.AsyncClient()
        self._configured: dict[str, str] | None = None
        if models:
            self._configured = {}
            for m in models:
                covey_id, _, remote = m.partition("=")
                self._configured[covey_id.strip()] = remote.strip() or covey_id.strip()
        self._served: tuple[str, ...] | None = None
        self._context: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._tps: dict[str, float] = {}

    # -- NodeClient ------------------------------------------------------------------------------------

    async def info(self) -> NodeInfo:
        """Ask ``GET /v1/models`` what the endpoint serves and describe it as a covey node."""
        await self._fetch_models()
        offers = tuple(
            ModelOffer(model_id=ModelId(m), loaded=True, queue_depth=self._in_flight.get(m, 0),
                       tokens_per_second=self._tps.get(m, 0.0), context_length=self._context.get(remote, 0))
            for m, remote in self._offered().items()
        )
        return NodeInfo(
            node_id=self.node_id, name=self.name, address=self.address, models=offers,
            tokens_per_second=max(self._tps.values(), default=0.0), joules_per_token=self.joules_per_token,
            source="openai",
        )

    async def generate(self, req: GenerateRequest) -> AsyncIterator[GenerateEvent]:
        """Stream one chat completion: TokenPiece per delta, then one GenerateFinal."""
        remote = await self._remote_name(req.model_id)
        body = self._body(req, remote)
        t0 = self._clock()
        deadline = t0 + req.deadline_ms / 1000.0 if req.deadline_ms else None
        read_timeout = min(self.read_timeout_s, req.deadline_ms / 1000.0) if req.deadline_ms else self.read_timeout_s
        timeout = httpx.Timeout(read_timeout, connect=self.connect_timeout_s)
        run = _Run(t0)
        self._in_flight[req.model_id] = self._in_flight.get(req.model_id, 0) + 1
        try:
            async with self._http.stream("POST", f"{self.address}/v1/chat/completions", json=body,
                                         headers={**self._headers, "Accept": "text/event-stream"},
                                         timeout=timeout) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise self._error(resp.status_code, _server_message(resp.content), req.model_id)
                if resp.headers.get("content-type", "").startswith("application/json"):
                    # A server (or proxy) that ignored stream=true: one whole completion.
                    await resp.aread()
                    for piece in run.take(_json(resp.content, self.address), self._clock, whole=True):
                        yield piece
                else:
                    async for data in sse_data(resp.aiter_lines()):
                        if data.strip() == "[DONE]":
                            run.done = True
                            break
                        chunk = _json(data.encode("utf-8"), self.address)
                        if isinstance(chunk.get("error"), (dict, str)):
                            raise self._stream_error(chunk["error"], req.model_id)
                        for piece in run.take(chunk, self._clock):
                            yield piece
                        if deadline is not None and self._clock() >= deadline and run.finish is None:
                            run.finish = FinishReason.DEADLINE
                            break
        except httpx.TimeoutException as exc:
            if deadline is None or self._clock() < deadline:
                raise errors.NodeUnavailable(f"endpoint {self.name} ({self.address}) timed out: {exc!r}") from exc
            run.finish = FinishReason.DEADLINE
        except httpx.HTTPError as exc:
            raise errors.NodeUnavailable(
                f"endpoint {self.name} ({self.address}) failed mid-request: {exc.__class__.__name__}: {exc}"
            ) from exc
        finally:
            self._in_flight[req.model_id] -= 1
        if run.finish is None and not run.done and run.chunks == 0:
            raise errors.GenerationFailed(
                f"endpoint {self.name} ({self.address}) closed the stream without sending anything "
                f"(llama-cpp-python's server does this when the prompt exceeds its context window)",
                hint="see the endpoint's log; shorten the prompt or use a model with a longer context",
            )
        if run.finish is None and not run.done:
            raise errors.NodeUnavailable(
                f"endpoint {self.name} ({self.address}) ended the stream before the answer finished"
            )
        yield self._final(req, run)

    async def healthy(self) -> bool:
        try:
            resp = await self._http.get(f"{self.address}/v1/models", headers=self._headers,
                                        timeout=self.connect_timeout_s)
        except httpx.HTTPError as exc:
            logger.debug("health check of %s failed: %s", self.address, exc)
            return False
        return resp.is_success

    async def close(self) -> None:
        if self._own_http:
            await self._http.aclose()

    # -- models ----------------------------------------------------------------------------------------

    async def _fetch_models(self) -> tuple[str, ...]:
        try:
            resp = await self._http.get(f"{self.address}/v1/models", headers=self._headers,
                                        timeout=self.connect_timeout_s)
        except httpx.HTTPError as exc:
            raise errors.NodeUnavailable(
                f"endpoint {self.name} ({self.address}) is unreachable: {exc.__class__.__name__}: {exc}"
            ) from exc
        if not resp.is_success:
            raise self._error(resp.status_code, _server_message(resp.content), None)
        data = _json(resp.content, self.address).get("data")
        if not isinstance(data, list):
            raise errors.NodeUnavailable(
                f"{self.address}/v1/models did not answer with an OpenAI model list",
                hint="check the URL points at an OpenAI-compatible server (llama-server, Ollama, vLLM)",
            )
        served = tuple(str(m["id"]) for m in data if isinstance(m, dict) and m.get("id"))
        for m in data:
            if isinstance(m, dict) and m.get("id"):
                ctx = m.get("max_model_len") or m.get("context_length") or (m.get("meta") or {}).get("n_ctx_train")
                if isinstance(ctx, int) and ctx > 0:
                    self._context[str(m["id"])] = ctx
        if self._configured is not None:
            missing = [c for c, r in self._configured.items() if r not in served]
            if missing:
                logger.debug("%s does not list %s (it lists %s); offering them as configured",
                             self.address, missing, list(served))
        self._served = served
        return served

    def _offered(self) -> dict[str, str]:
        """covey model id -> the name sent to the server."""
        if self._configured is not None:
            return dict(self._configured)
        return {m: m for m in self._served or ()}

    async def _remote_name(self, model_id: str) -> str:
        if self._configured is None and (self._served is None or model_id not in self._served):
            await self._fetch_models()  # first use, or the server may have pulled a model since
        offered = self._offered()
        if model_id not in offered:
            raise errors.UnknownModel(
                f"endpoint {self.name} ({self.address}) offers {sorted(offered) or 'no models'}, not '{model_id}'",
                hint="ask for one of those, or name the model in the endpoint spec (URL#model or URL#id=server-name)",
            )
        return offered[model_id]

    # -- requests and answers --------------------------------------------------------------------------

    def _body(self, req: GenerateRequest, remote: str) -> dict[str, object]:
        if req.prompt is not None:
            messages = [{"role": "user", "content": req.prompt}]
        elif req.messages:
            messages = [{"role": m.role, "content": m.content} for m in req.messages]
        else:
            raise errors.BadRequest("the request has neither messages nor a prompt")
        if req.continue_from:
            messages.append({"role": "assistant", "content": req.continue_from})
        s = req.sampling
        body: dict[str, object] = {
            "model": remote, "messages": messages, "stream": True, "stream_options": {"include_usage": True},
            "max_tokens": req.max_tokens, "temperature": s.temperature, "top_p": s.top_p,
            "logprobs": True, "top_logprobs": 0,
        }
        if s.stop:
            body["stop"] = list(s.stop)
        if s.seed is not None:
            body["seed"] = s.seed
        if req.constraint is not None and req.constraint.kind == "json_schema":
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "covey", "schema": json.loads(req.constraint.text)}}
        elif req.constraint is not None:  # llama.cpp's server (and others built on it) take a GBNF grammar
            body["grammar"] = req.constraint.text
        body.update(self.extra_body)
        return body

    def _final(self, req: GenerateRequest, run: _Run) -> GenerateFinal:
        t_end = self._clock()
        first = run.t_first if run.t_first is not None else t_end
        last = run.t_last if run.t_last is not None else t_end
        completion = run.usage_completion if run.usage_completion is not None else run.counted_tokens
        prompt = run.usage_prompt if run.usage_prompt is not None else _estimate_prompt_tokens(req)
        timings = Timings(prompt_ms=(first - run.t0) * 1000.0, generate_ms=(last - first) * 1000.0,
                          total_ms=(t_end - run.t0) * 1000.0)
        final = GenerateFinal(
            finish_reason=run.finish or FinishReason.STOP, prompt_tokens=prompt, completion_tokens=completion,
            timings=timings, energy=self._energy(completion), node_id=self.node_id, model_id=req.model_id,
        )
        if final.tokens_per_second > 0 and completion > 1:
            old = self._tps.get(req.model_id)
            new = final.tokens_per_second
            self._tps[req.model_id] = new if old is None else 0.7 * old + 0.3 * new
        return final

    def _energy(self, completion_tokens: int) -> Energy:
        if self.joules_per_token > 0:
            comp = EnergyComponent(name="remote", joules=self.joules_per_token * completion_tokens,
                                   method=EnergyMethod.ESTIMATED, source=REMOTE_ENERGY_SOURCE, uncertainty=1.0)
        else:
            comp = EnergyComponent(name="remote", joules=0.0, method=EnergyMethod.ESTIMATED,
                                   source=UNKNOWN_ENERGY_SOURCE, uncertainty=1.0)
        return Energy.of([comp])

    # -- errors ----------------------------------------------------------------------------------------

    def _error(self, status: int, message: str, model_id: str | None) -> errors.CoveyError:
        """The one place where HTTP failures become covey errors; the server's message is kept."""
        where = f"endpoint {self.name} ({self.address})"
        said = f"HTTP {status}: {message}" if message else f"HTTP {status}"
        low = message.lower()
        if status == 429:
            return errors.NodeBusy(f"{where} is busy ({said})")
        if status == 404:
            if "model" in low:
                return errors.UnknownModel(f"{where} does not serve '{model_id}' ({said})",
                                           hint="ask for a model the endpoint lists, or pull it there first")
            return errors.NodeUnavailable(f"{where} has no OpenAI API at that path ({said})",
                                          hint="check the endpoint URL (e.g. http://host:8000 or http://host:8000/v1)")
        if status in (401, 403):
            return errors.ConfigError(f"{where} refused the request ({said})",
                                      hint="set the endpoint's API key, or check it is still valid")
        if status in (400, 413, 422):
            if "context" in low or status == 413:
                return errors.PromptTooLong(f"{where} rejected the prompt as too long ({said})")
            return errors.BadRequest(f"{where} rejected the request ({said})")
        if status >= 500 and "validation error" in low:
            # llama-cpp-python's server answers request validation errors with a 500.
            return errors.BadRequest(f"{where} rejected the request ({said})")
        if status == 408 or status >= 500:
            return errors.NodeUnavailable(f"{where} failed ({said})")
        return errors.GenerationFailed(f"{where} answered unexpectedly ({said})")

    def _stream_error(self, err: dict | str, model_id: str) -> errors.CoveyError:
        """An error sent inside the event stream (vLLM, llama-server) after the 200 OK."""
        if isinstance(err, str):
            return errors.GenerationFailed(f"endpoint {self.name} ({self.address}) failed mid-answer: {err}")
        code = err.get("code")
        invalid = "invalid_request" in str(err.get("type", ""))
        status = code if isinstance(code, int) else (400 if invalid else 500)
        return self._error(status, _short(str(err.get("message") or err)), model_id)


class _Run:
    """What one streamed answer has produced so far."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.finish: FinishReason | None = None
        self.done = False
        self.usage_prompt: int | None = None
        self.usage_completion: int | None = None
        self.pieces = 0
        self.logprob_tokens = 0
        self.chunks = 0

    @property
    def counted_tokens(self) -> int:
        """Without usage figures: one logprob per token when the server sent them, else one per delta."""
        return self.logprob_tokens or self.pieces

    def take(self, chunk: dict, clock: Callable[[], float], *, whole: bool = False) -> list[TokenPiece]:
        self.chunks += 1
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            if isinstance(usage.get("prompt_tokens"), int):
                self.usage_prompt = usage["prompt_tokens"]
            if isinstance(usage.get("completion_tokens"), int):
                self.usage_completion = usage["completion_tokens"]
        out: list[TokenPiece] = []
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("message" if whole else "delta") or {}
            text = delta.get("content") or ""
            lp = choice.get("logprobs") or {}
            logprobs = tuple(float(t["logprob"]) for t in (lp.get("content") or [])
                             if isinstance(t, dict) and isinstance(t.get("logprob"), (int, float)))
            if text or logprobs:
                now = clock()
                self.t_first = now if self.t_first is None else self.t_first
                self.t_last = now
                self.pieces += 1
                self.logprob_tokens += len(logprobs)
                out.append(TokenPiece(text=text, logprobs=logprobs))
            reason = choice.get("finish_reason")
            if reason:
                self.finish = _FINISH.get(reason, FinishReason.STOP)
        if whole and self.finish is None:
            self.finish = FinishReason.STOP
        return out


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The data payloads of a server-sent event stream; comments (pings), event names and ids are skipped."""
    buf: list[str] = []
    async for line in lines:
        if not line:
            if buf:
                yield "\n".join(buf)
                buf = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            buf.append(value[1:] if value.startswith(" ") else value)
    if buf:
        yield "\n".join(buf)


def _json(raw: bytes, address: str) -> dict:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise errors.GenerationFailed(f"endpoint {address} sent something that is not JSON: {_short(raw)!r}") from exc
    if not isinstance(value, dict):
        raise errors.GenerationFailed(f"endpoint {address} sent JSON that is not an object: {_short(raw)!r}")
    return value


def _server_message(raw: bytes) -> str:
    """The human part of an error body: OpenAI/vLLM/Ollama ``error.message``, FastAPI ``detail``, or the text."""
    try:
        body = json.loads(raw)
    except ValueError:
        return _short(raw)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return _short(str(err["message"]))
        for key in ("error", "message", "detail"):
            if isinstance(body.get(key), str) and body[key]:
                return _short(body[key])
            if key == "detail" and body.get(key):
                return _short(json.dumps(body[key]))
    return _short(raw)


def _short(text: bytes | str) -> str:
    s = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text
    s = s.strip()
    return s if len(s) <= _MAX_SERVER_MESSAGE else s[:_MAX_SERVER_MESSAGE] + "..."


def _estimate_prompt_tokens(req: GenerateRequest) -> int:
    """For servers whose stream carries no usage figures."""
    return estimate_tokens((req.prompt or "") + "".join(m.content for m in req.messages) + req.continue_from)
