"""The attributing meter with injected clocks and readings."""

from __future__ import annotations

import threading

import pytest

from covey.energy.attribution import AttributingMeter
from covey.types import EnergyMethod

from .fakes import Clock, Counter, ThreadCpu


class Cpu:
    def __init__(self) -> None:
        self.process = 0.0
        self.busy = 0.0


def make(counters: list[Counter], idle: float | None = None):
    clock, threads, cpu = Clock(), ThreadCpu(), Cpu()
    meter = AttributingMeter(counters, read_process_cpu=lambda: cpu.process,
                             read_system_busy=lambda: cpu.busy, read_thread_cpu=threads, clock=clock)
    return meter, clock, threads, cpu


def test_single_window_gets_idle_plus_our_share_of_the_marginal() -> None:
    c = Counter(idle_watts=10.0)
    meter, clock, _, cpu = make([c])
    w = meter.open("req")
    clock.t, c.joules = 2.0, 60.0  # 20 J idle, 40 J above idle
    cpu.process, cpu.busy = 1.5, 2.0  # we used 3/4 of the busy CPU
    e = w.close()
    (comp,) = e.components
    assert comp.joules == pytest.approx(20 + 30)
    assert comp.marginal_joules == pytest.approx(30)
    assert comp.method is EnergyMethod.MEASURED and e.method is EnergyMethod.MEASURED
    assert "shared by CPU time" in comp.source
    assert w.seconds == pytest.approx(2.0)


def test_overlapping_windows_sum_to_the_total_and_split_by_thread_cpu() -> None:
    c = Counter(idle_watts=5.0)
    meter, clock, threads, cpu = make([c])
    w1 = meter.open("a")
    w2 = meter.open("b")
    w2.track_thread(4242)  # b's work happens in another thread
    t1 = threading.get_ident()
    # stretch 1: both open; a's thread does 1 s of CPU, b's worker 3 s
    clock.t, c.joules, cpu.process, cpu.busy = 2.0, 50.0, 4.0, 4.0
    threads.cpu[t1], threads.cpu[4242] = 1.0, 3.0
    e1 = w1.close()
    # stretch 2: b alone
    clock.t, c.joules, cpu.process, cpu.busy = 3.0, 70.0, 5.0, 5.0
    threads.cpu[4242] = 4.0
    e2 = w2.close()
    assert e1.joules + e2.joules == pytest.approx(70.0)
    assert meter.attributed_joules == pytest.approx(70.0) == meter.device_joules
    assert e1.joules == pytest.approx(50.0 * 0.25)
    assert e2.joules == pytest.approx(50.0 * 0.75 + 20.0)
    assert 4242 in threads.seen


def test_many_overlapping_windows_always_add_up() -> None:
    c = Counter(idle_watts=3.0)
    meter, clock, threads, cpu = make([c])
    windows, results = [], []
    for step in range(1, 30):
        clock.t += 0.7
        c.joules += 11.0 * (step % 4)
        cpu.process += 0.4
        cpu.busy += 0.9
        if step % 3 == 0 and windows:
            results.append(windows.pop(0).close())
        else:
            windows.append(meter.open(f"r{step}"))
            windows[-1].track_thread(step)
            threads.cpu[step] = 0.1 * step
    while windows:
        clock.t += 1
        c.joules += 5
        results.append(windows.pop().close())
    assert sum(e.joules for e in results) == pytest.approx(meter.attributed_joules)
    assert meter.attributed_joules <= meter.device_joules + 1e-9


def test_no_cpu_from_any_window_splits_equally_and_gaps_are_not_attributed() -> None:
    c = Counter(idle_watts=0.0)
    meter, clock, _, cpu = make([c])
    clock.t, c.joules = 5.0, 100.0  # nobody open: not ours
    w1, w2 = meter.open("a"), meter.open("b")
    clock.t, c.joules, cpu.process, cpu.busy = 6.0, 110.0, 1.0, 1.0
    assert w1.close().joules == pytest.approx(5.0)
    assert w2.close().joules == pytest.approx(5.0)


def test_measured_counter_learns_idle_between_requests() -> None:
    c = Counter(idle_watts=None)
    meter, clock, _, cpu = make([c])
    clock.t, c.joules = 10.0, 40.0  # 4 W with nothing open
    meter.tick()
    assert meter.idle_watts(c) == pytest.approx(4.0)
    w = meter.open()
    clock.t, c.joules, cpu.process, cpu.busy = 11.0, 50.0, 0.5, 1.0
    (comp,) = w.close().components
    assert comp.joules == pytest.approx(4.0 + 6.0 * 0.5)
    assert comp.marginal_joules == pytest.approx(3.0)


def test_unknown_idle_is_said_in_the_source() -> None:
    c = Counter(idle_watts=None)
    meter, clock, _, cpu = make([c])
    w = meter.open()
    clock.t, c.joules, cpu.process, cpu.busy = 1.0, 8.0, 1.0, 1.0
    (comp,) = w.close().components
    assert comp.joules == comp.marginal_joules == pytest.approx(8.0)
    assert "idle not yet learned" in comp.source


def test_process_scoped_component_is_not_shared_by_system_cpu() -> None:
    cpu_c = Counter("cpu", method=EnergyMethod.ESTIMATED, idle_watts=1.0)
    ram = Counter("ram", method=EnergyMethod.ESTIMATED, scope="process", idle_watts=0.0)
    meter, clock, _, cpu = make([cpu_c, ram])
    w = meter.open()
    clock.t, cpu_c.joules, ram.joules, cpu.process, cpu.busy = 1.0, 3.0, 0.5, 0.1, 1.0
    e = w.close()
    by = {c.name: c for c in e.components}
    assert by["ram"].joules == pytest.approx(0.5)
    assert by["cpu"].joules == pytest.approx(1.0 + 2.0 * 0.1)
    assert e.method is EnergyMethod.ESTIMATED


def test_closing_twice_returns_the_same_energy_and_failing_sensor_counts_zero() -> None:
    class Broken(Counter):
        def read_joules(self) -> float:
            if self.reads > 0:
                raise OSError("device gone")
            return super().read_joules()

    b = Broken(idle_watts=0.0)
    meter, clock, _, _ = make([b])
    w = meter.open()
    clock.t = 1.0
    e = w.close()
    assert e.joules == 0.0 and w.close() is e


def test_read_power_w_reports_watts_since_last_edge() -> None:
    c = Counter(idle_watts=1.0)
    meter, clock, _, _ = make([c])
    clock.t, c.joules = 2.0, 9.0
    assert meter.read_power_w() == pytest.approx(4.5)


def test_device_scoped_gpu_is_not_shared_by_cpu_time() -> None:
    gpu = Counter("gpu", scope="device", idle_watts=10.0)
    meter, clock, _, cpu = make([gpu])
    w = meter.open()
    clock.t, gpu.joules, cpu.process, cpu.busy = 1.0, 50.0, 0.01, 1.0
    (comp,) = w.close().components
    assert comp.joules == pytest.approx(50.0) and comp.marginal_joules == pytest.approx(40.0)
