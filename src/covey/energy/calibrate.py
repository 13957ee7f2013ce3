"""Calibration: run the CPU at several loads, read a real sensor, fit the estimator to it."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from covey.energy.estimator import (
    CpuPowerModel,
    fit_power_model,
    mean_absolute_percentage_error,
    read_system_cpu,
)
from covey.errors import ConfigError

LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class Calibration:
    samples: tuple[tuple[float, float], ...]
    """(whole-machine utilisation, measured watts) per load level."""
    fitted: CpuPowerModel
    estimator_mape: float
    """Mean absolute percentage error of the table-based estimate against the sensor."""
    fitted_mape: float


def _spin(level: float, seconds: float) -> None:
    period = 0.1
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        busy_until = now + period * level
        while time.monotonic() < busy_until:
            pass
        time.sleep(max(0.0, period * (1 - level)))


def cpu_load(level: float, seconds: float) -> None:
    """Hold every CPU at `level` utilisation (duty cycle per 100 ms) for `seconds`."""
    if level <= 0:
        time.sleep(seconds)
        return
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_spin, args=(level, seconds)) for _ in range(os.cpu_count() or 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()


def collect(read_joules: Callable[[], float], *, load: Callable[[float, float], None] = cpu_load,
            read_system_cpu: Callable[[], tuple[float, float]] = read_system_cpu,
            clock: Callable[[], float] = time.monotonic, levels: Sequence[float] = LEVELS,
            seconds: float = 5.0) -> list[tuple[float, float]]:
    """(utilisation, watts) measured while `load` holds each level for `seconds`."""
    samples = []
    for level in levels:
        t0, e0, (b0, tot0) = clock(), read_joules(), read_system_cpu()
        load(level, seconds)
        t1, e1, (b1, tot1) = clock(), read_joules(), read_system_cpu()
        if t1 <= t0:
            continue
        u = (b1 - b0) / (tot1 - tot0) if tot1 > tot0 else 0.0
        samples.append((u, (e1 - e0) / (t1 - t0)))
    return samples


def calibrate_against(samples: Sequence[tuple[float, float]], current: CpuPowerModel) -> Calibration:
    fitted = fit_power_model(samples)
    return Calibration(samples=tuple(samples), fitted=fitted,
                       estimator_mape=mean_absolute_percentage_error(current, samples),
                       fitted_mape=mean_absolute_percentage_error(fitted, samples))


CALIBRATION_FILE = "energy_calibration.json"


def save_calibration(path: Path, result: Calibration, sensor_source: str) -> Path:
    """Keep the fitted curve so the estimate (e.g. a laptop on mains) uses it from now on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = result.fitted
    data = {"idle_watts": f.idle_watts, "max_watts": f.max_watts, "gamma": f.gamma, "sensor": sensor_source,
            "mape_percent": result.fitted_mape, "estimator_mape_percent": result.estimator_mape,
            "samples": result.samples, "time": time.time()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
    return path


def load_calibration(path: Path) -> CpuPowerModel | None:
    """The saved curve, or None when there is none; a damaged file is an error naming it."""
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
        return CpuPowerModel(float(d["idle_watts"]), float(d["max_watts"]), float(d["gamma"]),
                             f"calibrated:{d['sensor']}:gamma={float(d['gamma']):g}",
                             max(0.05, float(d["mape_percent"]) / 100.0), None)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the calibration file {path} is damaged ({exc})",
                          hint="delete it and run `covey node calibrate` again") from exc
