"""NodeService with a scripted backend: queue limits, cancellation, RAM cap, Info and the benchmark cache."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from covey.device_node.backend import RunStats
from covey.device_node.host import HostFacts, NodeIdentity
from covey.device_node.service import BENCH_RUNS, NodeService, collect
from covey.energy.meter import CpuTimeEstimator
from covey.errors import (
    BadRequest, CoveyError, ModelFileError, ModelTooLarge, NodeBusy, NodeUnavailable, PromptTooLong, RequestTooLarge,
    UnknownModel,
)
from covey.models.catalog import ModelSpec
from covey.settings import NodeSettings
from covey.types import Battery, FinishReason, GenerateRequest, Message, ModelId, RequestId, Sampling, TokenPiece

from polling import until

SMALL = ModelSpec(id="small", family="t", params_m=100, quant="Q4", file_mb=100, source="path", path="/m/small.gguf")
BIG = ModelSpec(id="big", family="t", params_m=1000, quant="Q4", file_mb=1000, source="path", path="/m/big.gguf")


class ScriptedBackend:
    """Emits `pieces` one by one; with `hold` set it waits on `go` before each token (a long generation)."""

    def __init__(self, spec: ModelSpec, path: Path, *, n_ctx: int, n_threads: int | None) -> None:
        self.spec, self.path, self.n_ctx, self.n_threads = spec, path, n_ctx, n_threads or 1
        self._formatter = None
        self.pieces = ["Hel", "lo", "!"]
        self.hold = False
        self.free = 0  # tokens emitted before `hold` applies
        self.go = threading.Event()
        self.started = threading.Event()
        self.seen: list[GenerateRequest] = []
        self.finished: list[FinishReason] = []
        self.closed = False

    def run(self, req, on_piece, *, cancelled=lambda: False, deadline=None, clock=None, between_tokens=None):
        self.seen.append(req)
        self.started.set()
        finish, n = FinishReason.LENGTH, 0
        for text in self.pieces[: req.max_tokens]:
            if self.hold and n >= self.free:
                self.go.wait(5)
            if cancelled():
                finish = FinishReason.CANCELLED
                break
            on_piece(TokenPiece(text=text, logprobs=(-0.5,), token_ids=(n,)))
            n += 1
        self.finished.append(finish)
        return RunStats(finish=finish, prompt_tokens=4, completion_tokens=n, prompt_ms=1.0, generate_ms=2.0)

    def close(self) -> None:
        self.closed = True


class ListCatalog:
    """Resolves the specs it was given; anything else is unknown. Records what was resolved."""

    def __init__(self, *specs: ModelSpec) -> None:
        self.specs = {s.id: s for s in specs}
        self.resolved: list[str] = []

    def get(self, model_id: str) -> ModelSpec:
        if model_id not in self.specs:
            raise UnknownModel(f"unknown model id '{model_id}'")
        return self.specs[model_id]

    def resolve(self, model_id: str) -> tuple[ModelSpec, Path]:
        self.resolved.append(model_id)
        spec = self.get(model_id)
        if spec.path == "/m/broken.gguf":
            raise ModelFileError(f"{spec.path} is not a GGUF file")
        return spec, Path(spec.path or "")


def host() -> HostFacts:
    return HostFacts(ram_total_bytes=8 << 30, ram_free_bytes=4 << 30, cpu_cores=4, accelerator="",
                     battery=Battery(present=True, on_battery=True, percent=55.0))


def make(tmp_path: Path, *specs: ModelSpec, **node) -> tuple[NodeService, ListCatalog]:
    settings = NodeSettings(models=[s.id for s in specs], self_benchmark=False, **node)
    catalog = ListCatalog(*specs)
    service = NodeService(settings, identity=NodeIdentity("abc123", "den-pc"), catalog=catalog,  # type: ignore[arg-type]
                          data_dir=tmp_path, read_host=host, backend_factory=ScriptedBackend, meter=CpuTimeEstimator())
    return service, catalog


def req(model: str = "small", text: str = "hi", max_tokens: int = 8) -> GenerateRequest:
    return GenerateRequest(request_id=RequestId("r"), model_id=ModelId(model), prompt=text, max_tokens=max_tokens)


def test_a_node_service_is_given_its_meter_by_whoever_builds_it(tmp_path: Path) -> None:
    meter = CpuTimeEstimator(watts_per_core=3.0)
    service = NodeService(NodeSettings(models=[]), identity=NodeIdentity("abc123", "den-pc"),
                          catalog=ListCatalog(), data_dir=tmp_path, backend_factory=ScriptedBackend,  # type: ignore[arg-type]
                          meter=meter)
    assert service.meter is meter
    with pytest.raises(TypeError, match="needs a meter or energy hooks"):
        NodeService(NodeSettings(models=[]), identity=NodeIdentity("abc123", "den-pc"), catalog=ListCatalog(),  # type: ignore[arg-type]
                    data_dir=tmp_path, backend_factory=ScriptedBackend)


async def test_generate_streams_pieces_and_a_final(tmp_path: Path) -> None:
    service, _ = make(tmp_path, SMALL)
    await service.start()
    text, final = await collect(service.generate(req()))
    assert text == "Hello!" and final.completion_tokens == 3 and final.node_id == "abc123"
    assert final.model_id == "small" and final.finish_reason is FinishReason.LENGTH
    assert service.slots["small"].depth == 0 and not service.slots["small"].lock.locked()
    await service.close()


async def test_full_queue_refuses_at_once_and_the_first_request_is_untouched(tmp_path: Path) -> None:
    service, _ = make(tmp_path, SMALL, queue_limit=1)
    await service.start()
    backend: ScriptedBackend = service.slots["small"].backend  # type: ignore[assignment]
    backend.hold = True
    first = asyncio.create_task(collect(service.generate(req())))
    await asyncio.to_thread(backend.started.wait, 5)
    with pytest.raises(NodeBusy) as exc:
        await anext(service.generate(req()))
    assert "limit 1" in str(exc.value) and "den-pc" in str(exc.value)
    backend.go.set()
    text, _ = await first
    assert text == "Hello!" and len(backend.seen) == 1 and service.slots["small"].depth == 0
    await service.close()


async def test_requests_within_the_limit_wait_their_turn(tmp_path: Path) -> None:
    service, _ = make(tmp_path, SMALL, queue_limit=2)
    await service.start()
    backend: ScriptedBackend = service.slots["small"].backend  # type: ignore[assignment]
    backend.hold = True
    first = asyncio.create_task(collect(service.generate(req(text="one"))))
    await asyncio.to_thread(backend.started.wait, 5)
    second = asyncio.create_task(collect(service.generate(req(text="two"))))
    await until(lambda: service.info().offer("small").queue_depth == 2, what="the second request to queue")
    backend.go.set()
    await first, await second
    assert [r.prompt for r in backend.seen] == ["one", "two"]
    await service.close()


async def test_a_request_whose_deadline_passed_in_the_queue_is_answered_at_once_without_running(
        tmp_path: Path) -> None:
    now = [0.0]
    settings = NodeSettings(models=["small"], self_benchmark=False, queue_limit=2)
    service = NodeService(settings, identity=NodeIdentity("abc123", "den-pc"), catalog=ListCatalog(SMALL),  # type: ignore[arg-type]
                          data_dir=tmp_path, read_host=host, backend_factory=ScriptedBackend, clock=lambda: now[0],
                          meter=CpuTimeEstimator())
    await service.start()
    backend: ScriptedBackend = service.slots["small"].backend  # type: ignore[assignment]
    backend.hold = True
    first = asyncio.create_task(collect(service.generate(req(text="one"))))
    await asyncio.to_thread(backend.started.wait, 5)
    late = req(text="two").model_copy(update={"deadline_ms": 1000})
    second = asyncio.create_task(collect(service.generate(late)))
    await asyncio.sleep(0.05)
    now[0] = 5.0  # the first request held the model past the second's deadline
    backend.go.set()
    (text, _), (late_text, late_final) = await first, await second
    assert text == "Hello!" and late_text == "" and late_final.finish_reason is FinishReason.DEADLINE
    assert late_final.completion_tokens == 0 and late_final.timings.queue_ms == pytest.approx(5000.0)
    assert [r.prompt for r in backend.seen] == ["one"] and not service.slots["small"].running  # never run
    assert service.slots["small"].depth == 0 and not service.slots["small"].lock.locked()
    await service.close()


async def test_closing_the_stream_cancels_the_generation_and_frees_the_slot(tmp_path: Path) -> None:
    service, _ = make(tmp_path, SMALL, queue_limit=1)
    await service.start()
    slot = service.slots["small"]
    backend: ScriptedBackend = slot.backend  # type: ignore[assignment]
    backend.pieces = ["x"] * 50
    backend.hold, backend.free = True, 1  # one token, then the worker waits before its next
    stream = service.generate(req(max_tokens=50))
    assert isinstance(await anext(stream), TokenPiece)
    await stream.aclose()
    assert slot.depth == 0  # counted out at once: a new request is not refused as busy
    nxt = asyncio.create_task(collect(service.generate(req())))
    backend.go.set()
    text, _ = await nxt
    assert backend.finished[0] is FinishReason.CANCELLED and text == "x" * 8
    assert slot.depth == 0 and not slot.lock.locked()
    await service.close()


async def test_bad_input_is_refused_before_taking_a_slot(tmp_path: Path) -> None:
    service, _ = make(tmp_path, SMALL, queue_limit=1)
    await service.start()
    with pytest.raises(BadRequest):
        await anext(service.generate(req(text="  ")))
    with pytest.raises(BadRequest) as exc:
        await anext(service.generate(req(text="bad \udcff surrogate")))
    assert "not valid UTF-8" in str(exc.value)
    with pytest.raises(UnknownModel) as exc2:
        await anext(service.generate(req(model="nope")))
    assert "serves: small" in str(exc2.value)
    assert service.slots["small"].depth == 0 and service.slots["small"].backend.seen == []
    await service.close()


async def test_ram_cap_refuses_before_resolving_and_names_both_figures(tmp_path: Path) -> None:
    service, catalog = make(tmp_path, SMALL, BIG, max_model_ram_mb=SMALL.ram_mb + 10)
    await service.start()
    assert list(service.slots) == ["small"] and catalog.resolved == ["small"]  # BIG never resolved or loaded
    (refusal,) = service.refused
    assert f"big needs {BIG.ram_mb} MB" in refusal and f"allows {SMALL.ram_mb + 10} MB" in refusal
    await service.close()


async def test_every_model_refused_raises_the_common_error(tmp_path: Path) -> None:
    service, _ = make(tmp_path, BIG, max_model_ram_mb=64)
    with pytest.raises(ModelTooLarge) as exc:
        await service.start()
    assert f"big needs {BIG.ram_mb} MB, this node allows 64 MB" in str(exc.value)


async def test_mixed_failures_with_nothing_served_name_every_problem(tmp_path: Path) -> None:
    broken = ModelSpec(id="broken", family="t", params_m=1, quant="Q4", file_mb=1, source="path", path="/m/broken.gguf")
    service, _ = make(tmp_path, broken, BIG, max_model_ram_mb=100)
    service.settings = service.settings.model_copy(update={"models": ["broken", "big", "ghost"]})
    with pytest.raises(CoveyError) as exc:
        await service.start()
    msg = str(exc.value)
    assert msg.startswith("no model could be served") and "not a GGUF file" in msg and "big needs" in msg and "unknown model id 'ghost'" in msg


async def test_info_reports_capabilities_load_and_host(tmp_path: Path) -> None:
    service, _ = make(tmp_path, SMALL, queue_limit=3, max_model_ram_mb=512, n_ctx=1024)
    await service.start()
    service.address = "127.0.0.1:5"
    info = service.info()
    assert info.node_id == "abc123" and info.name == "den-pc" and info.address == "127.0.0.1:5"
    (offer,) = info.models
    assert offer.model_id == "small" and offer.queue_limit == 3 and offer.context_length == 1024
    assert offer.ram_bytes == SMALL.ram_mb * 1024 * 1024 and info.model_ram_cap_bytes == 512 * 1024 * 1024
    assert info.cpu_cores == 4 and info.battery.on_battery and info.battery.percent == 55.0
    await service.close()
    assert service.slots == {}


async def test_self_benchmark_is_cached_per_model_file(tmp_path: Path) -> None:
    model = tmp_path / "small.gguf"
    model.write_bytes(b"GGUF" + bytes(2048))
    spec = SMALL.model_copy(update={"path": str(model)})
    runs = []
    for _ in range(2):
        service, _ = make(tmp_path, spec)
        service.settings = service.settings.model_copy(update={"self_benchmark": True})
        await service.start()
        runs.append(len(service.slots["small"].backend.seen))
        assert service.slots["small"].tokens_per_second > 0
        await service.close()
    # one warm-up, then BENCH_RUNS measured runs the first time; the cached figure the second
    assert runs == [1 + BENCH_RUNS, 0] and (tmp_path / "node" / "benchmarks.json").exists()


async def test_in_process_client_streams_from_the_service_and_reports_embedded(tmp_path: Path) -> None:
    from covey.device_node.inprocess import InProcessNodeClient
    from covey.orchestrator.client import NodeClient

    service, _ = make(tmp_path, SMALL)
    await service.start()
    client = InProcessNodeClient(service)
    assert isinstance(client, NodeClient) and await client.healthy()
    info = await client.info()
    assert info.source == "embedded" and info.address == "embedded" and info.node_id == "abc123"
    text, final = await collect(client.generate(req()))
    assert text == "Hello!" and final.completion_tokens == 3
    await client.close()
    assert not await client.healthy() and service.slots == {}


async def test_announced_speed_follows_real_requests_and_the_cache_keeps_it(tmp_path: Path) -> None:
    model = tmp_path / "small.gguf"
    model.write_bytes(b"GGUF" + bytes(2048))
    spec = SMALL.model_copy(update={"path": str(model)})
    service, _ = make(tmp_path, spec)
    service.settings = service.settings.model_copy(update={"self_benchmark": True})
    await service.start()
    slot = service.slots["small"]
    backend: ScriptedBackend = slot.backend  # type: ignore[assignment]
    benched = slot.tokens_per_second
    assert benched == pytest.approx(3 / 0.002)  # the scripted run: 3 tokens in 2 ms
    backend.pieces = ["x"] * 2  # too short to time: ignored
    await collect(service.generate(req()))
    assert slot.tokens_per_second == benched
    backend.pieces = ["x"] * 8  # 8 tokens in 2 ms: faster than benched
    await collect(service.generate(req(max_tokens=8)))
    assert slot.tokens_per_second == pytest.approx(0.8 * benched + 0.2 * 4000.0)
    refined = slot.tokens_per_second
    await service.close()
    again, _ = make(tmp_path, spec)
    again.settings = again.settings.model_copy(update={"self_benchmark": True})
    await again.start()
    assert again.slots["small"].tokens_per_second == pytest.approx(refined, abs=0.1)
    assert again.slots["small"].backend.seen == []  # from the cache: no benchmark runs
    await again.close()


# -- bounded work: limits before any work, shutdown that does not wait on the model for ever -------------

def chat(n: int, text: str = "word") -> GenerateRequest:
    return GenerateRequest(request_id=RequestId("r"), model_id=ModelId("small"),
                           messages=tuple(Message(role="user", content=text) for _ in range(n)))


async def test_limits_refuse_at_once_even_while_the_model_is_busy(tmp_path: Path) -> None:
    service, _ = make(tmp_path, SMALL, queue_limit=1, max_messages=10, max_prompt_chars=2000)
    await service.start()
    backend: ScriptedBackend = service.slots["small"].backend  # type: ignore[assignment]
    backend.hold = True
    busy = asyncio.create_task(collect(service.generate(req())))
    await asyncio.to_thread(backend.started.wait, 5)
    with pytest.raises(RequestTooLarge) as many:
        await anext(service.generate(chat(11)))
    assert "11 messages" in str(many.value) and "at most 10 (node.max_messages)" in str(many.value)
    with pytest.raises(PromptTooLong) as long:
        await anext(service.generate(chat(2, "x" * 1001)))
    assert "2,002 characters" in str(long.value) and "at most 2,000 (node.max_prompt_chars)" in str(long.value)
    stops = GenerateRequest(request_id=RequestId("r"), model_id=ModelId("small"), prompt="hi",
                            sampling=Sampling(stop=("x" * 300,)))
    with pytest.raises(RequestTooLarge) as stop:
        await anext(service.generate(stops))
    assert "300 characters" in str(stop.value)
    backend.go.set()
    await busy
    assert len(backend.seen) == 1 and service.slots["small"].depth == 0  # none of them reached the backend
    await service.close()


async def test_shutdown_stops_the_generation_and_the_queued_request_with_node_unavailable(tmp_path: Path) -> None:
    service, _ = make(tmp_path, SMALL, queue_limit=2)
    await service.start()
    backend: ScriptedBackend = service.slots["small"].backend  # type: ignore[assignment]
    backend.pieces = ["x"] * 50
    backend.hold, backend.free = True, 1
    running = service.generate(req(max_tokens=50))
    assert isinstance(await anext(running), TokenPiece)
    queued = asyncio.create_task(collect(service.generate(req(text="queued"))))
    await asyncio.sleep(0.05)
    closing = asyncio.create_task(service.close(timeout=5))
    await asyncio.sleep(0)  # close() runs up to its wait for the model
    assert service.closing
    backend.go.set()  # the worker reaches its next token and sees the cancel
    with pytest.raises(NodeUnavailable) as exc:
        async for _ in running:
            pass
    assert "shutting down" in str(exc.value)
    with pytest.raises(NodeUnavailable):
        await queued
    await closing
    assert backend.finished == [FinishReason.CANCELLED] and [r.prompt for r in backend.seen] == ["hi"]
    assert backend.closed
    with pytest.raises(NodeUnavailable):
        await anext(service.generate(req()))


async def test_close_gives_up_on_a_worker_stuck_in_native_code_and_leaves_its_model_loaded(tmp_path: Path) -> None:
    service, _ = make(tmp_path, SMALL)
    await service.start()
    backend: ScriptedBackend = service.slots["small"].backend  # type: ignore[assignment]
    backend.hold = True  # waits on `go` before its first token, deaf to the cancel (as inside llama_decode)
    stuck = asyncio.create_task(collect(service.generate(req())))
    await asyncio.to_thread(backend.started.wait, 5)
    await service.close(timeout=0.1)
    assert not backend.closed  # freeing the model under the running thread would crash the process
    backend.go.set()
    with pytest.raises(NodeUnavailable):
        await stuck


async def test_info_at_the_largest_settings_still_fits_the_wire(tmp_path: Path) -> None:
    from covey import wire

    fields = NodeSettings.model_fields
    most = {name: next(m.le for m in fields[name].metadata if hasattr(m, "le"))
            for name in ("max_model_ram_mb", "queue_limit", "n_ctx")}
    service, _ = make(tmp_path, SMALL, **most)
    await service.start()
    msg = wire.info_to_pb(service.info())
    assert msg.model_ram_cap_bytes == most["max_model_ram_mb"] * 1024 * 1024
    assert msg.models[0].queue_limit == most["queue_limit"] and msg.models[0].context_length == most["n_ctx"]
    await service.close()
    with pytest.raises(ValueError, match="less than or equal to 17592186044415"):
        NodeSettings(max_model_ram_mb=10**15)  # made every Info fail with a uint64 overflow


class ThreadedBackend(ScriptedBackend):
    """Calls between_tokens after each token, as LlamaBackend does, and records thread changes."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.pieces = ["x"] * 40
        self.threads_set: list[int] = []
        self.stepped = False

    def run(self, req, on_piece, *, cancelled=lambda: False, deadline=None, clock=None, between_tokens=None):
        self.stepped = between_tokens is not None
        stats = super().run(req, on_piece, cancelled=cancelled, deadline=deadline, clock=clock)
        for n in range(stats.completion_tokens):
            if between_tokens is not None:
                between_tokens(n + 1)
        return stats

    def set_threads(self, n: int) -> None:
        self.threads_set.append(n)
        self.n_threads = n


@pytest.mark.parametrize(("node", "tuned"), [({"n_threads": 2}, True), ({"n_threads": 2, "adaptive_threads": "off"}, False),
                                             ({"n_threads": 1}, False)])
async def test_generation_is_timed_by_the_thread_tuner_unless_it_is_off_or_there_is_one_thread(tmp_path, node, tuned) -> None:
    settings = NodeSettings(models=["small"], self_benchmark=False, **node)
    service = NodeService(settings, identity=NodeIdentity("abc123", "den-pc"), catalog=ListCatalog(SMALL),  # type: ignore[arg-type]
                          data_dir=tmp_path, read_host=host, backend_factory=ThreadedBackend, meter=CpuTimeEstimator())
    await service.start()
    await collect(service.generate(req(max_tokens=40)))
    slot = service.slots["small"]
    assert slot.backend.stepped is tuned and (slot.tuner is not None) is tuned
    if tuned:
        assert slot.tuner.max_threads == 2 and slot.tuner.goal == "energy" and set(slot.backend.threads_set) <= {1, 2}
    await service.close()
