"""The llama.cpp backend: one loaded GGUF model driven token by token, with per-token log-probabilities.

Log-probabilities come from the last logits row (``llama_get_logits_ith(ctx, -1)``) with a
log-sum-exp in numpy. Asking llama-cpp-python for ``logprobs`` would need ``logits_all=True``,
which cut generation here from ~145 to ~20 tokens/s; the last row gives the same numbers at full speed.

Text from users and documents never becomes control tokens: the chat template is rendered with a
placeholder per message, only the template's own text is tokenised with special tokens parsed, and each
message's content is tokenised as plain text. (Tokenising everything with ``special=True`` let a message
holding ``<|im_end|><|im_start|>system`` open a system turn, and cost time quadratic in the number of
markers: 50 s for 0.35 MB.) The prompt is evaluated one batch at a time so that cancellation and
deadlines stop a long prompt between batches, not only between generated tokens.
"""

from __future__ import annotations

import codecs
import functools
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covey.errors import BadRequest, ModelFileError, PromptTooLong, RequestTooLarge
from covey.models.catalog import ModelSpec
from covey.types import FinishReason, GenerateRequest, Message, TokenPiece

logger = logging.getLogger(__name__)

_PLAIN_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}
PLAIN_STOPS = tuple(f"\n{role}:" for role in _PLAIN_ROLES.values())
"""Where an answer in the plain format ends: a base model (no chat template, e.g. the bundled Gemma 3
270M) that starts a new turn of any role has finished its answer and is writing the transcript on
("\nSystem: You are a translator..."); every request to such a model stops there."""

# A message's place in the rendered template: private-use code points (no template touches them) with a space
# on each side, so a template that trims the content (Gemma's instruct templates do) is seen doing so.
_PLACEHOLDER = " \ue000{}\ue001 "
_PLACEHOLDER_RE = re.compile("( ?)\ue000(\\d+)\ue001( ?)")

Segment = tuple[str, bool]
"""A piece of prompt text and whether its special-token markers are parsed (only the template's own text)."""


@dataclass(frozen=True)
class RunStats:
    finish: FinishReason
    prompt_tokens: int
    completion_tokens: int
    prompt_ms: float
    generate_ms: float


def open_llama(path: Path, *, n_ctx: int, n_threads: int, use_extra_bufts: bool | None = None, **kwargs):
    """A llama_cpp.Llama with llama.cpp's weight-buffer option set (None keeps llama.cpp's default).

    Llama() has no keyword for `use_extra_bufts`; it builds `model_params` and loads the model within
    __init__, so a subclass sets the field as `model_params` is assigned, before the load.
    """
    import llama_cpp

    from covey.device_node.llama_log import route_llama_logs

    route_llama_logs()
    cls = llama_cpp.Llama if use_extra_bufts is None else _llama_class(use_extra_bufts)
    llm = cls(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads,
              verbose=False, **kwargs)
    applied = getattr(llm.__dict__.get("model_params"), "use_extra_bufts", None)
    if use_extra_bufts is not None and applied is not None and applied != use_extra_bufts:
        logger.warning("llama.cpp loaded %s with use_extra_bufts=%s although %s was asked", path.name, applied,
                       use_extra_bufts)
    return llm


_LLAMA_CLASSES: dict[bool, type] = {}


def _llama_class(use_extra_bufts: bool) -> type:
    if use_extra_bufts not in _LLAMA_CLASSES:
        import llama_cpp

        class _Llama(llama_cpp.Llama):
            @property
            def model_params(self):
                return self.__dict__.get("model_params")

            @model_params.setter
            def model_params(self, params) -> None:
                if any(name == "use_extra_bufts" for name, *_ in type(params)._fields_):
                    params.use_extra_bufts = use_extra_bufts
                elif not use_extra_bufts:
                    logger.warning("this llama-cpp-python has no use_extra_bufts option; extra weight "
                                   "buffers stay at llama.cpp's default")
                self.__dict__["model_params"] = params

        _Llama.__name__ = _Llama.__qualname__ = f"Llama_extra_bufts_{'on' if use_extra_bufts else 'off'}"
        _LLAMA_CLASSES[use_extra_bufts] = _Llama
    return _LLAMA_CLASSES[use_extra_bufts]


