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


def test_saved_calibration_is_used_by_the_estimate(tmp_path) -> None:
    from covey.energy.calibrate import load_calibration, save_calibration
    from covey.energy.detect import detect_meter
    from covey.energy.estimator import MachineFacts
    from covey.errors import ConfigError
    from covey.settings import Settings

    samples = [(u / 4, CpuPowerModel(2.0, 9.0, gamma=0.5).watts(u / 4)) for u in range(5)]
    result = calibrate_against(samples, CpuPowerModel.from_tdp(15.0))
    path = save_calibration(tmp_path / "energy_calibration.json", result, "rapl:package-0")
    model = load_calibration(path)
    assert model is not None and model.gamma == pytest.approx(0.5) and "rapl:package-0" in model.source
    meter = detect_meter(Settings(data_dir=tmp_path), facts=MachineFacts(cpu_model="AMD EPYC", logical_cpus=2),
                         powercap_root=tmp_path / "none", power_supply_root=tmp_path / "none",
                         run=lambda argv: "", start_sampler=False)
    assert "calibrated on this machine" in meter.describe()
    assert meter.sensors[0].source.startswith("calibrated:rapl:package-0")
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="calibration file .* is damaged"):
        load_calibration(path)
