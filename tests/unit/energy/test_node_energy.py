"""NodeEnergy: the node's one handle on covey.energy, with a fake battery and an injected meter."""

from __future__ import annotations

from pathlib import Path

import httpx

from covey.energy.detect import detect_meter
from covey.energy.estimator import MachineFacts
from covey.energy.node import NodeEnergy
from covey.settings import Settings
from covey.types import Battery

from .fakes import Clock


class FakeBattery:
    def __init__(self, battery: Battery) -> None:
        self.battery = battery
        self.reads = 0

    def __call__(self) -> Battery:
        self.reads += 1
        return self.battery


def make(tmp_path: Path, **energy: object) -> tuple[NodeEnergy, FakeBattery, Clock]:
    clock = Clock()
    settings = Settings(data_dir=tmp_path, energy=energy)
    meter = detect_meter(settings, powercap_root=tmp_path / "no", power_supply_root=tmp_path / "no",
                         run=lambda argv: "", facts=MachineFacts(cpu_model="AMD EPYC", logical_cpus=2),
                         read_system_cpu=lambda: (0.0, 0.0), clock=clock, start_sampler=False)
    battery = FakeBattery(Battery(present=True, on_battery=True, percent=20))
    return NodeEnergy(settings, meter=meter, read_battery=battery, node_name="den"), battery, clock


def test_window_observe_and_joules_per_token(tmp_path: Path) -> None:
    ne, _, clock = make(tmp_path)
    w = ne.meter.open("r")
    clock.t = 2.0
    energy = w.close()
    ne.observe("m", energy, 10)
    assert energy.joules > 0 and ne.joules_per_token("m") == energy.joules / 10


def test_battery_policy_from_settings(tmp_path: Path) -> None:
    ne, battery, _ = make(tmp_path, battery_min_percent=25)
    b, decision = ne.battery()
    assert battery.reads == 1 and not decision.accept_heavy and "< 25 %" in decision.reason


def test_power_cap_only_when_set(tmp_path: Path) -> None:
    ne, _, _ = make(tmp_path)
    assert ne.power_cap(lambda n: None, 2) is None
    ne, _, _ = make(tmp_path, power_cap_watts=5)
    seen: list[int] = []
    ctl = ne.power_cap(seen.append, 4)
    # it starts at the thread count the estimate allows under the cap (2 vCPUs at 0.74-3.5 W: 1 thread)
    assert ctl is not None and ctl.cap_watts == 5 and seen == [1] == [ne.plan_threads(4)[0]]


def test_power_cap_plan_is_confirmed_and_the_next_generation_starts_where_the_last_settled(tmp_path: Path) -> None:
    ne, _, _ = make(tmp_path, power_cap_watts=6.5)
    n, watts = ne.plan_threads(2)
    assert n == 1 and watts is not None and watts <= 6.5 < ne.meter.cpu_model.watts(1.0)
    line = ne.describe_cap(2)
    assert line.startswith("power cap 6.5 W: 1 of 2 llama.cpp threads, estimated ") and "measured power" in line
    seen: list[int] = []
    first = ne.power_cap(seen.append, 2)
    first.threads = 2  # as if the loop had found room for another thread
    ne.power_cap(seen.append, 2)
    assert seen == [1, 2]
    low, _, _ = make(tmp_path, power_cap_watts=0.5)
    assert "even one thread is estimated above the cap" in low.describe_cap(2)
    assert make(tmp_path)[0].describe_cap(2) == ""


def test_metrics_served_when_port_set(tmp_path: Path) -> None:
    ne, _, _ = make(tmp_path)
    assert ne.serve_metrics() is None
    server = ne.serve_metrics(port=0)
    try:
        text = httpx.get(server.url).text
        assert 'covey_battery_percent{node="den"} 20.0' in text and "covey_energy_meter_info" in text
    finally:
        ne.close()


def test_start_up_says_the_energy_method_in_one_line_and_metrics_use_short_labels(tmp_path: Path) -> None:
    ne, _, _ = make(tmp_path)
    summary, paragraph = ne.summary(), ne.describe()
    assert summary.startswith("estimated (no power sensor here): cpu per-vcpu:") and "\n" not in summary
    assert len(summary) < len(paragraph) and "no RAPL" in paragraph and "no RAPL" not in summary
    text = ne.render_metrics()
    assert 'covey_energy_meter_info{node="den",meter="estimate",method="estimated"} 1.0' in text