def default_threads() -> int:
    import psutil

    return max(1, psutil.cpu_count(logical=False) or psutil.cpu_count() or 1)


class LlamaBackend:
    """One GGUF model in llama.cpp. Not thread-safe: the node runs one generation at a time per model."""

    def __init__(self, spec: ModelSpec, path: Path, *, n_ctx: int = 2048, n_threads: int | None = None,
                 use_extra_bufts: bool | None = None) -> None:
        import llama_cpp

        self.spec = spec
        self.path = path
        self.n_threads = n_threads or default_threads()
        self.use_extra_bufts = use_extra_bufts
        try:
            self.llm = open_llama(path, n_ctx=n_ctx, n_threads=self.n_threads, use_extra_bufts=use_extra_bufts,
                                  logits_all=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelFileError(f"llama.cpp could not load {path} (a truncated or damaged file, or an "
                                 f"architecture this llama.cpp does not know): {exc}") from exc
        self._lib = llama_cpp
        self.n_ctx = self.llm.n_ctx()
        self.n_vocab = self.llm.n_vocab()
        self._vocab = self.llm._model.vocab
        self._bos_text, self._eos_text = self._special_texts()
        self._add_bos = bool(self._bos_text) and bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))
        self._formatter = self._chat_formatter() if spec.chat or spec.source == "path" else None
        self._parsed: set[str] = set()  # grammars llama.cpp has parsed for this model

    # -- prompts ---------------------------------------------------------------------------------------

    def _special_texts(self) -> tuple[str, str]:
        model = self.llm._model
        bos, eos = self.llm.token_bos(), self.llm.token_eos()
        return (model.token_get_text(bos) if bos != -1 else "", model.token_get_text(eos) if eos != -1 else "")

    def _chat_formatter(self):
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        return Jinja2ChatFormatter(template=template, eos_token=self._eos_text, bos_token=self._bos_text)

    def render(self, messages: tuple[Message, ...], continue_from: str = "") -> tuple[list[Segment], tuple[str, ...]]:
        """Messages as the model's prompt, in segments (see `Segment`), plus stop strings the format needs."""
        if self._formatter is not None:
            probe = [{"role": m.role, "content": _PLACEHOLDER.format(i)} for i, m in enumerate(messages)]
            rendered = self._formatter(messages=probe).prompt
            segments: list[Segment] = []
            pos = 0
            for match in _PLACEHOLDER_RE.finditer(rendered):
                before, index, after = match.group(1), int(match.group(2)), match.group(3)
                untrimmed = bool(before and after)
                start = match.start() if untrimmed else match.start(2) - 1
                segments.append((rendered[pos:start], True))
                content = messages[index].content
                segments.append((content if untrimmed else content.strip(), False))
                pos = match.end() if untrimmed else match.end(2) + 1
            segments.append((rendered[pos:], True))
            segments.append((continue_from, False))
            return [seg for seg in segments if seg[0]], ()
        lines = [f"{_PLAIN_ROLES[m.role]}: {m.content}" for m in messages]
        text = "\n".join(lines) + "\nAssistant:" + (" " + continue_from if continue_from else "")
        return [(text, False)], PLAIN_STOPS

    def tokenize(self, segments: list[Segment]) -> list[int]:
        """Token ids for the segments, with the model's BOS first unless the template wrote it.

        The template's markers become their special tokens; all text between two markers (the template's
        own words and the message content beside them) is tokenised as one run of plain text. That is how
        llama.cpp tokenises a whole prompt with special tokens parsed, so an ordinary conversation gets the
        same ids as before, while markers written inside a message stay the plain text they are.
        """
        tokens: list[int] = []
        run: list[str] = []

        def flush() -> None:
            if run:
                tokens.extend(self.llm.tokenize("".join(run).encode("utf-8"), add_bos=False, special=False))
                run.clear()

        for text, special in segments:
            if not special:
                run.append(text)
                continue
            for part in self._split_markers(text):
                if isinstance(part, int):
                    flush()
                    tokens.append(part)
                else:
                    run.append(part)
        flush()
        bos = self.llm.token_bos()
        if self._add_bos and not (tokens and tokens[0] == bos and segments and segments[0][1]):
            tokens.insert(0, bos)
        return tokens

    def _split_markers(self, text: str) -> list[str | int]:
        """The template's text as plain-text pieces and the ids of the special tokens written in it."""
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        marker_ids = [t for t in ids if self._is_marker(t)]
        if not marker_ids:
            return [text]
        by_text = {self.llm._model.token_get_text(t): t for t in marker_ids}
        pattern = "(" + "|".join(re.escape(m) for m in sorted(by_text, key=len, reverse=True)) + ")"
        parts: list[str | int] = [by_text[piece] if i % 2 else piece
                                  for i, piece in enumerate(re.split(pattern, text)) if piece]
        if [p for p in parts if isinstance(p, int)] != marker_ids:
            return list(ids)  # a marker whose stored text is not what the template wrote: keep llama.cpp's ids
        return parts

    def _is_marker(self, token: int) -> bool:
        attr = self.llm._model.token_get_attr(token)
        return bool(attr & (self._lib.LLAMA_TOKEN_ATTR_CONTROL | self._lib.LLAMA_TOKEN_ATTR_USER_DEFINED))

    def prompt_tokens(self, req: GenerateRequest) -> tuple[list[int], tuple[str, ...]]:
        extra_stops: tuple[str, ...] = ()
        if req.prompt is not None:
            segments, extra_stops = [(req.prompt + req.continue_from, False)], ()
        else:
            segments, extra_stops = self.render(req.messages, req.continue_from)
        return self.tokenize(segments), extra_stops

    # -- generation ------------------------------------------------------------------------------------

    def _last_logprob(self, token: int) -> float:
        ptr = self._lib.llama_get_logits_ith(self.llm.ctx, -1)
        row = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))
        peak = float(row.max())
        return float(row[token] - peak - np.log(np.exp(row - peak).sum()))

    def run(self, req: GenerateRequest, on_piece: Callable[[TokenPiece], None], *,
            cancelled: Callable[[], bool] = lambda: False, deadline: float | None = None,
            clock: Callable[[], float] = time.monotonic,
            between_tokens: Callable[[int], None] | None = None) -> RunStats:
        """Generate for one request, calling on_piece for each decodable piece of text."""
        tokens, extra_stops = self.prompt_tokens(req)
        n_prompt = len(tokens)
        if n_prompt >= self.n_ctx - 1:
            raise PromptTooLong(
                f"the prompt is {n_prompt} tokens but model '{self.spec.id}' here has a {self.n_ctx}-token context"
            )
        budget = min(req.max_tokens, self.n_ctx - n_prompt - 1)
        stops = tuple(s for s in req.sampling.stop + extra_stops if s)
        hold = max((len(s) for s in stops), default=1) - 1
        s = req.sampling
        if s.seed is not None:
            self.llm.set_seed(s.seed)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending_text = ""
        pending_lp: list[float] = []
        pending_ids: list[int] = []
        finish = FinishReason.LENGTH
        completion = 0
        t0 = clock()
        t_first: float | None = None

        def flush(text: str) -> None:
            nonlocal pending_lp, pending_ids
            if text or pending_lp:
                on_piece(TokenPiece(text=text, logprobs=tuple(pending_lp), token_ids=tuple(pending_ids)))
            pending_lp, pending_ids = [], []

        def interrupted() -> FinishReason | None:
            if cancelled():
                return FinishReason.CANCELLED
            if deadline is not None and clock() >= deadline:
                return FinishReason.DEADLINE
            return None

        # Evaluate every prompt from scratch. llama-cpp-python would otherwise reuse the KV cache of the
        # previous request's matching prefix, and single-token and batched evaluation differ enough in
        # float rounding to flip near-tie tokens: one client's answer would depend on another's request,
        # and temperature-0 output would not be reproducible.
        self.llm.reset()
        grammar = self.grammar_for(req)  # before the prompt's cost: a grammar llama.cpp cannot parse fails now
        stopped = self._evaluate_prompt(tokens, interrupted)
        if stopped is not None:
            t_end = clock()
            return RunStats(finish=stopped, prompt_tokens=n_prompt, completion_tokens=0,
                            prompt_ms=(t_end - t0) * 1000.0, generate_ms=0.0)
        # The whole prompt is in the KV cache with its logits live, so generate() samples at once.
        gen = self.llm.generate(tokens, top_k=s.top_k, top_p=s.top_p, temp=s.temperature,
                                repeat_penalty=s.repeat_penalty, reset=True, grammar=grammar)
        try:
            for token in gen:
                if t_first is None:
                    t_first = clock()
                if self._lib.llama_vocab_is_eog(self._vocab, token):
                    finish = FinishReason.STOP
                    break
                completion += 1
                pending_lp.append(self._last_logprob(token))
                pending_ids.append(int(token))
                pending_text += decoder.decode(self.llm.detokenize([token], special=False))
                cut = _find_stop(pending_text, stops)
                if cut is not None:
                    flush(pending_text[:cut])
                    pending_text = ""
                    finish = FinishReason.STOP
                    break
                if len(pending_text) > hold:
                    emit_upto = len(pending_text) - hold
                    flush(pending_text[:emit_upto])
                    pending_text = pending_text[emit_upto:]
                if completion >= budget:
                    break
                if (reason := interrupted()) is not None:
                    finish = reason
                    break
                if between_tokens is not None:
                    between_tokens(completion)
        finally:
            gen.close()
        flush(pending_text + decoder.decode(b"", final=True))
        t_end = clock()
        first = t_first if t_first is not None else t_end
        return RunStats(finish=finish, prompt_tokens=n_prompt, completion_tokens=completion,
                        prompt_ms=(first - t0) * 1000.0, generate_ms=(t_end - first) * 1000.0)

    def grammar_for(self, req: GenerateRequest):
        """The request's constraint as a llama_cpp.LlamaGrammar (None without one); BadRequest if it cannot compile.

        llama.cpp parses the grammar only when the sampler is built, and a grammar it cannot parse gives a
        NULL sampler that crashes the process when added to the chain: each grammar is parsed once here
        first, against this model's vocabulary, and a NULL is a BadRequest."""
        grammar = compile_constraint(req)
        if grammar is None or grammar._grammar in self._parsed:
            return grammar
        sampler = self._lib.llama_sampler_init_grammar(self._vocab, grammar._grammar.encode("utf-8"), b"root")
        if not sampler:
            what = "JSON schema" if req.constraint is not None and req.constraint.kind == "json_schema" else "GBNF grammar"
            raise BadRequest(f"the request's {what} could not be compiled by llama.cpp (see the node's log for the "
                             "parse error; the start rule must be named 'root')",
                             hint="check it with llama.cpp's grammar tools, or send the request without it")
        self._lib.llama_sampler_free(sampler)
        self._parsed.add(grammar._grammar)
        return grammar

    def _evaluate_prompt(self, tokens: list[int], interrupted: Callable[[], FinishReason | None]) -> FinishReason | None:
        """Feed the prompt to llama.cpp in the batches its own eval() would make, asking between batches
        whether to stop; returns why it stopped, or None once the whole prompt is in."""
        step = max(1, int(self.llm.n_batch))
        for start in range(0, len(tokens), step):
            reason = interrupted()
            if reason is not None:
                return reason
            self.llm.eval(tokens[start:start + step])
        return None

    def set_threads(self, n: int) -> None:
        """Change llama.cpp's thread count between tokens (used by the power-cap loop)."""
        n = max(1, n)
        self._lib.llama_set_n_threads(self.llm.ctx, n, n)
        self.n_threads = n

    def close(self) -> None:
        self.llm.close()


