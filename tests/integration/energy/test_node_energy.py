"""End to end on real parts: a real node (SmolLM2 through llama.cpp, gRPC on 127.0.0.1) metered by
the detected meter, its Final energy recorded in a real SQLite ledger, then reported.

This machine has no power sensor, so the estimate path is the one exercised, and it must say so.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from covey.device_node.runner import build_node
from covey.device_node.server import NodeServer
from covey.energy import report as rep
from covey.energy.attribution import AttributingMeter
from covey.energy.carbon import resolve_carbon
from covey.energy.detect import detect_meter
from covey.energy.ledger import AnswerRecord, AttemptRecord, Ledger
from covey.energy.prometheus import NodeEnergyStats, render_metrics
from covey.orchestrator.client import GrpcNodeClient
from covey.settings import Settings
from covey.types import EnergyMethod, GenerateFinal, GenerateRequest, Message, ModelId, RequestId

MODEL = "smollm2-135m-instruct-q4_1"


async def test_answer_through_a_real_node_lands_in_the_ledger_with_joules_and_method(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, node={"models": [MODEL], "self_benchmark": False, "n_ctx": 512,
                                                 "announce": False, "port": 0},
                        energy={"region": "FR"})
    meter = detect_meter(settings)
    assert meter.estimate_only, "this machine was expected to have no power sensor"
    assert meter.describe().startswith("no power sensor on this machine: the figures are an estimate")

    service = build_node(settings, meter=meter)
    await service.start()
    server = NodeServer(service, host="127.0.0.1", port=0)
    address = await server.start()
    client = GrpcNodeClient(address)
    try:
        overhead = meter.open("route")  # the orchestrator's own work, metered the same way
        req = GenerateRequest(request_id=RequestId("r1"), model_id=ModelId(MODEL), max_tokens=24,
                              messages=(Message(role="user", content="Name a colour."),))
        final: GenerateFinal | None = None
        t0 = time.monotonic()
        async for ev in client.generate(req):
            if isinstance(ev, GenerateFinal):
                final = ev
        seconds = time.monotonic() - t0
        overhead_energy = overhead.close()
    finally:
        await client.close()
        await server.stop()
        await service.close()
        meter.close()
    assert final is not None and final.completion_tokens > 0
    assert final.energy.joules > 0 and final.energy.method is EnergyMethod.ESTIMATED
    names = {c.name for c in final.energy.components}
    assert names == {"cpu", "ram"}
    cpu = next(c for c in final.energy.components if c.name == "cpu")
    assert cpu.source.startswith("per-vcpu:") and 0 < cpu.marginal_joules <= cpu.joules
    assert (cpu.uncertainty, cpu.uncertainty_high) == (0.6, 1.9)  # CodeCarbon's range crossed real gRPC

    ledger = Ledger(tmp_path / "ledger.db")
    ledger.record(AnswerRecord(session="s", route="chat", agent="chat", carbon=resolve_carbon(settings),
                               pue=settings.energy.pue, overhead=overhead_energy,
                               attempts=(AttemptRecord(node=final.node_id, model=final.model_id, quantization="Q4_1",
                                                       tokens_in=final.prompt_tokens,
                                                       tokens_out=final.completion_tokens, seconds=seconds,
                                                       energy=final.energy),)))
    ledger.close()
    ledger = Ledger(tmp_path / "ledger.db")
    (row,) = ledger.query("SELECT * FROM answers")
    assert row["joules"] > 0 and row["method"] == "estimated" and row["g_co2e"] > 0
    assert row["carbon_source"] == "ember-owid:FRA:2024"  # Ember via OWID now, latest year
    assert row["joules_low"] < row["joules"] < row["joules_high"]
    comps = ledger.query("SELECT name, method, source FROM components WHERE attempt_n = 0")
    assert {(c["name"], c["method"]) for c in comps} == {("cpu", "estimated"), ("ram", "estimated")}
    (node_row,) = [r for r in rep.summarise(ledger, "model") if r.key == MODEL]
    assert node_row.j_per_token == pytest.approx(final.energy.joules / final.completion_tokens)

    stats = NodeEnergyStats()
    stats.observe(MODEL, final.energy, final.completion_tokens)
    text = render_metrics(stats, node="n", meter=meter.describe())
    assert 'covey_energy_joules_total{node="n",component="cpu",method="estimated"}' in text


def _spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_real_threads_overlapping_windows_add_up_to_the_total() -> None:
    """Real thread CPU clocks: two overlapping requests in two threads share by CPU used."""
    meter = detect_meter(Settings(), start_sampler=False)
    results: dict[str, float] = {}

    def request(label: str, cpu_s: float) -> None:
        w = meter.open(label)
        _spin(cpu_s)
        results[label] = w.close().joules

    threads = [threading.Thread(target=request, args=("short", 0.15)),
               threading.Thread(target=request, args=("long", 0.45))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(meter, AttributingMeter)
    assert results["short"] > 0 and results["long"] > results["short"]
    assert results["short"] + results["long"] == pytest.approx(meter.attributed_joules)


def test_window_whose_thread_ended_closes_safely() -> None:
    meter = detect_meter(Settings(), start_sampler=False)
    box: dict[str, object] = {}
    t = threading.Thread(target=lambda: box.setdefault("w", meter.open("gone")))
    t.start()
    t.join()
    other = meter.open("here")
    _spin(0.05)
    energy = box["w"].close()  # type: ignore[attr-defined]
    assert energy.joules >= 0 and other.close().joules > 0
