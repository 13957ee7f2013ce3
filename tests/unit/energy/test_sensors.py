"""Sensor readers against real file layouts in temporary directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from covey.energy.battery import BatterySensor, read_battery
from covey.energy.pmic import PiPmicSensor, parse_pmic
from covey.energy.rapl import RaplSensor
from covey.energy.sensors import PowerIntegrator
from covey.errors import EnergySensorError
from covey.types import EnergyMethod


def zone(root: Path, name: str, label: str, uj: int, max_range: int = 262143328850) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "name").write_text(label + "\n")
    (d / "energy_uj").write_text(f"{uj}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


def set_uj(d: Path, uj: int) -> None:
    (d / "energy_uj").write_text(f"{uj}\n")


def test_rapl_sums_packages_and_dram_but_not_core_or_uncore(tmp_path: Path) -> None:
    p0 = zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    core = zone(tmp_path, "intel-rapl:0:0", "core", 500_000)
    zone(tmp_path, "intel-rapl:0:1", "uncore", 100_000)
    dram = zone(tmp_path, "intel-rapl:0:2", "dram", 0)
    p1 = zone(tmp_path, "intel-rapl:1", "package-1", 7)
    s = RaplSensor(tmp_path)
    assert s.source == "rapl:package-0+package-1+dram"
    assert s.method is EnergyMethod.MEASURED
    set_uj(p0, 3_000_000)
    set_uj(core, 9_000_000)  # inside the package: must not be added
    set_uj(dram, 500_000)
    set_uj(p1, 1_000_007)
    assert s.read_joules() == pytest.approx(2.0 + 0.5 + 1.0)


def test_rapl_prefers_psys_alone(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    psys = zone(tmp_path, "intel-rapl:1", "psys", 0)
    s = RaplSensor(tmp_path)
    assert s.source == "rapl:psys" and s.name == "platform"
    set_uj(psys, 4_000_000)
    assert s.read_joules() == pytest.approx(4.0)


def test_rapl_handles_wraparound_with_max_energy_range(tmp_path: Path) -> None:
    p0 = zone(tmp_path, "intel-rapl:0", "package-0", 900_000, max_range=1_000_000)
    s = RaplSensor(tmp_path)
    set_uj(p0, 100_000)  # wrapped: 100k to the top, then 100k more
    assert s.read_joules() == pytest.approx(0.2)
    set_uj(p0, 600_000)
    assert s.read_joules() == pytest.approx(0.7)
    set_uj(p0, 50_000)
    assert s.read_joules() == pytest.approx(0.7 + 0.45)


def test_rapl_explains_root_only_permission_and_offers_fix(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 0)

    def read(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return path.read_text()

    with pytest.raises(EnergySensorError) as err:
        RaplSensor(tmp_path, read=read)
    msg = str(err.value)
    assert "root-only" in msg and "chmod o+r" in msg and "run the node as root" in msg


def test_rapl_missing_tree_says_so(tmp_path: Path) -> None:
    with pytest.raises(EnergySensorError, match="does not exist"):
        RaplSensor(tmp_path / "powercap")


def supply(root: Path, name: str, **fields: object) -> Path:
    d = root / name
    d.mkdir(parents=True)
    for k, v in fields.items():
        (d / k).write_text(f"{v}\n")
    return d


def test_battery_power_now_in_microwatts_while_discharging(tmp_path: Path) -> None:
    supply(tmp_path, "AC", type="Mains", online=0)
    supply(tmp_path, "BAT0", type="Battery", status="Discharging", power_now=8_500_000, capacity=64)
    s = BatterySensor(tmp_path)
    assert s.read_watts() == pytest.approx(8.5)
    assert read_battery(tmp_path).model_dump() == {"present": True, "on_battery": True, "percent": 64.0}


def test_battery_current_times_voltage_with_negative_sign(tmp_path: Path) -> None:
    supply(tmp_path, "battery", type="Battery", status="Discharging",
           current_now=-500_000, voltage_now=3_900_000, capacity=80)
    assert BatterySensor(tmp_path).read_watts() == pytest.approx(0.5 * 3.9)


def test_battery_milliamp_and_millivolt_variants(tmp_path: Path) -> None:
    supply(tmp_path, "battery", type="Battery", status="Discharging", current_now=-450, voltage_now=3850)
    assert BatterySensor(tmp_path).read_watts() == pytest.approx(0.45 * 3.85)


def test_battery_zero_power_now_falls_back_to_current_voltage(tmp_path: Path) -> None:
    supply(tmp_path, "BAT1", type="Battery", status="Discharging", power_now=0,
           current_now=1_000_000, voltage_now=12_000_000)
    assert BatterySensor(tmp_path).read_watts() == pytest.approx(12.0)


def test_battery_not_measured_while_plugged_in(tmp_path: Path) -> None:
    supply(tmp_path, "AC", type="Mains", online=1)
    supply(tmp_path, "BAT0", type="Battery", status="Charging", power_now=20_000_000,
           energy_now=30, energy_full=60)
    s = BatterySensor(tmp_path)
    assert s.read_watts() is None
    assert s.reading().model_dump() == {"present": True, "on_battery": False, "percent": 50.0}


def test_battery_unknown_status_uses_mains_online(tmp_path: Path) -> None:
    supply(tmp_path, "usb", type="USB", online=0)
    supply(tmp_path, "BAT0", type="Battery", status="Unknown", power_now=3_000_000)
    assert BatterySensor(tmp_path).read_watts() == pytest.approx(3.0)


def test_no_battery(tmp_path: Path) -> None:
    supply(tmp_path, "AC", type="Mains", online=1)
    with pytest.raises(EnergySensorError, match="no battery"):
        BatterySensor(tmp_path)
    assert read_battery(tmp_path).present is False


PMIC = """\
     3V7_WL_SW_A current(0)=0.00390372A
     3V3_SYS_A current(1)=0.05660040A
     1V8_SYS_A current(2)=0.17173380A
     VDD_CORE_A current(7)=0.80000000A
     3V7_WL_SW_V volt(8)=3.74476500V
     3V3_SYS_V volt(9)=3.31252800V
     1V8_SYS_V volt(10)=1.79951200V
     VDD_CORE_V volt(14)=0.85000000V
     EXT5V_V volt(24)=5.15096000V
