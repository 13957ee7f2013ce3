"""The estimate: TDP table, utilisation curve, vCPU coefficients, device classes, RAM, fitting."""

from __future__ import annotations

import pytest

from covey.energy import tables
from covey.energy.estimator import (
    CpuPowerModel,
    EstimatedCpuSensor,
    MachineFacts,
    RamSensor,
    choose_cpu_model,
    fit_power_model,
    mean_absolute_percentage_error,
    probe_machine,
)

from .fakes import Clock


def test_teads_curve_points_as_fractions_of_tdp() -> None:
    m = CpuPowerModel.from_tdp(100.0)
    assert m.watts(0.0) == pytest.approx(12.0)
    assert m.watts(0.1) == pytest.approx(32.0)
    assert m.watts(0.5) == pytest.approx(75.0)
    assert m.watts(1.0) == pytest.approx(102.0)
    assert m.watts(0.3) == pytest.approx((32 + 75) / 2)


def test_cpu_table_matches_real_model_names_with_word_boundaries() -> None:
    row = tables.find_cpu("Intel(R) Core(TM) i7-1165G7 @ 2.80GHz")
    assert row is not None and row.tdp_watts == 28
    row = tables.find_cpu("AMD Ryzen 7 5800X 8-Core Processor")
    assert row is not None and row.tdp_watts == 105
    assert tables.find_cpu("Intel(R) Core(TM) i7-87000") is None
    assert tables.find_cpu("AMD EPYC") is None


def test_choose_model_explains_vm_fallback_to_per_vcpu_coefficients() -> None:
    model, how = choose_cpu_model(MachineFacts(cpu_model="AMD EPYC", logical_cpus=2, virtual_machine=True))
    assert model.idle_watts == pytest.approx(0.74 * 2) and model.max_watts == pytest.approx(3.5 * 2)
    assert "not in TDP table" in how and "per-vCPU" in how and "virtual machine" in how


def test_choose_model_vm_on_known_host_takes_its_vcpu_share(tmp_path) -> None:
    # CodeCarbon's table has no thread counts: a VM on a known host falls back to per-vCPU
    # coefficients and says why; a table with a `threads` column gives the host share as before.
    model, how = choose_cpu_model(MachineFacts(cpu_model="AMD EPYC 7763 64-Core Processor",
                                               logical_cpus=8, virtual_machine=True))
    assert model.max_watts == pytest.approx(3.5 * 8)
    assert "row 'AMD EPYC 7763' = 280 W" in how and "no thread count" in how
    (tmp_path / "energy-data").mkdir()
    (tmp_path / "energy-data" / "cpu_power.csv").write_text("Name,TDP,threads\nAMD EPYC 7763,280,128\n")
    model, how = choose_cpu_model(MachineFacts(cpu_model="AMD EPYC 7763 64-Core Processor",
                                               logical_cpus=8, virtual_machine=True), data_dir=tmp_path)
    assert model.max_watts == pytest.approx(1.02 * 280 * 8 / 128)
    assert "8/128 vCPUs" in how


def test_choose_model_device_class_and_override() -> None:
    model, how = choose_cpu_model(MachineFacts(cpu_model="Cortex-A76", device_model="Raspberry Pi 5 Model B Rev 1.0"))
    assert (model.idle_watts, model.max_watts) == (2.7, 7.5) and "raspberry-pi-5" in how
    model, how = choose_cpu_model(MachineFacts(cpu_model="AMD EPYC"), tdp_override=65)
    assert model.max_watts == pytest.approx(1.02 * 65) and "settings" in how


def test_probe_machine_reads_cpuinfo_text() -> None:
    facts = probe_machine("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu hypervisor sse\n", "")
    assert facts.cpu_model == "AMD EPYC" and facts.virtual_machine


def test_estimated_cpu_sensor_integrates_power_at_measured_utilisation() -> None:
    clock = Clock()
    cpu = [(0.0, 0.0)]
    sensor = EstimatedCpuSensor(CpuPowerModel(2.0, 10.0, gamma=1.0, source="t"),
                                read_system_cpu=lambda: cpu[0], clock=clock)
    clock.t, cpu[0] = 2.0, (2.0, 4.0)  # 2 CPUs x 2 s, half busy
    assert sensor.read_joules() == pytest.approx(6.0 * 2.0)
    clock.t, cpu[0] = 3.0, (2.0, 6.0)  # idle second
    assert sensor.read_joules() == pytest.approx(12.0 + 2.0)


def test_ram_sensor_integrates_resident_memory() -> None:
    clock = Clock()
    ram = RamSensor(read_rss_bytes=lambda: 2_000_000_000, clock=clock)
    clock.t = 10.0
    assert ram.read_joules() == pytest.approx(2 * 0.392 * 10)


def test_fit_recovers_idle_max_and_gamma() -> None:
    truth = CpuPowerModel(5.0, 40.0, gamma=0.6)
    samples = [(u / 10, truth.watts(u / 10)) for u in range(11)]
    fitted = fit_power_model(samples)
    assert fitted.idle_watts == pytest.approx(5.0, abs=0.01)
    assert fitted.max_watts == pytest.approx(40.0, abs=0.01)
    assert fitted.gamma == pytest.approx(0.6)
    assert mean_absolute_percentage_error(fitted, samples) == pytest.approx(0.0, abs=0.01)
    assert mean_absolute_percentage_error(CpuPowerModel(5.0, 40.0, gamma=1.0), samples) > 5


def test_fit_refuses_too_few_samples() -> None:
    with pytest.raises(ValueError, match="at least 3 samples"):
        fit_power_model([(0.5, 10.0), (0.5, 11.0), (0.5, 12.0)])
