"""The task router: picks one route (chat, code, math, writing, summarize, translate, knowledge) per task.

How it decides. `split_prompt` cuts the prompt into the instruction and any pasted material
(code fences, quoted blocks, long paragraphs); only the instruction is embedded (MiniLM, int8-
quantized by default: half the CPU per task at the same accuracy, see bench/bench_router.py), so a
long pasted text cannot drown "Summarize this:". Nine transparent cues (pasted material and its
length, code, arithmetic, digits, a language named, foreign words, non-Latin script; see
`router_features.FEATURE_NAMES`) are appended to the embedding, and a small head (multinomial
logistic regression by default, nearest centroid as the simpler alternative) turns the vector
into one probability per route. When the best probability is below the threshold, the router
answers with the fallback route (`chat`) and says so in `RouteDecision.fallback` / `.reason`.
The threshold is calibrated on the examples themselves (`[router] fallback_calibration`): by default
the confidence below which, out of fold, the fallback route was right more often than the head's
own pick, which is often 0 (never fall back: measured across sources, bench/bench_router_xsource.py,
falling back whenever the pick was more often wrong than right cost 4 points of macro-F1, because
the fallback was seldom the right route either); "coin-flip" keeps that older rule. Override with
`[router] min_confidence`.

Training data. Besides covey's own examples the router trains on prompts written by other people
(public datasets, data/routes/sources/, see PROVENANCE.md there), and with `[router] balance_sources`
(default) each source weighs the same within a route, so one source's style does not set the
boundary for prompts written elsewhere.

Conversation history is used only for short follow-ups: when the new message has at most
eight words and either starts like a follow-up ("and", "now", "what about", "make it", ...) or
the router is unsure, the previous user turn's probabilities are mixed in (weight 0.4), so
"and in French?" after a translation stays `translate` and "shorter please" after a summary
stays `summarize`. A self-contained new message is routed on its own words.

Adding routes and examples without code. Examples are JSONL lines, the same format
`covey eval route` reads::

    {"prompt": "How long do I roast a 2 kg chicken?", "route": "cooking"}

covey trains on, in order: the shipped examples (src/covey/data/routes/*.jsonl, unless
`[router] builtin_examples = false`), every DATA_DIR/routes/*.jsonl, the files listed in
`[router] example_files`, and inline examples in the config TOML::

    [router]
    min_confidence = 0.35            # optional; default is calibrated
    [router.examples]
    cooking = ["How long do I roast a 2 kg chicken?", "What can I cook with leftover rice?"]

A new route name creates a route; give it at least five examples. The fitted head is cached
under DATA_DIR/cache/router keyed by a hash of the examples, so later starts skip training.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from pydantic import Field, ValidationError

from covey.errors import BadRequest, ConfigError
from covey.orchestrator.router_features import FEATURE_NAMES, prompt_features, split_prompt
from covey.orchestrator.router_head import (
    Head,
    calibrate_fallback,
    calibrate_threshold,
    fit_head,
    load_head,
    out_of_fold,
    save_head,
)
from covey.settings import RouterSettings
from covey.types import Frozen, Message

logger = logging.getLogger(__name__)

BUILTIN_ROUTES = ("chat", "code", "math", "writing", "summarize", "translate", "knowledge")
FEATURE_SCALE = 0.5
"""Weight of the cue vector next to the unit-length instruction embedding."""
MIN_EXAMPLES_PER_ROUTE = 5
FOLLOW_UP_WORDS = 8
HISTORY_WEIGHT = 0.4
_CACHE_VERSION = "router-v2"  # bump when router_features or the heads change meaning
_FOLLOW_UP = re.compile(
    r"^\s*(and|also|now|then|what about|how about|same|again|make it|but|ok(ay)?|in (the )?\w+ (one|version)|"
    r"shorter|longer|more|less|another|one more|do it|try again|please)\b",
    re.I,
)


class RouteDecision(Frozen):
    """Where one task goes, how sure the router is, and what came second."""

    route: str
    confidence: float = Field(ge=0.0, le=1.0, description="probability of the route picked by the head")
    runner_up: str | None = None
    runner_up_confidence: float = Field(0.0, ge=0.0, le=1.0)
    fallback: bool = Field(False, description="the head was unsure and the fallback route was used")
    reason: str = ""


@runtime_checkable
class Router(Protocol):
    def classify(self, text: str, history: Sequence[Message | str] = ()) -> RouteDecision: ...


@runtime_checkable
class Embedder(Protocol):
    """What the router needs of an embedder (covey.rag's SentenceTransformerEmbedder fits)."""

    @property
    def name(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class RouteExample(Frozen):
    prompt: str = Field(min_length=1)
    route: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,39}$", description="lower-case route name")
    source: str = Field("", description="where the prompt comes from (a dataset name), for per-source scores")


def builtin_examples() -> tuple[RouteExample, ...]:
    """The example utterances shipped with covey: its own (one JSONL file per route, source "covey")
    and prompts gathered from public datasets (data/routes/sources/<source>.jsonl, see PROVENANCE.md)."""
    folder = resources.files("covey") / "data" / "routes"
    out: list[RouteExample] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".jsonl"):
            out.extend(_parse_jsonl(entry.read_text(encoding="utf-8"), f"covey/data/routes/{entry.name}",
                                    default_source="covey"))
    sources = folder / "sources"
    if sources.is_dir():
        for entry in sorted(sources.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".jsonl"):
                out.extend(_parse_jsonl(entry.read_text(encoding="utf-8"), f"covey/data/routes/sources/{entry.name}",
                                        default_source=entry.name.removesuffix(".jsonl")))
    return tuple(out)


