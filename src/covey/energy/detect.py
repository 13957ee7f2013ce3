"""Pick the best energy source on this device and say why: RAPL, NVML, Apple Silicon, battery,
Pi 5 PMIC, otherwise an estimate (device class, TDP table or per-vCPU coefficients, plus RAM)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from covey.energy.attribution import AttributingMeter
from covey.energy.battery import BatterySensor
from covey.energy.calibrate import CALIBRATION_FILE, load_calibration
from covey.energy.estimator import (
    CpuPowerModel,
    EstimatedCpuSensor,
    MachineFacts,
    RAM_WATTS_PER_GB,
    RamSensor,
    choose_cpu_model,
    probe_machine,
    read_system_cpu,
    recent,
)
from covey.energy.gpu import AppleSiliconSensor, NvmlEnergySensor, NvmlPowerSensor
from covey.energy.pmic import PiPmicSensor, run_vcgencmd
from covey.energy.rapl import RaplSensor
from covey.energy.sensors import BackgroundSampler, EnergySensor, PowerIntegrator
from covey.errors import ConfigError, EnergySensorError
from covey.settings import EnergySettings, Settings
from covey.types import EnergyMethod

logger = logging.getLogger(__name__)

SENSOR_CHOICES = ("auto", "rapl", "nvml", "apple", "battery", "pmic", "estimate")


class DetectedMeter(AttributingMeter):
    """The meter `detect_meter` builds: knows why it was chosen and owns its background sampler."""

    sampler: BackgroundSampler | None = None
    estimate_only: bool = False
    cpu_model: CpuPowerModel | None = None
    """The CPU power curve of the estimate (fitted by `covey node calibrate` when it ran): the power cap's plan."""
    logical_cpus: int = 1
    kinds: tuple[str, ...] = ()
    """Short names of the sources in use (rapl, nvml, apple, battery, pmic, estimate): Prometheus labels."""

    @property
    def kind(self) -> str:
        return "+".join(self.kinds) or "estimate"

    def summary(self) -> str:
        """One line: measured or estimated, and from what. `describe()` has the full paragraph."""
        head = "estimated (no power sensor here)" if self.estimate_only else "measured"
        return f"{head}: " + ", ".join(f"{s.name} {s.source}" for s in self.sensors)

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()


class _EstimatedPower:
    """The CPU estimate as a power reader: the fallback while a battery is plugged in."""

    name = "cpu"
    method = EnergyMethod.ESTIMATED

    def __init__(self, cpu: EstimatedCpuSensor) -> None:
        self.cpu = cpu
        self.source = cpu.source
        self.uncertainty = cpu.uncertainty
        self.uncertainty_high = cpu.uncertainty_high

    def read_watts(self) -> float | None:
        self.cpu.read_joules()
        return self.cpu.last_watts


