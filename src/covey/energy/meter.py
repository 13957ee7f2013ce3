"""Per-request energy windows: a meter is opened when work starts and closed when it ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from covey.estimates import WATTS_PER_CORE
from covey.types import Energy, EnergyComponent, EnergyMethod


class EnergyWindow(Protocol):
    def close(self) -> Energy:
        """End the window and return the energy attributed to the work inside it."""


class EnergyMeter(Protocol):
    """Opens one window per request. Implementations: sensors (measured) or estimators."""

    def open(self, label: str = "") -> EnergyWindow: ...


@dataclass
class _CpuWindow:
    meter: CpuTimeEstimator
    cpu0: float
    t0: float
    closed: Energy | None = field(default=None)

    def close(self) -> Energy:
        if self.closed is None:
            cpu_s = max(0.0, self.meter.read_cpu_seconds() - self.cpu0)
            joules = cpu_s * self.meter.watts_per_core
            self.closed = Energy.of([
                EnergyComponent(
                    name="cpu",
                    joules=joules,
                    marginal_joules=joules,
                    method=EnergyMethod.ESTIMATED,
                    source=f"process-cpu-time x {self.meter.watts_per_core:g} W/core",
                    uncertainty=0.5,
                )
            ])
        return self.closed


class CpuTimeEstimator:
    """Estimate: the process's CPU seconds times a per-core power figure. Labelled 'estimated'."""

    def __init__(self, watts_per_core: float = WATTS_PER_CORE,
                 read_cpu_seconds: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.watts_per_core = watts_per_core
        self.read_cpu_seconds = read_cpu_seconds
        self.clock = clock

    def open(self, label: str = "") -> _CpuWindow:
        return _CpuWindow(self, self.read_cpu_seconds(), self.clock())
