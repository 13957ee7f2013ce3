"""Estimated power where no sensor exists: a CPU power curve from a TDP table, per-vCPU
coefficients for virtual machines, a device-class table for boards and phones, and a RAM term.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from covey.energy import tables
from covey.energy.sensors import Scope
from covey.types import EnergyMethod

logger = logging.getLogger(__name__)

TEADS_CURVE: tuple[tuple[float, float], ...] = ((0.0, 0.12), (0.10, 0.32), (0.50, 0.75), (1.00, 1.02))
"""Fraction of TDP drawn at a CPU utilisation: Teads Engineering, 'Building an AWS EC2 carbon
emissions dataset' (B. Davy, 2021), as used by the Boavizta API and GSF SCI case studies."""

RAM_WATTS_PER_GB = 0.392
"""Cloud Carbon Footprint methodology (Apache-2.0), from Crucial's memory power figures."""

LOAD_X_TDP_LOW, LOAD_X_TDP_HIGH = 0.6, 1.9
"""The documented range of a utilisation x TDP estimate: CodeCarbon's comparison of its CPU-load
estimate with RAPL measurements found deviations of about -60 % to +190 % (CodeCarbon docs,
'Methodology: CPU'; the measurements are in codecarbon/data/hardware/cpu_load_profiling/)."""

CALIBRATED_UNCERTAINTY = 0.1
"""A curve fitted against this machine's own sensor (`covey node calibrate`)."""


@dataclass(frozen=True)
class CpuPowerModel:
    """P(u) = idle + (max - idle) * g(u), g from the Teads points or u**gamma when calibrated."""

    idle_watts: float
    max_watts: float
    gamma: float | None = None
    source: str = ""
    uncertainty: float = LOAD_X_TDP_LOW
    uncertainty_high: float | None = LOAD_X_TDP_HIGH
    """Relative range of the figures this model gives: -uncertainty .. +uncertainty_high."""

    @classmethod
    def from_tdp(cls, tdp_watts: float, *, share: float = 1.0, source: str = "") -> CpuPowerModel:
        lo, hi = TEADS_CURVE[0][1], TEADS_CURVE[-1][1]
        return cls(lo * tdp_watts * share, hi * tdp_watts * share, None, source, LOAD_X_TDP_LOW, LOAD_X_TDP_HIGH)

    def shape(self, u: float) -> float:
        """The curve normalised to 0 at idle and 1 at full load."""
        u = min(1.0, max(0.0, u))
        if self.gamma is not None:
            return u ** self.gamma
        xs = [p[0] for p in TEADS_CURVE]
        i = max(1, min(len(xs) - 1, bisect.bisect_left(xs, u)))
        (x0, y0), (x1, y1) = TEADS_CURVE[i - 1], TEADS_CURVE[i]
        y = y0 + (y1 - y0) * (u - x0) / (x1 - x0)
        lo, hi = TEADS_CURVE[0][1], TEADS_CURVE[-1][1]
        return (y - lo) / (hi - lo)

    def watts(self, utilisation: float) -> float:
        return self.idle_watts + (self.max_watts - self.idle_watts) * self.shape(utilisation)