def compile_constraint(req: GenerateRequest):
    """A GenerateRequest's GBNF grammar or JSON schema as a llama_cpp.LlamaGrammar (cached by text)."""
    if req.constraint is None:
        return None
    return _compiled(req.constraint.kind, req.constraint.text)


@functools.lru_cache(maxsize=32)
def _compiled(kind: str, text: str):
    import json

    from llama_cpp import LlamaGrammar
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    from covey.device_node.llama_log import route_llama_logs

    route_llama_logs()
    try:
        if kind == "json_schema":
            json.loads(text)
            return LlamaGrammar.from_string(_no_control_chars(json_schema_to_gbnf(text)), verbose=False)
        return LlamaGrammar.from_string(text, verbose=False)
    except (ValueError, RuntimeError, TypeError, KeyError) as exc:
        what = "JSON schema" if kind == "json_schema" else "GBNF grammar"
        raise BadRequest(f"the request's {what} could not be compiled: {str(exc)[:200]}",
                         hint="check it with llama.cpp's grammar tools, or send the request without it") from exc


_LOOSE_CHAR = 'char ::= [^"\\\\]'
_JSON_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F]'


def _no_control_chars(gbnf: str) -> str:
    """llama-cpp-python's schema converter lets a JSON string hold raw newlines and control characters,
    which JSON forbids (a small model then runs on inside the string): use JSON's own character class."""
    return gbnf.replace(_LOOSE_CHAR, _JSON_CHAR)


