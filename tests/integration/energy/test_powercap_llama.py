"""The power-cap loop driving a real llama.cpp model's thread count from the real meter."""

from __future__ import annotations

from covey.device_node.backend import LlamaBackend
from covey.energy.detect import detect_meter
from covey.energy.powercap import PowerCapController
from covey.models.catalog import Catalog
from covey.settings import Settings
from covey.types import GenerateRequest, Message, ModelId, RequestId


def test_cap_below_idle_steps_threads_down_to_the_minimum_while_generating() -> None:
    spec, path = Catalog().resolve("smollm2-135m-instruct-q4_1")
    backend = LlamaBackend(spec, path, n_ctx=256, n_threads=2)
    meter = detect_meter(Settings(), start_sampler=False)
    seen: list[int] = []

    def set_threads(n: int) -> None:
        seen.append(n)
        backend.set_threads(n)

    # the estimate never reads below its idle power (0.74 W x vCPUs), so a 0.1 W cap is always exceeded
    ctl = PowerCapController(0.1, meter.read_power_w, set_threads, 1, 2, interval_s=0.0)
    pieces: list[str] = []
    req = GenerateRequest(request_id=RequestId("p"), model_id=ModelId(spec.id), max_tokens=12,
                          messages=(Message(role="user", content="Count to five."),))
    window = meter.open("capped")
    stats = backend.run(req, lambda p: pieces.append(p.text), between_tokens=lambda n: ctl.step())
    energy = window.close()
    backend.close()
    assert stats.completion_tokens > 1 and "".join(pieces)
    assert seen[0] == 2 and seen[-1] == 1 and backend.n_threads == 1
    assert ctl.last_watts > 0.1 and energy.joules > 0