def read_system_cpu() -> tuple[float, float]:
    """(busy CPU seconds, wall-clock CPU seconds) summed over all CPUs since boot."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    total = sum(t)
    return total - idle, total


class EstimatedCpuSensor:
    """A counter integrating P(u) over time, u being whole-machine utilisation between reads."""

    name = "cpu"
    method = EnergyMethod.ESTIMATED
    scope: Scope = "system"

    def __init__(self, model: CpuPowerModel, *,
                 read_system_cpu: Callable[[], tuple[float, float]] = read_system_cpu,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.model = model
        self.source = model.source
        self.uncertainty = model.uncertainty
        self.uncertainty_high = model.uncertainty_high
        self.idle_watts: float | None = model.idle_watts
        self._read = read_system_cpu
        self._clock = clock
        self._lock = threading.Lock()
        self._last_t = clock()
        self._last_busy, self._last_total = read_system_cpu()
        self._joules = 0.0
        self.last_watts = model.idle_watts

    def read_joules(self) -> float:
        with self._lock:
            t = self._clock()
            busy, total = self._read()
            dt = t - self._last_t
            if dt > 0:
                dtotal = total - self._last_total
                u = (busy - self._last_busy) / dtotal if dtotal > 0 else 0.0
                self.last_watts = self.model.watts(u)
                self._joules += self.last_watts * dt
            self._last_t, self._last_busy, self._last_total = t, busy, total
            return self._joules


_SELF: psutil.Process | None = None


def read_process_rss_bytes() -> int:
    global _SELF
    if _SELF is None:
        _SELF = psutil.Process()
    return _SELF.memory_info().rss


def recent(read: Callable[[], tuple[float, float]], max_age_s: float = 0.002,
           clock: Callable[[], float] = time.monotonic) -> Callable[[], tuple[float, float]]:
    """A reader that reuses a reading taken less than `max_age_s` ago (one /proc/stat read per edge)."""
    last: list[tuple[float, tuple[float, float]]] = []
    lock = threading.Lock()

    def read_recent() -> tuple[float, float]:
        with lock:
            now = clock()
            if last and now - last[0][0] < max_age_s:
                return last[0][1]
            value = read()
            last[:] = [(now, value)]
            return value

    return read_recent


class RamSensor:
    """RAM power of this process: resident GB x 0.392 W/GB, integrated over time (all marginal)."""

    name = "ram"
    method = EnergyMethod.ESTIMATED
    scope: Scope = "process"
    uncertainty = 0.5
    idle_watts: float | None = 0.0

    def __init__(self, *, read_rss_bytes: Callable[[], int] = read_process_rss_bytes,
                 watts_per_gb: float = RAM_WATTS_PER_GB, clock: Callable[[], float] = time.monotonic) -> None:
        self.watts_per_gb = watts_per_gb
        self.source = f"rss x {watts_per_gb:g} W/GB (Cloud Carbon Footprint)"
        self._rss = read_rss_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._last_t = clock()
        self._joules = 0.0

    def read_joules(self) -> float:
        with self._lock:
            t = self._clock()
            self._joules += max(0.0, t - self._last_t) * self._rss() / 1e9 * self.watts_per_gb
            self._last_t = t
            return self._joules


@dataclass(frozen=True)
class MachineFacts:
    """What the estimate needs to know about the machine; `probe_machine()` reads the real one."""

    cpu_model: str = ""
    logical_cpus: int = 1
    virtual_machine: bool = False
    device_model: str = ""
    android: bool = False


def probe_machine(cpuinfo: str | None = None, device_model: str | None = None) -> MachineFacts:
    if cpuinfo is None:
        try:
            cpuinfo = open("/proc/cpuinfo", encoding="utf-8").read()
        except OSError:
            cpuinfo = ""
    if device_model is None:
        try:
            device_model = open("/proc/device-tree/model", encoding="utf-8").read().strip("\0\n ")
        except OSError:
            device_model = ""
    name, flags = "", ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "Hardware") and not name:
            name = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = value
    return MachineFacts(
        cpu_model=name,
        logical_cpus=os.cpu_count() or 1,
        virtual_machine="hypervisor" in flags.split(),
        device_model=device_model,
        android="ANDROID_ROOT" in os.environ,
    )


def choose_cpu_model(facts: MachineFacts, *, tdp_override: float | None = None,
                     provider: str = "average", data_dir: Path | None = None) -> tuple[CpuPowerModel, str]:
    """The best estimate for this machine and a sentence saying how it was chosen.

    Your `cpu_tdp_watts` comes first, then a device class (boards, phones), then CodeCarbon's CPU
    table (refreshed copy in `data_dir`/energy-data/ first), then per-vCPU coefficients.
    """
    n = max(1, facts.logical_cpus)
    rng = f"range -{LOAD_X_TDP_LOW:.0%}..+{LOAD_X_TDP_HIGH:.0%} (CodeCarbon: load x TDP vs RAPL)"
    if tdp_override is not None:
        return (CpuPowerModel.from_tdp(tdp_override, source=f"tdp-config:{tdp_override:g}W"),
                f"CPU TDP {tdp_override:g} W from settings with the Teads utilisation curve, {rng}")
    device = tables.find_device_class("android" if facts.android else facts.device_model) if (
        facts.android or facts.device_model) else None
    if device is not None:
        return (CpuPowerModel(device.idle_watts, device.max_watts, None,
                              f"device-class:{device.cls}", 0.5, None),
                (f"device class '{device.cls}' ({device.idle_watts:g}-{device.max_watts:g} W, {device.source}), "
                 "range +/-50 %"))
    hit = tables.find_cpu(facts.cpu_model, data_dir) if facts.cpu_model else None
    if hit is not None and (not facts.virtual_machine or hit.threads):
        share = min(1.0, n / hit.threads) if facts.virtual_machine and hit.threads else 1.0
        note = f" x {n}/{hit.threads} vCPUs of the host" if share < 1.0 else ""
        where = f"codecarbon cpu_power.csv {hit.describe()}"
        return (CpuPowerModel.from_tdp(hit.tdp_watts, share=share,
                                       source=f"tdp-table:{where}{note}"),
                f"CPU '{facts.cpu_model}' matched {where}{note}, Teads utilisation curve, {rng}")
    coeff = tables.vcpu_coefficients()[provider]
    what = "virtual machine" if facts.virtual_machine else "unknown machine"
    why = (f"host CPU matched {hit.describe()} but the table has no thread count to take this VM's share"
           if hit is not None else f"CPU '{facts.cpu_model or 'unknown'}' not in TDP table")
    return (CpuPowerModel(coeff.min_watts_per_vcpu * n, coeff.max_watts_per_vcpu * n, None,
                          f"per-vcpu:{coeff.min_watts_per_vcpu:g}-{coeff.max_watts_per_vcpu:g}W x {n}",
                          LOAD_X_TDP_LOW, LOAD_X_TDP_HIGH),
            (f"{why}, {what}: using per-vCPU coefficient "
             f"{coeff.min_watts_per_vcpu:g}-{coeff.max_watts_per_vcpu:g} W x {n} ({coeff.source}), {rng}"))


GAMMAS = tuple(i / 20 for i in range(4, 41))
"""The exponents `fit_power_model` tries: 0.2 to 2.0 in steps of 0.05."""


def fit_power_model(samples: Sequence[tuple[float, float]],
                    gammas: Sequence[float] = GAMMAS) -> CpuPowerModel:
    """Least-squares fit of idle, max and gamma to (utilisation, measured watts) samples."""
    if len(samples) < 3 or len({round(u, 3) for u, _ in samples}) < 2:
        raise ValueError("need at least 3 samples at 2 or more utilisation levels to fit a power curve")
    best: tuple[float, CpuPowerModel] | None = None
    for g in gammas:
        xs = [min(1.0, max(0.0, u)) ** g for u, _ in samples]
        ys = [w for _, w in samples]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx <= 0:
            continue
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
        idle = my - slope * mx
        err = sum((idle + slope * x - y) ** 2 for x, y in zip(xs, ys))
        if best is None or err < best[0]:
            best = (err, CpuPowerModel(max(0.0, idle), max(0.0, idle + slope), g, f"calibrated:gamma={g:g}",
                                        CALIBRATED_UNCERTAINTY, None))
    assert best is not None
    return best[1]


def mean_absolute_percentage_error(model: CpuPowerModel, samples: Sequence[tuple[float, float]]) -> float:
    """MAPE (percent) of the model's watts against measured watts; samples at 0 W are ignored."""
    errs = [abs(model.watts(u) - w) / w for u, w in samples if w > 0]
    if not errs:
        raise ValueError("no samples with non-zero measured power")
    return 100.0 * sum(errs) / len(errs)