def _find_stop(text: str, stops: tuple[str, ...]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i != -1]
    return min(hits) if hits else None


MAX_STOPS, MAX_STOP_CHARS = 16, 256  # stop strings are searched for after every token


def check_message_count(count: int, max_messages: int, node: str = "this node") -> None:
    if count > max_messages:
        raise RequestTooLarge(f"the request holds {count:,} messages; {node} accepts at most {max_messages:,} "
                              f"(node.max_messages)")


def check_request_limits(req: GenerateRequest, *, max_messages: int, max_prompt_chars: int,
                         node: str = "this node") -> None:
    """Refuse a request larger than the node bounds, before any rendering or tokenising: counting is cheap,
    the tokenizer and the chat template are not (the wedge inputs were 200,000 messages or 1 MB of markers)."""
    check_message_count(len(req.messages), max_messages, node)
    chars = len(req.prompt or "") + len(req.continue_from) + sum(len(m.content) for m in req.messages)
    if chars > max_prompt_chars:
        raise PromptTooLong(
            f"the request holds {chars:,} characters of text; {node} tokenises at most {max_prompt_chars:,} "
            f"(node.max_prompt_chars)",
            hint="shorten the prompt (or the history and passages sent with it), or raise max_prompt_chars in "
            "the node's config.toml [node] table")
    stops = req.sampling.stop
    if len(stops) > MAX_STOPS or any(len(stop) > MAX_STOP_CHARS for stop in stops):
        longest = max((len(stop) for stop in stops), default=0)
        raise RequestTooLarge(f"the request has {len(stops)} stop strings, the longest {longest:,} characters; "
                              f"a node takes at most {MAX_STOPS} of at most {MAX_STOP_CHARS} characters each",
                              hint="send fewer or shorter stop strings")


def check_request_text(req: GenerateRequest) -> None:
    """Reject empty prompts and text that cannot be UTF-8 (e.g. surrogates from a bad terminal)."""
    texts = [req.prompt] if req.prompt is not None else [m.content for m in req.messages]
    if not texts or not any(t.strip() for t in texts if t is not None):
        raise BadRequest("the prompt is empty", hint="send some text to answer")
    for t in texts:
        try:
            (t or "").encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadRequest(f"the prompt is not valid UTF-8 (bad character at position {exc.start})",
                             hint="re-encode the text as UTF-8") from exc
