"""Per-request windows over shared energy counters, with attribution when requests overlap.

Every open and close (and every background tick) is an *edge*. Between two edges the meter
reads each counter's energy and splits it:

- the idle part (idle watts x seconds) goes wholly to the windows open in that stretch (the
  device is on because it serves them);
- the part above idle is multiplied by this process's share of the machine's busy CPU time
  (other programs' work is not ours), for counters covering the whole system;
- what is attributed is divided among the open windows by their threads' CPU time in the stretch
  (equally if none ran), so the windows always add up to the meter's attributed total.

Track the thread that does the work: open the window in it, or call `window.track_thread()` there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from covey.energy.sensors import EnergySensor
from covey.types import Energy, EnergyComponent, EnergyMethod

logger = logging.getLogger(__name__)


def read_thread_cpu(thread_id: int) -> float:
    """CPU seconds of one live Python thread of this process, readable from any thread (POSIX).

    Raises ValueError for a thread that has ended: asking pthreads about it is undefined behaviour.
    """
    if thread_id != threading.get_ident() and not any(t.ident == thread_id for t in threading.enumerate()):
        raise ValueError(f"thread {thread_id} has ended")
    return time.clock_gettime(time.pthread_getcpuclockid(thread_id))


def _system_busy() -> float:
    from covey.energy.estimator import read_system_cpu

    return read_system_cpu()[0]


@dataclass
class _Part:
    joules: float = 0.0
    marginal: float = 0.0


@dataclass
class MeterWindow:
    """One request's share of the energy; `close()` returns it as covey's Energy."""

    meter: AttributingMeter
    label: str
    opened_at: float
    threads: dict[int, float] = field(default_factory=dict)
    parts: dict[str, _Part] = field(default_factory=dict)
    closed_at: float | None = None
    result: Energy | None = None

    def track_thread(self, thread_id: int | None = None, *, replace: bool = True) -> None:
        """Count this thread's CPU time (default: the calling thread) towards the window's share.

        By default it replaces the threads tracked so far (the window was opened on an event loop
        and the work moved to a worker thread); `replace=False` adds it.
        """
        self.meter._track(self, threading.get_ident() if thread_id is None else thread_id, replace)

    @property
    def seconds(self) -> float:
        end = self.closed_at if self.closed_at is not None else self.meter.clock()
        return end - self.opened_at

    def close(self) -> Energy:
        if self.result is None:
            self.result = self.meter._close(self)
        return self.result


class AttributingMeter:
    """An EnergyMeter over one or more counters; windows may overlap."""

    def __init__(self, sensors: Sequence[EnergySensor], *,
                 read_process_cpu: Callable[[], float] = time.process_time,
                 read_system_busy: Callable[[], float] = _system_busy,
                 read_thread_cpu: Callable[[int], float] = read_thread_cpu,
                 clock: Callable[[], float] = time.monotonic,
                 description: str = "") -> None:
        if not sensors:
            raise ValueError("an AttributingMeter needs at least one sensor")
        self.sensors = list(sensors)
        self.read_process_cpu = read_process_cpu
        self.read_system_busy = read_system_busy
        self.read_thread_cpu = read_thread_cpu
        self.clock = clock
        self.description = description
        self._lock = threading.RLock()
        self._open: list[MeterWindow] = []
        self._learned_idle: dict[str, float] = {}
        self.attributed_joules = 0.0
        """Energy given to windows since start: the sum of every window's joules."""
        self.device_joules = 0.0
        """Every counter's energy while at least one window was open (ours and everyone else's)."""
        self.last_watts = 0.0
        self._t = clock()
        self._proc = read_process_cpu()
        self._busy = read_system_busy()
        self._e = [self._read(s, 0.0) for s in self.sensors]

    def describe(self) -> str:
        return self.description or ", ".join(f"{s.method.value}: {s.source}" for s in self.sensors)

    # -- EnergyMeter protocol ---------------------------------------------------------------
    def open(self, label: str = "") -> MeterWindow:
        with self._lock:
            self._advance()
            w = MeterWindow(self, label, self._t)
            self._open.append(w)
            self._track(w, threading.get_ident())
            return w

    def tick(self) -> float:
        """Take an edge now (the power-cap loop does, as read_power_w); returns watts since the last edge."""
        with self._lock:
            self._advance()
            return self.last_watts

    read_power_w = tick

    # -- internals --------------------------------------------------------------------------
    def _read(self, sensor: EnergySensor, fallback: float) -> float:
        try:
            return sensor.read_joules()
        except Exception:  # one bad reading must not fail a request
            logger.warning("energy sensor %s failed; counting 0 J for this stretch", sensor.source, exc_info=True)
            return fallback

    def _thread_cpu(self, tid: int, last: float) -> float:
        try:
            return self.read_thread_cpu(tid)
        except (OSError, ValueError):  # the thread has ended: no more CPU from it
            return last

    def _track(self, w: MeterWindow, tid: int, replace: bool = False) -> None:
        with self._lock:
            if replace:
                self._advance()  # CPU so far counted under the old threads
                w.threads.clear()
            if tid not in w.threads:
                w.threads[tid] = self._thread_cpu(tid, 0.0)

    def idle_watts(self, sensor: EnergySensor) -> float | None:
        return sensor.idle_watts if sensor.idle_watts is not None else self._learned_idle.get(sensor.source)

    def _advance(self) -> None:
        t = self.clock()
        proc, busy = self.read_process_cpu(), self.read_system_busy()
        energies = [self._read(s, e) for s, e in zip(self.sensors, self._e)]
        dt = max(0.0, t - self._t)
        dproc, dbusy = max(0.0, proc - self._proc), max(0.0, busy - self._busy)
        share = min(1.0, dproc / dbusy) if dbusy > 1e-9 else (1.0 if dproc > 0 else 0.0)
        deltas = [max(0.0, e1 - e0) for e0, e1 in zip(self._e, energies)]
        self.last_watts = sum(deltas) / dt if dt > 0 else self.last_watts
        weights = self._weights()
        for sensor, de in zip(self.sensors, deltas):
            if not self._open:
                self._learn_idle(sensor, de, dt)
                continue
            self.device_joules += de
            idle_w = self.idle_watts(sensor)
            if sensor.scope == "process":
                idle_part, marginal = 0.0, de
            else:
                idle_part = min(de, (idle_w or 0.0) * dt)
                marginal = (de - idle_part) * (share if sensor.scope == "system" else 1.0)
            for w, weight in weights:
                part = w.parts.setdefault(sensor.name, _Part())
                part.joules += (idle_part + marginal) * weight
                part.marginal += marginal * weight
            self.attributed_joules += idle_part + marginal
        self._t, self._proc, self._busy, self._e = t, proc, busy, energies

    def _weights(self) -> list[tuple[MeterWindow, float]]:
        used = []
        for w in self._open:
            cpu = 0.0
            for tid, last in w.threads.items():
                now = self._thread_cpu(tid, last)
                cpu += max(0.0, now - last)
                w.threads[tid] = now
            used.append(cpu)
        total = sum(used)
        if total <= 0:
            return [(w, 1.0 / len(self._open)) for w in self._open] if self._open else []
        return [(w, u / total) for w, u in zip(self._open, used)]

    def _learn_idle(self, sensor: EnergySensor, de: float, dt: float) -> None:
        """Measured counters learn idle power from the gaps between requests (a slow average)."""
        if sensor.idle_watts is not None or dt < 0.5:
            return
        watts = de / dt
        old = self._learned_idle.get(sensor.source)
        self._learned_idle[sensor.source] = watts if old is None else 0.8 * old + 0.2 * watts

    def _close(self, w: MeterWindow) -> Energy:
        with self._lock:
            self._advance()
            self._open.remove(w)
            w.closed_at = self._t
            comps = []
            for sensor in self.sensors:
                part = w.parts.get(sensor.name, _Part())
                idle_known = self.idle_watts(sensor) is not None or sensor.scope == "process"
                source = sensor.source + ("" if idle_known else "; idle not yet learned, marginal = total")
                if sensor.scope == "system":
                    source += "; shared by CPU time"
                comps.append(EnergyComponent(
                    name=sensor.name, joules=part.joules, marginal_joules=min(part.joules, part.marginal),
                    method=sensor.method, source=source, uncertainty=sensor.uncertainty,
                    uncertainty_high=getattr(sensor, "uncertainty_high", None)))
            return Energy.of(comps)

    @property
    def method(self) -> EnergyMethod:
        measured = all(s.method is EnergyMethod.MEASURED for s in self.sensors)
        return EnergyMethod.MEASURED if measured else EnergyMethod.ESTIMATED
