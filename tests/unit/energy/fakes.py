"""Fakes for energy tests: hand-driven clocks, counters and CPU-time readers that record reads."""

from __future__ import annotations

from covey.types import EnergyMethod


class Clock:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Counter:
    """A cumulative joules counter whose value the test sets; counts how often it was read."""

    def __init__(self, name: str = "cpu", *, method: EnergyMethod = EnergyMethod.MEASURED,
                 scope: str = "system", idle_watts: float | None = None, source: str = "fake-counter") -> None:
        self.name, self.method, self.scope, self.idle_watts, self.source = name, method, scope, idle_watts, source
        self.uncertainty = 0.05
        self.joules = 0.0
        self.reads = 0

    def read_joules(self) -> float:
        self.reads += 1
        return self.joules


class ThreadCpu:
    """Per-thread CPU seconds the test sets; records which thread ids were asked for."""

    def __init__(self) -> None:
        self.cpu: dict[int, float] = {}
        self.seen: set[int] = set()

    def __call__(self, tid: int) -> float:
        self.seen.add(tid)
        return self.cpu.get(tid, 0.0)