def detect_meter(settings: Settings | EnergySettings | None = None, *,
                 powercap_root: Path = Path("/sys/class/powercap"),
                 power_supply_root: Path = Path("/sys/class/power_supply"),
                 run: Callable[[list[str]], str] = run_vcgencmd,
                 nvml: Any = None, apple: Any = None,
                 facts: MachineFacts | None = None,
                 read_system_cpu: Callable[[], tuple[float, float]] = read_system_cpu,
                 read_process_cpu: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic,
                 sample_interval_s: float = 0.5, start_sampler: bool = True,
                 calibration: Path | None = None) -> DetectedMeter:
    """The best meter available here; `meter.describe()` explains every source tried.

    `calibration` (default DATA_DIR/energy_calibration.json when full Settings are given) holds the
    curve `covey node calibrate` fitted; when present the estimate uses it instead of the tables.
    """
    es = settings.energy if isinstance(settings, Settings) else (settings or EnergySettings())
    if calibration is None and isinstance(settings, Settings):
        calibration = settings.data_dir / CALIBRATION_FILE
    want = es.sensor.lower()
    if want not in SENSOR_CHOICES:
        raise ConfigError(f"unknown energy sensor {es.sensor!r}; choose one of {', '.join(SENSOR_CHOICES)}")
    tried: list[str] = []
    sensors: list[EnergySensor] = []
    power_only: list[PowerIntegrator] = []
    kinds: list[str] = []

    def attempt(kind: str, build: Callable[[], Any]) -> Any:
        if want not in ("auto", kind):
            return None
        try:
            return build()
        except EnergySensorError as exc:
            tried.append(exc.message)
            if want == kind:
                raise
            return None

    read_system_cpu = recent(read_system_cpu)  # the meter and the estimate share one read per edge
    facts = facts or probe_machine()
    data_dir = settings.data_dir if isinstance(settings, Settings) else None
    cpu_model, how = choose_cpu_model(facts, tdp_override=es.cpu_tdp_watts, data_dir=data_dir)
    fitted = load_calibration(calibration) if calibration is not None else None
    if fitted is not None and es.cpu_tdp_watts is None:
        cpu_model = fitted
        how = (f"curve calibrated on this machine ({fitted.idle_watts:.1f}-{fitted.max_watts:.1f} W, "
               f"{fitted.source})")
    estimate = EstimatedCpuSensor(cpu_model, read_system_cpu=read_system_cpu, clock=clock)

    if (rapl := attempt("rapl", lambda: RaplSensor(powercap_root))) is not None:
        sensors.append(rapl)
        kinds.append("rapl")
        tried.append(f"measured: {rapl.source}")
    gpu = attempt("nvml", lambda: NvmlEnergySensor(nvml))
    if gpu is None and tried and "no NVML energy counter" in tried[-1]:
        power = attempt("nvml", lambda: NvmlPowerSensor(nvml))
        if power is not None:
            gpu = PowerIntegrator(power, clock=clock, scope="device")
            power_only.append(gpu)
    if gpu is not None:
        sensors.append(gpu)
        kinds.append("nvml")
        tried.append(f"measured: {gpu.source}")
    if not sensors and (soc := attempt("apple", lambda: AppleSiliconSensor(apple))) is not None:
        sensors.append(soc)
        kinds.append("apple")
        tried.append(f"measured: {soc.source}")
    if not sensors:
        battery = attempt("battery", lambda: BatterySensor(power_supply_root))
        if battery is not None:
            integ = PowerIntegrator(battery, fallback=_EstimatedPower(estimate), clock=clock)
            sensors.append(integ)
            power_only.append(integ)
            kinds.append("battery")
            now = "unplugged now" if battery.on_battery() else "on mains now, so estimating until unplugged"
            tried.append(f"measured: {battery.source} discharge power while unplugged ({now}; "
                         f"plugged in: estimated, {how})")
    if not sensors and (pmic := attempt("pmic", lambda: PiPmicSensor(run))) is not None:
        integ = PowerIntegrator(pmic, clock=clock)
        sensors.append(integ)
        power_only.append(integ)
        kinds.append("pmic")
        tried.append(f"measured: {pmic.source}")
    estimate_only = not sensors
    if estimate_only or [s.name for s in sensors] == ["gpu"]:
        kinds.append("estimate")
    if estimate_only:
        sensors = [estimate, RamSensor(clock=clock)]
        tried.append(f"estimated: {how}, plus RAM at {RAM_WATTS_PER_GB:g} W/GB of resident memory")
        tried.insert(0, "no power sensor on this machine: the figures are an estimate")
    elif [s.name for s in sensors] == ["gpu"]:
        sensors.insert(0, estimate)  # a GPU alone: add the CPU estimate
        tried.append(f"estimated cpu: {how}")
    meter = DetectedMeter(sensors, read_process_cpu=read_process_cpu,
                          read_system_busy=lambda: read_system_cpu()[0], clock=clock,
                          description="; ".join(tried))
    meter.estimate_only = estimate_only
    meter.cpu_model, meter.logical_cpus = cpu_model, max(1, facts.logical_cpus)
    meter.kinds = tuple(kinds)
    if power_only and start_sampler:
        meter.sampler = BackgroundSampler([p.sample for p in power_only], sample_interval_s).start()
    logger.debug("energy meter: %s", meter.describe())
    return meter

