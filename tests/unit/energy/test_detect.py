"""detect_meter picks the best source in the documented order and explains itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from covey.energy.detect import detect_meter
from covey.energy.estimator import MachineFacts
from covey.errors import ConfigError, EnergySensorError
from covey.settings import EnergySettings
from covey.types import EnergyMethod

from .fakes import Clock
from .test_sensors import supply, zone

VM = MachineFacts(cpu_model="AMD EPYC", logical_cpus=2, virtual_machine=True)


def no_vcgencmd(argv: list[str]) -> str:
    raise FileNotFoundError("vcgencmd is not on PATH")


class FakeNvml:
    """Stands in for pynvml; records calls."""

    def __init__(self, energy: bool = True) -> None:
        self.energy = energy
        self.calls: list[str] = []
        self.mj = 1000

    def nvmlInit(self) -> None:
        self.calls.append("init")

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"gpu{i}"

    def nvmlDeviceGetTotalEnergyConsumption(self, h: str) -> int:
        if not self.energy:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return self.mj

    def nvmlDeviceGetPowerUsage(self, h: str) -> int:
        return 70_000


def build(tmp_path: Path, **kw):
    kw.setdefault("powercap_root", tmp_path / "powercap")
    kw.setdefault("power_supply_root", tmp_path / "power_supply")
    kw.setdefault("run", no_vcgencmd)
    kw.setdefault("facts", VM)
    kw.setdefault("start_sampler", False)
    return detect_meter(EnergySettings(), read_system_cpu=lambda: (0.0, 0.0), clock=Clock(), **kw)


def test_estimate_only_machine_says_so_and_why(tmp_path: Path) -> None:
    meter = build(tmp_path)
    text = meter.describe()
    assert meter.estimate_only and meter.method is EnergyMethod.ESTIMATED
    assert text.startswith("no power sensor on this machine: the figures are an estimate")
    for part in ("no RAPL", "no battery", "no Pi 5 PMIC", "not in TDP table", "per-vCPU"):
        assert part in text
    assert [s.name for s in meter.sensors] == ["cpu", "ram"]


def test_rapl_is_preferred_and_gpu_added(tmp_path: Path) -> None:
    zone(tmp_path / "powercap", "intel-rapl:0", "package-0", 0)
    supply(tmp_path / "power_supply", "BAT0", type="Battery", status="Discharging", power_now=1)
    nvml = FakeNvml()
    meter = build(tmp_path, nvml=nvml)
    assert [s.source for s in meter.sensors] == ["rapl:package-0", "nvml:total-energy"]
    assert meter.method is EnergyMethod.MEASURED and not meter.estimate_only
    nvml.mj = 6000
    assert meter.sensors[1].read_joules() == pytest.approx(5.0)


def test_gpu_without_energy_counter_falls_back_to_power_polling_plus_cpu_estimate(tmp_path: Path) -> None:
    meter = build(tmp_path, nvml=FakeNvml(energy=False))
    assert [s.source for s in meter.sensors] == ["per-vcpu:0.74-3.5W x 2", "nvml:power-polling"]


def test_battery_measures_only_while_discharging(tmp_path: Path) -> None:
    bat = supply(tmp_path / "power_supply", "BAT0", type="Battery", status="Discharging", power_now=5_000_000)
    meter = build(tmp_path)
    assert meter.sensors[0].source == "power_supply:BAT0"
    assert meter.sensors[0].method is EnergyMethod.MEASURED
    (bat / "status").write_text("Charging\n")
    meter = build(tmp_path)
    assert "on mains now" in meter.describe()
    meter.tick()  # plugged in: the battery cannot measure, so the stretch is estimated
    assert meter.sensors[0].method is EnergyMethod.ESTIMATED
    assert meter.sensors[0].source.startswith("per-vcpu:")
    (bat / "status").write_text("Discharging\n")
    meter.tick()
    assert meter.sensors[0].method is EnergyMethod.MEASURED


def test_explicit_sensor_that_is_missing_raises(tmp_path: Path) -> None:
    with pytest.raises(EnergySensorError, match="no RAPL"):
        detect_meter(EnergySettings(sensor="rapl"), powercap_root=tmp_path, facts=VM, start_sampler=False)
    with pytest.raises(ConfigError, match="unknown energy sensor"):
        detect_meter(EnergySettings(sensor="wattmeter"), facts=VM, start_sampler=False)


def test_pmic_when_present(tmp_path: Path) -> None:
    from .test_sensors import PMIC

    meter = build(tmp_path, run=lambda argv: PMIC)
    assert meter.sensors[0].source == "pi5-pmic:vcgencmd"