def read_examples(path: Path) -> tuple[RouteExample, ...]:
    """Labelled prompts from a JSONL file of {"prompt": ..., "route": ...} lines (optional "source")."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read route examples {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"route examples {path} are not UTF-8 text") from exc
    return _parse_jsonl(text, str(path))


def _parse_jsonl(text: str, source: str, *, default_source: str = "") -> tuple[RouteExample, ...]:
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out.append(RouteExample(prompt=row["prompt"], route=row["route"],
                                    source=row.get("source") or default_source))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}:{n} is not valid JSON ({exc.msg})",
                              hint='write one {"prompt": "...", "route": "..."} object per line') from exc
        except (KeyError, TypeError) as exc:
            raise ConfigError(f'{source}:{n} needs string fields "prompt" and "route"',
                              hint='write one {"prompt": "...", "route": "..."} object per line') from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{source}:{n} field {where!r}: {first['msg']}",
                              hint="route names are lower-case letters, digits, '-' or '_'") from exc
    return tuple(out)


def collect_examples(settings: RouterSettings, data_dir: Path | None = None) -> tuple[RouteExample, ...]:
    """Every example the router trains on, in the order the module docstring lists."""
    out: list[RouteExample] = list(builtin_examples()) if settings.builtin_examples else []
    if data_dir is not None and (data_dir / "routes").is_dir():
        for path in sorted((data_dir / "routes").glob("*.jsonl")):
            out.extend(read_examples(path))
    for path in settings.example_files:
        out.extend(read_examples(Path(path).expanduser()))
    for route, prompts in settings.examples.items():
        for i, prompt in enumerate(prompts):
            try:
                out.append(RouteExample(prompt=prompt, route=route))
            except ValidationError as exc:
                raise ConfigError(f"[router.examples] {route}[{i}]: {exc.errors()[0]['msg']}",
                                  hint="route names are lower-case letters, digits, '-' or '_'") from exc
    return tuple(out)


def prompt_vectors(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Instruction embedding plus the scaled cue vector, one row per prompt."""
    parts = [split_prompt(t) for t in texts]
    emb = np.asarray(embedder.embed([p.instruction for p in parts]), dtype=np.float32)
    cues = np.stack([prompt_features(t, p) for t, p in zip(texts, parts)]) if texts else np.zeros(
        (0, len(FEATURE_NAMES)), np.float32)
    return np.hstack([emb, FEATURE_SCALE * cues]).astype(np.float32)


