"""The node's core: loaded models, a bounded queue per model, and streaming generation.

Transport-free (covey.types in, covey.types out): the gRPC servicer wraps it for the network and
the embedded in-process node uses it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from pathlib import Path

from covey import __version__
from covey.device_node.backend import LlamaBackend, RunStats, check_request_limits, check_request_text
from covey.device_node.canary import CanaryVerdict
from covey.device_node.threads import ThreadTuner
from covey.device_node.host import HostFacts, IdentityClaim, NodeIdentity, read_host
from covey.energy.meter import EnergyMeter
from covey.estimates import WATTS_PER_CORE
from covey.errors import (
    CoveyError, ModelFileError, ModelTooLarge, NativeCrash, NodeBusy, NodeUnavailable, UnknownModel,
)
from covey.models.catalog import Catalog, ModelSpec
from covey.settings import NodeSettings
from covey.types import (
    MB, PROTOCOL_VERSION, Energy, FinishReason, GenerateEvent, GenerateFinal, GenerateRequest, Message, ModelId, ModelOffer,
    NodeId, NodeInfo, Sampling, Timings, TokenPiece,
)

logger = logging.getLogger(__name__)



class NodeEnergyHooks(Protocol):
    """What the node uses of covey.energy.node.NodeEnergy (a protocol so tests can pass a fake)."""

    @property
    def meter(self) -> EnergyMeter: ...

    def observe(self, model_id: str, energy: Energy, completion_tokens: int) -> None: ...

    def joules_per_token(self, model_id: str | None = None) -> float: ...

    def battery(self) -> tuple[Any, Any]: ...

    def power_cap(self, set_threads: Callable[[int], None], max_threads: int) -> Any: ...


class ModelCanary(Protocol):
    """What the node uses of covey.device_node.canary.LlamaCanary: llama.cpp options proven safe here."""

    def check(self, model_path: Path, n_threads: int = 1) -> CanaryVerdict: ...


_DONE = object()
BENCH_PROMPT = (Message(role="user", content="Write three sentences about the sea."),)
BENCH_WARMUP_TOKENS, BENCH_TOKENS, BENCH_RUNS = 8, 32, 3
SPEED_MIN_TOKENS, SPEED_SMOOTHING = 8, 0.2  # requests long enough to time, and their weight in the figure


@dataclass
class ModelSlot:
    spec: ModelSpec
    path: Path
    backend: LlamaBackend
    limit: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "covey-gen"))
    depth: int = 0
    tokens_per_second: float = 0.0
    buffers: CanaryVerdict | None = None
    max_threads: int = 1  # the thread count loaded with: the power cap moves below it and back
    tuner: ThreadTuner | None = None  # keeps the fastest thread count for the machine's load (adaptive_threads)
    speed_observed: bool = False
    bench_key: str = ""  # where the self-benchmark figure is cached (per file, threads, buffers)
    running: set[threading.Event] = field(default_factory=set)  # cancel flags of the generations in flight


BackendFactory = Callable[..., LlamaBackend]


class NodeService:
    """Serves generation for the models this node loaded. One generation at a time per model."""

    def __init__(self, settings: NodeSettings, *, identity: NodeIdentity, catalog: Catalog,
                 data_dir: Path, meter: EnergyMeter | None = None, energy: NodeEnergyHooks | None = None,
                 read_host: Callable[[], HostFacts] = read_host,
                 clock: Callable[[], float] = time.monotonic,
                 backend_factory: BackendFactory, canary: ModelCanary | None = None,
                 identity_claim: IdentityClaim | None = None) -> None:
        self.settings = settings
        self.identity = identity
        self.catalog = catalog
        self.data_dir = data_dir
        self.energy = energy
        # Chosen by whoever builds the node (runner.build_node, or a test): the energy hooks' own meter
        # unless one is given.
        if meter is None:
            if energy is None:
                raise TypeError("NodeService needs a meter or energy hooks "
                                "(covey.device_node.runner.build_node passes them)")
            meter = energy.meter
        self.meter = meter
        self._read_host = read_host
        self._clock = clock
        self._backend_factory = backend_factory
        self._canary = canary
        self._identity_claim = identity_claim
        self.slots: dict[str, ModelSlot] = {}
        # With `load = "first_use"`: models checked at start-up (known, under the RAM cap) and loaded by
        # the first request for them, one load at a time.
        self.pending: dict[str, ModelSpec] = {}
        self._loading = asyncio.Lock()
        self._preloads: set[asyncio.Task] = set()
        self.refused: list[str] = []
        self.address = ""
        self.closing = False

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load every configured model and measure its speed.

        A model over the RAM cap, unknown, or whose file is missing or damaged is refused (listed in
        `refused`, each entry saying what to do) while the others are served; with none left, this raises.
        """
        try:
            await self._start()
        except BaseException:
            await self.close()  # free what was loaded, and the identity
            raise

    async def _start(self) -> None:
        cap = self.settings.max_model_ram_mb
        used = 0
        refused: list[CoveyError] = []
        lazy = self.settings.load == "first_use"
        for model_id in self.settings.models:
            if lazy:
                try:
                    spec = self._admit(model_id, cap, used)
                except (ModelTooLarge, UnknownModel) as exc:
                    logger.warning("not serving: %s", exc)
                    refused.append(exc)
                    continue
                self.pending[spec.id] = spec
                used += spec.ram_mb
                continue
            try:
                slot = await self._load(model_id, cap, used)
            except (ModelTooLarge, ModelFileError, UnknownModel, NativeCrash) as exc:
                logger.warning("not serving: %s", exc)
                refused.append(exc)
                continue
            self.slots[slot.spec.id] = slot
            used += slot.spec.ram_mb
            self._plan_threads(slot)  # benchmark at the speed the cap allows
            if self.settings.self_benchmark:
                loop = asyncio.get_running_loop()
                slot.tokens_per_second = await loop.run_in_executor(slot.executor, self._benchmark, slot)
            logger.info("loaded %s (%d MB, %.0f tok/s)", slot.spec.id, slot.spec.ram_mb, slot.tokens_per_second)
        self.refused = [str(e) for e in refused]
        if refused and not self.slots and not self.pending:
            kinds = {type(e) for e in refused}
            if len(kinds) == 1:
                kind = kinds.pop()
                raise kind("; ".join(e.message for e in refused), hint=refused[0].hint)
            raise CoveyError("no model could be served: " + " | ".join(str(e) for e in refused))

    def _tuner(self, slot: ModelSlot) -> ThreadTuner | None:
        """The slot's thread tuner (made on first use), or None when adaptive threads are off or pointless."""
        goal = self.settings.adaptive_threads
        if goal == "off" or slot.max_threads < 2:
            return None
        if slot.tuner is None:
            slot.tuner = ThreadTuner(slot.max_threads, slot.backend.set_threads, goal=goal,
                                     threads=getattr(slot.backend, "n_threads", None) or slot.max_threads)
        return slot.tuner

    def _plan_threads(self, slot: ModelSlot) -> None:
        planner = getattr(self.energy, "plan_threads", None)
        plan = planner(slot.max_threads) if planner is not None else None
        if plan is not None:
            slot.backend.set_threads(plan[0])

    def _admit(self, model_id: str, cap: int | None, used: int) -> ModelSpec:
        spec = self.catalog.get(model_id)  # cheap: refuse over the cap before assembling or loading a file
        if cap is not None and used + spec.ram_mb > cap:
            taken = f" and {used} MB of it is taken by the models loaded before" if used else ""
            raise ModelTooLarge(f"{spec.id} needs {spec.ram_mb} MB, this node allows {cap} MB for models{taken}")
        return spec

    async def _load(self, model_id: str, cap: int | None, used: int) -> ModelSlot:
        self._admit(model_id, cap, used)
        spec, path = await asyncio.to_thread(self.catalog.resolve, model_id)
        options: dict[str, Any] = {}
        verdict = None
        if self._canary is not None and path.is_file():
            from covey.device_node.backend import default_threads

            verdict = await asyncio.to_thread(self._canary.check, path, self.settings.n_threads or default_threads())
            options["use_extra_bufts"] = verdict.use_extra_bufts
            logger.info("%s: %s", spec.id, verdict.summary())
        backend = await asyncio.to_thread(
            self._backend_factory, spec, path, n_ctx=self.settings.n_ctx, n_threads=self.settings.n_threads, **options
        )
        return ModelSlot(spec=spec, path=path, backend=backend, limit=self.settings.queue_limit, buffers=verdict,
                         max_threads=backend.n_threads)

    def preload(self, model_id: str) -> None:
        """Start loading a first-use model now, in the background (the embedded node's first rung loads
        while the router and the graph do). A failure is logged and kept in `refused`, as a first request's
        load would; nothing waits for it, and `close` lets a load under way finish before freeing models."""
        if model_id not in self.pending or self.closing:
            return

        async def load() -> None:
            try:
                await self._ready_slot(model_id)
            except CoveyError:
                pass  # _ready_slot logged it and listed it in `refused`; a request for it now says why

        task = asyncio.get_running_loop().create_task(load(), name=f"preload {model_id}")
        self._preloads.add(task)
        task.add_done_callback(self._preloads.discard)

    def begin_shutdown(self) -> None:
        """Refuse new work and stop what runs (between two tokens or two prompt batches). Safe to call twice."""
        self.closing = True
        for slot in self.slots.values():
            for cancel in list(slot.running):
                cancel.set()

    async def close(self, timeout: float | None = None) -> None:
        """Stop generations and free the models, waiting at most `timeout` (default: shutdown_grace_s).

        A model whose worker thread is still inside llama.cpp when the time is up is left loaded (freeing it
        under the thread would crash the process); the process is about to exit and the OS frees it.
        """
        self.begin_shutdown()
        loop = asyncio.get_running_loop()
        end = loop.time() + (self.settings.shutdown_grace_s if timeout is None else timeout)
        if self._preloads:  # a load in a thread cannot be stopped: let it land, then free it with the rest
            await asyncio.wait(set(self._preloads), timeout=max(0.0, end - loop.time()))
        self._save_speeds()
        for slot in self.slots.values():
            try:
                await asyncio.wait_for(slot.lock.acquire(), max(0.0, end - loop.time()))
            except asyncio.TimeoutError:
                logger.warning("model %s is still busy in llama.cpp; leaving it to the OS", slot.spec.id)
                slot.executor.shutdown(wait=False, cancel_futures=True)
                continue
            try:
                slot.executor.shutdown(wait=True)  # idle: the lock is held and a benchmark stops on `closing`
                slot.backend.close()
            finally:
                slot.lock.release()
        self.slots.clear()
        if self.energy is not None and hasattr(self.energy, "close"):
            self.energy.close()
        if self._identity_claim is not None:
            self._identity_claim.release()

    def _benchmark(self, slot: ModelSlot) -> float:
        """Tokens/s as requests see them (GenerateFinal.tokens_per_second), measured after a warm-up.

        The first generation after a load pays for page faults on the mapped weights and llama.cpp's
        first graph and thread start-up; a figure taken from it was a fraction of the real speed. So one
        short warm-up run, then the median of three measured runs, on the slot's own worker thread (the
        thread real requests use). Cached per model file, thread count and weight-buffer option.
        """
        key = slot.bench_key = self._bench_key(slot)
        cache_path = self.data_dir / "node" / "benchmarks.json"
        cache = _read_speeds(cache_path)
        if key in cache:
            return cache[key]
        chat = bool(slot.backend._formatter)

        def bench_request(max_tokens: int) -> GenerateRequest:
            return GenerateRequest(request_id="self-benchmark", model_id=ModelId(slot.spec.id),
                                   messages=BENCH_PROMPT if chat else (), prompt=None if chat else "The sea is",
                                   sampling=Sampling(temperature=0.0, seed=0), max_tokens=max_tokens)

        def closing() -> bool:
            return self.closing

        slot.backend.run(bench_request(BENCH_WARMUP_TOKENS), lambda p: None, cancelled=closing)
        rates = []
        for _ in range(BENCH_RUNS):
            stats = slot.backend.run(bench_request(BENCH_TOKENS), lambda p: None, cancelled=closing)
            if stats.completion_tokens and stats.generate_ms > 0 and not self.closing:
                rates.append(stats.completion_tokens / (stats.generate_ms / 1000.0))
        if self.closing:
            return 0.0  # stopped half-way: nothing worth caching
        tps = statistics.median(rates) if rates else 0.0
        cache[key] = round(tps, 1)
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps(cache, indent=1))
        return tps

    def _observe_speed(self, slot: ModelSlot, stats: RunStats) -> None:
        """Move the announced tokens/s towards what requests really get (a figure measured once at a busy
        moment would otherwise be announced for ever); the cache keeps the refined figure at close."""
        if stats.completion_tokens < SPEED_MIN_TOKENS or stats.generate_ms <= 0 or not self.settings.self_benchmark:
            return
        real = stats.completion_tokens / (stats.generate_ms / 1000.0)
        old = slot.tokens_per_second
        slot.tokens_per_second = real if old <= 0 else (1 - SPEED_SMOOTHING) * old + SPEED_SMOOTHING * real
        slot.speed_observed = True

    def _bench_key(self, slot: ModelSlot) -> str:
        st = slot.path.stat()
        buffers = getattr(slot.backend, "use_extra_bufts", None)
        return f"{slot.path}:{st.st_size}:{int(st.st_mtime)}:{slot.backend.n_threads}:bufts={buffers}:v2"

    def _save_speeds(self) -> None:
        updates = {}
        for slot in self.slots.values():
            if slot.speed_observed and slot.bench_key:
                updates[slot.bench_key] = round(slot.tokens_per_second, 1)
        if updates:
            cache_path = self.data_dir / "node" / "benchmarks.json"
            cache = _read_speeds(cache_path)
            cache.update(updates)
            with contextlib.suppress(OSError):
                cache_path.write_text(json.dumps(cache, indent=1))

    # -- queries ---------------------------------------------------------------------------------------

    def ready_notes(self) -> list[str]:
        """What someone starting this node should know, one line each: the identity it took when another
        node runs on the data dir, the power cap with the threads chosen, weight buffers turned off."""
        notes = []
        if self._identity_claim is not None and self._identity_claim.note:
            notes.append(self._identity_claim.note)
        if self.energy is not None and self.slots:
            describe_cap = getattr(self.energy, "describe_cap", None)
            line = describe_cap(max(s.max_threads for s in self.slots.values())) if describe_cap else ""
            if line:
                notes.append(line)
        for slot in self.slots.values():
            if slot.buffers is not None and (slot.buffers.fell_back or not slot.buffers.use_extra_bufts):
                notes.append(f"{slot.spec.id}: {slot.buffers.summary()}")
        return notes

    def info(self) -> NodeInfo:
        host = self._read_host()
        cap = self.settings.max_model_ram_mb
        offers = tuple(
            ModelOffer(model_id=ModelId(s.spec.id), loaded=True, ram_bytes=s.spec.ram_mb * MB,
                       queue_depth=s.depth, queue_limit=s.limit, tokens_per_second=round(s.tokens_per_second, 1),
                       context_length=s.backend.n_ctx)
            for s in self.slots.values()
        ) + tuple(
            ModelOffer(model_id=ModelId(spec.id), loaded=False, ram_bytes=spec.ram_mb * MB, queue_depth=0,
                       queue_limit=self.settings.queue_limit, context_length=self.settings.n_ctx)
            for spec in self.pending.values()
        )
        tps = max((s.tokens_per_second for s in self.slots.values()), default=0.0)
        battery, light_only, note = host.battery, False, ""
        measured_jpt = 0.0
        if self.energy is not None:
            battery, decision = self.energy.battery()
            light_only, note = not decision.accept_heavy, decision.reason
            measured_jpt = self.energy.joules_per_token()
        watts = getattr(self.meter, "watts_per_core", WATTS_PER_CORE) * max(
            (s.backend.n_threads for s in self.slots.values()), default=1)
        return NodeInfo(
            node_id=NodeId(self.identity.node_id), name=self.identity.name, address=self.address,
            protocol_version=PROTOCOL_VERSION, covey_version=__version__, models=offers,
            ram_total_bytes=host.ram_total_bytes, ram_free_bytes=host.ram_free_bytes,
            model_ram_cap_bytes=(cap or 0) * MB, cpu_cores=host.cpu_cores, accelerator=host.accelerator,
            tokens_per_second=round(tps, 1), battery=battery, light_only=light_only, note=note,
            joules_per_token=round(measured_jpt or (watts / tps if tps else 0.0), 4),
        )

    async def _ready_slot(self, model_id: str) -> ModelSlot:
        """The slot of a served model, loading it now if it waits for its first request."""
        if model_id in self.slots or model_id not in self.pending:
            return self._slot(model_id)
        async with self._loading:
            if model_id in self.pending:
                try:
                    slot = await self._load(model_id, None, 0)  # admitted under the cap at start-up
                except (ModelFileError, NativeCrash) as exc:
                    self.pending.pop(model_id, None)
                    self.refused.append(str(exc))
                    logger.warning("not serving: %s", exc)
                    raise
                self._plan_threads(slot)
                self.slots[slot.spec.id] = slot
                self.pending.pop(model_id, None)
                logger.info("loaded %s on first use (%d MB)", slot.spec.id, slot.spec.ram_mb)
        return self._slot(model_id)

    def _check_open(self) -> None:
        if self.closing:
            raise NodeUnavailable(f"node '{self.identity.name}' is shutting down",
                                  hint="ask another node; an answer under way continues there from its text so far")

    def _slot(self, model_id: str) -> ModelSlot:
        slot = self.slots.get(model_id)
        if slot is None:
            served = ", ".join([*self.slots, *self.pending]) or "none"
            raise UnknownModel(f"this node does not serve model '{model_id}' (it serves: {served})",
                               hint="ask for one of those, or start a node with `--model ID`")
        return slot

    # -- generation ------------------------------------------------------------------------------------

    async def generate(self, req: GenerateRequest) -> AsyncIterator[GenerateEvent]:
        """Stream TokenPieces then one GenerateFinal. Closing the iterator cancels generation."""
        check_request_limits(req, max_messages=self.settings.max_messages,
                             max_prompt_chars=self.settings.max_prompt_chars, node=f"node '{self.identity.name}'")
        check_request_text(req)
        self._check_open()
        slot = await self._ready_slot(req.model_id)
        if self.energy is not None and not slot.spec.light:
            _battery, decision = self.energy.battery()
            if not decision.accept_heavy:
                raise NodeBusy(f"'{self.identity.name}' is {decision.reason}; model '{slot.spec.id}' is heavy work",
                               hint="ask another node, or plug this device in")
        if slot.depth >= slot.limit:
            raise NodeBusy(f"model '{slot.spec.id}' on '{self.identity.name}' has {slot.depth} requests "
                           f"running or waiting (limit {slot.limit})")
        slot.depth += 1
        t_arrive = self._clock()
        loop = asyncio.get_running_loop()
        acquired = False
        try:
            await slot.lock.acquire()
            acquired = True
        finally:
            if not acquired:
                slot.depth -= 1
        if self.closing:  # stopped while this request waited for the model
            slot.depth -= 1
            slot.lock.release()
            self._check_open()
        t_granted = self._clock()
        deadline = t_arrive + req.deadline_ms / 1000.0 if req.deadline_ms else None
        if deadline is not None and t_granted >= deadline:
            # Its deadline passed while it queued: say so at once instead of reading a prompt nobody waits for
            # (under a burst, the requests behind it would otherwise miss theirs too).
            slot.depth -= 1
            slot.lock.release()
            logger.info("request %s reached the model after its deadline; not run", req.request_id)
            yield GenerateFinal(
                finish_reason=FinishReason.DEADLINE, prompt_tokens=0, completion_tokens=0,
                timings=Timings(queue_ms=(t_granted - t_arrive) * 1000.0, total_ms=(t_granted - t_arrive) * 1000.0),
                energy=Energy(), node_id=NodeId(self.identity.node_id), model_id=ModelId(slot.spec.id))
            return
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()
        slot.running.add(cancel)
        window = self.meter.open(req.request_id)

        def push(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> tuple[RunStats, Energy]:
            track = getattr(window, "track_thread", None)
            if track is not None:
                track()  # attribute CPU time of this worker thread to this request
            cap = (self.energy.power_cap(slot.backend.set_threads, slot.max_threads)
                   if self.energy is not None else None)
            step: Callable[[int], None] | None = None
            if cap is not None:
                def step(_n: int) -> None:
                    cap.step()
            elif (tuner := self._tuner(slot)) is not None:
                tuner.begin()
                step = tuner.step
            try:
                stats = slot.backend.run(req, push, cancelled=cancel.is_set, deadline=deadline, clock=self._clock,
                                         between_tokens=step)
            finally:
                energy = window.close()
            return stats, energy

        counted = True

        def uncount() -> None:
            nonlocal counted
            if counted:
                counted = False
                slot.depth -= 1

        def release(_f: object) -> None:
            # The model is handed on only when the worker thread is done with it, whatever the consumer did.
            def _free() -> None:
                uncount()
                slot.running.discard(cancel)
                slot.lock.release()
                queue.put_nowait(_DONE)
            loop.call_soon_threadsafe(_free)

        fut = loop.run_in_executor(slot.executor, work)
        fut.add_done_callback(release)
        try:
            while (item := await queue.get()) is not _DONE:
                yield item  # type: ignore[misc]
            stats, energy = fut.result()
        finally:
            if not fut.done():
                cancel.set()
                # An abandoned request stops counting at once, so a client that cancels and asks again is
                # not refused as busy; the new request still waits on the lock for the last token (ms).
                uncount()
                logger.info("request %s cancelled by its client; stopping generation", req.request_id)
        if self.closing and stats.finish is FinishReason.CANCELLED:
            self._check_open()  # stopped by the node's shutdown, not by its client: the answer goes on elsewhere
        t_end = self._clock()
        if self.energy is not None:
            self.energy.observe(slot.spec.id, energy, stats.completion_tokens)
        self._observe_speed(slot, stats)
        yield GenerateFinal(
            finish_reason=stats.finish, prompt_tokens=stats.prompt_tokens,
            completion_tokens=stats.completion_tokens,
            timings=Timings(queue_ms=(t_granted - t_arrive) * 1000.0, prompt_ms=stats.prompt_ms,
                            generate_ms=stats.generate_ms, total_ms=(t_end - t_arrive) * 1000.0),
            energy=energy, node_id=NodeId(self.identity.node_id), model_id=ModelId(slot.spec.id),
        )


async def collect(events: AsyncIterator[GenerateEvent]) -> tuple[str, GenerateFinal]:
    """Drain a generation stream into (text, final). Handy for tests and simple callers."""
    parts: list[str] = []
    final: GenerateFinal | None = None
    async for ev in events:
        if isinstance(ev, TokenPiece):
            parts.append(ev.text)
        else:
            final = ev
    if final is None:
        raise CoveyError("the stream ended without a final message")
    return "".join(parts), final


def _read_speeds(path: Path) -> dict[str, float]:
    """The cached tokens/s per model key; a missing file is empty, a damaged one is ignored with a warning
    (the models are measured again and the file rewritten)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("ignoring the damaged speed cache %s (%s); measuring again", path, exc)
        return {}
    if not isinstance(data, dict):
        logger.warning("ignoring the damaged speed cache %s (not a JSON object); measuring again", path)
        return {}
    return {str(k): float(v) for k, v in data.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < float("inf")}
