"""The power-cap loop against a simulated plant, and the battery policy."""

from __future__ import annotations

import pytest

from covey.energy.policy import BatteryPolicy
from covey.energy.powercap import PowerCapController
from covey.types import Battery

from .fakes import Clock


class Plant:
    """A machine whose power is idle + per-thread watts; records every thread change."""

    def __init__(self, idle: float = 3.0, per_thread: float = 4.0) -> None:
        self.idle, self.per_thread = idle, per_thread
        self.threads = 0
        self.history: list[int] = []

    def set_threads(self, n: int) -> None:
        self.threads = n
        self.history.append(n)

    def watts(self) -> float:
        return self.idle + self.per_thread * self.threads


def run(ctl: PowerCapController, clock: Clock, steps: int) -> None:
    for _ in range(steps):
        clock.t += 0.1  # a token every 100 ms
        ctl.step()


def test_loop_settles_at_the_most_threads_under_the_cap() -> None:
    plant, clock = Plant(), Clock()
    ctl = PowerCapController(12.0, plant.watts, plant.set_threads, 1, 8, clock)
    assert plant.threads == 8
    run(ctl, clock, 200)
    assert plant.threads == 2  # 3 + 4 x 2 = 11 W <= 12 W; 3 threads would be 15 W
    assert plant.watts() <= 12.0
    assert plant.history[:4] == [8, 7, 6, 5]


def test_loop_steps_back_up_when_the_plant_gets_cheaper() -> None:
    plant, clock = Plant(), Clock()
    ctl = PowerCapController(20.0, plant.watts, plant.set_threads, 1, 8, clock)
    run(ctl, clock, 100)
    assert plant.threads == 4
    plant.per_thread = 1.0  # e.g. another program stopped using the package
    run(ctl, clock, 100)
    assert plant.threads == 8
    assert ctl.last_watts == pytest.approx(11.0)


def test_loop_never_goes_below_min_threads_and_reads_power_only_every_interval() -> None:
    plant, clock = Plant(idle=50.0), Clock()
    reads: list[float] = []

    def read() -> float:
        reads.append(clock.t)
        return plant.watts()

    ctl = PowerCapController(10.0, read, plant.set_threads, 2, 4, clock, interval_s=1.0)
    run(ctl, clock, 100)  # 10 s
    assert plant.threads == 2
    assert len(reads) == pytest.approx(10, abs=1)


def test_bad_cap_is_refused() -> None:
    with pytest.raises(ValueError):
        PowerCapController(0, lambda: 0.0, lambda n: None)


def test_battery_policy() -> None:
    policy = BatteryPolicy(30)
    assert policy.decide(Battery()).accept_heavy
    assert policy.decide(Battery(present=True, on_battery=False, percent=5)).accept_heavy
    ok = policy.decide(Battery(present=True, on_battery=True, percent=64))
    assert ok.accept_heavy and ok.reason == "on battery at 64 %"
    low = policy.decide(Battery(present=True, on_battery=True, percent=22.4))
    assert not low.accept_heavy and low.reason == "on battery at 22 % (< 30 %): light work only"