"""


def test_pmic_sums_rails_with_current_and_voltage() -> None:
    expected = 0.00390372 * 3.744765 + 0.0566004 * 3.312528 + 0.1717338 * 1.799512 + 0.8 * 0.85
    assert parse_pmic(PMIC) == pytest.approx(expected)


def test_pmic_sensor_runs_vcgencmd_through_the_injected_runner() -> None:
    seen: list[list[str]] = []

    def run(argv: list[str]) -> str:
        seen.append(argv)
        return PMIC

    assert PiPmicSensor(run).read_watts() == pytest.approx(parse_pmic(PMIC))
    assert seen[0] == ["vcgencmd", "pmic_read_adc"]


def test_pmic_absent_is_explained() -> None:
    def run(argv: list[str]) -> str:
        raise FileNotFoundError("vcgencmd is not on PATH")

    with pytest.raises(EnergySensorError, match="Pi 5 PMIC"):
        PiPmicSensor(run)


class ScriptedPower:
    name = "battery"
    method = EnergyMethod.MEASURED
    source = "scripted"
    uncertainty = 0.1

    def __init__(self, watts: list[float | None]) -> None:
        self.watts = list(watts)

    def read_watts(self) -> float | None:
        return self.watts.pop(0)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_integrator_trapezoid_and_fallback_when_primary_cannot_measure() -> None:
    clock = Clock()
    fallback = ScriptedPower([4.0])
    fallback.method, fallback.source = EnergyMethod.ESTIMATED, "estimate"
    integ = PowerIntegrator(ScriptedPower([10.0, 20.0, None]), fallback=fallback, clock=clock)
    integ.sample()
    clock.t = 2.0
    assert integ.read_joules() == pytest.approx(30.0)  # (10+20)/2 x 2 s
    assert integ.method is EnergyMethod.MEASURED
    clock.t = 3.0
    assert integ.read_joules() == pytest.approx(30.0 + 12.0)  # (20+4)/2 x 1 s
    assert integ.method is EnergyMethod.ESTIMATED and integ.source == "estimate"
