"""The node's energy hooks: battery policy (light work only, said in the announcement), J/token from
observed answers, and the power-cap loop stepped between tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from covey.device_node.host import NodeIdentity
from covey.device_node.service import NodeService, collect
from covey.discovery.txt import decode_txt, encode_txt
from covey.energy.meter import CpuTimeEstimator
from covey.energy.policy import BatteryPolicy
from covey.errors import NodeBusy
from covey.settings import NodeSettings
from covey.types import Battery, GenerateRequest, ModelId, RequestId

from test_node_service import BIG, SMALL, ListCatalog, ScriptedBackend, host


class RecordingEnergy:
    """NodeEnergy's surface, recording what the node told it."""

    def __init__(self, battery: Battery, cap: bool = False) -> None:
        self.meter = CpuTimeEstimator(read_cpu_seconds=iter(range(0, 1000, 2)).__next__)
        self._battery = battery
        self.policy = BatteryPolicy(30)
        self.observed: list[tuple[str, float, int]] = []
        self.steps = 0
        self.cap = cap
        self.closed = False

    def observe(self, model_id, energy, completion_tokens):
        self.observed.append((model_id, energy.joules, completion_tokens))

    def joules_per_token(self, model_id=None):
        return sum(j for _, j, _ in self.observed) / max(1, sum(n for *_, n in self.observed))

    def battery(self):
        return self._battery, self.policy.decide(self._battery)

    def power_cap(self, set_threads, max_threads):
        if not self.cap:
            return None
        outer = self

        class Loop:
            def step(self):
                outer.steps += 1
                return max_threads

        return Loop()

    def close(self):
        self.closed = True


class SteppingBackend(ScriptedBackend):
    """Calls `between_tokens` after each token, as LlamaBackend does, and records thread changes."""

    def set_threads(self, n: int) -> None:
        self.n_threads = n

    def run(self, req, on_piece, *, between_tokens=None, **kw):
        def piece(p):
            on_piece(p)
            if between_tokens is not None:
                between_tokens(len(p.token_ids))

        return super().run(req, piece, **kw)


async def service(energy: RecordingEnergy) -> NodeService:
    svc = NodeService(NodeSettings(models=["small", "big"], self_benchmark=False),
                      identity=NodeIdentity(node_id="n1", name="phone"), catalog=ListCatalog(SMALL, BIG),
                      data_dir=Path("/nonexistent"), energy=energy, read_host=host, backend_factory=SteppingBackend)
    await svc.start()
    return svc


def req(model: str) -> GenerateRequest:
    return GenerateRequest(request_id=RequestId("r"), model_id=ModelId(model), prompt="hi", max_tokens=3)


async def test_low_battery_refuses_heavy_models_serves_light_and_announces_why():
    energy = RecordingEnergy(Battery(present=True, on_battery=True, percent=20))
    svc = await service(energy)
    with pytest.raises(NodeBusy, match="light work only"):
        await collect(svc.generate(req("big")))
    text, _final = await collect(svc.generate(req("small")))
    assert text == "Hello!"
    info = svc.info()
    assert info.light_only and "20 % (< 30 %)" in info.note
    back = decode_txt(encode_txt(info.model_copy(update={"address": "x:1"})), "x:1")
    assert back.light_only and back.note == info.note
    await svc.close()
    assert energy.closed


async def test_plugged_in_takes_heavy_work_and_reports_measured_joules_per_token():
    energy = RecordingEnergy(Battery(present=True, on_battery=False, percent=20), cap=True)
    svc = await service(energy)
    _text, final = await collect(svc.generate(req("big")))
    assert energy.observed == [("big", final.energy.joules, 3)]
    assert svc.info().joules_per_token == pytest.approx(final.energy.joules / 3, rel=1e-3)
    assert not svc.info().light_only
    assert energy.steps == 3  # the power-cap loop ran between tokens
    await svc.close()
