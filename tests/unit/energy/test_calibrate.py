"""Calibration's sampling and fitting with an injected sensor, load and clock."""

from __future__ import annotations

import pytest

from covey.energy.calibrate import calibrate_against, collect
from covey.energy.estimator import CpuPowerModel

from .fakes import Clock


def test_collect_and_fit_against_a_simulated_sensor() -> None:
    truth = CpuPowerModel(6.0, 30.0, gamma=0.7)
    clock, state = Clock(), {"joules": 0.0, "busy": 0.0, "total": 0.0}
    loads: list[float] = []

    def load(level: float, seconds: float) -> None:
        loads.append(level)
        clock.t += seconds
        state["joules"] += truth.watts(level) * seconds
        state["busy"] += 2 * seconds * level
        state["total"] += 2 * seconds

    samples = collect(lambda: state["joules"], load=load,
                      read_system_cpu=lambda: (state["busy"], state["total"]), clock=clock, seconds=3.0)
    assert loads == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert samples[2] == pytest.approx((0.5, truth.watts(0.5)))
    table_model = CpuPowerModel.from_tdp(20.0)
    result = calibrate_against(samples, table_model)
    assert result.fitted.idle_watts == pytest.approx(6.0, abs=0.01)
    assert result.fitted.max_watts == pytest.approx(30.0, abs=0.01)
    assert result.fitted_mape < 0.5
    assert result.estimator_mape > 10