class EmbeddingRouter:
    """Routes by a head over the instruction's sentence embedding and a few prompt cues."""

    def __init__(self, embedder: Embedder, head: Head, *, threshold: float, fallback_route: str = "chat") -> None:
        if fallback_route not in head.classes:
            raise ConfigError(f"fallback route {fallback_route!r} is not one of the routes "
                              f"({', '.join(head.classes)})")
        self.embedder = embedder
        self.head = head
        self.threshold = threshold
        self.fallback_route = fallback_route

    @property
    def routes(self) -> tuple[str, ...]:
        return self.head.classes

    @classmethod
    def fit(cls, embedder: Embedder, examples: Iterable[RouteExample], *, head: str = "logistic",
            min_confidence: float | None = None, fallback_route: str = "chat",
            cache_dir: Path | None = None, balance_sources: bool = False,
            fallback_calibration: str = "fallback-better") -> EmbeddingRouter:
        """Train (or load from cache_dir) a head on the examples; calibrate the fallback threshold.

        With balance_sources, each example source weighs the same within a route (logistic head).
        fallback_calibration: "fallback-better" (fall back only below the confidence where the fallback
        route beat the pick out of fold) or "coin-flip" (where the pick was right less than half the time)."""
        if fallback_calibration not in ("fallback-better", "coin-flip"):
            raise ConfigError(f"unknown fallback calibration {fallback_calibration!r}",
                              hint='use "fallback-better" or "coin-flip"')
        rows = _dedupe(examples)
        _check_examples(rows, fallback_route)
        key = _cache_key(embedder.name, head, rows, balance_sources, fallback_calibration)
        path = cache_dir / f"{key[:20]}.npz" if cache_dir is not None else None
        fitted: Head | None = None
        if path is not None and path.exists():
            try:
                fitted, threshold, meta = load_head(path)
                if meta != key:
                    fitted = None
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("ignoring unreadable router cache %s: %s", path, exc)
                fitted = None
        if fitted is None:
            x = prompt_vectors(embedder, [r.prompt for r in rows])
            labels = [r.route for r in rows]
            groups = [r.source for r in rows] if balance_sources else None
            fitted = fit_head(head, x, labels, groups)
            oof = out_of_fold(head, x, labels, groups=groups)
            truth = [fitted.classes.index(label) for label in labels]
            if fallback_calibration == "coin-flip":
                threshold = calibrate_threshold(oof, truth)
            else:
                threshold = calibrate_fallback(oof, truth, fitted.classes.index(fallback_route))
            logger.info("router fitted: %d examples, %d routes, threshold %.2f", len(rows),
                        len(fitted.classes), threshold)
            if path is not None:
                save_head(path, fitted, threshold=threshold, meta=key)
        if min_confidence is not None:
            threshold = min_confidence
        return cls(embedder, fitted, threshold=threshold, fallback_route=fallback_route)

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """One row of route probabilities per prompt, columns in `routes` order."""
        return self.head.probabilities(prompt_vectors(self.embedder, texts))

    def classify(self, text: str, history: Sequence[Message | str] = ()) -> RouteDecision:
        if not text or not text.strip():
            raise BadRequest("the task is empty; there is nothing to route", hint="send a non-empty message")
        probs = self.probabilities([text])[0]
        note = ""
        previous = _previous_user_turn(history)
        if previous and self._is_follow_up(text, probs):
            prev_probs = self.probabilities([previous])[0]
            probs = (1 - HISTORY_WEIGHT) * probs + HISTORY_WEIGHT * prev_probs
            note = f"; short follow-up, mixed with the previous turn ({self.routes[int(prev_probs.argmax())]})"
        return self._decide(probs, note)

    def classify_many(self, texts: Sequence[str]) -> list[RouteDecision]:
        """Decisions for many independent prompts, embedded in one batch (no history)."""
        for text in texts:
            if not text or not text.strip():
                raise BadRequest("one of the tasks is empty; there is nothing to route")
        return [self._decide(p, "") for p in self.probabilities(texts)]

    def _is_follow_up(self, text: str, probs: np.ndarray) -> bool:
        if len(text.split()) > FOLLOW_UP_WORDS:
            return False
        return bool(_FOLLOW_UP.match(text)) or float(probs.max()) < self.threshold + 0.15

    def _decide(self, probs: np.ndarray, note: str) -> RouteDecision:
        order = np.argsort(-probs)
        best, second = int(order[0]), int(order[1]) if len(order) > 1 else None
        route, conf = self.routes[best], float(probs[best])
        runner = self.routes[second] if second is not None else None
        runner_conf = float(probs[second]) if second is not None else 0.0
        if conf >= self.threshold or route == self.fallback_route:
            reason = f"{route} {conf:.2f}, runner-up {runner} {runner_conf:.2f}{note}"
            return RouteDecision(route=route, confidence=_unit(conf), runner_up=runner,
                                 runner_up_confidence=_unit(runner_conf), reason=reason)
        fb = self.routes.index(self.fallback_route)
        reason = (f"unsure: best was {route} {conf:.2f} (runner-up {runner} {runner_conf:.2f}), below the "
                  f"threshold {self.threshold:.2f}; falling back to {self.fallback_route}{note}")
        return RouteDecision(route=self.fallback_route, confidence=_unit(float(probs[fb])), runner_up=route,
                             runner_up_confidence=_unit(conf), fallback=True, reason=reason)


