"""Sensor seams: cumulative energy counters and instantaneous power readers, one per component.

Every source ends up as an `EnergySensor` (a counter of joules since an arbitrary origin): counters
such as RAPL or NVML are read directly; power-only sources (battery, Pi PMIC, power polling) are
integrated over time by `PowerIntegrator`, sampled at window edges and by a background thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from covey.types import EnergyMethod

logger = logging.getLogger(__name__)

Scope = Literal["system", "device", "process"]


class EnergySensor(Protocol):
    """A cumulative energy counter for one component ("cpu", "gpu", "battery", "ram", ...)."""

    name: str
    scope: Scope
    """'system': covers every process, our share of the marginal is our share of busy CPU time;
    'device': an accelerator assumed to work only for us (GPU); 'process': ours alone (no idle)."""
    idle_watts: float | None
    """Power when idle, when known (estimators know it; measured sensors learn it)."""

    # Read-only: an integrator reports the method, source and uncertainty of the reader it is using now.
    @property
    def method(self) -> EnergyMethod: ...

    @property
    def source(self) -> str: ...

    @property
    def uncertainty(self) -> float: ...

    def read_joules(self) -> float: ...


class PowerSensor(Protocol):
    """An instantaneous power reader; None means 'cannot measure right now' (e.g. plugged in)."""

    name: str
    method: EnergyMethod
    source: str
    uncertainty: float

    def read_watts(self) -> float | None: ...


class PowerIntegrator:
    """Turns a power reader into a counter by trapezoid integration between samples.

    When the primary reader returns None (a battery while plugged in), the fallback reader is
    used for that stretch and the component is labelled with the fallback's method and source.
    """

    def __init__(self, power: PowerSensor, *, fallback: PowerSensor | None = None,
                 clock: Callable[[], float] = time.monotonic, idle_watts: float | None = None,
                 scope: Scope = "system") -> None:
        self.power = power
        self.fallback = fallback
        self.clock = clock
        self.name = power.name
        self.scope: Scope = scope
        self.idle_watts = idle_watts
        self._lock = threading.Lock()
        self._joules = 0.0
        self._last_t: float | None = None
        self._last_w = 0.0
        self._using = power

    @property
    def method(self) -> EnergyMethod:
        return self._using.method

    @property
    def source(self) -> str:
        return self._using.source

    @property
    def uncertainty(self) -> float:
        return self._using.uncertainty

    @property
    def uncertainty_high(self) -> float | None:
        return getattr(self._using, "uncertainty_high", None)

    def _watts(self) -> float:
        w = self.power.read_watts()
        if w is not None:
            self._using = self.power
            return w
        if self.fallback is not None:
            fw = self.fallback.read_watts()
            if fw is not None:
                self._using = self.fallback
                return fw
        return self._last_w

    def sample(self) -> float:
        """Read power now and add the energy since the previous sample; returns the watts read."""
        with self._lock:
            t = self.clock()
            w = self._watts()
            if self._last_t is not None:
                self._joules += max(0.0, t - self._last_t) * (w + self._last_w) / 2.0
            self._last_t, self._last_w = t, w
            return w

    def read_joules(self) -> float:
        self.sample()
        return self._joules


class BackgroundSampler:
    """Calls `sample()` on power-only sources every `interval_s` seconds in a daemon thread."""

    def __init__(self, targets: Sequence[Callable[[], object]], interval_s: float = 0.5) -> None:
        self.targets = list(targets)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> BackgroundSampler:
        if self._thread is None and self.targets:
            self._thread = threading.Thread(target=self._run, name="covey-energy-sampler", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for target in self.targets:
                try:
                    target()
                except Exception:  # a flaky sensor must not kill the node
                    logger.exception("energy sampling failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