def load_default_router(data_dir: Path, settings: RouterSettings | None = None, *,
                        embedder: Embedder | None = None) -> EmbeddingRouter:
    """The router covey uses: packaged MiniLM (unless an embedder is given), all configured examples."""
    settings = settings or RouterSettings()
    if embedder is None:
        from covey.orchestrator.router_embed import PackagedMiniLM

        embedder = PackagedMiniLM(int8=settings.int8, threads=settings.torch_threads)
    return EmbeddingRouter.fit(
        embedder, collect_examples(settings, data_dir), head=settings.head,
        min_confidence=settings.min_confidence, fallback_route=settings.fallback_route,
        cache_dir=Path(data_dir) / "cache" / "router", balance_sources=settings.balance_sources,
        fallback_calibration=settings.fallback_calibration,
    )


def _previous_user_turn(history: Sequence[Message | str]) -> str:
    for turn in reversed(history):
        if isinstance(turn, str):
            return turn
        if turn.role == "user":
            return turn.content
    return ""


def _dedupe(examples: Iterable[RouteExample]) -> list[RouteExample]:
    """Later examples win: a user file can move a shipped prompt to another route."""
    by_prompt: dict[str, RouteExample] = {}
    for ex in examples:
        by_prompt.pop(ex.prompt, None)
        by_prompt[ex.prompt] = ex
    return list(by_prompt.values())


def _check_examples(rows: list[RouteExample], fallback_route: str) -> None:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.route] = counts.get(r.route, 0) + 1
    if len(counts) < 2:
        raise ConfigError(f"the router needs examples of at least two routes, got {sorted(counts) or 'none'}")
    thin = sorted(r for r, n in counts.items() if n < MIN_EXAMPLES_PER_ROUTE)
    if thin:
        raise ConfigError(
            f"route(s) {', '.join(thin)} have fewer than {MIN_EXAMPLES_PER_ROUTE} examples",
            hint="add more example prompts for them in [router.examples] or DATA_DIR/routes/*.jsonl",
        )
    if fallback_route not in counts:
        raise ConfigError(f"fallback route {fallback_route!r} has no examples; routes are {', '.join(sorted(counts))}")


def _cache_key(embedder_name: str, head: str, rows: list[RouteExample], balance_sources: bool = False,
               fallback_calibration: str = "fallback-better") -> str:
    h = hashlib.sha256()
    h.update(json.dumps([_CACHE_VERSION, embedder_name, head, FEATURE_SCALE, list(FEATURE_NAMES),
                         fallback_calibration]).encode())
    if balance_sources:  # the weights depend on every example's source
        h.update(b"\0balance_sources")
    for r in sorted(rows, key=lambda r: (r.route, r.prompt)):
        h.update(b"\0" + r.route.encode() + b"\0" + r.prompt.encode())
        if balance_sources:
            h.update(b"\0" + r.source.encode())
    return h.hexdigest()


def _unit(v: float) -> float:
    return min(1.0, max(0.0, v))
